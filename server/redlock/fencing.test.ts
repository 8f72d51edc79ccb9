import { describe, expect, it } from 'vitest';
import type { RedisProcess } from '../../scripts/lib/redis-process.js';
import { startCluster, uniqueResource, waitFor } from '../../test/support/engine.js';
import { LockError } from './errors.js';
import type { Redlock } from './redlock.js';

/**
 * S3 (fencing monotonicity) under node faults: many clients take one resource over and over while nodes are
 * killed, restarted without data, paused, all three restarted empty, and the engine itself is restarted.
 * Every successful token must be strictly greater than every earlier one, and no two grants may overlap.
 */
describe('fencing tokens stay monotonic', () => {
  it('over 1 000+ acquisitions by 8 clients through kills, pauses, amnesia of every node and an engine restart', async () => {
    const TTL = 1_000;
    const TARGET = 1_050;
    // maxTtlMs bounds the quarantine after total amnesia (no witnesses left): keep it short for the test.
    const { cluster, newEngine } = await startCluster({ maxTtlMs: 2_000, defaultTtlMs: TTL, retryCount: 0 });
    const nodes = cluster.nodes;
    let engines: Redlock[] = [await newEngine(), await newEngine()];
    const resource = uniqueResource('fenced');

    const tokens: number[] = [];
    let inside = 0;
    let overlaps = 0;
    const failures = new Map<string, number>();
    let stop = false;
    const runDeadline = performance.now() + 40_000;

    async function client(id: number): Promise<void> {
      while (!stop && tokens.length < TARGET && performance.now() < runDeadline) {
        const engine = engines[id % engines.length]!;
        try {
          const lease = await engine.acquire(resource, { ttlMs: TTL, clientId: `client-${id}` });
          if (inside !== 0) overlaps++;
          inside++;
          const previous = tokens.at(-1);
          tokens.push(lease.fencingToken);
          if (previous !== undefined && lease.fencingToken <= previous) {
            throw new Error(
              `token went from ${previous} to ${lease.fencingToken} at acquisition ${tokens.length}`,
            );
          }
          await new Promise((r) => setImmediate(r));
          inside--;
          await engine.release(resource, lease.lockId).catch((e: unknown) => {
            if (!(e instanceof LockError)) throw e;
          });
        } catch (error) {
          if (!(error instanceof LockError) || error.code === 'INVALID_ARGUMENT') throw error;
          failures.set(error.reason, (failures.get(error.reason) ?? 0) + 1);
          await new Promise((r) => setTimeout(r, 2 + Math.random() * 8));
        }
      }
    }

    const reached = (n: number) =>
      waitFor(`${n} acquisitions (have ${tokens.length})`, () => tokens.length >= n, 20_000);
    const restartEmpty = (node: RedisProcess) => node.restart({ keepData: false });
    const faults: { at: number; what: string; run: () => Promise<void> }[] = [
      { at: 100, what: 'kill redis-3', run: () => nodes[2]!.kill() },
      { at: 200, what: 'start redis-3 again, empty', run: () => nodes[2]!.startAgain() },
      {
        at: 300,
        what: 'pause redis-1 for 300 ms',
        run: async () => {
          nodes[0]!.pause();
          await new Promise((r) => setTimeout(r, 300));
          nodes[0]!.resume();
        },
      },
      { at: 400, what: 'restart redis-2 without data', run: () => restartEmpty(nodes[1]!) },
      {
        at: 550,
        what: 'restart all three without data',
        run: async () => void (await Promise.all(nodes.map(restartEmpty))),
      },
      {
        at: 750,
        what: 'restart the engines',
        run: async () => {
          const old = engines;
          engines = [await newEngine(), await newEngine()];
          await Promise.all(old.map((e) => e.close()));
        },
      },
      { at: 900, what: 'restart redis-1 without data', run: () => restartEmpty(nodes[0]!) },
    ];
    const applied: string[] = [];
    const nemesis = (async () => {
      for (const fault of faults) {
        await reached(fault.at);
        await fault.run();
        applied.push(`${fault.what} @${tokens.length}`);
      }
    })();

    const clients = Array.from({ length: 8 }, (_, i) => client(i));
    try {
      await nemesis;
      await reached(TARGET);
    } finally {
      stop = true;
      await Promise.all(clients);
    }

    expect(applied).toHaveLength(faults.length);
    expect(tokens.length).toBeGreaterThanOrEqual(1_000);
    expect(overlaps).toBe(0);
    for (let i = 1; i < tokens.length; i++) {
      if (tokens[i]! <= tokens[i - 1]!)
        throw new Error(`tokens[${i}] = ${tokens[i]} ≤ tokens[${i - 1}] = ${tokens[i - 1]}`);
    }
    expect(Math.max(...tokens)).toBeLessThan(2 ** 53);
    // No lock or holder key without an expiry, whatever happened (a permanent lock could never be taken again).
    for (const node of nodes) {
      for (const key of (await node.command('KEYS', 'lk*')) as string[]) {
        expect(Number(await node.command('PTTL', key)), key).not.toBe(-1);
      }
    }
    console.info(
      `fencing: ${tokens.length} acquisitions, faults: ${applied.join('; ')}; refusals: ${JSON.stringify(Object.fromEntries(failures))}`,
    );
  }, 60_000);

  it('tokens written by a lagging node are caught up by the commit round, so the next holder still goes higher', async () => {
    const { cluster, engine } = await startCluster();
    const r = uniqueResource();
    const a = await engine.acquire(r, { ttlMs: 5_000 });
    await engine.release(r, a.lockId);
    // Push redis-1's counter far ahead (as a node re-seeded from its clock would be): the next token comes from
    // it, and the other granting nodes must be brought up to it before the grant counts.
    await cluster.nodes[0]!.command('INCRBY', `fence:${r}`, 1_000_000);
    const b = await engine.acquire(r, { ttlMs: 5_000 });
    expect(b.fencingToken).toBe(a.fencingToken + 1_000_001);
    for (const node of cluster.nodes) {
      expect(Number(await node.command('GET', `fence:${r}`))).toBe(b.fencingToken);
      expect(await node.command('GET', `lkh:${r}`)).toBe(`${b.fencingToken}:`);
    }
    await engine.release(r, b.lockId);
    // Now redis-1 dies; a quorum of the two others still yields a larger token.
    await cluster.nodes[0]!.kill();
    const c = await engine.acquire(r, { ttlMs: 5_000 });
    expect(c.fencingToken).toBe(b.fencingToken + 1);
  });

  it('an uncontended acquire is one script call per node: no commit round while the counters agree', async () => {
    const { cluster, engine } = await startCluster();
    const r = uniqueResource();
    await engine.release(r, (await engine.acquire(r)).lockId); // loads the scripts (EVAL after NOSCRIPT)
    const scriptCalls = async () =>
      Promise.all(
        cluster.nodes.map(async (n) => {
          const stats = String(await n.command('INFO', 'commandstats'));
          return (
            Number(/cmdstat_evalsha:calls=(\d+)/.exec(stats)?.[1] ?? 0) +
            Number(/cmdstat_eval:calls=(\d+)/.exec(stats)?.[1] ?? 0)
          );
        }),
      );
    const before = await scriptCalls();
    const CYCLES = 50;
    let token = 0;
    for (let i = 0; i < CYCLES; i++) {
      const lease = await engine.acquire(r);
      expect(lease.fencingToken).toBeGreaterThan(token);
      token = lease.fencingToken;
      await engine.release(r, lease.lockId);
    }
    const after = await scriptCalls();
    // One acquire and one release script per cycle on each node, and nothing else.
    expect(after.map((a, i) => a - before[i]!)).toEqual([2 * CYCLES, 2 * CYCLES, 2 * CYCLES]);
  });
});
