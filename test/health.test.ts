// grpc.health.v1 and server reflection through the real server: health follows the Redis quorum as nodes stop,
// pause and come back; reflection answers what grpcurl `list` and `describe` ask for.
import { create, createFileRegistry, fromBinary } from '@bufbuild/protobuf';
import {
  type FileDescriptorProto,
  FileDescriptorProtoSchema,
  FileDescriptorSetSchema,
} from '@bufbuild/protobuf/wkt';
import { createClient } from 'nice-grpc';
import { describe, expect, it, onTestFinished } from 'vitest';
import {
  type HealthCheckResponse,
  HealthCheckResponse_ServingStatus as Serving,
} from '../gen/grpc/health/v1/health.js';
import {
  type DeepPartial,
  ServerReflectionDefinition,
  type ServerReflectionRequest,
  type ServerReflectionResponse,
} from '../gen/grpc/reflection/v1/reflection.js';
import { ServerReflectionDefinition as ServerReflectionDefinitionV1alpha } from '../gen/grpc/reflection/v1alpha/reflection.js';
import { type HealthClient, startTestServer, uniqueResource, waitFor } from './support/server.js';

const LOCK = 'redlease.v1.LockService';
const ADMIN = 'redlease.v1.AdminService';
const ALL_SERVICES = [
  LOCK,
  ADMIN,
  'grpc.health.v1.Health',
  'grpc.reflection.v1.ServerReflection',
  'grpc.reflection.v1alpha.ServerReflection',
];
/** Short ttls: two nodes restarted empty leave quarantine after the max ttl (plus drift), here ~2 s. */
const SHORT_TTLS = ['--max-ttl-ms', '2000', '--default-ttl-ms', '1500'];

async function check(health: HealthClient, service: string): Promise<Serving> {
  return (await health.check({ service })).status;
}

/** The statuses of '' and LockService (those that follow the quorum), waited for until both are `status`. */
async function quorumServicesBecome(health: HealthClient, status: Serving, timeoutMs: number): Promise<void> {
  await waitFor(
    `'' and ${LOCK} to be ${Serving[status]}`,
    async () => (await check(health, '')) === status && (await check(health, LOCK)) === status,
    timeoutMs,
  );
}

/** A Watch stream on `service`, its messages collected in arrival order; cancelled when the test ends. */
function watch(health: HealthClient, service: string) {
  const abort = new AbortController();
  onTestFinished(() => abort.abort());
  const received: HealthCheckResponse[] = [];
  let error: unknown;
  const done = (async () => {
    try {
      for await (const message of health.watch({ service }, { signal: abort.signal })) received.push(message);
    } catch (e) {
      error = e;
    }
  })();
  return {
    statuses: () => received.map((m) => Serving[m.status]),
    get error() {
      return error;
    },
    cancel: () => abort.abort(),
    done,
  };
}

describe('grpc.health.v1 follows the Redis quorum', () => {
  it('two nodes stopped: "" and LockService go NOT_SERVING, AdminService stays up; back to SERVING after restart', async () => {
    const { health, admin, lock, nodes } = await startTestServer(SHORT_TTLS);
    expect(await check(health, '')).toBe(Serving.SERVING);
    expect(await check(health, LOCK)).toBe(Serving.SERVING);
    expect(await health.list({})).toEqual({
      statuses: Object.fromEntries(['', ...ALL_SERVICES].map((name) => [name, { status: Serving.SERVING }])),
    });
    const watcher = watch(health, '');
    await waitFor('the first Watch message', () => watcher.statuses().length === 1);

    await nodes[1].stop();
    await nodes[2].stop();
    await quorumServicesBecome(health, Serving.NOT_SERVING, 5_000);
    expect(await check(health, ADMIN)).toBe(Serving.SERVING);
    const { statuses } = await health.list({});
    expect(
      Object.fromEntries(Object.entries(statuses).map(([name, s]) => [name, Serving[s.status]])),
    ).toEqual({
      '': 'NOT_SERVING',
      [LOCK]: 'NOT_SERVING',
      [ADMIN]: 'SERVING',
      'grpc.health.v1.Health': 'SERVING',
      'grpc.reflection.v1.ServerReflection': 'SERVING',
      'grpc.reflection.v1alpha.ServerReflection': 'SERVING',
    });
    // AdminService answers without a quorum and says why there is none. The error is recorded once a
    // reconnection attempt has failed, a few tens of ms after the connection closed.
    const outage = await waitFor('ListNodes to report both stopped nodes with an error', async () => {
      const answer = await admin.listNodes({});
      return answer.nodes.slice(1).every((n) => !n.up && n.error !== '') ? answer : undefined;
    });
    expect(outage.quorumAvailable).toBe(false);
    expect(outage.quorum).toBe(2);
    expect(outage.nodes.map((n) => [n.name, n.up, n.voting])).toEqual([
      ['redis-1', true, true],
      ['redis-2', false, false],
      ['redis-3', false, false],
    ]);
    expect(outage.nodes[0]!.error).toBe('');
    for (const node of outage.nodes.slice(1)) expect(node.error).toMatch(/\S/);

    await nodes[1].startAgain();
    await nodes[2].startAgain();
    // Restarted empty: quarantined for the max ttl (2 s) plus drift before they vote again.
    await quorumServicesBecome(health, Serving.SERVING, 10_000);
    expect(await check(health, ADMIN)).toBe(Serving.SERVING);
    const recovered = await admin.listNodes({});
    expect(recovered.quorumAvailable).toBe(true);
    expect(recovered.nodes.filter((n) => n.up).length).toBeGreaterThanOrEqual(2);
    // SERVING means it: a lock can be taken again.
    const { lease } = await lock.acquire({ resource: uniqueResource('after-outage') });
    expect(lease?.quorum).toBe(2);

    await waitFor('the third Watch message', () => watcher.statuses().length >= 3);
    expect(watcher.statuses()).toEqual(['SERVING', 'NOT_SERVING', 'SERVING']);
    expect(watcher.error).toBeUndefined();
  });

  it('two nodes paused (SIGSTOP): NOT_SERVING; resumed: SERVING again', async () => {
    const { health, admin, nodes } = await startTestServer();
    onTestFinished(() => {
      nodes[1].resume();
      nodes[2].resume();
    });
    expect(await check(health, '')).toBe(Serving.SERVING);
    nodes[1].pause();
    nodes[2].pause();
    // A paused node accepts connections but answers nothing: its health check times out (100 ms).
    await quorumServicesBecome(health, Serving.NOT_SERVING, 5_000);
    expect(await check(health, ADMIN)).toBe(Serving.SERVING);
    const paused = await admin.listNodes({});
    expect(paused.quorumAvailable).toBe(false);
    expect(paused.nodes.map((n) => n.up)).toEqual([true, false, false]);

    nodes[1].resume();
    nodes[2].resume();
    // Same run_id after a pause: no restart, no quarantine, back as soon as a health check succeeds.
    await quorumServicesBecome(health, Serving.SERVING, 5_000);
    // Their connections were reset when the checks timed out; each comes back with its own reconnect backoff.
    const back = await waitFor(
      'all three nodes up again',
      async () => {
        const { nodes: listed } = await admin.listNodes({});
        return listed.every((n) => n.up) ? listed : undefined;
      },
      5_000,
    );
    expect(back.map((n) => [n.up, n.quarantined, n.quarantineReason])).toEqual([
      [true, false, ''],
      [true, false, ''],
      [true, false, ''],
    ]);
  });
});

type Request = DeepPartial<ServerReflectionRequest>;

/** Sends `requests` on one reflection stream, half-closes it, and returns every response. */
async function ask(
  call: (requests: AsyncIterable<Request>) => AsyncIterable<ServerReflectionResponse>,
  ...requests: Request[]
): Promise<ServerReflectionResponse[]> {
  async function* send() {
    yield* requests;
  }
  const responses: ServerReflectionResponse[] = [];
  for await (const response of call(send())) responses.push(response);
  return responses;
}

function listedNames(response: ServerReflectionResponse | undefined): string[] {
  if (response?.messageResponse?.$case !== 'listServicesResponse') {
    return expect.fail(`expected list_services_response, got ${JSON.stringify(response?.messageResponse)}`);
  }
  return response.messageResponse.value.service.map((service) => service.name);
}

function decodedFiles(response: ServerReflectionResponse | undefined): FileDescriptorProto[] {
  if (response?.messageResponse?.$case !== 'fileDescriptorResponse') {
    return expect.fail(`expected file_descriptor_response, got ${JSON.stringify(response?.messageResponse)}`);
  }
  return response.messageResponse.value.fileDescriptorProto.map((bytes) =>
    fromBinary(FileDescriptorProtoSchema, bytes),
  );
}

describe('server reflection on the real server (grpcurl list / describe)', () => {
  it('lists exactly the five served services and describes LockService from lock.proto', async () => {
    const { channel } = await startTestServer();
    const v1 = createClient(ServerReflectionDefinition, channel);
    const [list, described] = await ask(
      (requests) => v1.serverReflectionInfo(requests),
      { host: '', messageRequest: { $case: 'listServices', value: '' } },
      { host: '', messageRequest: { $case: 'fileContainingSymbol', value: LOCK } },
    );
    expect(listedNames(list)).toEqual(ALL_SERVICES);

    const files = decodedFiles(described);
    expect(files[0]).toMatchObject({ name: 'redlease/v1/lock.proto', package: 'redlease.v1' });
    // lock.proto imports nothing, so this answer alone builds its descriptors.
    const registry = createFileRegistry(create(FileDescriptorSetSchema, { file: files }));
    const service = registry.getService(LOCK);
    expect(service?.file.name).toBe('redlease/v1/lock');
    expect(service?.methods.map((m) => [m.name, m.methodKind])).toEqual([
      ['Acquire', 'unary'],
      ['Release', 'unary'],
      ['Extend', 'unary'],
      ['KeepAlive', 'bidi_streaming'],
      ['Session', 'bidi_streaming'],
      ['Describe', 'unary'],
    ]);
    expect(service?.methods[0]?.input.typeName).toBe('redlease.v1.AcquireRequest');

    // Clients that ask v1alpha first get the same list.
    const v1alpha = createClient(ServerReflectionDefinitionV1alpha, channel);
    const [alphaList] = await ask((requests) => v1alpha.serverReflectionInfo(requests), {
      messageRequest: { $case: 'listServices', value: '' },
    });
    expect(listedNames(alphaList)).toEqual(ALL_SERVICES);
  });
});
