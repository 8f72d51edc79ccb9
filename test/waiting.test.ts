import { ClientError, createChannel, createClient, Status } from 'nice-grpc';
import { describe, expect, it, onTestFinished } from 'vitest';
import { LockServiceDefinition } from '../gen/redlease/v1/lock.js';
import { RedisCluster } from '../scripts/lib/redis-process.js';
import { ServerProcess } from '../scripts/lib/server-process.js';
import { FaultProxy } from '../testkit/fault-proxy.js';
import { monitorScripts } from './support/script-monitor.js';
import {
  connect,
  rejection,
  startServerProcess,
  startTestServer,
  uniqueResource,
  waitFor,
} from './support/server.js';

/**
 * A hand-off woken by a release or its announcement takes milliseconds; one left to a timer (the holder's ttl,
 * the fallback look) takes seconds in these tests. Far above the first on a loaded 2-core box, far below the second.
 */
const HANDOFF_BOUND_MS = 2_000;

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
      // The holder's work: holding the lock a little while is the workload here, not a wait for anything.
      await new Promise((r) => setTimeout(r, 5));
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
    // One marker resource per node, held, with a waiter of its own: a release announcement of marker i that the
    // test publishes on node i wakes that waiter, whose look then reaches every node.
    const markers = cluster.nodes.map((_, i) => uniqueResource(`marker-${i + 1}`));
    for (const marker of markers) await lock.acquire({ resource: marker, ttlMs: 10_000 });
    const monitors = await monitorScripts(cluster.nodes);
    const stopMarkers = new AbortController();
    onTestFinished(() => stopMarkers.abort());
    for (const marker of markers) {
      lock
        .acquire({ resource: marker, waitTimeoutMs: 30_000 }, { signal: stopMarkers.signal })
        .catch(() => undefined);
    }
    const waiting = [1, 2, 3].map((i) =>
      lock.acquire({ resource, ttlMs: 10_000, waitTimeoutMs: 30_000, clientId: `waiter-${i}` }),
    );
    await waitFor('three waiters queued', async () => (await lock.describe({ resource })).waiters === 3);
    // The head waiter (and each marker's waiter) has looked once on every node and sleeps until the holder's lock
    // runs out (10 s): from here on, every script run on the resource is part of the hand-off.
    await waitFor('every head waiter to have looked once on every node', () =>
      monitors.every((m) => [resource, ...markers].every((r) => m.count(r, 'acquire') === 1)),
    );
    await lock.release({ resource, lockId: held!.lockId });
    const first = await Promise.race(waiting);
    expect(first.lease!.fencingToken).toBeGreaterThan(held!.fencingToken);
    await waitFor('the release, the grant and the next waiter’s first look on every node', () =>
      monitors.every((m) => m.count(resource, 'acquire') + m.count(resource, 'release') >= 4),
    );
    // The release's announcements must not send the next waiter to look for nothing. Node i announced it (from
    // the release script, already run there) before the marker the test publishes there now, on the one
    // connection this server listens on; so once every marker's waiter has looked again on every node, a look
    // that an announcement of the release caused was sent before that, on the same connections.
    for (const [i, node] of cluster.nodes.entries()) {
      expect(await node.command('PUBLISH', 'redlease:released', markers[i]!)).toBe(1);
    }
    await waitFor('every marker’s waiter to have looked again on every node', () =>
      monitors.every((m) => markers.every((r) => m.count(r, 'acquire') === 2)),
    );
    for (const m of monitors) {
      // The head waiter's first look, the release, the head waiter's acquire (the tokens agree: no commit), and
      // the next waiter's first look when it becomes the head (it learns the new holder's remaining time). The
      // test's own Describe calls (inspect) aside.
      expect(
        m.scripts(resource).filter((script) => script !== 'inspect'),
        m.node.address,
      ).toEqual(['acquire', 'release', 'acquire', 'acquire']);
    }
    await lock.release({ resource, lockId: first.lease!.lockId });
    const second = await Promise.race(waiting.filter((w) => w !== waiting[0]));
    await lock.release({ resource, lockId: second.lease!.lockId });
    await Promise.all(waiting);
  });

  it("on fresh nodes (the release script not cached yet) the woken waiter still gets the lock at once, not at the old lock's expiry", async () => {
    const { lock, cluster } = await startTestServer(['--wait-fallback-ms', '60000']);
    const resource = uniqueResource('fresh');
    const { lease: held } = await lock.acquire({ resource, ttlMs: 10_000 });
    const monitors = await monitorScripts(cluster.nodes);
    const waiting = lock.acquire({ resource, ttlMs: 10_000, waitTimeoutMs: 30_000 });
    // Its first look found the lock held on every node: from here it sleeps until the old lock runs out (10 s).
    await waitFor('the waiter to have looked once on every node', () =>
      monitors.every((m) => m.count(resource, 'acquire') === 1),
    );
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
    // B looks again only every 60 s, and A's lock would run 30 s: within the waiter's 10 s wait, only a release
    // announcement can wake it. Without one it looks again only when its wait runs out, 10 s on.
    const [serverA, b] = await Promise.all([
      startServerProcess(cluster, ['--max-ttl-ms', '60000']),
      startServerProcess(cluster, ['--wait-fallback-ms', '60000']),
    ]);
    const { lock: a } = connect(`127.0.0.1:${serverA.grpcPort}`);
    const { lock: lockB } = connect(`127.0.0.1:${b.grpcPort}`);
    const resource = uniqueResource('replicas');
    const { lease } = await a.acquire({ resource, ttlMs: 30_000 });
    const monitors = await monitorScripts(cluster.nodes);
    const waiting = lockB.acquire({ resource, ttlMs: 5_000, waitTimeoutMs: 10_000, clientId: 'on-b' });
    // Its first look found the lock held on every node: a release now cannot be met by that look.
    await waitFor('the waiter on B to have looked once on every node', () =>
      monitors.every((m) => m.count(resource, 'acquire') === 1),
    );
    const released = performance.now();
    await a.release({ resource, lockId: lease!.lockId });
    const { lease: handed } = await waiting;
    const ms = performance.now() - released;
    console.log(`cross-replica hand-off: ${ms.toFixed(2)} ms`);
    expect(handed!.fencingToken).toBeGreaterThan(lease!.fencingToken);
    // An announcement takes milliseconds; the timers that could also wake B's waiter run for seconds. The bound is
    // loose for a loaded box and still far below them.
    expect(ms).toBeLessThan(HANDOFF_BOUND_MS);
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

    // Any connection made from here on has a larger client id on its node than this one.
    const firstNewId = await Promise.all(
      cluster.nodes.map(async (n) => Number(await n.command('CLIENT', 'ID'))),
    );
    // Every connection of B is reset, and the reconnects land on links that swallow everything for a while:
    // their ready checks are lost for good.
    await Promise.all(proxies.map((p) => p.set('reset')));
    await Promise.all(proxies.map((p) => p.set('blackhole')));
    const swallowing = proxies.map((p) => p.stats());
    await waitFor(
      "B's command and release connections to reconnect into every blackhole and lose their bytes",
      () =>
        proxies.every((p, i) => {
          const { accepted, dropped } = p.stats();
          return accepted >= swallowing[i]!.accepted + 2 && dropped > swallowing[i]!.dropped;
        }),
    );
    await Promise.all(proxies.map((p) => p.set('pass')));
    await waitFor(
      'B to count every node again',
      async () => (await adminB.listNodes({})).nodes.every((n) => n.voting && n.up),
      10_000,
    );

    // B's release listener comes back too (a lost ready check is bounded by the connect timeout): subscribed again
    // on every node, on a connection made after the reset.
    await waitFor("B's release listener to subscribe again on every node", () =>
      Promise.all(
        cluster.nodes.map(async (node, i) =>
          String(await node.command('CLIENT', 'LIST', 'TYPE', 'pubsub'))
            .split('\n')
            .some((line) => {
              const id = Number(/^id=(\d+) /.exec(line)?.[1]);
              return id > firstNewId[i]! && / name=redlease-releases /.test(line) && / sub=1 /.test(line);
            }),
        ),
      ).then((subscribed) => subscribed.every(Boolean)),
    );
    const monitors = await monitorScripts(cluster.nodes);
    const waiting = b.acquire({ resource, ttlMs: 5_000, waitTimeoutMs: 10_000 });
    // Its first look found the lock held on every node: a release now cannot be met by that look.
    await waitFor('the waiter on B to have looked once on every node', () =>
      monitors.every((m) => m.count(resource, 'acquire') === 1),
    );
    const released = performance.now();
    await a.release({ resource, lockId: lease!.lockId });
    const { lease: handed } = await waiting;
    expect(handed!.fencingToken).toBeGreaterThan(lease!.fencingToken);
    // Without announcements B's waiter would wake only when its 10 s wait ran out (A's lock runs 30 s).
    expect(performance.now() - released).toBeLessThan(HANDOFF_BOUND_MS);
  });
});
