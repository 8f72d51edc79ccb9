// gRPC server reflection over a real nice-grpc server on a loopback port, asked what grpcurl asks for
// `list` and `describe`, with the generated v1 and v1alpha clients.
import { create, createFileRegistry, fromBinary, toBinary } from '@bufbuild/protobuf';
import {
  type FileDescriptorProto,
  FileDescriptorProtoSchema,
  FileDescriptorSetSchema,
} from '@bufbuild/protobuf/wkt';
import { createChannel, createClient, createServer, Status } from 'nice-grpc';
import { describe, expect, it, onTestFinished } from 'vitest';
import { HealthDefinition } from '../../gen/grpc/health/v1/health.js';
import {
  type DeepPartial,
  ServerReflectionDefinition as ServerReflectionDefinitionV1,
  type ServerReflectionRequest,
  type ServerReflectionResponse,
} from '../../gen/grpc/reflection/v1/reflection.js';
import { ServerReflectionDefinition as ServerReflectionDefinitionV1alpha } from '../../gen/grpc/reflection/v1alpha/reflection.js';
import { AdminServiceDefinition } from '../../gen/redlease/v1/admin.js';
import { LockServiceDefinition } from '../../gen/redlease/v1/lock.js';
import {
  loadDescriptorSet,
  ReflectionV1,
  ReflectionV1alpha,
  reflectionService,
} from './reflection-service.js';

const SERVICE_NAMES = [
  LockServiceDefinition.fullName,
  AdminServiceDefinition.fullName,
  HealthDefinition.fullName,
  ServerReflectionDefinitionV1.fullName,
  ServerReflectionDefinitionV1alpha.fullName,
];

/** Field numbers of the descriptor.proto paths used in SourceCodeInfo locations. */
const FILE_SERVICE = 6;
const SERVICE_METHOD = 2;

type Request = DeepPartial<ServerReflectionRequest>;
type ReflectionCall = (requests: AsyncIterable<Request>) => AsyncIterable<ServerReflectionResponse>;

async function startReflectionServer() {
  const service = reflectionService(loadDescriptorSet(), SERVICE_NAMES);
  const server = createServer();
  server.add(ReflectionV1, service);
  server.add(ReflectionV1alpha, service);
  const port = await server.listen('127.0.0.1:0');
  const channel = createChannel(`127.0.0.1:${port}`);
  onTestFinished(() => {
    channel.close();
    server.forceShutdown();
  });
  const v1 = createClient(ServerReflectionDefinitionV1, channel);
  const v1alpha = createClient(ServerReflectionDefinitionV1alpha, channel);
  return {
    v1: ((requests) => v1.serverReflectionInfo(requests)) as ReflectionCall,
    v1alpha: ((requests) => v1alpha.serverReflectionInfo(requests)) as ReflectionCall,
  };
}

/** Sends `requests` on one stream, ends it, and returns every response (the stream must end too). */
async function ask(call: ReflectionCall, ...requests: Request[]): Promise<ServerReflectionResponse[]> {
  async function* send() {
    yield* requests;
  }
  const responses: ServerReflectionResponse[] = [];
  for await (const response of call(send())) responses.push(response);
  return responses;
}

async function askOne(call: ReflectionCall, request: Request): Promise<ServerReflectionResponse> {
  const responses = await ask(call, request);
  expect(responses).toHaveLength(1);
  return responses[0]!;
}

const symbol = (value: string): Request => ({ messageRequest: { $case: 'fileContainingSymbol', value } });
const fileName = (value: string): Request => ({ messageRequest: { $case: 'fileByFilename', value } });
const listServices: Request = { messageRequest: { $case: 'listServices', value: '*' } };

function listedNames(response: ServerReflectionResponse): string[] {
  if (response.messageResponse?.$case !== 'listServicesResponse') {
    return expect.fail(`expected list_services_response, got ${JSON.stringify(response.messageResponse)}`);
  }
  return response.messageResponse.value.service.map((service) => service.name);
}

function decodedFiles(response: ServerReflectionResponse): FileDescriptorProto[] {
  if (response.messageResponse?.$case !== 'fileDescriptorResponse') {
    return expect.fail(`expected file_descriptor_response, got ${JSON.stringify(response.messageResponse)}`);
  }
  return response.messageResponse.value.fileDescriptorProto.map((bytes) =>
    fromBinary(FileDescriptorProtoSchema, bytes),
  );
}

function nextMissing(files: FileDescriptorProto[]): string | undefined {
  return files.flatMap((file) => file.dependency).find((name) => !files.some((file) => file.name === name));
}

function leadingComments(file: FileDescriptorProto, path: number[]): string | undefined {
  return file.sourceCodeInfo?.location.find(
    (location) => location.path.length === path.length && location.path.every((n, i) => n === path[i]),
  )?.leadingComments;
}

describe('list (grpcurl list)', () => {
  it('lists exactly the served services, echoing the request', async () => {
    const { v1 } = await startReflectionServer();
    const response = await askOne(v1, { ...listServices, host: 'localhost:50051' });

    expect(listedNames(response)).toEqual([
      'redlease.v1.LockService',
      'redlease.v1.AdminService',
      'grpc.health.v1.Health',
      'grpc.reflection.v1.ServerReflection',
      'grpc.reflection.v1alpha.ServerReflection',
    ]);
    expect(response.originalRequest).toEqual({
      host: 'localhost:50051',
      messageRequest: listServices.messageRequest,
    });
  });
});

describe('file_containing_symbol (grpcurl describe)', () => {
  it('answers lock.proto for LockService, with its streaming flags and comments, and each import by name', async () => {
    const { v1 } = await startReflectionServer();
    const files = decodedFiles(await askOne(v1, symbol('redlease.v1.LockService')));

    const lock = files[0]!;
    expect(lock.name).toBe('redlease/v1/lock.proto');
    expect(lock.package).toBe('redlease.v1');
    const serviceIndex = lock.service.findIndex((service) => service.name === 'LockService');
    const service = lock.service[serviceIndex]!;
    expect(service.method.map((method) => method.name)).toEqual([
      'Acquire',
      'Release',
      'Extend',
      'KeepAlive',
      'Session',
      'Describe',
    ]);
    const keepAlive = service.method.find((method) => method.name === 'KeepAlive')!;
    expect([keepAlive.clientStreaming, keepAlive.serverStreaming]).toEqual([true, true]);
    expect(keepAlive.inputType).toBe('.redlease.v1.KeepAliveRequest');
    // Source info is kept, so grpcurl describe shows the contract's comments.
    expect(leadingComments(lock, [FILE_SERVICE, serviceIndex])).toMatch(/\S/);
    service.method.forEach((method, i) => {
      expect(leadingComments(lock, [FILE_SERVICE, serviceIndex, SERVICE_METHOD, i]), method.name).toMatch(
        /\S/,
      );
    });

    // As grpcurl and ghz do: ask for each import the answers so far lack, by file name, then build the
    // descriptors (createFileRegistry throws on a missing import).
    for (let missing = nextMissing(files); missing !== undefined; missing = nextMissing(files)) {
      files.push(...decodedFiles(await askOne(v1, fileName(missing))));
    }
    const registry = createFileRegistry(create(FileDescriptorSetSchema, { file: files }));
    expect(
      registry.getService('redlease.v1.LockService')?.methods.map((m) => [m.name, m.methodKind]),
    ).toEqual([
      ['Acquire', 'unary'],
      ['Release', 'unary'],
      ['Extend', 'unary'],
      ['KeepAlive', 'bidi_streaming'],
      ['Session', 'bidi_streaming'],
      ['Describe', 'unary'],
    ]);
  });

  it('resolves messages, methods, enums and file names to the file declaring them', async () => {
    const { v1 } = await startReflectionServer();
    const responses = await ask(
      v1,
      symbol('redlease.v1.AcquireRequest'),
      symbol('redlease.v1.LockService.Acquire'),
      symbol('redlease.v1.Mode'),
      symbol('grpc.health.v1.HealthCheckResponse.ServingStatus'),
      fileName('redlease/v1/admin.proto'),
    );

    expect(responses.map((response) => decodedFiles(response)[0]?.name)).toEqual([
      'redlease/v1/lock.proto',
      'redlease/v1/lock.proto',
      'redlease/v1/admin.proto',
      'grpc/health/v1/health.proto',
      'redlease/v1/admin.proto',
    ]);
    const lock = decodedFiles(responses[0]!)[0]!;
    expect(lock.messageType.map((message) => message.name)).toContain('AcquireRequest');
  });

  it('answers NOT_FOUND for an unknown symbol or file, and the stream goes on', async () => {
    const { v1 } = await startReflectionServer();
    const responses = await ask(v1, symbol('redlease.v1.Nope'), fileName('nope.proto'), listServices);

    expect(responses.map((response) => response.messageResponse)).toEqual([
      {
        $case: 'errorResponse',
        value: { errorCode: Status.NOT_FOUND, errorMessage: 'Symbol not found: redlease.v1.Nope' },
      },
      {
        $case: 'errorResponse',
        value: { errorCode: Status.NOT_FOUND, errorMessage: 'File not found: nope.proto' },
      },
      { $case: 'listServicesResponse', value: { service: SERVICE_NAMES.map((name) => ({ name })) } },
    ]);
  });
});

describe('extensions', () => {
  it('reports no extension numbers for a message, and NOT_FOUND for an extension', async () => {
    const { v1 } = await startReflectionServer();
    const responses = await ask(
      v1,
      { messageRequest: { $case: 'allExtensionNumbersOfType', value: 'redlease.v1.AcquireRequest' } },
      {
        messageRequest: {
          $case: 'fileContainingExtension',
          value: { containingType: 'redlease.v1.AcquireRequest', extensionNumber: 100 },
        },
      },
    );

    expect(responses.map((response) => response.messageResponse)).toEqual([
      {
        $case: 'allExtensionNumbersResponse',
        value: { baseTypeName: 'redlease.v1.AcquireRequest', extensionNumber: [] },
      },
      {
        $case: 'errorResponse',
        value: {
          errorCode: Status.NOT_FOUND,
          errorMessage: 'Extension not found: redlease.v1.AcquireRequest(100)',
        },
      },
    ]);
  });
});

describe('v1alpha', () => {
  it('answers like v1', async () => {
    const { v1alpha } = await startReflectionServer();
    const [list, lock] = await ask(v1alpha, listServices, symbol('redlease.v1.LockService'));

    expect(listedNames(list!)).toEqual(SERVICE_NAMES);
    expect(decodedFiles(lock!)[0]?.name).toBe('redlease/v1/lock.proto');
  });
});

describe('reflectionService', () => {
  it('refuses a service name the descriptor set does not declare', () => {
    expect(() => reflectionService(loadDescriptorSet(), ['redlease.v1.NoSuchService'])).toThrow(
      'service redlease.v1.NoSuchService is not in the descriptor set',
    );
    expect(() => reflectionService(loadDescriptorSet(), ['redlease.v1.AcquireRequest'])).toThrow(
      'service redlease.v1.AcquireRequest is not in the descriptor set',
    );
  });

  it('refuses a descriptor set that lacks a file one of its files imports', () => {
    const set = fromBinary(FileDescriptorSetSchema, loadDescriptorSet());
    const lock = set.file.find((file) => file.name === 'redlease/v1/lock.proto')!;
    lock.dependency.push('google/protobuf/duration.proto');
    const broken = toBinary(FileDescriptorSetSchema, set);
    expect(() => reflectionService(broken, [])).toThrow(
      'Cannot find google/protobuf/duration.proto, imported by redlease/v1/lock.proto',
    );
  });
});
