/**
 * The fault scenarios (their ids in docs/chaos.md), each a function of (harness, seeded random, seconds). The
 * short CI tests (test/chaos-*.test.ts) and `npm run chaos` run the same definitions; a scenario returns the
 * facts its test asserts beyond the checker's report.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { waitFor } from '../scripts/lib/wait.js';
import type { ProxyMode } from '../testkit/fault-proxy.js';
import type { CheckOptions } from './checker.js';
import type { Harness, HarnessOptions, WorkerSpec, Workload } from './harness.js';
import { RecordedClient } from './recorded-client.js';

export { mulberry32 } from '../testkit/random.js';

export interface ScenarioContext {
  h: Harness;
  /** Seeded: the same seed replays the same fault schedule. */
  random: () => number;
  seconds: number;
  log: (message: string) => void;
}

export interface Scenario {
  id: string;
  title: string;
  /** Length of the workers' run in the short (CI) form. */
  seconds: number;
  harness?: Partial<HarnessOptions>;
  workers?: (seconds: number) => WorkerSpec[];
  /** The faults (and scripted clients); returns facts for the test to assert. */
  run: (ctx: ScenarioContext) => Promise<Record<string, unknown>>;
  /**
   * The least work a run of the short form shows, set well below what such runs do on a loaded 2-core machine
   * (and above what the L4 probe alone does): fewer grants (the probe's included) or fewer writes accepted by the
   * fenced store make the report unknown, too thin to judge.
   */
  minimum: { grants: number; fencedWrites: number };
  /** A fault stays active nearly all the run, so no length of it has the quiet periods L2 is judged in. */
  faultsNeverPause?: true;
  check?: CheckOptions;
}

const between = (random: () => number, lo: number, hi: number): number => lo + random() * (hi - lo);
const pick = <T>(random: () => number, items: readonly T[]): T => items[Math.floor(random() * items.length)]!;

/** The usual mix: lock holders (some holds need renewals), a fenced set and an unfenced set on two resources. */
export function mixedWorkers(seconds: number, count = 6): WorkerSpec[] {
  const kinds: Workload[] = ['lock', 'fenced-set', 'unfenced-set'];
  return Array.from({ length: count }, (_, i) => ({
    name: `w${i + 1}`,
    workload: kinds[i % kinds.length]!,
    seconds,
  }));
}

/** Sleeps until `at` seconds after `start` (performance.now() ms). */
async function until(start: number, atSeconds: number): Promise<void> {
  const wait = start + atSeconds * 1_000 - performance.now();
  if (wait > 0) await sleep(wait);
}

// ---- the random nemesis (F13 and the mixed soak) -----------------------------------------------------------

const PARTITIONS: ProxyMode[] = [
  { kind: 'blackhole' },
  { kind: 'reset' },
  { kind: 'refuse' },
  { kind: 'drop-responses' },
  { kind: 'drop-requests' },
  { kind: 'delay', ms: 40, jitterMs: 40 },
];

/** Flapping partitions: every 300–800 ms isolate a different proxy (sometimes two), until `seconds` pass. */
async function flappingPartitions(ctx: ScenarioContext): Promise<number> {
  const { h, random } = ctx;
  const end = performance.now() + ctx.seconds * 1_000 - 1_000;
  let faults = 0;
  while (performance.now() < end) {
    const first = Math.floor(random() * 3);
    const targets = random() < 0.25 ? [first, (first + 1 + Math.floor(random() * 2)) % 3] : [first];
    for (const i of targets) await h.partition(i, pick(random, PARTITIONS));
    faults += targets.length;
    await sleep(between(random, 300, 800));
    for (const i of targets) await h.partition(i, { kind: 'pass' });
  }
  return faults;
}

/** Kills (restarted empty), pauses and partitions, mixed, one or two at a time. */
async function mixedNemesis(ctx: ScenarioContext): Promise<number> {
  const { h, random } = ctx;
  const end = performance.now() + ctx.seconds * 1_000 - 2_000;
  let faults = 0;
  while (performance.now() < end) {
    const node = Math.floor(random() * 3);
    const roll = random();
    faults++;
    if (roll < 0.25) {
      await h.killNode(node);
      await sleep(between(random, 200, 1_500));
      await h.startNode(node, { wipe: true });
    } else if (roll < 0.5) {
      h.pauseNode(node);
      await sleep(random() < 0.5 ? between(random, 10, 60) : between(random, 300, 2_500));
      h.resumeNode(node);
    } else if (roll < 0.85) {
      await h.partition(node, pick(random, PARTITIONS));
      await sleep(between(random, 200, 1_500));
      await h.partition(node, { kind: 'pass' });
    } else {
      // two at once: a quorum is lost for a while
      const other = (node + 1 + Math.floor(random() * 2)) % 3;
      await h.partition(node, { kind: 'blackhole' });
      h.pauseNode(other);
      await sleep(between(random, 200, 1_000));
      h.resumeNode(other);
      await h.partition(node, { kind: 'pass' });
      faults++;
    }
    await sleep(between(random, 100, 800));
  }
  return faults;
}

// ---- the scenarios -----------------------------------------------------------------------------------------

export const SCENARIOS: Scenario[] = [
  {
    id: 'F1',
    title: 'no faults, heavy contention (baseline)',
    seconds: 7,
    minimum: { grants: 10, fencedWrites: 4 },
    // No fault for a node timeout to detect. In CI two harnesses share 2 cores, and starved Redis processes then
    // answered all three nodes' commands past 100 ms at once: each timeout resets its connection, so the quorum
    // blinked out and a renewal came too late (two CI runs). Starvation is F24's subject, not this baseline's.
    harness: { resources: ['r1', 'r2'], nodeTimeoutMs: 400 },
    workers: (s) => mixedWorkers(s, 8),
    run: async () => ({}),
  },
  {
    id: 'F2',
    title: 'one Redis node crashes and stays down',
    seconds: 7,
    minimum: { grants: 10, fencedWrites: 2 },
    faultsNeverPause: true,
    harness: { resources: ['r1', 'r2'] },
    workers: mixedWorkers,
    run: async ({ h }) => {
      await sleep(2_000);
      await h.killNode(2);
      const killedAt = process.hrtime.bigint().toString();
      // It stays down for the rest of the workers' run: the heal comes after it, not as soon as the faults are done.
      await h.joinWorkers();
      return { killedAt };
    },
  },
  {
    id: 'F3',
    title: 'two Redis nodes down, then back',
    seconds: 8,
    minimum: { grants: 5, fencedWrites: 1 },
    harness: { resources: ['r1', 'r2'] },
    workers: mixedWorkers,
    run: async ({ h }) => {
      await sleep(2_000);
      const from = process.hrtime.bigint();
      await Promise.all([h.killNode(1), h.killNode(2)]);
      await sleep(3_000);
      const to = process.hrtime.bigint();
      await h.startNode(1, { wipe: true });
      await h.startNode(2, { wipe: true });
      return { downFrom: from.toString(), downTo: to.toString() };
    },
  },
  {
    id: 'F4',
    title: 'a node restarted without persistence while a lock is held on it',
    seconds: 0,
    minimum: { grants: 3, fencedWrites: 1 },
    harness: { resources: ['r1'], maxTtlMs: 2_000 },
    run: async ({ h }) => {
      const a = new RecordedClient(h.options.dir, 'A', h.address);
      const b = new RecordedClient(h.options.dir, 'B', h.address);
      try {
        await h.partition(2, { kind: 'blackhole' });
        const lease = await a.acquire('r1', { ttlMs: 2_000, autoRenew: false });
        if (!lease) throw new Error('A could not acquire r1 with R3 blackholed');
        const aDeadline = performance.now() + lease.remainingMs;
        await h.restartNodeEmpty(1);
        await h.partition(2, { kind: 'pass' });
        const attempts: { at: number; ok: boolean; token?: number }[] = [];
        let bToken: number | undefined;
        let bWrite: boolean | undefined;
        while (bToken === undefined && performance.now() < aDeadline + 5_000) {
          const granted = await b.acquire('r1', { ttlMs: 1_000, autoRenew: false });
          attempts.push({ at: performance.now(), ok: granted !== undefined, token: granted?.fencingToken });
          if (granted) {
            bToken = granted.fencingToken;
            bWrite = await b.storeAdd(h.store.url, 'fenced', granted, 1);
            await b.release(granted);
          } else await sleep(50);
        }
        await waitFor(
          'R2 to vote again after its restart quarantine',
          async () => (await nodeStatus(h))[1]?.voting === true,
          10_000,
        );
        return {
          aToken: lease.fencingToken,
          bToken,
          bWrite,
          firstOkAt: attempts.find((x) => x.ok)?.at,
          aDeadline,
          refusedBefore: attempts.filter((x) => !x.ok).length,
        };
      } finally {
        await a.close();
        await b.close();
      }
    },
  },
  {
    id: 'F6',
    title: 'a Redis node paused, short (30 ms) and long (3 × ttl)',
    seconds: 7,
    minimum: { grants: 8, fencedWrites: 2 },
    harness: { resources: ['r1', 'r2'] },
    workers: mixedWorkers,
    run: async ({ h }) => {
      await sleep(1_000);
      for (let k = 0; k < 5; k++) {
        h.pauseNode(0);
        await sleep(30);
        h.resumeNode(0);
        await sleep(200);
      }
      h.pauseNode(0);
      await sleep(3 * h.options.ttlMs);
      h.resumeNode(0);
      return {};
    },
  },
  {
    id: 'F7',
    title: 'the coordinator paused (SIGSTOP) for 2 × ttl with requests in flight',
    seconds: 7,
    minimum: { grants: 8, fencedWrites: 2 },
    harness: { resources: ['r1', 'r2'] },
    workers: mixedWorkers,
    run: async ({ h }) => {
      await sleep(2_000);
      // Slow links first, so that requests are in flight on them when the server stops.
      for (let i = 0; i < 3; i++) await h.partition(i, { kind: 'delay', ms: 20 });
      await sleep(100);
      h.pauseServer();
      await sleep(2 * h.options.ttlMs);
      h.resumeServer();
      await sleep(500);
      for (let i = 0; i < 3; i++) await h.partition(i, { kind: 'pass' });
      return {};
    },
  },
  {
    id: 'F8',
    title: 'a worker paused past its ttl while holding: its stale fenced write is refused',
    seconds: 0,
    minimum: { grants: 3, fencedWrites: 1 },
    harness: { resources: ['r1'] },
    // The paused worker writes after its own deadline on purpose (--no-hold-check): that is the fault.
    check: { ignore: ['client'] },
    run: async (ctx) => await pausedWriter(ctx, 'fenced-set'),
  },
  {
    id: 'F8u',
    title: 'F8 on the unfenced store: the checker must report the lost update',
    seconds: 0,
    minimum: { grants: 3, fencedWrites: 1 },
    harness: { resources: ['r1'] },
    check: { assumptionBreaking: true, ignore: ['client'] },
    run: async (ctx) => await pausedWriter(ctx, 'unfenced-set'),
  },
  {
    id: 'F9',
    title: 'coordinator cut from one node: blackhole, reset, refuse',
    seconds: 7,
    minimum: { grants: 10, fencedWrites: 2 },
    harness: { resources: ['r1', 'r2'] },
    workers: mixedWorkers,
    run: async ({ h }) => {
      await sleep(1_000);
      for (const kind of ['blackhole', 'reset', 'refuse'] as const) {
        await h.partition(1, { kind });
        await sleep(1_500);
      }
      await h.partition(1, { kind: 'pass' });
      return {};
    },
  },
  {
    id: 'F10',
    title: 'coordinator cut from two nodes (blackhole)',
    seconds: 7,
    minimum: { grants: 8, fencedWrites: 2 },
    harness: { resources: ['r1', 'r2'] },
    workers: mixedWorkers,
    run: async ({ h }) => {
      await sleep(2_000);
      const from = process.hrtime.bigint();
      await h.partition(1, { kind: 'blackhole' });
      await h.partition(2, { kind: 'blackhole' });
      await sleep(3_000);
      const to = process.hrtime.bigint();
      await h.partition(1, { kind: 'pass' });
      await h.partition(2, { kind: 'pass' });
      return { cutFrom: from.toString(), cutTo: to.toString() };
    },
  },
  {
    id: 'F11',
    title: 'requests applied, replies lost (drop-responses on one node)',
    seconds: 7,
    minimum: { grants: 10, fencedWrites: 2 },
    harness: { resources: ['r1', 'r2'] },
    workers: mixedWorkers,
    run: async ({ h }) => {
      await sleep(1_500);
      await h.partition(0, { kind: 'drop-responses' });
      await sleep(3_000);
      await h.partition(0, { kind: 'pass' });
      return {};
    },
  },
  {
    id: 'F12',
    title: 'latency and jitter on every node link (0–300 ms, ttl 1 s)',
    seconds: 8,
    minimum: { grants: 4, fencedWrites: 1 },
    harness: { resources: ['r1', 'r2'], nodeTimeoutMs: 400 },
    workers: mixedWorkers,
    run: async ({ h }) => {
      await sleep(1_000);
      for (let i = 0; i < 3; i++) await h.partition(i, { kind: 'delay', ms: 150, jitterMs: 150 });
      await sleep(5_000);
      for (let i = 0; i < 3; i++) await h.partition(i, { kind: 'pass' });
      return {};
    },
  },
  {
    id: 'F13',
    title: 'flapping partitions',
    seconds: 9,
    minimum: { grants: 10, fencedWrites: 3 },
    faultsNeverPause: true,
    harness: { resources: ['r1', 'r2', 'r3'] },
    workers: mixedWorkers,
    run: async (ctx) => ({ faults: await flappingPartitions(ctx) }),
  },
  {
    id: 'F14',
    title: "a node's clock jumps past a lock's expiry: S1 breaks, fencing holds",
    seconds: 0,
    minimum: { grants: 3, fencedWrites: 1 },
    harness: { resources: ['r1'], maxTtlMs: 5_000 },
    check: { assumptionBreaking: true },
    run: async ({ h }) => {
      const a = new RecordedClient(h.options.dir, 'A', h.address, { ttlMs: 4_000 });
      const b = new RecordedClient(h.options.dir, 'B', h.address, { ttlMs: 4_000 });
      try {
        await h.partition(2, { kind: 'blackhole' });
        const leaseA = await a.acquire('r1', { ttlMs: 4_000, autoRenew: false });
        if (!leaseA) throw new Error('A could not acquire r1');
        // R2's clock jumps forward past the lock's expiry (modelled by expiring the key there now).
        await h.nodeCommand(1, 'PEXPIRE', 'lk:r1', 1);
        await sleep(20);
        await h.partition(2, { kind: 'pass' });
        // R3's connection timed out while blackholed: wait until the server counts it again.
        await waitFor('R3 to vote again', async () => (await nodeStatus(h))[2]?.voting === true, 10_000);
        await h.partition(0, { kind: 'blackhole' });
        const leaseB = await b.acquire('r1', { ttlMs: 4_000, autoRenew: false });
        if (!leaseB) throw new Error('B could not acquire r1 on R2 + R3');
        const bWrite = await b.storeAdd(h.store.url, 'fenced', leaseB, 2);
        // A still believes it holds r1 (its validity has not run out) and writes: refused.
        const aStillHeld = leaseA.isHeld();
        const aWrite = await a.storeAdd(h.store.url, 'fenced', leaseA, 1);
        await h.partition(0, { kind: 'pass' });
        await b.release(leaseB);
        await a.release(leaseA);
        return {
          aToken: leaseA.fencingToken,
          bToken: leaseB.fencingToken,
          aStillHeld,
          bWrite,
          aWrite,
        };
      } finally {
        await a.close();
        await b.close();
      }
    },
  },
  {
    id: 'F17',
    title: 'the coordinator crashes and restarts while locks are held',
    seconds: 7,
    minimum: { grants: 8, fencedWrites: 2 },
    harness: { resources: ['r1', 'r2'] },
    workers: mixedWorkers,
    run: async ({ h }) => {
      await sleep(2_500);
      await h.killServer();
      await sleep(200);
      await h.restartServer();
      return {};
    },
  },
  {
    id: 'F18',
    title: 'KeepAlive streams cut between workers and the coordinator (2 × ttl, then 0.5 × ttl)',
    seconds: 8,
    minimum: { grants: 4, fencedWrites: 1 },
    harness: { resources: ['r1', 'r2'], clientProxy: true },
    workers: (s) => mixedWorkers(s, 4),
    run: async ({ h }) => {
      // Cut connections that exist (a real partition does not let new ones through a handshake either).
      await waitFor(
        'every worker to have had a lease',
        () => [...h.workers.keys()].every((w) => h.granted(w)),
        15_000,
      );
      await h.cutClients({ kind: 'blackhole' });
      await sleep(2 * h.options.ttlMs);
      await h.cutClients({ kind: 'pass' });
      await sleep(1_500);
      await h.cutClients({ kind: 'blackhole' });
      await sleep(0.5 * h.options.ttlMs);
      await h.cutClients({ kind: 'pass' });
      return {};
    },
  },
  {
    id: 'F19',
    title: 'a worker killed while holding; another stopped gracefully',
    seconds: 7,
    minimum: { grants: 8, fencedWrites: 8 },
    harness: { resources: ['r1'] },
    workers: (s) =>
      ['w1', 'w2', 'w3', 'w4'].map((name) => ({ name, workload: 'fenced-set' as Workload, seconds: s })),
    run: async ({ h }) => {
      // Workers that are running (on a loaded box a worker process may still be starting after 2 s, and a
      // SIGTERM then ends it before its handler is installed).
      await waitFor('w1 and w2 to have had a lease', () => h.granted('w1') && h.granted('w2'), 15_000);
      await h.killWorker('w1');
      await sleep(1_500);
      const w2 = await h.stopWorker('w2');
      return { w2Exit: w2.code };
    },
  },
  {
    id: 'F21',
    title: 'all three Redis nodes restart empty',
    seconds: 7,
    minimum: { grants: 8, fencedWrites: 3 },
    harness: { resources: ['r1', 'r2'] },
    workers: mixedWorkers,
    run: async ({ h }) => {
      await sleep(2_000);
      await Promise.all([h.killNode(0), h.killNode(1), h.killNode(2)]);
      for (let i = 0; i < 3; i++) await h.startNode(i, { wipe: true });
      return { restartedAt: process.hrtime.bigint().toString() };
    },
  },
  {
    id: 'F25',
    title: 'release and extend after expiry, and by a non-owner',
    seconds: 0,
    minimum: { grants: 3, fencedWrites: 1 },
    harness: { resources: ['r1'] },
    run: async ({ h }) => {
      const a = new RecordedClient(h.options.dir, 'A', h.address);
      const b = new RecordedClient(h.options.dir, 'B', h.address);
      try {
        const old = await a.acquire('r1', { ttlMs: 300, autoRenew: false });
        if (!old) throw new Error('A could not acquire r1');
        await sleep(600);
        const lateRelease = await a.release(old);
        const lease = await b.acquire('r1', { ttlMs: 2_000, autoRenew: false });
        if (!lease) throw new Error('B could not acquire r1');
        const staleExtend = await a.extend(old, 2_000);
        const staleRelease = await a.release(old);
        const keys = await Promise.all(h.redis.map((r) => r.command('PTTL', 'lk:r1')));
        const holderExtend = await b.extend(lease, 2_000);
        const holderWrite = await b.storeAdd(h.store.url, 'fenced', lease, 1);
        await b.release(lease);
        return { lateRelease, staleExtend, staleRelease, holderExtend, holderWrite, pttls: keys };
      } finally {
        await a.close();
        await b.close();
      }
    },
  },
  {
    id: 'mixed',
    title: 'kills (restarted empty), pauses and partitions, mixed',
    seconds: 20,
    minimum: { grants: 20, fencedWrites: 5 },
    faultsNeverPause: true,
    harness: { resources: ['r1', 'r2', 'r3'] },
    workers: (s) => mixedWorkers(s, 8),
    run: async (ctx) => ({ faults: await mixedNemesis(ctx) }),
  },
];

/** The server's view of the nodes (lab API, admin from loopback). */
async function nodeStatus(h: Harness): Promise<{ name: string; voting: boolean; quarantined: boolean }[]> {
  const response = await fetch(`http://127.0.0.1:${h.server.httpPort}/admin/redis/status`);
  return ((await response.json()) as { nodes: { name: string; voting: boolean; quarantined: boolean }[] })
    .nodes;
}

/** F8: a worker stopped (SIGSTOP) between its read and its write for 3 × ttl while another takes the lock. */
async function pausedWriter(ctx: ScenarioContext, workload: 'fenced-set' | 'unfenced-set') {
  const { h } = ctx;
  const ttl = h.options.ttlMs;
  const w1 = h.startWorker(
    {
      name: 'w1',
      workload,
      seconds: 3,
      args: ['--no-hold-check', '--pause-before-write-ms', '300', '--rounds', '1'],
    },
    0,
  );
  const aboutToWrite = await waitFor('w1 to be about to write', () => w1.events('about-to-write')[0], 10_000);
  h.pauseWorker('w1');
  const started = performance.now();
  h.startWorker({ name: 'w2', workload, seconds: 2 }, 1);
  await until(started, (3 * ttl) / 1_000);
  // w1 read the set before it was paused; its write must come after one of w2's, or there is no update of w2's
  // for it to lose (on a loaded machine w2's process can take longer than the pause to start).
  await waitFor('w2 to have written to the store', () => h.completed('w2', 'store_write'), 15_000);
  h.resumeWorker('w1');
  await h.joinWorkers();
  // The next holder's write to the fenced store is accepted (on the unfenced variant, the run's one fenced write).
  const c = new RecordedClient(h.options.dir, 'C', h.address);
  try {
    const lease = await c.acquire('r1', { waitMs: 2_000, autoRenew: false });
    if (!lease) throw new Error('C could not acquire r1 after the workers ended');
    const nextWrite = await c.storeAdd(h.store.url, 'fenced', lease, 1);
    await c.release(lease);
    return { pausedToken: aboutToWrite.token, nextWrite };
  } finally {
    await c.close();
  }
}
