/**
 * The SDK with `transport: 'session'`: Acquire, Release and Extend go as operations on one LockService.Session
 * stream instead of unary calls, against a real server on real Redis nodes. Same leases, same typed errors, same
 * retries; cancellation reaches the server's queue; a broken stream is a broken connection (retried); an older
 * server without Session gets unary calls.
 */
import { isAbortError } from 'abort-controller-x';
import { createServer, ServerError, Status } from 'nice-grpc';
import { pino } from 'pino';
import { describe, expect, it, onTestFinished } from 'vitest';
import {
  InvalidArgumentError,
  LockClient,
  type LockClientOptions,
  LockHeldError,
} from '../client/src/index.js';
import { SessionTransport } from '../client/src/session-transport.js';
import { LockServiceDefinition, type SessionRequest } from '../gen/redlease/v1/lock.js';
import { lockService } from '../server/grpc/lock-service.js';
import { newLockId } from '../server/redlock/index.js';
import { FaultProxy } from '../testkit/fault-proxy.js';
import { scrape } from './support/prometheus.js';
import { rejection, startTestServer, uniqueResource, waitFor } from './support/server.js';

function sdk(address: string, options: Partial<LockClientOptions> = {}): LockClient {
  const client = new LockClient({ address, clientId: 'session-sdk', transport: 'session', ...options });
  onTestFinished(() => client.close({ release: false }));
  return client;
}

/** Calls the server finished, by gRPC method (all status codes). */
async function calls(httpPort: number, method: string): Promise<number> {
  const { metrics } = await scrape(httpPort);
  return metrics
    .all('redlease_rpc_duration_seconds_count', { transport: 'grpc', method })
    .reduce((n, s) => n + s.value, 0);
}

describe("LockClient with transport: 'session'", () => {
  it('acquires, extends and releases over one Session stream, with no unary lock calls', async () => {
    const { address, server } = await startTestServer();
    const client = sdk(address);
    const resource = uniqueResource('sdk-session');

    const first = await client.acquire(resource, { ttlMs: 3_000 });
    expect(first.fencingToken).toBeGreaterThan(0);
    expect(first.nodes).toEqual(['redis-1', 'redis-2', 'redis-3']);
    await first.extend(6_000);
    expect(first.remainingMs).toBeGreaterThan(3_000);
    expect(await client.describe(resource)).toMatchObject({ locked: true, fencingToken: first.fencingToken });
    expect(await first.release()).toBe(true);
    const second = await client.acquire(resource, { ttlMs: 3_000, autoRenew: false });
    expect(second.fencingToken).toBeGreaterThan(first.fencingToken);
    await second.release();

    for (const method of ['Acquire', 'Release', 'Extend'])
      expect(await calls(server.httpPort, method), method).toBe(0);
    await client.close();
    // The Session call is counted when it ends (the client's close ends it).
    await waitFor('the Session call to end', async () => (await calls(server.httpPort, 'Session')) >= 1);
  });

  it('reports the unary errors: held, bad input; and hands a released lock to a waiter', async () => {
    const { address } = await startTestServer();
    const a = sdk(address, { clientId: 'a' });
    const b = sdk(address, { clientId: 'b' });
    const resource = uniqueResource('held');

    const held = await a.acquire(resource, { ttlMs: 5_000 });
    expect((await rejection(b.acquire(resource), LockHeldError)).reason).toBe('LOCK_HELD');
    const bad = await rejection(b.acquire(resource, { ttlMs: 50 }), InvalidArgumentError);
    expect(bad.reason).toBe('TTL_OUT_OF_RANGE');
    expect(bad.message).toMatch(/ttl_ms/);

    const waiting = b.acquire(resource, { ttlMs: 5_000, waitMs: 8_000 });
    await waitFor('b to queue', async () => (await a.describe(resource)).waiters === 1);
    await held.release();
    const next = await waiting;
    expect(next.fencingToken).toBeGreaterThan(held.fencingToken);
    await next.release();
  });

  it("an aborted acquire leaves the server's queue at once", async () => {
    const { address, server } = await startTestServer();
    const holder = sdk(address, { clientId: 'holder' });
    const client = sdk(address);
    const resource = uniqueResource('abort');
    const held = await holder.acquire(resource, { ttlMs: 5_000 });

    const abort = new AbortController();
    const waiting = client.acquire(resource, { waitMs: 8_000, signal: abort.signal });
    await waitFor('the waiter to queue', () => server.coordinator.waiterCount === 1);
    abort.abort();
    expect(isAbortError(await waiting.catch((error: unknown) => error))).toBe(true);
    await waitFor('the waiter to leave the queue', () => server.coordinator.waiterCount === 0);
    await held.release();
    expect((await holder.describe(resource)).locked).toBe(false);
  });

  it('operations cut off by a broken connection are retried on a new stream', async () => {
    const { address, server } = await startTestServer();
    const proxy = await FaultProxy.start({ target: address, name: 'SDK' });
    onTestFinished(() => proxy.close());
    const holder = sdk(address, { clientId: 'holder' });
    const client = sdk(proxy.address, { clientId: 'waiter' });
    const resource = uniqueResource('reset');
    const held = await holder.acquire(resource, { ttlMs: 5_000 });

    const waiting = client.acquire(resource, { ttlMs: 5_000, waitMs: 15_000 });
    await waitFor('the waiter to queue', () => server.coordinator.waiterCount === 1);
    await proxy.set('reset'); // RST on the connection under the stream
    // The server saw the stream cut: the Acquire on it left the queue.
    await waitFor('the cut-off Acquire to leave the queue', () => server.coordinator.waiterCount === 0);
    await proxy.set('pass');
    // Re-sent on a new stream (over a new connection through the proxy), it queues again; only then is the
    // resource released, so the grant goes to the re-sent operation.
    await waitFor('the Acquire to be re-sent and queued', () => server.coordinator.waiterCount === 1, 10_000);
    await held.release();
    // Re-sent with the same lock id on a new stream: granted (once), no error surfaced.
    const lease = await waiting;
    expect(lease.isHeld()).toBe(true);
    expect(lease.fencingToken).toBeGreaterThan(held.fencingToken);
    expect(proxy.stats().accepted).toBeGreaterThanOrEqual(2);
    await lease.release();
  });

  it('falls back to unary calls against a server without Session (UNIMPLEMENTED)', async () => {
    const { server } = await startTestServer();
    // An "older server": the same lock service, its Session method refused as grpc-js refuses unknown methods.
    const implementation = lockService(server.coordinator, pino({ level: 'silent' }));
    const older = createServer();
    older.add(LockServiceDefinition, {
      ...implementation,
      // biome-ignore lint/correctness/useYield: refuses before the first answer, as an unknown method would
      session: async function* () {
        throw new ServerError(Status.UNIMPLEMENTED, 'The server does not implement the method Session');
      },
    });
    const port = await older.listen('127.0.0.1:0');
    onTestFinished(() => older.forceShutdown());

    const client = sdk(`127.0.0.1:${port}`);
    const resource = uniqueResource('older');
    const lease = await client.acquire(resource, { ttlMs: 5_000, autoRenew: false });
    expect(lease.fencingToken).toBeGreaterThan(0);
    expect(await lease.release()).toBe(true);
    const again = await client.acquire(resource, { ttlMs: 5_000, autoRenew: false });
    expect(again.fencingToken).toBeGreaterThan(lease.fencingToken);
    await again.release();
  });

  it('keeps at most its in-flight bound of operations on the stream; the rest are sent in order as answers come', async () => {
    const { lock, server } = await startTestServer();
    // What the transport writes to the stream, as the call reads it; `reading` while the call waits for more.
    const written: SessionRequest[] = [];
    let reading = false;
    async function* recorded(requests: AsyncIterable<SessionRequest>): AsyncGenerator<SessionRequest> {
      const iterator = requests[Symbol.asyncIterator]();
      for (;;) {
        reading = true;
        const next = await iterator.next();
        reading = false;
        if (next.done) return;
        written.push(next.value);
        yield next.value;
      }
    }
    // Bound 2 instead of the server's 1 000, so the queue shows with three operations.
    const transport = new SessionTransport(
      (requests, signal) => lock.session(recorded(requests), { signal }),
      lock,
      2,
    );
    onTestFinished(() => transport.close());
    const resource = uniqueResource('room');
    const { lease: holder } = await lock.acquire({ resource, ttlMs: 5_000 });
    const acquire = (clientId: string) =>
      transport.acquire(
        { resource, ttlMs: 5_000, clientId, waitTimeoutMs: 8_000, lockId: newLockId(), maxHoldMs: 0 },
        { deadline: 10_000 },
      );
    const waits = [acquire('first'), acquire('second'), acquire('third')];
    await waitFor('two waiters', () => server.coordinator.waiterCount === 2);
    // The call has read what the transport wrote and waits for more: the third is still on the client.
    await waitFor('the call to wait for more requests', () => reading && written.length >= 2);
    expect(written.map((r) => r.op?.$case)).toEqual(['acquire', 'acquire']);
    expect(server.coordinator.waiterCount).toBe(2);
    expect(transport.inFlight).toBe(3);

    await lock.release({ resource, lockId: holder!.lockId });
    const first = (await waits[0]!).lease!;
    // Its answer made room: the third is sent and queues behind the second.
    await waitFor('the third to queue', () => server.coordinator.waiterCount === 2);
    await lock.release({ resource, lockId: first.lockId });
    const second = (await waits[1]!).lease!;
    await lock.release({ resource, lockId: second.lockId });
    const third = (await waits[2]!).lease!;
    expect([first.fencingToken, second.fencingToken, third.fencingToken]).toEqual(
      [first.fencingToken, second.fencingToken, third.fencingToken].sort((a, b) => a - b),
    );
    expect(third.fencingToken).toBeGreaterThan(first.fencingToken);
    expect(await lock.describe({ resource })).toMatchObject({ holderClientId: 'third', waiters: 0 });
    await lock.release({ resource, lockId: third.lockId });
  });
});
