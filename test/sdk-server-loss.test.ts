/**
 * The SDK when its server goes away mid-lease (fault F17 in docs/chaos.md): the lease's signal aborts no
 * later than its deadline (send time + validity, monotonic clock) and `isHeld()` never says true past it; a
 * server back in time gets the lease re-attached on a new stream, same token, no loss.
 */
import { performance } from 'node:perf_hooks';
import { describe, expect, it, onTestFinished } from 'vitest';
import {
  type Lease,
  LeaseLostError,
  LeaseReleasedError,
  LockClient,
  LockTimeoutError,
} from '../client/src/index.js';
import { freeFixedPort } from '../scripts/lib/free-port.js';
import { RedisCluster } from '../scripts/lib/redis-process.js';
import { ServerProcess } from '../scripts/lib/server-process.js';
import { FaultProxy } from '../testkit/fault-proxy.js';
import { FAST_FLAGS, uniqueResource, waitFor } from './support/server.js';

/** Every test runs on both transports: Session streams (the SDK's default) and unary calls. */
const TRANSPORTS = ['session', 'unary'] as const;
type Transport = (typeof TRANSPORTS)[number];

async function serverOn(cluster: RedisCluster, port: number): Promise<ServerProcess> {
  const server = await ServerProcess.start([
    '--nodes',
    cluster.addresses.join(','),
    '--grpc-listen',
    `127.0.0.1:${port}`,
    ...FAST_FLAGS,
  ]);
  onTestFinished(() => server.stop('SIGKILL').then(() => undefined));
  return server;
}

async function setUp(transport: Transport) {
  const cluster = await RedisCluster.start(3);
  onTestFinished(() => cluster.dispose());
  // The server must come back on the same port after it is killed. A port from the ephemeral range (freePort)
  // can be taken meanwhile by any outgoing connection of the tests running beside this one; a fixed port cannot.
  const port = await freeFixedPort();
  const server = await serverOn(cluster, port);
  const client = new LockClient({ address: `127.0.0.1:${port}`, clientId: 'loss-test', transport });
  onTestFinished(() => client.close({ release: false }));
  return { cluster, port, server, client };
}

/**
 * The latest time the lease's deadline can be, as seen from outside: a renewal sent at s and answered with
 * validity v sets the deadline to s + v, and s is before the moment we hear of it.
 */
function trackDeadline(client: LockClient, lease: Lease, acquiredAt: number, validityMs: number) {
  const bound = { at: acquiredAt + validityMs };
  client.on('renewed', (renewed, v) => {
    if (renewed === lease) bound.at = Math.max(bound.at, performance.now() + v);
  });
  return bound;
}

describe.each(TRANSPORTS)('a lease whose server goes away (transport: %s)', (transport) => {
  it('killed server: the signal aborts (expired) by the deadline, and isHeld() is never true past it', async () => {
    const { server, client } = await setUp(transport);
    const streamErrors: unknown[] = [];
    client.on('streamError', (error) => streamErrors.push(error));
    const lease = await client.acquire(uniqueResource(), { ttlMs: 1_500 });
    const bound = trackDeadline(client, lease, performance.now(), lease.remainingMs);
    await new Promise((resolve) => client.once('renewed', resolve)); // attached to the stream, renewed once

    // Sample isHeld() every 2 ms: the last time it said true must be before the deadline.
    let lastHeldAt = 0;
    const sampler = setInterval(() => {
      if (lease.isHeld()) lastHeldAt = performance.now();
    }, 2);
    onTestFinished(() => clearInterval(sampler));
    const abortedAt = new Promise<number>((resolve) =>
      lease.signal.addEventListener('abort', () => resolve(performance.now()), { once: true }),
    );

    await server.stop('SIGKILL');
    const at = await abortedAt;
    clearInterval(sampler);
    expect(lease.signal.reason).toBeInstanceOf(LeaseLostError);
    expect(lease.signal.reason).toMatchObject({ kind: 'expired' });
    expect(lastHeldAt).toBeLessThan(bound.at);
    // The deadline timer fires at the deadline; allow for a busy event loop, not for a late design.
    expect(at - bound.at).toBeLessThan(250);
    expect(streamErrors.length).toBeGreaterThan(0);
    expect(lease.isHeld()).toBe(false);
  });

  it('server restarted within the validity: the stream reconnects, re-attaches, and renewals go on with the same token', async () => {
    const { cluster, port, server, client } = await setUp(transport);
    const resource = uniqueResource();
    // The longest ttl the test server allows (10 s, renewed every 3.3 s): a restart of the server process fits
    // in the validity even on a loaded 2-core box (with 6 s, a restart under CI load once took too long).
    const lease = await client.acquire(resource, { ttlMs: 10_000 });
    let renewals = 0;
    client.on('renewed', (renewed) => renewed === lease && renewals++);
    await waitFor('a first renewal', () => renewals >= 1, 10_000);

    const killedAt = performance.now();
    await server.stop('SIGKILL');
    const downAt = renewals;
    const restarted = await serverOn(cluster, port);
    const restartMs = Math.round(performance.now() - killedAt);
    await waitFor('two renewals through the restarted server', () => renewals >= downAt + 2, 20_000).catch(
      (error: Error) => {
        const state = lease.signal.aborted ? `lost (${String(lease.signal.reason)})` : 'still held';
        throw new Error(`${error.message}; the restart took ${restartMs} ms; the lease is ${state}`);
      },
    );
    expect(lease.signal.aborted).toBe(false);
    expect(lease.isHeld()).toBe(true);
    const observer = new LockClient({ address: `127.0.0.1:${port}`, transport });
    onTestFinished(() => observer.close());
    expect(await observer.describe(resource)).toMatchObject({
      locked: true,
      fencingToken: lease.fencingToken,
    });
    expect(restarted.running).toBe(true);
    expect(await lease.release()).toBe(true);
  });

  it('an acquire sent while the server is down is retried with backoff and succeeds once it is back', async () => {
    const { cluster, port, server } = await setUp(transport);
    await server.stop('SIGKILL');
    const client = new LockClient({
      address: `127.0.0.1:${port}`,
      transport,
      retry: { attempts: 40, initialDelayMs: 50, maxDelayMs: 500 }, // up to ~20 s: outlasts the restart
    });
    onTestFinished(() => client.close());
    const resource = uniqueResource();
    const acquiring = client.acquire(resource);
    await serverOn(cluster, port);
    const lease = await acquiring;
    expect(lease.isHeld()).toBe(true);
    expect((await client.describe(resource)).fencingToken).toBe(lease.fencingToken);
  });
});

/** Three Redis nodes, a server, and a fault proxy in front of its gRPC port (the client link). */
async function serverBehindProxy(): Promise<{ port: number; proxy: FaultProxy }> {
  const cluster = await RedisCluster.start(3);
  onTestFinished(() => cluster.dispose());
  const { grpcPort: port } = await serverOn(cluster, 0);
  const proxy = await FaultProxy.start({ target: `127.0.0.1:${port}`, name: 'PC' });
  onTestFinished(() => proxy.close());
  return { port, proxy };
}

describe.each(TRANSPORTS)(
  'a connection that stops answering (F18: a link that lost bytes; transport: %s)',
  (transport) => {
    it('after a call gets no answer at all, the client opens a new connection instead of waiting for keepalive pings', async () => {
      const { proxy } = await serverBehindProxy();
      const client = new LockClient({
        address: proxy.address,
        transport,
        callTimeoutMs: 500,
        retry: { attempts: 1 },
      });
      onTestFinished(() => client.close({ release: false }));
      await (await client.acquire(uniqueResource())).release();

      // The link swallows everything for a moment: the call times out, its bytes (and the HTTP/2 state they
      // carried) are gone for good.
      await proxy.set('blackhole');
      await expect(client.acquire(uniqueResource())).rejects.toBeInstanceOf(LockTimeoutError);
      await proxy.set('pass');

      // The old connection's keepalive pings would take 15 s + 5 s to give up on it; the next call must not.
      const lease = await client.acquire(uniqueResource());
      expect(lease.isHeld()).toBe(true);
      expect(proxy.stats().accepted).toBeGreaterThanOrEqual(2);
      await lease.release();
    });

    it('a call cut off by its connection breaking (the server closed it on garbled bytes) is retried, not failed', async () => {
      const { port, proxy } = await serverBehindProxy();
      const holder = new LockClient({ address: `127.0.0.1:${port}`, clientId: 'holder', transport });
      onTestFinished(() => holder.close({ release: false }));
      const client = new LockClient({ address: proxy.address, clientId: 'waiter', transport });
      onTestFinished(() => client.close({ release: false }));
      const resource = uniqueResource();
      const held = await holder.acquire(resource);

      const waiting = client.acquire(resource, { waitMs: 20_000 });
      await waitFor('the waiter to be queued', async () => (await holder.describe(resource)).waiters === 1);
      // Bytes no client sent: a DATA frame on stream 0, which HTTP/2 forbids. The server closes the connection
      // (GOAWAY, PROTOCOL_ERROR) and grpc-js fails the call on it with INTERNAL "Received RST_STREAM with code 2
      // triggered by internal client error" — a broken connection, not an answer (it says UNAVAILABLE for a reset).
      const dataOnStreamZero = Buffer.from([0, 0, 1, 0, 0, 0, 0, 0, 0, 0xff]);
      expect(proxy.inject('toTarget', dataOnStreamZero)).toBe(1);
      await waitFor('the acquire to be sent again over a new connection', () => proxy.stats().accepted === 2);

      // Whether the retry is queued behind the first call (which the server may still count as waiting: it never
      // saw that stream end) or arrives after the release, it carries the same lock id, so the release hands the
      // lease over to it either way.
      await held.release();
      const lease = await waiting;
      expect(lease.isHeld()).toBe(true);
      expect(lease.fencingToken).toBeGreaterThan(held.fencingToken);
      await lease.release();
    });

    it('a release slower than the validity left ends the lease as released, not lost (no spurious loss)', async () => {
      const { proxy } = await serverBehindProxy();
      const client = new LockClient({ address: proxy.address, clientId: 'slow-release', transport });
      onTestFinished(() => client.close({ release: false }));
      const lost: unknown[] = [];
      client.on('lost', (_lease, reason) => lost.push(reason));
      const lease = await client.acquire(uniqueResource(), { ttlMs: 600 });

      // The release (renewal stops when it is sent) takes longer than the validity left: 700 ms each way.
      await proxy.set({ kind: 'delay', ms: 700 });
      const released = lease.release();
      await waitFor('the deadline to pass', () => !lease.isHeld(), 5_000);
      expect(lease.signal.aborted).toBe(true);
      expect(lease.signal.reason).toBeInstanceOf(LeaseReleasedError);
      // Whatever the server answers once the delay is over (released, or already expired there), it is no loss.
      expect(typeof (await released)).toBe('boolean');
      expect(lost).toEqual([]);
      expect(lease.signal.reason).toBeInstanceOf(LeaseReleasedError);
    });
  },
);
