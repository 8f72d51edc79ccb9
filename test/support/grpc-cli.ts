/**
 * A stand-in for `grpcurl`, for the lab test (test/lab.test.ts) on machines without that Go binary:
 *
 *   node --import tsx test/support/grpc-cli.ts grpcurl -plaintext [-d <json>] <host:port> list|<Service>/<Method>
 *
 * It takes the subset of grpcurl's flags that docs/lab.md uses, makes real calls through the generated client,
 * and prints what grpcurl prints for them: indented proto JSON (service names from real reflection). Unknown
 * flags are refused, so a lab command that grpcurl would read differently fails here too. Exit 1 on a failed
 * call, 2 on bad usage. (ghz's stand-in is the built-in runner of ghz/, `node --import tsx ghz/run.ts`.)
 */
import { parseArgs } from 'node:util';
import { type Channel, createChannel, createClient } from 'nice-grpc';
import { HealthDefinition } from '../../gen/grpc/health/v1/health.js';
import { ServerReflectionDefinition } from '../../gen/grpc/reflection/v1/reflection.js';
import { AdminServiceDefinition } from '../../gen/redlease/v1/admin.js';
import { LockServiceDefinition } from '../../gen/redlease/v1/lock.js';

interface JsonMessage {
  fromJSON(object: unknown): unknown;
  toJSON(message: never): unknown;
}
interface MethodDefinition {
  name: string;
  requestType: JsonMessage;
  responseType: JsonMessage;
  requestStream: boolean;
  responseStream: boolean;
}
interface ServiceDefinition {
  fullName: string;
  methods: Record<string, MethodDefinition>;
}

const SERVICES = [
  LockServiceDefinition,
  AdminServiceDefinition,
  HealthDefinition,
] as unknown as ServiceDefinition[];

class UsageError extends Error {}

/** The unary method `service`/`method` (grpcurl spells it `pkg.Service/Method`). */
function findMethod(service: string, method: string) {
  const definition = SERVICES.find((s) => s.fullName === service);
  const entry = definition && Object.entries(definition.methods).find(([, m]) => m.name === method);
  if (!definition || !entry) throw new UsageError(`unknown method ${service}/${method}`);
  const [key, descriptor] = entry;
  if (descriptor.requestStream || descriptor.responseStream) throw new UsageError(`${method} is streaming`);
  return {
    descriptor,
    call(channel: Channel, request: unknown): Promise<unknown> {
      const client = createClient(definition as never, channel) as Record<
        string,
        (r: unknown) => Promise<unknown>
      >;
      return client[key]!(request);
    },
  };
}

async function grpcurl(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: { plaintext: { type: 'boolean' }, d: { type: 'string' } },
    allowPositionals: true,
  });
  if (!values.plaintext) throw new UsageError('only -plaintext is supported');
  const [address, target] = positionals;
  if (!address || !target || positionals.length > 2)
    throw new UsageError('usage: grpcurl -plaintext [-d json] host:port list|Service/Method');
  const channel = createChannel(address);
  try {
    if (target === 'list') {
      const reflection = createClient(ServerReflectionDefinition, channel);
      async function* ask() {
        yield { host: '', messageRequest: { $case: 'listServices' as const, value: '' } };
      }
      for await (const answer of reflection.serverReflectionInfo(ask())) {
        if (answer.messageResponse?.$case !== 'listServicesResponse')
          throw new Error('unexpected reflection answer');
        for (const service of answer.messageResponse.value.service.map((s) => s.name).sort())
          console.log(service);
      }
      return;
    }
    const slash = target.lastIndexOf('/');
    const { descriptor, call } = findMethod(target.slice(0, slash), target.slice(slash + 1));
    const request = descriptor.requestType.fromJSON(JSON.parse(values.d ?? '{}'));
    const response = await call(channel, request);
    console.log(JSON.stringify(descriptor.responseType.toJSON(response as never), null, 2));
  } finally {
    channel.close();
  }
}

/** Go's flag package reads `-plaintext` as `--plaintext`; node:util's parseArgs would read it as `-p -l …`. */
const goFlags = (args: string[]) => args.map((a) => (/^-[a-z][a-z-]+$/i.test(a) ? `-${a}` : a));

const [tool, ...rest] = process.argv.slice(2);
const argv = goFlags(rest);
try {
  if (tool === 'grpcurl') await grpcurl(argv);
  else throw new UsageError('the first argument is grpcurl');
} catch (error) {
  console.error(`${tool}: ${(error as Error).message}`);
  process.exit(
    error instanceof UsageError || (error as { code?: string }).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION'
      ? 2
      : 1,
  );
}
