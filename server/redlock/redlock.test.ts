import { describe, expect, it } from 'vitest';
import { rejection, startCluster, uniqueResource, waitFor } from '../../test/support/engine.js';
import { HeldByAnotherError, NoQuorumError, NotHolderError } from './errors.js';
import { newLockId } from './lock-id.js';
import { DEFAULTS, driftMs } from './options.js';

const lockKey = (r: string) => `${DEFAULTS.keyPrefix}${r}`;
const holderKey = (r: string) => `${DEFAULTS.holderPrefix}${r}`;

describe('quorum', () => {
  it('grants with 3/3 nodes up, reporting the granting nodes and an honest validity', async () => {
    const { cluster, engine } = await startCluster();
    const r = uniqueResource();
    const before = performance.now();
    const lease = await engine.acquire(r, { ttlMs: 5_000, clientId: 'worker-a' });
    const after = performance.now();
    const elapsed = after - before;

    expect(lease.nodes.sort()).toEqual(['redis-1', 'redis-2', 'redis-3']);
    expect(lease.quorum).toBe(2);
    expect(lease.attempts).toBe(1);
    expect(lease.lockId).toMatch(/^[0-9a-f]{32}$/);
    expect(lease.fencingToken).toBeGreaterThan(0);
    expect(Number.isSafeInteger(lease.fencingToken)).toBe(true);
    // validity = ttl − elapsed − drift, with elapsed no more than what the caller measured around the call.
    expect(lease.validityMs).toBeLessThanOrEqual(5_000 - driftMs(DEFAULTS, 5_000));
    expect(lease.validityMs).toBeGreaterThanOrEqual(Math.floor(5_000 - driftMs(DEFAULTS, 5_000) - elapsed));
    // The monotonic deadline is the attempt's start + ttl − drift: inside the call's own window, shifted.
    expect(lease.deadline).toBeGreaterThanOrEqual(before + 5_000 - driftMs(DEFAULTS, 5_000));
    expect(lease.deadline).toBeLessThanOrEqual(after + 5_000 - driftMs(DEFAULTS, 5_000));
    for (const node of cluster.nodes) {
      expect(await node.command('GET', lockKey(r))).toBe(lease.lockId);
      const pttl = Number(await node.command('PTTL', lockKey(r)));
      expect(pttl).toBeGreaterThan(0);
      expect(pttl).toBeLessThanOrEqual(5_000);
    }
  });

  it('grants with 2/3 nodes up, naming only the nodes that granted', async () => {
    const { cluster, engine } = await startCluster();
    await cluster.nodes[2]!.kill();
    const lease = await engine.acquire(uniqueResource(), { ttlMs: 5_000 });
    expect(lease.nodes.sort()).toEqual(['redis-1', 'redis-2']);
    expect(lease.validityMs).toBeGreaterThan(0);
  });

  it('fails with no quorum within a second when 1/3 is up, leaving nothing locked on the survivor', async () => {
    const { cluster, engine } = await startCluster();
    await Promise.all([cluster.nodes[1]!.kill(), cluster.nodes[2]!.kill()]);
    const r = uniqueResource();
    const started = performance.now();
    const error = await rejection(engine.acquire(r, { ttlMs: 5_000 }), NoQuorumError);
    const tookMs = performance.now() - started;

    expect(tookMs, `failed after ${Math.round(tookMs)} ms`).toBeLessThan(1_000);
    expect(error.reason).toBe('QUORUM_UNAVAILABLE');
    expect(error.message).toContain('quorum unavailable: 1/3 Redis nodes voting, 2 needed');
    expect(error.votes.map((v) => v.vote)).toEqual(['granted', 'error', 'error']);
    expect(await cluster.nodes[0]!.command('EXISTS', lockKey(r), holderKey(r))).toBe(0);
  });

  it('fails fast with no quorum when two nodes are paused (timeouts, not refusals)', async () => {
    const { cluster, engine } = await startCluster();
    cluster.nodes[1]!.pause();
    cluster.nodes[2]!.pause();
    const started = performance.now();
    const error = await rejection(engine.acquire(uniqueResource(), { ttlMs: 5_000 }), NoQuorumError);
    // Bounded by the configuration, not by TCP: 3 attempts × 100 ms node timeout + 2 retry delays of ≤ 150 ms
    // = 600 ms; the slack is for a loaded machine. Without the timeout this would hang until the nodes resume.
    expect(performance.now() - started).toBeLessThan(2_000);
    // The first attempt times out on both; that resets their connections (a timed-out command leaves a
    // connection in an unknown state), so later attempts find them not connected until they answer again.
    expect(error.votes.filter((v) => v.vote === 'error').map((v) => v.node)).toEqual(['redis-2', 'redis-3']);
    expect(error.votes.filter((v) => v.vote === 'error').map((v) => v.detail)).toEqual(
      expect.arrayContaining([expect.stringMatching(/^(timed out|not connected)$/)]),
    );
  });
});

describe('exclusion', () => {
  it('refuses a second holder with held-by-another, then grants after release with a larger token', async () => {
    const { engine } = await startCluster();
    const r = uniqueResource();
    const a = await engine.acquire(r, { ttlMs: 5_000, clientId: 'worker-a' });
    const error = await rejection(engine.acquire(r, { ttlMs: 5_000 }), HeldByAnotherError);
    expect(error.reason).toBe('LOCK_HELD');
    expect(error.votes.map((v) => v.vote)).toEqual(['held', 'held', 'held']);
    expect(error.holderTtlMs).toBeGreaterThan(0);
    expect(error.holderTtlMs).toBeLessThanOrEqual(5_000);
    expect(JSON.stringify({ ...error, message: error.message })).not.toContain(a.lockId);

    expect(await engine.release(r, a.lockId)).toEqual({
      released: true,
      nodes: ['redis-1', 'redis-2', 'redis-3'],
      fencingToken: a.fencingToken,
      clientId: 'worker-a',
    });
    const b = await engine.acquire(r, { ttlMs: 5_000 });
    expect(b.fencingToken).toBeGreaterThan(a.fencingToken);
  });

  it('grants again once the holder lets the lock expire', async () => {
    const { cluster, engine } = await startCluster();
    const r = uniqueResource();
    const a = await engine.acquire(r, { ttlMs: 200 });
    await rejection(engine.acquire(r, { ttlMs: 200 }), HeldByAnotherError);
    await waitFor('the lock keys to expire', async () => {
      const left = await Promise.all(cluster.nodes.map((n) => n.command('EXISTS', lockKey(r))));
      return left.every((x) => x === 0);
    });
    const b = await engine.acquire(r, { ttlMs: 200 });
    expect(b.fencingToken).toBeGreaterThan(a.fencingToken);
  });

  it('excludes and is excluded by another Redlock client using the same plain lock key', async () => {
    const { cluster, engine } = await startCluster({ keyPrefix: '' });
    const r = uniqueResource();
    // A foreign client (node-redlock, redsync) holds `r` on two nodes with a value of its own.
    await cluster.nodes[0]!.command('SET', r, 'foreign-value', 'NX', 'PX', 5_000);
    await cluster.nodes[1]!.command('SET', r, 'foreign-value', 'NX', 'PX', 5_000);
    await rejection(engine.acquire(r, { ttlMs: 5_000 }), HeldByAnotherError);
    expect(await cluster.nodes[2]!.command('EXISTS', r)).toBe(0);

    await Promise.all(cluster.nodes.map((n) => n.command('DEL', r)));
    const lease = await engine.acquire(r, { ttlMs: 5_000 });
    // The lock key holds just the lock id, so the foreign client's SET NX fails while we hold it.
    expect(await cluster.nodes[0]!.command('GET', r)).toBe(lease.lockId);
    expect(await cluster.nodes[0]!.command('SET', r, 'foreign-value', 'NX', 'PX', 5_000)).toBeNull();
  });
});

describe('release and extend by a non-holder (lab exercise 5)', () => {
  it('an old holder whose lock expired cannot release or extend the new holder’s lock', async () => {
    const { cluster, engine } = await startCluster();
    const r = uniqueResource();
    const old = await engine.acquire(r, { ttlMs: 150 });
    // Each node expires its copy on its own: wait until none holds the old lock, not just a quorum.
    await waitFor('the old lock to expire on every node', async () => {
      const left = await Promise.all(cluster.nodes.map((n) => n.command('EXISTS', lockKey(r))));
      return left.every((x) => x === 0);
    });
    const current = await engine.acquire(r, { ttlMs: 5_000 });
    const granting = cluster.nodes.filter((n) => current.nodes.includes(n.name));
    expect(granting.length).toBeGreaterThanOrEqual(2);

    const released = await rejection(engine.release(r, old.lockId), NotHolderError);
    expect(released.reason).toBe('LOCK_NOT_HELD');
    expect(released.message).toContain('does not hold');
    const extended = await rejection(engine.extend(r, old.lockId, 5_000), NotHolderError);
    expect(extended.reason).toBe('LOCK_NOT_HELD');

    for (const node of granting) {
      expect(await node.command('GET', lockKey(r))).toBe(current.lockId);
      expect(Number(await node.command('PTTL', lockKey(r)))).toBeGreaterThan(0);
    }
    const renewed = await engine.extend(r, current.lockId, 8_000);
    expect(renewed.fencingToken).toBe(current.fencingToken);
    expect(Number(await cluster.nodes[0]!.command('PTTL', lockKey(r)))).toBeGreaterThan(5_000);
  });

  it('release with an unknown lock id, or a second release, changes nothing and says so', async () => {
    const { cluster, engine } = await startCluster();
    const r = uniqueResource();
    const lease = await engine.acquire(r, { ttlMs: 5_000 });
    await rejection(engine.release(r, newLockId()), NotHolderError);
    expect(await cluster.nodes[0]!.command('GET', lockKey(r))).toBe(lease.lockId);
    await engine.release(r, lease.lockId);
    await rejection(engine.release(r, lease.lockId), NotHolderError);
  });

  it('extend keeps the token, renews every node, and reports the client id', async () => {
    const { cluster, engine } = await startCluster();
    const r = uniqueResource();
    const lease = await engine.acquire(r, { ttlMs: 1_000, clientId: 'svc-7' });
    const extended = await engine.extend(r, lease.lockId, 9_000);
    expect(extended).toMatchObject({ fencingToken: lease.fencingToken, clientId: 'svc-7', ttlMs: 9_000 });
    expect(extended.validityMs).toBeGreaterThan(8_000);
    for (const node of cluster.nodes)
      expect(Number(await node.command('PTTL', holderKey(r)))).toBeGreaterThan(8_000);
  });

  it('holds() tells held, not held, and unknown apart without changing anything', async () => {
    const { engine, nodes } = await startCluster();
    const r = uniqueResource();
    const lease = await engine.acquire(r);
    expect(await engine.holds(r, lease.lockId)).toBe('held');
    expect(await engine.holds(r, newLockId())).toBe('not-held');
    await nodes[1].kill();
    await nodes[2].kill();
    await waitFor('two nodes seen down', () => engine.status().nodes.filter((n) => n.up).length === 1);
    expect(await engine.holds(r, lease.lockId)).toBe('unknown');
    expect(await engine.holds(r, newLockId())).toBe('unknown');
  });

  it('release when too few nodes answer is "no quorum", not "not holder"', async () => {
    const { cluster, engine } = await startCluster();
    const r = uniqueResource();
    await Promise.all([cluster.nodes[1]!.kill(), cluster.nodes[2]!.kill()]);
    const error = await rejection(engine.release(r, newLockId()), NoQuorumError);
    expect(error.message).toContain('could not tell');
  });
});

describe('validity', () => {
  it('a node paused past the ttl cannot turn into a grant with no validity left; nothing stays locked', async () => {
    // The per-node timeout is longer than the ttl so the engine waits for the paused node's late vote.
    const { cluster, engine } = await startCluster({ nodeTimeoutMs: 3_000, retryCount: 0 });
    const r = uniqueResource();
    await cluster.nodes[2]!.kill();
    cluster.nodes[1]!.pause();
    const resume = setTimeout(() => cluster.nodes[1]!.resume(), 600);
    try {
      const error = await rejection(engine.acquire(r, { ttlMs: 300 }), NoQuorumError);
      expect(error.reason).toBe('VALIDITY_EXHAUSTED');
      expect(error.message).toMatch(/took \d+ ms of a 300 ms ttl/);
    } finally {
      clearTimeout(resume);
      cluster.nodes[1]!.resume();
    }
    // redis-2 ran the late SET NX after resuming, then the unlock-everywhere that followed the failure.
    expect(await cluster.nodes[0]!.command('EXISTS', lockKey(r))).toBe(0);
    expect(await cluster.nodes[1]!.command('EXISTS', lockKey(r))).toBe(0);
  });
});

describe('idempotent acquire', () => {
  it('an Acquire re-sent with the lock id that holds the resource returns the same lease and token', async () => {
    const { engine } = await startCluster();
    const r = uniqueResource();
    const lockId = newLockId();
    const first = await engine.acquire(r, { ttlMs: 2_000, lockId, clientId: 'c1' });
    const again = await engine.acquire(r, { ttlMs: 10_000, lockId, clientId: 'c1' });
    expect(again.lockId).toBe(lockId);
    expect(again.fencingToken).toBe(first.fencingToken);
    expect(again.validityMs).toBeGreaterThan(first.validityMs);
    await rejection(engine.acquire(r, { ttlMs: 2_000 }), HeldByAnotherError);
  });
});

describe('SINGLE mode', () => {
  it('uses node 1 alone and fails when node 1 is down', async () => {
    const { cluster, engine } = await startCluster();
    engine.setMode('single');
    expect(engine.status()).toMatchObject({ mode: 'single', quorum: 1, quorumAvailable: true });
    const r = uniqueResource();
    const lease = await engine.acquire(r, { ttlMs: 5_000 });
    expect(lease).toMatchObject({ nodes: ['redis-1'], quorum: 1, mode: 'single' });
    expect(await cluster.nodes[1]!.command('EXISTS', lockKey(r))).toBe(0);
    expect(await cluster.nodes[2]!.command('EXISTS', lockKey(r))).toBe(0);
    await engine.release(r, lease.lockId);

    await cluster.nodes[0]!.kill();
    await waitFor('node 1 to be seen down', () => !engine.status().quorumAvailable);
    const error = await rejection(engine.acquire(r, { ttlMs: 5_000 }), NoQuorumError);
    expect(error.message).toContain('0/1 Redis nodes voting');

    engine.setMode('redlock');
    expect((await engine.acquire(r, { ttlMs: 5_000 })).nodes.sort()).toEqual(['redis-2', 'redis-3']);
  });
});

describe('abort', () => {
  it('an aborted acquire stops retrying and leaves nothing locked', async () => {
    const { cluster, engine } = await startCluster({ retryCount: 50, retryDelayMs: 20, retryJitterMs: 0 });
    const r = uniqueResource();
    await Promise.all([cluster.nodes[1]!.kill(), cluster.nodes[2]!.kill()]);
    const controller = new AbortController();
    setTimeout(() => controller.abort(new Error('caller gave up')), 100);
    await expect(engine.acquire(r, { ttlMs: 5_000, signal: controller.signal })).rejects.toThrow(
      'caller gave up',
    );
    expect(await cluster.nodes[0]!.command('EXISTS', lockKey(r))).toBe(0);
  });
});

describe('inspect', () => {
  it('reports the holder, token and per-node state without revealing the lock id', async () => {
    const { cluster, engine } = await startCluster();
    const r = uniqueResource();
    const lease = await engine.acquire(r, { ttlMs: 5_000, clientId: 'inspector' });
    await cluster.nodes[2]!.kill();
    const state = await engine.inspect(r);
    expect(state).toMatchObject({
      resource: r,
      locked: true,
      holderClientId: 'inspector',
      fencingToken: lease.fencingToken,
    });
    expect(state.validityMs).toBeGreaterThan(4_000);
    expect(state.nodes.map((n) => [n.node, n.reachable, n.held])).toEqual([
      ['redis-1', true, true],
      ['redis-2', true, true],
      ['redis-3', false, false],
    ]);
    expect(JSON.stringify(state)).not.toContain(lease.lockId);
    await engine.release(r, lease.lockId);
    expect(await engine.inspect(r)).toMatchObject({ locked: false, fencingToken: 0, validityMs: 0 });
  });
});
