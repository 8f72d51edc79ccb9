// Server reflection, which is how ghz finds a method's message types when given no --proto or --protoset:
// ask for the file containing the call's symbol (grpc.reflection.v1, falling back to v1alpha when the server
// does not implement v1, like grpcreflect.NewClientAuto), then for any imported file the answer lacks, and
// build a registry of the descriptors. Uses its own short-lived channel and the --reflect-metadata.
import { type FileRegistry, fromBinary } from '@bufbuild/protobuf';
import { type FileDescriptorProto, FileDescriptorProtoSchema } from '@bufbuild/protobuf/wkt';
import { isAbortError } from 'abort-controller-x';
import { ClientError, createChannel, createClient, Metadata, Status } from 'nice-grpc';
import type {
  ServerReflectionRequest,
  ServerReflectionResponse,
} from '../gen/grpc/reflection/v1/reflection.js';
import { ServerReflectionDefinition as ReflectionV1 } from '../gen/grpc/reflection/v1/reflection.js';
import { ServerReflectionDefinition as ReflectionV1alpha } from '../gen/grpc/reflection/v1alpha/reflection.js';
import { ConfigError } from './config.js';
import type { ConnectionSettings } from './connection.js';
import { registryOf } from './file-registry.js';
import { rpcErrorText } from './status.js';

/** A FileDescriptorProto closure is small; this bounds the follow-up requests for missing imports. */
const MAX_FILES = 1_000;

export interface ReflectionOptions {
  host: string;
  settings: ConnectionSettings;
  /** Metadata sent with the reflection requests only (ghz's --reflect-metadata). */
  metadata: Record<string, string>;
  /** ghz bounds reflection by its connect timeout (--connect-timeout, default 10 s); 0 = no bound. */
  timeoutNs: number;
}

/** The descriptors of the file declaring `call` and of everything it imports, from the server's reflection. */
export async function reflectDescriptors(call: string, options: ReflectionOptions): Promise<FileRegistry> {
  const channel = createChannel(options.host, options.settings.credentials, options.settings.options);
  const signal = options.timeoutNs > 0 ? AbortSignal.timeout(Math.ceil(options.timeoutNs / 1e6)) : undefined;
  const metadata = Metadata(options.metadata);
  const v1 = createClient(ReflectionV1, channel);
  const v1alpha = createClient(ReflectionV1alpha, channel);
  let useV1alpha = false;

  /** One request on a stream of its own, one answer. */
  async function ask(
    messageRequest: ServerReflectionRequest['messageRequest'],
  ): Promise<ServerReflectionResponse> {
    const requests = async function* () {
      yield { host: '', messageRequest };
    };
    const callOptions = { metadata, ...(signal && { signal }) };
    const answers = useV1alpha
      ? v1alpha.serverReflectionInfo(requests(), callOptions)
      : v1.serverReflectionInfo(requests(), callOptions);
    for await (const answer of answers) return answer as ServerReflectionResponse;
    throw new ConfigError('server reflection: the server closed the stream without an answer');
  }

  async function askWithFallback(
    messageRequest: ServerReflectionRequest['messageRequest'],
  ): Promise<ServerReflectionResponse> {
    try {
      return await ask(messageRequest);
    } catch (error) {
      if (!(error instanceof ClientError) || error.code !== Status.UNIMPLEMENTED || useV1alpha) throw error;
      useV1alpha = true;
      return ask(messageRequest);
    }
  }

  const files = new Map<string, FileDescriptorProto>();
  /** Adds the files of `answer`; `notFound` is grpcreflect's error for a NOT_FOUND answer. */
  const take = (answer: ServerReflectionResponse, notFound: string) => {
    const response = answer.messageResponse;
    if (response?.$case === 'errorResponse') {
      throw new ConfigError(
        response.value.errorCode === Status.NOT_FOUND ? notFound : response.value.errorMessage,
      );
    }
    if (response?.$case !== 'fileDescriptorResponse') {
      throw new ConfigError(`server reflection: unexpected answer ${response?.$case}`);
    }
    for (const bytes of response.value.fileDescriptorProto) {
      const file = fromBinary(FileDescriptorProtoSchema, bytes);
      if (!files.has(file.name)) files.set(file.name, file);
    }
  };

  try {
    const symbol = call.replaceAll('/', '.').replace(/^\./, '');
    take(
      await askWithFallback({ $case: 'fileContainingSymbol', value: symbol }),
      `Symbol not found: ${symbol}`,
    );
    for (let round = 0; round < MAX_FILES; round++) {
      const missing = [...files.values()].flatMap((f) => f.dependency).find((name) => !files.has(name));
      if (missing === undefined) break;
      take(await askWithFallback({ $case: 'fileByFilename', value: missing }), `File not found: ${missing}`);
    }
  } catch (error) {
    if (isAbortError(error)) throw new ConfigError('server reflection: context deadline exceeded');
    if (error instanceof ClientError) {
      throw new ConfigError(
        error.code === Status.UNIMPLEMENTED
          ? 'server does not support the reflection API'
          : rpcErrorText(error.code, error.details),
      );
    }
    throw error;
  } finally {
    channel.close();
  }
  return registryOf([...files.values()]);
}
