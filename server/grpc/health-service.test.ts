// grpc.health.v1.Health over a real nice-grpc server on a loopback port, called with the generated client.
import { isAbortError } from 'abort-controller-x';
import { ClientError, createChannel, createClient, createServer, Status } from 'nice-grpc';
import { describe, expect, it, onTestFinished, vi } from 'vitest';
import {
  HealthDefinition,
  HealthCheckResponse_ServingStatus as ServingStatus,
} from '../../gen/grpc/health/v1/health.js';
import { ServerHealth } from './health-service.js';

const LOCK_SERVICE = 'redlease.v1.LockService';

async function startHealthServer(state: ServerHealth) {
  const server = createServer();
  server.add(HealthDefinition, state.service());
  const port = await server.listen('127.0.0.1:0');
  const channel = createChannel(`127.0.0.1:${port}`);
  onTestFinished(() => {
    channel.close();
    server.forceShutdown();
  });
  return { server, client: createClient(HealthDefinition, channel) };
}

/** Opens a Watch the test reads one message at a time; cancel() aborts it as a client would. */
function openWatch(client: Awaited<ReturnType<typeof startHealthServer>>['client'], service: string) {
  const controller = new AbortController();
  const stream = client.watch({ service }, { signal: controller.signal })[Symbol.asyncIterator]();
  const next = async () => (await stream.next()).value?.status;
  const rest = async () => {
    const statuses: ServingStatus[] = [];
    for (let result = await stream.next(); !result.done; result = await stream.next()) {
      statuses.push(result.value.status);
    }
    return statuses;
  };
  return { next, rest, stream, cancel: () => controller.abort() };
}

async function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => expect.fail('expected the call to fail'),
    (error: unknown) => error,
  );
}

describe('Check', () => {
  it('answers the status last set for the service, and for the server as a whole ("")', async () => {
    const state = new ServerHealth();
    state.set('', 'healthy');
    state.set(LOCK_SERVICE, 'healthy');
    const { client } = await startHealthServer(state);

    expect(await client.check({ service: LOCK_SERVICE })).toEqual({ status: ServingStatus.SERVING });
    state.set(LOCK_SERVICE, 'unhealthy');
    expect(await client.check({ service: LOCK_SERVICE })).toEqual({ status: ServingStatus.NOT_SERVING });
    expect(await client.check({})).toEqual({ status: ServingStatus.SERVING });
  });

  it('fails with NOT_FOUND naming an unknown service', async () => {
    const state = new ServerHealth();
    state.set(LOCK_SERVICE, 'healthy');
    const { client } = await startHealthServer(state);

    const error = await rejectionOf(client.check({ service: 'nope.Service' }));
    expect(error).toBeInstanceOf(ClientError);
    expect(error).toMatchObject({ code: Status.NOT_FOUND, details: "Unknown service: 'nope.Service'" });
  });
});

describe('List', () => {
  it('answers every known service with its status', async () => {
    const state = new ServerHealth();
    state.set('', 'healthy');
    state.set(LOCK_SERVICE, 'unhealthy');
    const { client } = await startHealthServer(state);

    expect(await client.list({})).toEqual({
      statuses: {
        '': { status: ServingStatus.SERVING },
        [LOCK_SERVICE]: { status: ServingStatus.NOT_SERVING },
      },
    });
  });
});

describe('Watch', () => {
  it('sends the current status at once, then each change, never the same status twice in a row', async () => {
    const state = new ServerHealth();
    state.set(LOCK_SERVICE, 'healthy');
    const { client } = await startHealthServer(state);
    const watch = openWatch(client, LOCK_SERVICE);

    expect(await watch.next()).toBe(ServingStatus.SERVING);
    state.set(LOCK_SERVICE, 'unhealthy');
    expect(await watch.next()).toBe(ServingStatus.NOT_SERVING);
    // A repeated status is no change: the next message is the flip back, not a second NOT_SERVING.
    state.set(LOCK_SERVICE, 'unhealthy');
    state.set(LOCK_SERVICE, 'healthy');
    expect(await watch.next()).toBe(ServingStatus.SERVING);
    watch.cancel();
  });

  it('sends SERVICE_UNKNOWN for an unknown service and keeps watching until the service is set', async () => {
    const state = new ServerHealth();
    const { client } = await startHealthServer(state);
    const watch = openWatch(client, 'later.Service');

    expect(await watch.next()).toBe(ServingStatus.SERVICE_UNKNOWN);
    state.set('later.Service', 'healthy');
    expect(await watch.next()).toBe(ServingStatus.SERVING);
    watch.cancel();
  });

  it('leaves no watcher in the state once the client cancels', async () => {
    const state = new ServerHealth();
    state.set(LOCK_SERVICE, 'healthy');
    const { client } = await startHealthServer(state);
    const known = openWatch(client, LOCK_SERVICE);
    const unknown = openWatch(client, 'unknown.Service');
    expect(await known.next()).toBe(ServingStatus.SERVING);
    expect(await unknown.next()).toBe(ServingStatus.SERVICE_UNKNOWN);
    expect(state.watcherCount).toBe(2);

    known.cancel();
    unknown.cancel();
    const error = await rejectionOf(known.stream.next());
    expect(isAbortError(error)).toBe(true);
    // The server learns of the cancellation asynchronously (an HTTP/2 RST_STREAM): wait for it to unwatch.
    await vi.waitFor(() => expect(state.watcherCount).toBe(0));
  });
});

describe('shutdown()', () => {
  it('reports NOT_SERVING, ends every Watch, and lets a graceful server shutdown complete', async () => {
    const state = new ServerHealth();
    state.set('', 'healthy');
    state.set(LOCK_SERVICE, 'healthy');
    const { server, client } = await startHealthServer(state);
    const known = openWatch(client, LOCK_SERVICE);
    const unknown = openWatch(client, 'unknown.Service');
    expect(await known.next()).toBe(ServingStatus.SERVING);
    expect(await unknown.next()).toBe(ServingStatus.SERVICE_UNKNOWN);

    state.shutdown();

    expect(await known.rest()).toEqual([ServingStatus.NOT_SERVING]);
    expect(await unknown.rest()).toEqual([]);
    expect(state.watcherCount).toBe(0);
    expect(state.list()).toEqual(
      new Map([
        ['', 'unhealthy'],
        [LOCK_SERVICE, 'unhealthy'],
      ]),
    );
    await server.shutdown();
  });

  it('ignores later updates, and a later Watch ends after its first message', async () => {
    const state = new ServerHealth();
    state.set(LOCK_SERVICE, 'healthy');
    const { client } = await startHealthServer(state);
    state.shutdown();

    state.set(LOCK_SERVICE, 'healthy');
    expect(await client.check({ service: LOCK_SERVICE })).toEqual({ status: ServingStatus.NOT_SERVING });
    expect(await openWatch(client, LOCK_SERVICE).rest()).toEqual([ServingStatus.NOT_SERVING]);
    expect(state.watcherCount).toBe(0);
  });
});

describe('many Watch calls', () => {
  it('print no MaxListenersExceededWarning past ten concurrent watchers', async () => {
    const warnings: Error[] = [];
    const onWarning = (warning: Error) => warnings.push(warning);
    process.on('warning', onWarning);
    onTestFinished(() => {
      process.off('warning', onWarning);
    });
    const state = new ServerHealth();
    state.set(LOCK_SERVICE, 'healthy');
    const { client } = await startHealthServer(state);
    const watches = Array.from({ length: 12 }, () => openWatch(client, LOCK_SERVICE));
    for (const watch of watches) expect(await watch.next()).toBe(ServingStatus.SERVING);
    await vi.waitFor(() => expect(state.watcherCount).toBe(12));
    // process.emitWarning delivers on a later tick.
    await new Promise((resolve) => setImmediate(resolve));
    expect(warnings.map((w) => `${w.name}: ${w.message}`)).toEqual([]);
    for (const watch of watches) watch.cancel();
  });
});
