import { ClientError, createChannel, createClient, Status } from 'nice-grpc';
import { describe, expect, it, onTestFinished } from 'vitest';
import { LockServiceDefinition } from '../gen/redlease/v1/lock.js';
import { RedisCluster } from '../scripts/lib/redis-process.js';
import { ServerProcess } from '../scripts/lib/server-process.js';
import { FaultProxy } from '../testkit/fault-proxy.js';
import {
  connect,
  rejection,
  startServerProcess,
  startTestServer,
  uniqueResource,
  waitFor,
} from './support/server.js';

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

describe('waiting Acquires: a FIFO queue per resource with hand-off on release', () => {
  it('16 clients contending for one resource all acquire, in arrival order, one at a time, handed off at once', async () => {
    const { lock: first, address } = await startTestServer();
    const resource = uniqueResource('contended');
    const { lease: initial } = await first.acquire({ resource, ttlMs: 10_000, clientId: 'initial' });

    // 16 clients, each on its own connection, join the queue one after the other (the order is known).
    const clients = Array.from({ length: 16 }, () => {
      const channel = createChannel(address);
      onTestFinished(() => channel.close());
      return createClient(LockServiceDefinition, channel);
    });
    let holder: number | undefined = -1;
    const grants: { client: number; token: number; at: number }[] = [];
    let releasedAt = 0;
    const handoffs: number[] = [];
    const run = async (i: number): Promise<void> => {
      const client = clients[i]!;
      const { lease } = await client.acquire({
        resource,
        ttlMs: 10_000,
        waitTimeoutMs: 60_000,
        clientId: `client-${i}`,
      });
      const at = performance.now();
      handoffs.push(at - releasedAt);
      expect(holder, `client ${i} granted while ${holder} holds`).toBeUndefined();
      holder = i;
      grants.push({ client: i, token: lease!.fencingToken, at });
      await new Promise((r) => setTimeout(r, 5)); // "work"
      holder = undefined;
      releasedAt = performance.now();
      await client.release({ resource, lockId: lease!.lockId });
    };
    const runs: Promise<void>[] = [];
    for (let i = 0; i < 16; i++) {
      runs.push(run(i));
      await waitFor(
        `client ${i} to be queued`,
        async () => (await first.describe({ resource })).waiters === i + 1,
      );
    }
    holder = undefined;
    releasedAt = performance.now();
    await first.release({ resource, lockId: initial!.lockId });
    await Promise.all(runs);

    expect(grants.map((g) => g.client)).toEqual(Array.from({ length: 16 }, (_, i) => i));
    const tokens = [initial!.fencingToken, ...grants.map((g) => g.token)];
    for (let i = 1; i < tokens.length; i++) expect(tokens[i]).toBeGreaterThan(tokens[i - 1]!);
    const sorted = [...handoffs].sort((a, b) => a - b);
    const p50 = percentile(sorted, 50);
    console.log(
      `hand-off after release, 16 waiters: p50 ${p50.toFixed(2)} ms, max ${sorted.at(-1)!.toFixed(2)} ms`,
    );
    // No polling: the fallback wake-up is 1 s; a release wakes the head at once. Lenient bound for a busy box.
    expect(p50).toBeLessThan(250);
    expect((await first.describe({ resource })).waiters).toBe(0);
  });

  it('a deadline shorter than the wait gives DEADLINE_EXCEEDED, leaves the queue at once, and leaves no lock', async () => {
    const { lock, cluster } = await startTestServer();
    const resource = uniqueResource();
    const { lease } = await lock.acquire({ resource, ttlMs: 8_000 });
    const error = await rejection(
      lock.acquire({ resource, waitTimeoutMs: 10_000 }, { deadline: new Date(Date.now() + 300) }),
      ClientError,
    );
    expect(error.code).toBe(Status.DEADLINE_EXCEEDED);
    await waitFor(
      'the waiter to leave the queue',
      async () => (await lock.describe({ resource })).waiters === 0,
    );
    await lock.release({ resource, lockId: lease!.lockId });
    expect(await lock.describe({ resource })).toMatchObject({ locked: false });
    for (const node of cluster.nodes) expect(await node.command('EXISTS', `lk:${resource}`)).toBe(0);
  });

  it('a cancelled waiting Acquire leaves the queue and the next waiter is served', async () => {
    const { lock } = await startTestServer();
    const resource = uniqueResource();
    const { lease } = await lock.acquire({ resource, ttlMs: 8_000 });
    const abort = new AbortController();
    const cancelled = lock.acquire({ resource, waitTimeoutMs: 10_000 }, { signal: abort.signal });
    await waitFor('first waiter queued', async () => (await lock.describe({ resource })).waiters === 1);
    const next = lock.acquire({ resource, waitTimeoutMs: 10_000, clientId: 'next' });
    await waitFor('second waiter queued', async () => (await lock.describe({ resource })).waiters === 2);
    abort.abort();
    expect((await rejection(cancelled, Error)).name).toBe('AbortError');
    await waitFor('cancelled waiter gone', async () => (await lock.describe({ resource })).waiters === 1);
    await lock.release({ resource, lockId: lease!.lockId });
    const granted = await next;
    expect((await lock.describe({ resource })).holderClientId).toBe('next');
    expect(granted.lease!.fencingToken).toBeGreaterThan(lease!.fencingToken);
  });

  it('ABORTED when the wait runs out; RESOURCE_EXHAUSTED past the waiters limit; try-once does not jump the queue (a lock_id only reclaims its own lease)', async () => {
    const { lock } = await startTestServer(['--max-waiters-per-resource', '2']);
    const resource = uniqueResource();
    const { lease: holder } = await lock.acquire({ resource, ttlMs: 8_000 });
    const ranOut = await rejection(lock.acquire({ resource, waitTimeoutMs: 200 }), ClientError);
    expect(ranOut.code).toBe(Status.ABORTED);
    expect(ranOut.details).toMatch(/still held after waiting 200 ms \(wait_timeout_ms\)/);

    const waiting = [1, 2].map(() =>
      lock.acquire({ resource, waitTimeoutMs: 3_000 }).catch((e: unknown) => e),
    );
    await waitFor('two waiters queued', async () => (await lock.describe({ resource })).waiters === 2);
    const full = await rejection(lock.acquire({ resource, waitTimeoutMs: 3_000 }), ClientError);
    expect(full.code).toBe(Status.RESOURCE_EXHAUSTED);
    expect(full.details).toMatch(
      /too many waiters: 2 Acquire calls are already waiting for ".+" on this server \(limit 2\)/,
    );
    const barging = await rejection(lock.acquire({ resource }), ClientError);
    expect(barging.code).toBe(Status.ABORTED);
    expect(barging.details).toMatch(
      /already waiting for it on this server; set wait_timeout_ms to join the queue/,
    );
    // A try-once with a lock_id of its own does not jump the queue either: a new lock_id is refused …
    const newId = await rejection(lock.acquire({ resource, lockId: 'ab'.repeat(16) }), ClientError);
    expect(newId.code).toBe(Status.ABORTED);
    expect(newId.details).toMatch(/already waiting for it on this server/);
    // … while the lock_id that holds the resource reclaims its own lease: same token, renewed, nothing granted.
    const { lease: held } = await lock.acquire({ resource, lockId: holder!.lockId, ttlMs: 8_000 });
    expect(held).toMatchObject({ lockId: holder!.lockId, fencingToken: holder!.fencingToken });
    for (const outcome of await Promise.all(waiting))
      expect((outcome as ClientError).code).toBe(Status.ABORTED);
  });

  it('a waiter is woken when the holder’s lock expires (no release)', async () => {
    const { lock } = await startTestServer();
    const resource = uniqueResource();
    const { lease } = await lock.acquire({ resource, ttlMs: 400 });
    const { lease: next } = await lock.acquire({ resource, ttlMs: 2_000, waitTimeoutMs: 5_000 });
    expect(next!.fencingToken).toBeGreaterThan(lease!.fencingToken);
  });
});

describe('hand-off cost on the Redis nodes', () => {
  it('a release through the server hands the lock to the head waiter with one acquire, and wakes nobody else', async () => {
    // No fallback look-ups within the test: only releases (and their announcements) wake a waiter.
    const { lock, cluster } = await startTestServer(['--wait-fallback-ms', '60000']);
    // Warm the nodes' script caches: a node's first release runs the script by EVAL after a NOSCRIPT answer,
    // one round trip later than the waiter's acquire that follows it (covered by the next test).
    const warm = uniqueResource('warm');
    await lock.release({ resource: warm, lockId: (await lock.acquire({ resource: warm })).lease!.lockId });
    const resource = uniqueResource('handoff');
    const { lease: held } = await lock.acquire({ resource, ttlMs: 10_000, clientId: 'holder' });
    const waiting = [1, 2, 3].map((i) =>
      lock.acquire({ resource, ttlMs: 10_000, waitTimeoutMs: 30_000, clientId: `waiter-${i}` }),
    );
    await waitFor('three waiters queued', async () => (await lock.describe({ resource })).waiters === 3);
    // Each waiter has tried once and sleeps until the holder's lock runs out (10 s): from here on, every script
    // run on a node is part of the hand-off.
    await new Promise((r) => setTimeout(r, 200));
    await Promise.all(cluster.nodes.map((n) => n.command('CONFIG', 'RESETSTAT')));
    await lock.release({ resource, lockId: held!.lockId });
    const first = await Promise.race(waiting);
    expect(first.lease!.fencingToken).toBeGreaterThan(held!.fencingToken);
    // Release announcements reach the server about now; they must not send the next waiter to try for nothing.
    await new Promise((r) => setTimeout(r, 500));
    for (const node of cluster.nodes) {
      const stats = String(await node.command('INFO', 'commandstats'));
      const scripts = Number(/cmdstat_evalsha:calls=(\d+)/.exec(stats)?.[1] ?? 0);
      // The release, the head waiter's acquire (the tokens agree: no commit), and the next waiter's first look
      // when it becomes the head (it learns the new holder's remaining time): nothing else.
      expect(scripts, `${node.address}: ${stats}`).toBe(3);
    }
    await lock.release({ resource, lockId: first.lease!.lockId });
    const second = await Promise.race(waiting.filter((w) => w !== waiting[0]));
    await lock.release({ resource, lockId: second.lease!.lockId });
    await Promise.all(waiting);
  });

  it("on fresh nodes (the release script not cached yet) the woken waiter still gets the lock at once, not at the old lock's expiry", async () => {
    const { lock } = await startTestServer(['--wait-fallback-ms', '60000']);
    const resource = uniqueResource('fresh');
    const { lease: held } = await lock.acquire({ resource, ttlMs: 10_000 });
    const waiting = lock.acquire({ resource, ttlMs: 10_000, waitTimeoutMs: 30_000 });
    await waitFor('the waiter queued', async () => (await lock.describe({ resource })).waiters === 1);
    await new Promise((r) => setTimeout(r, 200));
    const released = performance.now();
    await lock.release({ resource, lockId: held!.lockId });
    const { lease } = await waiting;
    expect(lease!.fencingToken).toBeGreaterThan(held!.fencingToken);
    // Not a speed test: a waiter left to sleep until the old lock ran out would take about 10 s.
    expect(performance.now() - released).toBeLessThan(5_000);
  });
});

describe('two server replicas on the same three nodes', () => {
  it('a waiter on server B is woken by a release on server A (announced by the nodes, not a timer)', async () => {
    const cluster = await RedisCluster.start(3);
    onTestFinished(() => cluster.dispose());
    // B polls only every 60 s: within this test only a release announcement can wake its waiter.
    const [serverA, b] = await Promise.all([
      startServerProcess(cluster),
      startServerProcess(cluster, ['--wait-fallback-ms', '60000']),
    ]);
    const { lock: a } = connect(`127.0.0.1:${serverA.grpcPort}`);
    const { lock: lockB } = connect(`127.0.0.1:${b.grpcPort}`);
    const resource = uniqueResource('replicas');
    const { lease } = await a.acquire({ resource, ttlMs: 10_000 });
    const waiting = lockB.acquire({ resource, ttlMs: 5_000, waitTimeoutMs: 20_000, clientId: 'on-b' });
    await waitFor('the waiter queued on B', async () => (await lockB.describe({ resource })).waiters === 1);
    const released = performance.now();
    await a.release({ resource, lockId: lease!.lockId });
    const { lease: handed } = await waiting;
    const ms = performance.now() - released;
    console.log(`cross-replica hand-off: ${ms.toFixed(2)} ms`);
    expect(handed!.fencingToken).toBeGreaterThan(lease!.fencingToken);
    expect((await a.describe({ resource })).holderClientId).toBe('on-b');
    expect(b.events('waited').find((l) => l.resource === resource)).toMatchObject({ outcome: 'acquired' });
    expect(serverA.events('released').find((l) => l.resource === resource)).toMatchObject({
      token: lease!.fencingToken,
    });
  });

  it('after its links to the nodes lost bytes and healed, a replica hears release announcements again', async () => {
    const cluster = await RedisCluster.start(3);
    onTestFinished(() => cluster.dispose());
    const proxies = await Promise.all(
      cluster.nodes.map((n, i) => FaultProxy.start({ target: n.address, name: `P${i + 1}` })),
    );
    onTestFinished(() => Promise.all(proxies.map((p) => p.close())).then(() => undefined));
    const serverA = await startServerProcess(cluster, ['--max-ttl-ms', '60000']);
    // B reaches the nodes through the proxies, and polls only every 60 s: an announcement must wake its waiter.
    const serverB = await ServerProcess.start([
      '--nodes',
      proxies.map((p) => p.address).join(','),
      '--grpc-listen',
      '127.0.0.1:0',
      '--http-listen',
      '127.0.0.1:0',
      '--health-interval-ms',
      '50',
      '--connect-timeout-ms',
      '500',
      '--wait-fallback-ms',
      '60000',
    ]);
    onTestFinished(() => serverB.stop('SIGKILL').then(() => undefined));
    const { lock: a } = connect(`127.0.0.1:${serverA.grpcPort}`);
    const { lock: b, admin: adminB } = connect(`127.0.0.1:${serverB.grpcPort}`);
    const resource = uniqueResource('healed');
    const { lease } = await a.acquire({ resource, ttlMs: 30_000 });

    // Every connection of B is reset, and the reconnects land on links that swallow everything for a while:
    // their ready checks are lost for good.
    await Promise.all(proxies.map((p) => p.set('reset')));
    await Promise.all(proxies.map((p) => p.set('blackhole')));
    await new Promise((r) => setTimeout(r, 1_500));
    await Promise.all(proxies.map((p) => p.set('pass')));
    await waitFor(
      'B to count every node again',
      async () => (await adminB.listNodes({})).nodes.every((n) => n.voting && n.up),
      10_000,
    );

    const waiting = b.acquire({ resource, ttlMs: 5_000, waitTimeoutMs: 40_000 });
    await waitFor('the waiter queued on B', async () => (await b.describe({ resource })).waiters === 1);
    // Give B's release listener time to come back too (its ready check is bounded by the connect timeout).
    await new Promise((r) => setTimeout(r, 1_500));
    const released = performance.now();
    await a.release({ resource, lockId: lease!.lockId });
    const { lease: handed } = await waiting;
    expect(handed!.fencingToken).toBeGreaterThan(lease!.fencingToken);
    // Not a speed test: without announcements B's waiter would wake only when A's 30 s lock ran out.
    expect(performance.now() - released).toBeLessThan(10_000);
  });
});
