// gRPC server reflection (doc/server-reflection.md in grpc/grpc), v1 and the older v1alpha that some clients
// still ask for first: lets grpcurl and ghz call the server without a copy of the .proto files. Answers come
// from the FileDescriptorSet `npm run gen` builds from proto/ (with comments, for grpcurl describe).
import { readFileSync } from 'node:fs';
import { fromBinary, toBinary } from '@bufbuild/protobuf';
import {
  type DescriptorProto,
  type EnumDescriptorProto,
  type FileDescriptorProto,
  FileDescriptorProtoSchema,
  FileDescriptorSetSchema,
} from '@bufbuild/protobuf/wkt';
import { isAbortError } from 'abort-controller-x';
import { type ServiceImplementation, Status } from 'nice-grpc';
import type {
  ServerReflectionDefinition as ServerReflectionDefinitionV1,
  ServerReflectionRequest,
  ServerReflectionResponse,
} from '../../gen/grpc/reflection/v1/reflection.js';
import type { ServerReflectionDefinition as ServerReflectionDefinitionV1alpha } from '../../gen/grpc/reflection/v1alpha/reflection.js';

/** The two reflection services, one implementation: v1alpha's messages are v1's under another package. */
export interface ReflectionServices {
  v1: ServiceImplementation<ServerReflectionDefinitionV1>;
  v1alpha: ServiceImplementation<ServerReflectionDefinitionV1alpha>;
}

/**
 * Reads the FileDescriptorSet of all our protos (gen/descriptors.binpb, written by `npm run gen`,
 * copied to dist/gen by scripts/copy-assets.mjs). Resolved against this module's own URL, so it works
 * from the sources under tsx and from the compiled dist/ alike, whatever the working directory.
 */
export function loadDescriptorSet(): Uint8Array {
  return readFileSync(new URL('../../gen/descriptors.binpb', import.meta.url));
}

/**
 * The reflection services over `descriptorSet` (a serialized google.protobuf.FileDescriptorSet), listing
 * `serviceNames` (full names, e.g. "redlease.v1.LockService"): the services the server actually serves,
 * which the descriptor set alone cannot tell. Throws when a name is not in the set, or the set lacks a file
 * that one of its files imports, so a broken set fails at startup rather than in a client's describe.
 */
export function reflectionServices(
  descriptorSet: Uint8Array,
  serviceNames: readonly string[],
): ReflectionServices {
  const index = new DescriptorIndex(descriptorSet);
  for (const name of serviceNames) {
    if (index.kindOf(name) !== 'service') throw new Error(`service ${name} is not in the descriptor set`);
  }
  const listed = [...serviceNames];

  /** One response per request, in order, until the client ends its requests or the call is cancelled. */
  async function* serverReflectionInfo(
    requests: AsyncIterable<ServerReflectionRequest>,
  ): AsyncGenerator<ServerReflectionResponse> {
    try {
      for await (const request of requests) yield answer(index, listed, request);
    } catch (error) {
      if (isAbortError(error)) return;
      throw error;
    }
  }
  return { v1: { serverReflectionInfo }, v1alpha: { serverReflectionInfo } };
}

function answer(
  index: DescriptorIndex,
  serviceNames: string[],
  request: ServerReflectionRequest,
): ServerReflectionResponse {
  const reply = (messageResponse: ServerReflectionResponse['messageResponse']): ServerReflectionResponse => ({
    validHost: request.host,
    originalRequest: request,
    messageResponse,
  });
  const notFound = (message: string) =>
    reply({ $case: 'errorResponse', value: { errorCode: Status.NOT_FOUND, errorMessage: message } });
  const files = (fileName: string | undefined, what: string) => {
    const closure = fileName === undefined ? undefined : index.withDependencies(fileName);
    return closure === undefined
      ? notFound(`${what} not found`)
      : reply({ $case: 'fileDescriptorResponse', value: { fileDescriptorProto: closure } });
  };

  const message = request.messageRequest;
  switch (message?.$case) {
    case 'listServices':
      return reply({
        $case: 'listServicesResponse',
        value: { service: serviceNames.map((name) => ({ name })) },
      });
    case 'fileByFilename':
      return files(message.value, `file "${message.value}"`);
    case 'fileContainingSymbol':
      return files(index.fileOf(message.value), `symbol "${message.value}"`);
    case 'fileContainingExtension': {
      const { containingType, extensionNumber } = message.value;
      // Our protos declare no extensions (proto3 allows them only for options).
      return notFound(`extension ${extensionNumber} of "${containingType}" not found`);
    }
    case 'allExtensionNumbersOfType':
      return index.kindOf(message.value) === 'message'
        ? reply({
            $case: 'allExtensionNumbersResponse',
            value: { baseTypeName: message.value, extensionNumber: [] },
          })
        : notFound(`message type "${message.value}" not found`);
    case undefined:
      return reply({
        $case: 'errorResponse',
        value: { errorCode: Status.INVALID_ARGUMENT, errorMessage: 'the request sets no message_request' },
      });
  }
}

type SymbolKind = 'service' | 'method' | 'message' | 'field' | 'enum' | 'enum value';

/** Files by name, and the file declaring each fully-qualified symbol, from one FileDescriptorSet. */
class DescriptorIndex {
  /** Each file serialized once: every describe sends the same bytes. */
  readonly #bytes = new Map<string, Buffer>();
  readonly #dependencies = new Map<string, readonly string[]>();
  readonly #symbols = new Map<string, { file: string; kind: SymbolKind }>();

  constructor(descriptorSet: Uint8Array) {
    const { file: files } = fromBinary(FileDescriptorSetSchema, descriptorSet);
    for (const file of files) {
      this.#bytes.set(file.name, Buffer.from(toBinary(FileDescriptorProtoSchema, file)));
      this.#dependencies.set(file.name, file.dependency);
      this.#addFile(file);
    }
    for (const file of files) {
      const missing = file.dependency.filter((dependency) => !this.#bytes.has(dependency));
      if (missing.length > 0) {
        throw new Error(
          `descriptor set: ${file.name} imports ${missing.join(', ')}, which it does not contain`,
        );
      }
    }
  }

  kindOf(symbol: string): SymbolKind | undefined {
    return this.#symbols.get(symbol)?.kind;
  }

  fileOf(symbol: string): string | undefined {
    return this.#symbols.get(symbol)?.file;
  }

  /**
   * The file, then every file it imports directly or not, each once: a client builds descriptors from the
   * answer alone, so it needs the whole closure.
   */
  withDependencies(fileName: string): Buffer[] | undefined {
    if (!this.#bytes.has(fileName)) return undefined;
    const order = [fileName];
    for (let i = 0; i < order.length; i++) {
      for (const dependency of this.#dependencies.get(order[i]!) ?? []) {
        if (!order.includes(dependency)) order.push(dependency);
      }
    }
    return order.map((name) => this.#bytes.get(name)!);
  }

  #addFile(file: FileDescriptorProto): void {
    const scope = file.package;
    for (const service of file.service) {
      const serviceName = this.#add(file, scope, service.name, 'service');
      for (const method of service.method) this.#add(file, serviceName, method.name, 'method');
    }
    for (const message of file.messageType) this.#addMessage(file, scope, message);
    for (const enumType of file.enumType) this.#addEnum(file, scope, enumType);
  }

  #addMessage(file: FileDescriptorProto, scope: string, message: DescriptorProto): void {
    const name = this.#add(file, scope, message.name, 'message');
    for (const field of message.field) this.#add(file, name, field.name, 'field');
    for (const nested of message.nestedType) this.#addMessage(file, name, nested);
    for (const enumType of message.enumType) this.#addEnum(file, name, enumType);
  }

  /** Enum values are scoped like their enum's siblings (C++ rules): redlease.v1.MODE_REDLOCK. */
  #addEnum(file: FileDescriptorProto, scope: string, enumType: EnumDescriptorProto): void {
    this.#add(file, scope, enumType.name, 'enum');
    for (const value of enumType.value) this.#add(file, scope, value.name, 'enum value');
  }

  #add(file: FileDescriptorProto, scope: string, name: string, kind: SymbolKind): string {
    const fullName = scope === '' ? name : `${scope}.${name}`;
    this.#symbols.set(fullName, { file: file.name, kind });
    return fullName;
  }
}
