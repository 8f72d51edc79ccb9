import { Writable } from 'node:stream';
import pino from 'pino';
import { describe, expect, it, onTestFinished } from 'vitest';
import { RedisCluster } from '../../scripts/lib/redis-process.js';
import { FAST, rejection, startCluster, uniqueResource, waitFor } from '../../test/support/engine.js';
import { FaultProxy } from '../../testkit/fault-proxy.js';
import { NoQuorumError } from './errors.js';
import type { RedlockOptions } from './options.js';
import { Redlock } from './redlock.js';

const node = (engine: Redlock, name: string) => engine.status().nodes.find((n) => n.name === name)!;

describe('restart quarantine', () => {
  it('keeps a restarted node out of quorums while a lock it forgot is valid, shows it, then lets it rejoin', async () => {
    const {
      nodes: [n1, n2, n3],
      engine,
    } = await startCluster({ maxTtlMs: 10_000 });
    const r = uniqueResource();
    const a = await engine.acquire(r, { ttlMs: 2_500 });
    // A's lock lives on redis-1 and redis-2 only (as if redis-3 had missed the request).
    await n3.command('DEL', `lk:${r}`, `lkh:${r}`);
    const runIdBefore = node(engine, 'redis-2').runId;

    // redis-2 crashes and comes back empty: it has forgotten A's lock.
    await n2.restart({ keepData: false });
    const seen = await waitFor('redis-2 to be quarantined after its restart', () => {
      const s = node(engine, 'redis-2');
      return s.restarts === 1 && s.up && s.quarantined && s.quarantineRemainingMs <= 2_500 + 100
        ? s
        : undefined;
    });
    expect(seen.runId).not.toBe(runIdBefore);
    expect(seen.voting).toBe(false);
    expect(seen.quarantineReason).toContain('restarted');
    expect(engine.status().quorumAvailable).toBe(true);

    // With A's other copy unreachable, redis-2 + redis-3 would be a majority that forgot A. Quarantine forbids it.
    n1.pause();
    try {
      const error = await rejection(engine.acquire(r, { ttlMs: 2_500, retryCount: 0 }), NoQuorumError);
      const vote2 = error.votes.find((v) => v.node === 'redis-2')!;
      expect(vote2.vote).toBe('not-voting');
      expect(vote2.detail).toContain('quarantined');
      expect(error.votes.find((v) => v.node === 'redis-3')!.vote).toBe('granted');
    } finally {
      n1.resume();
    }

    // It rejoins once A's lock has run out, not before.
    await waitFor('redis-2 to vote again', () => node(engine, 'redis-2').voting, 6_000);
    expect(performance.now()).toBeGreaterThanOrEqual(a.deadline);
    const b = await engine.acquire(r, { ttlMs: 2_500 });
    expect(b.nodes).toContain('redis-2');
    expect(b.fencingToken).toBeGreaterThan(a.fencingToken);
  });

  it('on an idle cluster a restarted node rejoins at once', async () => {
    // A max ttl of a minute: if the scan for live locks did not shorten the quarantine, this would time out.
    const { cluster, engine } = await startCluster({ maxTtlMs: 60_000 });
    await cluster.nodes[1]!.restart({ keepData: false });
    await waitFor('the restart to be detected', () => node(engine, 'redis-2').restarts === 1);
    await waitFor('redis-2 to vote again', () => node(engine, 'redis-2').voting, 3_000);
    expect(node(engine, 'redis-2')).toMatchObject({
      quarantined: false,
      quarantineRemainingMs: 0,
      quarantineReason: '',
    });
  });

  it('with too few witnesses (two nodes restarted) both wait the max ttl, and nothing is granted meanwhile', async () => {
    const { cluster, engine } = await startCluster({ maxTtlMs: 1_500, defaultTtlMs: 1_000 });
    await Promise.all([
      cluster.nodes[1]!.restart({ keepData: false }),
      cluster.nodes[2]!.restart({ keepData: false }),
    ]);
    const quarantined = await waitFor('both restarts to be detected', () => {
      const s = engine.status();
      return s.nodes[1]!.quarantined && s.nodes[2]!.quarantined ? s : undefined;
    });
    expect(quarantined.quorumAvailable).toBe(false);
    // The fallback is the max ttl plus drift, not a scan result: more than the 1 000 ms a scan could allow here.
    expect(quarantined.nodes[1]!.quarantineRemainingMs).toBeGreaterThan(1_000);
    const error = await rejection(engine.acquire(uniqueResource(), { retryCount: 0 }), NoQuorumError);
    expect(error.message).toContain('1/3 Redis nodes voting');
    await waitFor('both nodes to vote again', () => engine.status().nodes.every((n) => n.voting), 4_000);
    await engine.acquire(uniqueResource());
  });

  it('a node restarted with its data (AOF, fsync always) keeps its locks and rejoins after they expire', async () => {
    const { cluster, engine } = await startCluster({}, { persistence: 'aof-always' });
    const r = uniqueResource();
    const a = await engine.acquire(r, { ttlMs: 5_000 });
    // When the lock expires on the nodes that did not restart: what the quarantine waits for.
    const pttl = Number(await cluster.nodes[1]!.command('PTTL', `lk:${r}`));
    const expiresAt = performance.now() + pttl;
    await cluster.nodes[0]!.kill();
    await cluster.nodes[0]!.startAgain();
    expect(await cluster.nodes[0]!.command('GET', `lk:${r}`)).toBe(a.lockId);
    await waitFor('the restart to be detected', () => node(engine, 'redis-1').restarts === 1);
    const detected = node(engine, 'redis-1');
    expect(performance.now(), 'the restart was seen while the lock was alive').toBeLessThan(expiresAt);
    expect(detected).toMatchObject({ voting: false, quarantined: true });
    await waitFor('redis-1 to vote again', () => node(engine, 'redis-1').voting, 10_000, 5);
    const rejoined = performance.now();
    // Not before the lock it may hold expired on the others (PTTL is whole ms: 5 ms of slack), and soon after:
    // the quarantine follows the live locks, not the 10 s max ttl.
    expect(rejoined).toBeGreaterThanOrEqual(expiresAt - 5);
    expect(rejoined).toBeLessThan(expiresAt + 3_000);
  });
});

/**
 * An engine that reaches redis-1 directly and redis-2 and redis-3 through proxies that refuse connections until
 * the test sets them to 'pass': at first it reads one node, and the others fail.
 */
async function engineReachingTwoNodesLate(
  cluster: RedisCluster,
  options: Partial<RedlockOptions> = {},
): Promise<{ engine: Redlock; proxies: FaultProxy[] }> {
  const proxies = await Promise.all(
    cluster.nodes.slice(1).map((n, i) => FaultProxy.start({ target: n.address, name: `P${i + 2}` })),
  );
  onTestFinished(() => Promise.all(proxies.map((p) => p.close())).then(() => undefined));
  await Promise.all(proxies.map((p) => p.set('refuse')));
  const engine = new Redlock({
    ...FAST,
    connectTimeoutMs: 300,
    ...options,
    nodes: [cluster.addresses[0]!, ...proxies.map((p) => p.address)],
  });
  onTestFinished(() => engine.close());
  return { engine, proxies };
}

describe('first contact (a fresh engine or a second replica)', () => {
  it('quarantines a node that lost its data while no engine watched, and trusts the unchanged ones at once', async () => {
    const {
      cluster,
      nodes: [n1, n2, n3],
      engine: first,
      newEngine,
    } = await startCluster({ maxTtlMs: 10_000 });
    const r = uniqueResource();
    const a = await first.acquire(r, { ttlMs: 2_500 });
    await waitFor('every node to carry its marker', async () => {
      const markers = await Promise.all(cluster.nodes.map((n) => n.command('GET', 'redlease:run-id')));
      return markers.every((m, i) => m === first.status().nodes[i]!.runId);
    });
    await first.close();
    await n3.command('DEL', `lk:${r}`, `lkh:${r}`);
    await n2.restart({ keepData: false });

    // A new engine has never seen redis-2's old run_id: only the marker can tell it that redis-2 forgot A.
    const second = await newEngine();
    const s2 = node(second, 'redis-2');
    expect(s2.quarantined).toBe(true);
    expect(s2.quarantineReason).toContain('lost its data');
    expect(node(second, 'redis-1').voting).toBe(true);
    expect(node(second, 'redis-3').voting).toBe(true);
    n1.pause();
    try {
      const error = await rejection(second.acquire(r, { ttlMs: 2_500, retryCount: 0 }), NoQuorumError);
      expect(error.votes.find((v) => v.node === 'redis-2')!.vote).toBe('not-voting');
    } finally {
      n1.resume();
    }
    await waitFor('redis-2 to vote again', () => node(second, 'redis-2').voting, 6_000);
    expect(performance.now()).toBeGreaterThanOrEqual(a.deadline);
    expect((await second.acquire(r)).fencingToken).toBeGreaterThan(a.fencingToken);
    await waitFor(
      'redis-2 to be marked again',
      async () => (await n2.command('GET', 'redlease:run-id')) === node(second, 'redis-2').runId,
    );
  });

  it('two engines starting together on a fresh cluster: a node the other engine has not marked yet is not quarantined', async () => {
    const { cluster, engine: first } = await startCluster();
    const runIds = first.status().nodes.map((n) => n.runId);
    await waitFor('every node to carry its marker', async () => {
      const markers = await Promise.all(cluster.nodes.map((n) => n.command('GET', 'redlease:run-id')));
      return markers.every((m, i) => m === runIds[i]);
    });
    await first.close();
    // The moment a concurrent engine has written its marker to redis-2 but not yet to redis-1 and redis-3.
    await cluster.nodes[0]!.command('DEL', 'redlease:run-id');
    await cluster.nodes[2]!.command('DEL', 'redlease:run-id');
    const second = new Redlock({ ...FAST, nodes: cluster.addresses });
    onTestFinished(() => second.close());
    await waitFor('the second engine to read every node once', () =>
      second.status().nodes.every((n) => n.runId !== ''),
    );
    // ...and now the concurrent engine's other two markers land.
    await cluster.nodes[0]!.command('SET', 'redlease:run-id', runIds[0]!);
    await cluster.nodes[2]!.command('SET', 'redlease:run-id', runIds[2]!);
    const status = await second.ready();
    for (const n of status.nodes)
      expect(n).toMatchObject({ voting: true, quarantined: false, quarantineReason: '' });
    expect(status.quorumAvailable).toBe(true);
  });

  it('two engines starting together, one of which reaches two nodes late: neither quarantines a node', async () => {
    const cluster = await RedisCluster.start(3);
    onTestFinished(() => cluster.dispose());
    // L5 at first contact: no false amnesia alarm on a fresh cluster.
    // Engine A reaches redis-1 at once and redis-2 and redis-3 only later: it sees one fresh node and two that fail.
    const { engine: a, proxies } = await engineReachingTwoNodesLate(cluster);
    await waitFor('A to count redis-1', () => node(a, 'redis-1').voting);
    // Engine B starts meanwhile and reaches all three. Whatever A marked so far must not make B suspect the rest.
    const b = new Redlock({ ...FAST, nodes: cluster.addresses });
    onTestFinished(() => b.close());
    await b.ready();
    // Past B's second look at any node it found without a marker: its decisions are all made.
    await waitFor('B to decide every first contact', () => b.admissionSettled);
    for (const n of b.status().nodes)
      expect(n).toMatchObject({ voting: true, quarantined: false, restarts: 0 });
    // A's links heal: redis-2 and redis-3 now carry B's markers. A's redis-1 was fresh, not forgetful.
    await Promise.all(proxies.map((p) => p.set('pass')));
    await waitFor(
      'A to count every node, its second look at redis-1 done',
      () => a.admissionSettled && a.status().nodes.every((n) => n.voting),
      5_000,
    );
    for (const n of a.status().nodes)
      expect(n).toMatchObject({ voting: true, quarantined: false, restarts: 0 });
    expect((await a.acquire(uniqueResource())).nodes).toHaveLength(3);
  });

  it('a node found without a marker before the marked ones could be read is still quarantined once they are', async () => {
    const { cluster, engine: first } = await startCluster({ maxTtlMs: 10_000 });
    await waitFor('every node to carry its marker', async () => {
      const markers = await Promise.all(cluster.nodes.map((n) => n.command('GET', 'redlease:run-id')));
      return markers.every((m) => m !== null);
    });
    await first.close();
    // Lock-delay at first contact: the amnesiac node is found out even when it is the only one read at first.
    await cluster.nodes[0]!.restart({ keepData: false }); // redis-1 forgets everything, its marker included
    const { engine, proxies } = await engineReachingTwoNodesLate(cluster, { maxTtlMs: 10_000 });
    // Only redis-1 read, without a marker: it votes (nothing says it forgot anything yet), but is not marked.
    await waitFor('the engine to count redis-1', () => node(engine, 'redis-1').voting);
    await new Promise((r) => setTimeout(r, 4 * FAST.nodeTimeoutMs!));
    expect(await cluster.nodes[0]!.command('GET', 'redlease:run-id')).toBeNull();
    // The marked nodes become reachable: redis-1 had no marker while they had theirs.
    await Promise.all(proxies.map((p) => p.set('pass')));
    const s1 = await waitFor('redis-1 to be quarantined', () =>
      node(engine, 'redis-1').quarantined ? node(engine, 'redis-1') : undefined,
    );
    expect(s1.quarantineReason).toContain('lost its data');
    expect(s1.voting).toBe(false);
    await waitFor('redis-2 and redis-3 to vote', () =>
      ['redis-2', 'redis-3'].every((name) => node(engine, name).voting),
    );
    expect(node(engine, 'redis-1')).toMatchObject({ voting: false, quarantined: true });
  });

  it('a node found without a marker before the marked ones could be read stops voting once one is: no lock it forgot is granted twice', async () => {
    const {
      cluster,
      nodes: [n1, n2],
      engine: first,
    } = await startCluster({ maxTtlMs: 10_000 });
    const r = uniqueResource();
    // A's lock lives on redis-1 and redis-3 only (as if redis-2 had missed the request).
    const a = await first.acquire(r, { ttlMs: 8_000 });
    await n2.command('DEL', `lk:${r}`, `lkh:${r}`);
    await waitFor('every node to carry its marker', async () => {
      const markers = await Promise.all(cluster.nodes.map((n) => n.command('GET', 'redlease:run-id')));
      return markers.every((m) => m !== null);
    });
    await first.close();
    await n1.restart({ keepData: false }); // redis-1 forgets A's lock and its marker
    // The re-read of redis-1's marker waits 2 × the node timeout: a wide window for the acquire below.
    const { engine, proxies } = await engineReachingTwoNodesLate(cluster, {
      maxTtlMs: 10_000,
      nodeTimeoutMs: 500,
    });
    await waitFor('the engine to count redis-1', () => node(engine, 'redis-1').voting);
    // redis-2, marked, becomes reachable; redis-3 (A's other copy) does not.
    await proxies[0]!.set('pass');
    const seen = await waitFor('redis-2 to vote', () => {
      const s = engine.status();
      return s.nodes[1]!.voting ? s : undefined;
    });
    // redis-1 has no marker while redis-2 has one: it may have forgotten locks, so it is out while that is checked.
    expect(seen.nodes[0]!.voting).toBe(false);
    expect(performance.now()).toBeLessThan(a.deadline);
    const error = await rejection(engine.acquire(r, { retryCount: 0 }), NoQuorumError);
    expect(error.votes.find((v) => v.node === 'redis-1')!.vote).toBe('not-voting');
    const s1 = await waitFor('redis-1 to be quarantined', () =>
      node(engine, 'redis-1').quarantined ? node(engine, 'redis-1') : undefined,
    );
    expect(s1.quarantineReason).toContain('lost its data');
  });

  it('a node restarted with its data since it last voted is quarantined by a new engine too', async () => {
    const {
      cluster,
      engine: first,
      newEngine,
    } = await startCluster({ maxTtlMs: 60_000 }, { persistence: 'aof-always' });
    await first.acquire(uniqueResource(), { ttlMs: 1_000 });
    await waitFor(
      'markers',
      async () => (await cluster.nodes[0]!.command('GET', 'redlease:run-id')) !== null,
    );
    await first.close();
    await cluster.nodes[0]!.kill();
    await cluster.nodes[0]!.startAgain();
    const second = await newEngine();
    const s1 = node(second, 'redis-1');
    expect(s1.restarts).toBe(1);
    expect(s1.quarantineReason).toContain('restarted since it last voted');
    // Idle apart from a lock that expires within a second, so the scan lets it back well before the max ttl.
    await waitFor('redis-1 to vote again', () => node(second, 'redis-1').voting, 4_000);
  });
});

describe('node status and refusal', () => {
  it('reports up, latency, run_id and errors per node', async () => {
    const { cluster, engine } = await startCluster();
    const before = engine.status();
    expect(before).toMatchObject({ mode: 'redlock', quorum: 2, quorumAvailable: true });
    for (const s of before.nodes) {
      expect(s).toMatchObject({
        up: true,
        voting: true,
        quarantined: false,
        error: '',
        maxmemoryPolicy: 'noeviction',
      });
      expect(s.runId).toMatch(/^[0-9a-f]{40}$/);
      expect(s.latencyMs).toBeGreaterThanOrEqual(0);
    }
    expect(before.nodes.map((s) => s.address)).toEqual(cluster.addresses);

    await cluster.nodes[2]!.kill();
    const down = await waitFor('redis-3 to be seen down', () =>
      node(engine, 'redis-3').up ? undefined : node(engine, 'redis-3'),
    );
    expect(down.voting).toBe(false);
    expect(down.error).toMatch(/refused|not connected|closed/);
  });

  it('closing with a health check in flight logs no failure of it (the engine cut it off itself)', async () => {
    const lines: { msg: string }[] = [];
    const sink = new Writable({
      write(chunk, _encoding, done) {
        lines.push(JSON.parse(String(chunk)));
        done();
      },
    });
    const { cluster, engine } = await startCluster({ logger: pino({ level: 'warn' }, sink) });
    // Paused, redis-1 leaves the next health check (every 50 ms) hanging; the node timeout (100 ms) is not reached.
    cluster.nodes[0]!.pause();
    await new Promise((r) => setTimeout(r, 70));
    await engine.close();
    cluster.nodes[0]!.resume();
    await new Promise((r) => setTimeout(r, 150));
    expect(lines.map((l) => l.msg)).not.toContain('node health check failed');
  });

  it('refuses a node whose maxmemory-policy evicts keys as a voter, with the reason, until it is fixed', async () => {
    const { cluster, engine } = await startCluster();
    await cluster.nodes[2]!.command('CONFIG', 'SET', 'maxmemory-policy', 'allkeys-lru');
    const refused = await waitFor('redis-3 to be refused', () =>
      node(engine, 'redis-3').voting ? undefined : node(engine, 'redis-3'),
    );
    expect(refused.up).toBe(true);
    expect(refused.quarantineReason).toContain('maxmemory-policy is allkeys-lru');
    expect(refused.quarantineReason).toContain('noeviction');

    const lease = await engine.acquire(uniqueResource());
    expect(lease.nodes.sort()).toEqual(['redis-1', 'redis-2']);

    await cluster.nodes[0]!.kill();
    const error = await rejection(engine.acquire(uniqueResource(), { retryCount: 0 }), NoQuorumError);
    expect(error.votes.find((v) => v.node === 'redis-3')).toMatchObject({ vote: 'not-voting' });
    expect(error.message).toContain('maxmemory-policy');

    await cluster.nodes[2]!.command('CONFIG', 'SET', 'maxmemory-policy', 'noeviction');
    await waitFor('redis-3 to vote again', () => node(engine, 'redis-3').voting);
  });
});
