/**
 * The history checker of the fault suite (../shared/RELIABILITY.md §2, §6): derives belief windows, the quorum
 * timeline and the fault timeline from a merged history (chaos/history.ts) and checks S1–S4, the set workload,
 * S6, client honesty and the liveness properties L1–L4, L6, L7. Every check is one sweep over sorted data or a
 * binary search per operation, so a run of a million events checks in seconds (O(n log n), no pairwise scans).
 *
 * Validity follows Jepsen: `false` when any counted check found a violation, else `"unknown"` when the history
 * cannot be trusted to be complete (a truncated writer file, broken invoke/completion pairing, a set never read
 * back), else `true`.
 */
import type { HistoryEvent } from './history.js';

export type Validity = boolean | 'unknown';

export const CHECK_NAMES = [
  'history',
  'S1',
  'S2',
  'S3',
  'S4',
  'S5set',
  'S6',
  'client',
  'L1',
  'L2',
  'L3',
  'L4',
  'L6',
  'L7',
  'expected',
] as const;
export type CheckName = (typeof CHECK_NAMES)[number];

export const CHECK_TITLES: Record<CheckName, string> = {
  history: 'history completeness',
  S1: 'S1 mutual exclusion',
  S2: 'S2 honest validity',
  S3: 'S3 fencing-token order',
  S4: 'S4 fenced store',
  S5set: 'S4/set workload (lost updates)',
  S6: 'S6 no grant without quorum',
  client: 'client honesty',
  L1: 'L1 deadlock freedom',
  L2: 'L2 fault tolerance',
  L3: 'L3 fail fast',
  L4: 'L4 recovery after the heal',
  L6: 'L6 no spurious loss',
  L7: 'L7 bounded contention',
  expected: 'expected anomaly (assumption-breaking run)',
};

/** Liveness thresholds. The spec marks them *proposed*; each default says where it comes from. */
export interface LivenessOptions {
  /**
   * L1: a free resource with waiters is granted within this, measured in quiet periods (no fault active and a
   * quorum voting from max ttl before the holder's end until the grant). Default max ttl + drift + retryBudgetMs.
   */
  deadlockBoundMs?: number;
  /** Part of the L1 default: the workers' retry and hand-off slack. Default 2000 ms. */
  retryBudgetMs?: number;
  /** L2 and L6: how long after the last fault (on top of max ttl) a period counts as stable. Default 1000 ms. */
  settleMs?: number;
  /** L2: least success rate of acquires started in stable periods (refusals such as ABORTED excluded). 0.99. */
  minStableSuccess?: number;
  /** L2: fewer stable acquires than this are too few to judge the rate. Default 50. */
  minStableSamples?: number;
  /**
   * L3: an Acquire or Extend invoked without a quorum must fail within this (plus its wait_ms when it waits).
   * The server's own budget is ≤ 1 s; the default 3000 ms leaves room for the SDK's retries of UNAVAILABLE.
   */
  failFastMs?: number;
  /**
   * L6: make a `lost` event with no fault nearby a violation. Off by default: scripted clients (F25) and
   * deliberately stalled workers let leases run out without any nemesis event; the count is always reported.
   */
  spuriousLossFatal?: boolean;
}

export interface CheckOptions {
  /** Votes needed for a grant. Default 2 (3 nodes). */
  quorum?: number;
  /** Clock drift allowance for a ttl in ms. Default `floor(ttl × 0.01) + 2` (never more than the server's). */
  driftMs?: (ttlMs: number) => number;
  /** S1 near-miss threshold: windows of different locks closer than this are counted apart. Default 5 ms. */
  epsMs?: number;
  /**
   * S2 slack on validity bounds, in ms: the history's validity counts from the harness's invoke, a little before
   * the SDK's send, and the server floors to whole ms (F12's "within 2 ms"). Default 2.
   */
  validityToleranceMs?: number;
  /**
   * §6.3 item 9 (F8 unfenced, F14): the run breaks the timing assumptions on purpose, so an S1 overlap or a lost
   * update on the *unfenced* store MUST be found (and is then not counted), while S3, S4 and the fenced set stay
   * clean. Finding nothing is a failure: the fault did not bite or the checker is blind.
   */
  assumptionBreaking?: boolean;
  /**
   * Checks computed and reported but not counted in `valid` (e.g. `['client']` for F8, whose worker runs with
   * `--no-hold-check` and so writes after its lease ran out on purpose).
   */
  ignore?: CheckName[];
  /**
   * How late the history may record that a quorum is back, in ms: the harness learns that a quarantined node
   * votes again by polling the server, so a `voting` increase can land after grants the server already made
   * with it. Quorum-lost periods then end this much earlier (S6, L3). Default 0; better, the recorder back-dates
   * the increase to the last moment it still knew the node was out.
   */
  votingLagMs?: number;
  /** L4: after the final nemesis stop every resource is acquired within this. Default 3 × max ttl + 2000 ms. */
  recoveryBoundMs?: number;
  /**
   * Which events are the final reads of the set workload (the last one per store and resource counts). Default:
   * an ok `store_read` whose `req` starts with `final-`, or (the store service's form) one with no token and no
   * lock — every read a workload makes carries its lease's.
   */
  finalRead?: (event: HistoryEvent) => boolean;
  liveness?: LivenessOptions;
}

export interface Anomaly {
  check: CheckName;
  message: string;
  /** The raw events behind it (completions the checker had to make up carry `error.code: "CRASHED"`). */
  events: HistoryEvent[];
  detail?: Record<string, unknown>;
}

export interface CheckResult {
  valid: Validity;
  /** One short line: what was checked, or the first violation. */
  summary: string;
  /** At most MAX_ANOMALIES_PER_CHECK; `anomalyCount` has the total. */
  anomalies: Anomaly[];
  anomalyCount: number;
  /** Set when the violation was expected (assumption-breaking run) or the check is ignored: not counted. */
  notCounted?: 'expected' | 'ignored';
  stats?: Record<string, unknown>;
}

export interface Quantiles {
  count: number;
  p50?: number;
  p99?: number;
  max?: number;
}

export interface ReportStats {
  events: number;
  writers: string[];
  /** From the first to the last event. */
  durationMs: number;
  seed?: number;
  truncated: number;
  /** Completions and one-off events by `f:type[:code]` (open invocations closed by the checker: `:CRASHED`). */
  ops: Record<string, number>;
  latencyMs: { acquireOk: Quantiles; duringFaults: Quantiles; outsideFaults: Quantiles };
  /** Nemesis `start` events. */
  faults: number;
  acquisitions: number;
  windows: number;
  /** The first FAULT_TIMELINE_MAX nemesis and voting events, times in seconds from the first event. */
  faultTimeline: { s: number; fault: string; target: string[]; phase: string; voting?: number }[];
}

export interface Report {
  valid: Validity;
  checks: Record<CheckName, CheckResult>;
  /** The first MAX_REPORT_ANOMALIES over all checks, in check order. */
  anomalies: Anomaly[];
  stats: ReportStats;
}

const MAX_ANOMALIES_PER_CHECK = 50;
const MAX_REPORT_ANOMALIES = 20;
const FAULT_TIMELINE_MAX = 500;
/** S1 looks at this many active windows per new one: enough to find the worst overlap, and keeps n × k. */
const S1_SCAN_LIMIT = 64;
/** Refusals that say "held by someone else" or "bad request": normal outcomes, not availability failures (L2). */
const REFUSALS = new Set([
  'ABORTED',
  'FAILED_PRECONDITION',
  'INVALID_ARGUMENT',
  'RESOURCE_EXHAUSTED',
  'PERMISSION_DENIED',
  'UNAUTHENTICATED',
]);
/** Nemesis targets on the Redis side (nodes and their proxies); any other target (C, PC, workers) is not. */
const REDIS_SIDE = /^[RP]\d+$/;

// ---- small helpers ------------------------------------------------------------------------------------------

const nsOfMs = (ms: number): bigint => BigInt(Math.round(ms * 1e6));
const msOfNs = (ns: bigint): number => Number(ns) / 1e6;
const minBig = (a: bigint, b: bigint): bigint => (a < b ? a : b);
const maxBig = (a: bigint, b: bigint): bigint => (a > b ? a : b);

function parseToken(token: string | undefined): bigint | undefined {
  return token !== undefined && /^\d+$/.test(token) ? BigInt(token) : undefined;
}

function quantiles(values: number[]): Quantiles {
  if (values.length === 0) return { count: 0 };
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number): number =>
    round3(sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!);
  return { count: sorted.length, p50: at(0.5), p99: at(0.99), max: round3(sorted[sorted.length - 1]!) };
}

const round3 = (x: number): number => Math.round(x * 1000) / 1000;

/** Index of the last element with key ≤ x in an ascending array (−1 when none). */
function lastAtOrBefore<T>(items: readonly T[], key: (item: T) => bigint, x: bigint): number {
  let lo = 0;
  let hi = items.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (key(items[mid]!) <= x) lo = mid + 1;
    else hi = mid;
  }
  return lo - 1;
}

/** `map.get(key)`, first setting it to `init()` when missing. */
function getOrInit<K, V>(map: Map<K, V>, key: K, init: () => V): V {
  let value = map.get(key);
  if (value === undefined) {
    value = init();
    map.set(key, value);
  }
  return value;
}

class MinHeap<T> {
  readonly items: T[] = [];
  constructor(private readonly less: (a: T, b: T) => boolean) {}

  get size(): number {
    return this.items.length;
  }

  peek(): T | undefined {
    return this.items[0];
  }

  push(item: T): void {
    const a = this.items;
    a.push(item);
    let i = a.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.less(a[i]!, a[parent]!)) break;
      [a[i], a[parent]] = [a[parent]!, a[i]!];
      i = parent;
    }
  }

  pop(): T | undefined {
    const a = this.items;
    const top = a[0];
    const last = a.pop();
    if (a.length > 0 && last !== undefined) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && this.less(a[l]!, a[m]!)) m = l;
        if (r < a.length && this.less(a[r]!, a[m]!)) m = r;
        if (m === i) break;
        [a[i], a[m]] = [a[m]!, a[i]!];
        i = m;
      }
    }
    return top;
  }
}

/** Sorted disjoint intervals [start, end) (end undefined: until the end of the history). */
interface Interval {
  start: bigint;
  end: bigint | undefined;
  event: HistoryEvent;
}

/** Does any interval of the sorted disjoint list meet [a, b]? */
function meets(intervals: readonly Interval[], a: bigint, b: bigint): Interval | undefined {
  const i = lastAtOrBefore(intervals, (x) => x.start, b);
  if (i < 0) return undefined;
  const iv = intervals[i]!;
  return iv.end === undefined || iv.end > a ? iv : undefined;
}

/** The interval containing the whole of [a, b], if any. */
function contains(intervals: readonly Interval[], a: bigint, b: bigint): Interval | undefined {
  const i = lastAtOrBefore(intervals, (x) => x.start, a);
  if (i < 0) return undefined;
  const iv = intervals[i]!;
  return iv.end === undefined || iv.end > b ? iv : undefined;
}

/** Collects a check's anomalies, keeping the first few with their evidence and counting the rest. */
class Findings {
  readonly anomalies: Anomaly[] = [];
  count = 0;
  constructor(readonly check: CheckName) {}

  add(message: string, events: (HistoryEvent | undefined)[], detail?: Record<string, unknown>): void {
    this.count++;
    if (this.anomalies.length >= MAX_ANOMALIES_PER_CHECK) return;
    const unique = [...new Set(events.filter((e): e is HistoryEvent => e !== undefined))];
    this.anomalies.push({ check: this.check, message, events: unique, ...(detail && { detail }) });
  }

  result(valid: Validity, okSummary: string, stats?: Record<string, unknown>): CheckResult {
    const summary =
      this.count === 0
        ? okSummary
        : `${this.anomalies[0]!.message}${this.count > 1 ? ` (+${this.count - 1} more)` : ''}`;
    return { valid, summary, anomalies: this.anomalies, anomalyCount: this.count, ...(stats && { stats }) };
  }
}

// ---- derived objects ------------------------------------------------------------------------------------------

/** An invocation and its completion (the real one, or `info` made up for a process that ended: §6.1). */
interface Op {
  f: string;
  proc: string;
  writer: string;
  invoke: HistoryEvent;
  done: HistoryEvent;
  inv: bigint;
  doneT: bigint;
  type: 'ok' | 'fail' | 'info';
  synthesized: boolean;
}

type EndReason = 'deadline' | 'release' | 'lost' | 'crash' | 'retired';

/** One OK acquire with its belief window [ok, E) (§6.2). */
interface Grant {
  resource: string;
  lock: string;
  token: bigint | undefined;
  proc: string;
  writer: string;
  op: Op;
  inv: bigint;
  ok: bigint;
  /** The largest ttl asked for (the acquire's or an OK extend's); undefined: the server's default. */
  ttlMs: number | undefined;
  D: bigint;
  dEvent: HistoryEvent;
  release?: { t: bigint; event: HistoryEvent };
  lost?: { t: bigint; event: HistoryEvent };
  crash?: { t: bigint; event: HistoryEvent };
  retired?: { t: bigint; event: HistoryEvent };
  /** End of belief for S1/S3: min(D, release invoke, lost, crash, the owning process's `info`). */
  E: bigint;
  endReason: EndReason;
  endEvent: HistoryEvent;
  /**
   * The end the client itself knows of: as E but without the logical-process retirement, which is the
   * history's bookkeeping (the SDK keeps the lease). Client honesty and L1 use it.
   */
  Ec: bigint;
  ecReason: EndReason;
  ecEvent: HistoryEvent;
}

/** Everything the checks share. */
interface Model {
  events: HistoryEvent[];
  time: (e: HistoryEvent) => bigint;
  t0: bigint;
  tEnd: bigint;
  rel: (t: bigint) => string;
  ops: Op[];
  completionOf: Map<HistoryEvent, Op>;
  grants: Grant[];
  grantsByResource: Map<string, Grant[]>;
  grantsByLock: Map<string, Grant[]>;
  acquiresByResource: Map<string, Op[]>;
  /** Quorum-lost intervals (fewer than `quorum` voting). */
  lost: Interval[];
  /** Any nemesis fault active (start … stop), or a quorum lost. */
  disturbed: Interval[];
  /** Faults on targets other than Redis nodes and their proxies (coordinator, client proxy, workers). */
  otherFaults: Interval[];
  nemesis: HistoryEvent[];
  voting: HistoryEvent[];
  maxTtlMs: number;
  drift: (ttlMs: number) => number;
}

/** Short, printable lock id (ids are 32 hex chars; 8 are plenty to tell two apart in a report). */
const shortLock = (lock: string): string => (lock.length > 8 ? lock.slice(0, 8) : lock);

function describeGrant(m: Model, g: Grant): string {
  const token = g.token === undefined ? '?' : g.token.toString();
  return `${g.proc} lock ${shortLock(g.lock)} token ${token} [ok ${m.rel(g.ok)} → end ${m.rel(g.E)} (${g.endReason})]`;
}

function grantEvidence(g: Grant): HistoryEvent[] {
  return [g.op.invoke, g.op.done, g.endEvent];
}

// ---- the entry point ---------------------------------------------------------------------------------------

export function checkHistory(
  input: HistoryEvent[],
  options: CheckOptions = {},
  meta: { truncated?: number; seed?: number } = {},
): Report {
  const quorum = options.quorum ?? 2;
  const drift = options.driftMs ?? ((ttl: number) => Math.floor(ttl * 0.01) + 2);
  const historyFindings = new Findings('history');

  // Times are parsed once; an event whose time is not a decimal integer cannot be placed and is left out.
  const times = new Map<HistoryEvent, bigint>();
  const kept: HistoryEvent[] = [];
  for (const e of input) {
    if (typeof e.t === 'string' && /^\d+$/.test(e.t)) {
      times.set(e, BigInt(e.t));
      kept.push(e);
    } else historyFindings.add(`event with an unusable time ${JSON.stringify(e.t)}`, [e]);
  }
  const time = (e: HistoryEvent): bigint => {
    let t = times.get(e);
    if (t === undefined) {
      t = BigInt(e.t);
      times.set(e, t);
    }
    return t;
  };
  // Same order as loadHistory's merge, (t, writer, seq), without parsing times again in the comparator.
  const events = kept.sort((a, b) => {
    const ta = time(a);
    const tb = time(b);
    if (ta !== tb) return ta < tb ? -1 : 1;
    if (a.writer !== b.writer) return a.writer < b.writer ? -1 : 1;
    return a.seq - b.seq;
  });
  const t0 = events.length > 0 ? time(events[0]!) : 0n;
  const tEnd = events.length > 0 ? time(events[events.length - 1]!) : 0n;
  const rel = (t: bigint): string => `${(Number(t - t0) / 1e9).toFixed(3)} s`;

  const m = buildModel(
    events,
    time,
    t0,
    tEnd,
    rel,
    quorum,
    nsOfMs(options.votingLagMs ?? 0),
    drift,
    historyFindings,
  );

  const eps = nsOfMs(options.epsMs ?? 5);
  const tolerance = options.validityToleranceMs ?? 2;
  const checks = {} as Record<CheckName, CheckResult>;
  const truncated = meta.truncated ?? 0;
  checks.history = historyFindings.result(
    truncated > 0 || historyFindings.count > 0 ? 'unknown' : true,
    truncated > 0
      ? `incomplete: ${truncated} truncated line(s) in the writer files`
      : `${events.length} events, ${m.ops.length} operations, ${m.ops.filter((o) => o.synthesized).length} completions made up for ended processes`,
    { truncated, synthesizedCompletions: m.ops.filter((o) => o.synthesized).length },
  );
  if (truncated > 0 && historyFindings.count > 0) {
    checks.history.summary = `incomplete: ${truncated} truncated line(s); ${checks.history.summary}`;
  }
  const s1 = checkS1(m, eps);
  checks.S1 = s1;
  checks.S2 = checkS2(m, tolerance);
  checks.S3 = checkS3(m);
  checks.S4 = checkS4(m);
  const set = checkSet(m, options.finalRead ?? defaultFinalRead);
  checks.S5set = set.result;
  checks.S6 = checkS6(m);
  checks.client = checkClient(m);
  const live = options.liveness ?? {};
  const settle = nsOfMs(live.settleMs ?? 1_000);
  const l1 = checkL1L7(m, live);
  checks.L1 = l1.L1;
  checks.L2 = checkL2(m, live, settle);
  checks.L3 = checkL3(m, live);
  checks.L4 = checkL4(m, options.recoveryBoundMs ?? 3 * m.maxTtlMs + 2_000);
  checks.L6 = checkL6(m, live, settle);
  checks.L7 = l1.L7;
  checks.expected = checkExpected(options.assumptionBreaking === true, checks, set);

  if (options.assumptionBreaking && checks.expected.valid === true) {
    // The anomalies the run was built to provoke: found, as required, so they do not count against it.
    if (checks.S1.valid === false) checks.S1.notCounted = 'expected';
    if (checks.S5set.valid === false && set.onlyUnfencedLost) checks.S5set.notCounted = 'expected';
  }
  for (const name of options.ignore ?? []) {
    if (checks[name] && checks[name].notCounted === undefined) checks[name].notCounted = 'ignored';
  }

  let valid: Validity = true;
  for (const name of CHECK_NAMES) {
    const c = checks[name];
    if (c.notCounted) continue;
    if (c.valid === false) valid = false;
    else if (c.valid === 'unknown' && valid === true) valid = 'unknown';
  }

  // The ones that decide `valid` first, then expected or ignored ones (still worth seeing), in check order.
  const anomalies: Anomaly[] = [];
  for (const counted of [true, false]) {
    for (const name of CHECK_NAMES) {
      if ((checks[name].notCounted === undefined) !== counted) continue;
      for (const a of checks[name].anomalies) {
        if (anomalies.length < MAX_REPORT_ANOMALIES) anomalies.push(a);
      }
    }
  }

  return { valid, checks, anomalies, stats: reportStats(m, meta, s1) };
}

function defaultFinalRead(e: HistoryEvent): boolean {
  return (
    e.f === 'store_read' &&
    e.type === 'ok' &&
    (e.req?.startsWith('final-') === true || (e.token === undefined && e.lock === undefined))
  );
}

// ---- pairing, windows, timelines ---------------------------------------------------------------------------

function buildModel(
  events: HistoryEvent[],
  time: (e: HistoryEvent) => bigint,
  t0: bigint,
  tEnd: bigint,
  rel: (t: bigint) => string,
  quorum: number,
  votingLag: bigint,
  drift: (ttlMs: number) => number,
  history: Findings,
): Model {
  const writers = new Set(events.map((e) => e.writer));
  const lastOfWriter = new Map<string, bigint>();
  for (const e of events) lastOfWriter.set(e.writer, time(e));

  // Kills of worker processes: a `kill` nemesis start naming a writer ends that writer's windows (§6.1).
  const kills = new Map<string, HistoryEvent[]>();
  const nemesis: HistoryEvent[] = [];
  const voting: HistoryEvent[] = [];
  for (const e of events) {
    if (e.f === 'nemesis' && e.nemesis) {
      nemesis.push(e);
      if (e.nemesis.fault === 'kill' && e.nemesis.phase === 'start') {
        for (const target of e.nemesis.target ?? []) {
          if (!writers.has(target)) continue;
          const list = getOrInit(kills, target, () => []);
          list.push(e);
        }
      }
    } else if (e.f === 'voting' && typeof e.voting === 'number') voting.push(e);
  }
  const killAtOrAfter = (writer: string, t: bigint): HistoryEvent | undefined => {
    const list = kills.get(writer);
    if (!list) return undefined;
    const i = lastAtOrBefore(list, time, t - 1n) + 1;
    return list[i];
  };

  // Pairing (§6.1): a completion has the invoke's req and proc. After an `info` completion the process is
  // retired (Jepsen): nothing may come from it again.
  const open = new Map<string, HistoryEvent>();
  const retiredAt = new Map<string, { t: bigint; event: HistoryEvent }>();
  const completionOf = new Map<HistoryEvent, Op>();
  const ops: Op[] = [];
  const pairKey = (e: HistoryEvent): string => `${e.proc}\u0000${e.req}`;
  for (const e of events) {
    const retired = retiredAt.get(e.proc);
    if (retired && e.f !== 'nemesis' && e.f !== 'voting') {
      history.add(`${e.proc} recorded ${e.f} ${e.type} at ${rel(time(e))} after it was retired by an info`, [
        retired.event,
        e,
      ]);
    }
    if (e.type === 'invoke') {
      if (e.req === undefined) {
        history.add(`${e.proc} invoked ${e.f} without a req: it cannot be paired`, [e]);
        continue;
      }
      const key = pairKey(e);
      const already = open.get(key);
      if (already) history.add(`${e.proc} invoked req ${e.req} twice`, [already, e]);
      open.set(key, e);
      continue;
    }
    if (e.req === undefined) continue; // one-off event
    const invoke = open.get(pairKey(e));
    if (!invoke) {
      // Store and final-read events may carry a req of their own without an invoke; a lock operation may not.
      if (e.f === 'acquire' || e.f === 'extend' || e.f === 'release') {
        history.add(`${e.proc} completed ${e.f} req ${e.req} (${e.type}) with no open invoke`, [e]);
      }
      continue;
    }
    open.delete(pairKey(e));
    const op: Op = {
      f: invoke.f,
      proc: invoke.proc,
      writer: invoke.writer,
      invoke,
      done: e,
      inv: time(invoke),
      doneT: time(e),
      type: e.type as Op['type'],
      synthesized: false,
    };
    ops.push(op);
    completionOf.set(e, op);
    if (e.type === 'info' && !retiredAt.has(e.proc)) retiredAt.set(e.proc, { t: time(e), event: e });
  }
  // Open invocations of a process that ended: `info` at its kill, or else at its writer's last event.
  for (const invoke of open.values()) {
    const inv = time(invoke);
    const kill = killAtOrAfter(invoke.writer, inv);
    const t = kill ? time(kill) : (lastOfWriter.get(invoke.writer) ?? inv);
    const done: HistoryEvent = {
      ...invoke,
      t: t.toString(),
      type: 'info',
      error: {
        code: 'CRASHED',
        msg: kill
          ? `no completion: its writer was killed at ${rel(t)} (made up by the checker)`
          : `no completion: its writer's last event is at ${rel(t)} (made up by the checker)`,
      },
    };
    const op: Op = {
      f: invoke.f,
      proc: invoke.proc,
      writer: invoke.writer,
      invoke,
      done,
      inv,
      doneT: t,
      type: 'info',
      synthesized: true,
    };
    ops.push(op);
    const retired = retiredAt.get(invoke.proc);
    if (!retired || retired.t > t) retiredAt.set(invoke.proc, { t, event: done });
  }
  ops.sort((a, b) => (a.inv < b.inv ? -1 : a.inv > b.inv ? 1 : 0));

  // Grants and what moves their ends, in time order (the current ttl of a lease changes with OK extends).
  const grants: Grant[] = [];
  const grantsByLock = new Map<string, Grant[]>();
  const grantsByResource = new Map<string, Grant[]>();
  const acquiresByResource = new Map<string, Op[]>();
  const grantsOf = (lock: string | undefined, t: bigint): Grant[] =>
    lock === undefined ? [] : (grantsByLock.get(lock) ?? []).filter((g) => g.inv <= t);
  let maxTtlMs = 0;
  for (const op of ops) {
    if (op.f !== 'acquire') continue;
    const ttl = op.invoke.ttl_ms;
    if (typeof ttl === 'number' && ttl > maxTtlMs) maxTtlMs = ttl;
    const r = op.invoke.resource ?? '';
    const list = getOrInit(acquiresByResource, r, () => []);
    list.push(op);
  }
  for (const e of events) {
    if (e.type === 'ok' && e.f === 'acquire') {
      const op = completionOf.get(e);
      if (!op) continue;
      const lock = e.lock ?? op.invoke.lock;
      const resource = e.resource ?? op.invoke.resource ?? '';
      const validity = e.validity_ms ?? 0;
      // ttl 0 asks for the server's default: unknown here, so the ttl-relative bounds are skipped.
      const ttl = op.invoke.ttl_ms !== undefined && op.invoke.ttl_ms > 0 ? op.invoke.ttl_ms : undefined;
      if (ttl === undefined && validity > maxTtlMs) maxTtlMs = Math.ceil(validity);
      const D = op.inv + nsOfMs(validity);
      const g: Grant = {
        resource,
        lock: lock ?? `(no lock id: ${e.proc} ${e.req})`,
        token: parseToken(e.token),
        proc: op.proc,
        writer: op.writer,
        op,
        inv: op.inv,
        ok: op.doneT,
        ttlMs: ttl,
        D,
        dEvent: e,
        E: D,
        endReason: 'deadline',
        endEvent: e,
        Ec: D,
        ecReason: 'deadline',
        ecEvent: e,
      };
      grants.push(g);
      const byLock = getOrInit(grantsByLock, g.lock, () => []);
      byLock.push(g);
      const byResource = getOrInit(grantsByResource, resource, () => []);
      byResource.push(g);
    } else if (e.type === 'ok' && e.f === 'extend') {
      const op = completionOf.get(e);
      if (!op || typeof e.validity_ms !== 'number') continue;
      const D = op.inv + nsOfMs(e.validity_ms);
      const ttl = op.invoke.ttl_ms;
      for (const g of grantsOf(e.lock ?? op.invoke.lock, op.inv)) {
        if (D > g.D) {
          g.D = D;
          g.dEvent = e;
        }
        if (typeof ttl === 'number' && ttl > 0 && g.ttlMs !== undefined) g.ttlMs = Math.max(g.ttlMs, ttl);
      }
    } else if ((e.f === 'keepalive' || e.f === 'renewed') && e.type !== 'invoke' && e.type !== 'fail') {
      if (typeof e.validity_ms !== 'number' || e.req !== undefined) continue;
      const D = time(e) + nsOfMs(e.validity_ms);
      for (const g of grantsOf(e.lock, time(e))) {
        if (D > g.D) {
          g.D = D;
          g.dEvent = e;
        }
      }
    } else if (e.type === 'invoke' && e.f === 'release') {
      // The release's invoke ends the window whatever its completion (Jepsen's etcd rule).
      for (const g of grantsOf(e.lock, time(e))) {
        if (!g.release) g.release = { t: time(e), event: e };
      }
    } else if (e.f === 'lost' && e.type !== 'invoke') {
      for (const g of grantsOf(e.lock, time(e))) {
        if (!g.lost) g.lost = { t: time(e), event: e };
      }
    }
  }
  for (const g of grants) {
    const kill = killAtOrAfter(g.writer, g.inv);
    if (kill) g.crash = { t: time(kill), event: kill };
    const retired = retiredAt.get(g.proc);
    if (retired && retired.t >= g.inv) g.retired = retired;
    let E = g.D;
    let reason: EndReason = 'deadline';
    let endEvent = g.dEvent;
    const candidates: [EndReason, { t: bigint; event: HistoryEvent } | undefined][] = [
      ['release', g.release],
      ['lost', g.lost],
      ['crash', g.crash],
    ];
    for (const [why, end] of candidates) {
      if (end && end.t < E) {
        E = end.t;
        reason = why;
        endEvent = end.event;
      }
    }
    g.Ec = E;
    g.ecReason = reason;
    g.ecEvent = endEvent;
    if (g.retired && g.retired.t < E) {
      E = g.retired.t;
      reason = 'retired';
      endEvent = g.retired.event;
    }
    g.E = E;
    g.endReason = reason;
    g.endEvent = endEvent;
  }
  for (const list of grantsByResource.values()) list.sort((a, b) => (a.ok < b.ok ? -1 : a.ok > b.ok ? 1 : 0));
  if (maxTtlMs === 0) maxTtlMs = 1_000;

  // Quorum timeline: 3 voting until the first `voting` event.
  const lostBuilder = new IntervalBuilder();
  for (const e of voting) lostBuilder.update((e.voting ?? 3) < quorum, time(e), e);
  const lost = lostBuilder.intervals;
  for (const iv of lost) {
    if (iv.end !== undefined) iv.end = maxBig(iv.start, iv.end - votingLag);
  }

  // Fault timeline: a fault is active from its start to the stop with the same fault and targets; a stop
  // aimed at `*` (the harness's final heal) ends them all. A start that never stops lasts to the end.
  const activeAll = new Map<string, HistoryEvent>();
  const activeOther = new Map<string, HistoryEvent>();
  const allFaults = new IntervalBuilder();
  const otherFaults = new IntervalBuilder();
  for (const e of nemesis) {
    const n = e.nemesis!;
    const targets = [...(n.target ?? [])].sort();
    const key = `${n.fault}|${targets.join(',')}`;
    const other = targets.some((x) => !REDIS_SIDE.test(x) && x !== '*');
    if (n.phase === 'start') {
      activeAll.set(key, e);
      if (other) activeOther.set(key, e);
    } else if (targets.includes('*')) {
      activeAll.clear();
      activeOther.clear();
    } else {
      activeAll.delete(key);
      activeOther.delete(key);
    }
    allFaults.update(activeAll.size > 0, time(e), e);
    otherFaults.update(activeOther.size > 0, time(e), e);
  }

  return {
    events,
    time,
    t0,
    tEnd,
    rel,
    ops,
    completionOf,
    grants,
    grantsByResource,
    grantsByLock,
    acquiresByResource,
    lost,
    disturbed: union(allFaults.intervals, lost),
    otherFaults: otherFaults.intervals,
    nemesis,
    voting,
    maxTtlMs,
    drift,
  };
}

/** Intervals during which a condition held, from its value after each event in time order. */
class IntervalBuilder {
  readonly intervals: Interval[] = [];
  private open: Interval | undefined;

  update(active: boolean, t: bigint, event: HistoryEvent): void {
    if (active && !this.open) {
      this.open = { start: t, end: undefined, event };
      this.intervals.push(this.open);
    } else if (!active && this.open) {
      this.open.end = t;
      this.open = undefined;
    }
  }
}

/** The union of two sorted disjoint interval lists, merged into one sorted disjoint list. */
function union(a: Interval[], b: Interval[]): Interval[] {
  const all = [...a, ...b].sort((x, y) => (x.start < y.start ? -1 : x.start > y.start ? 1 : 0));
  const out: Interval[] = [];
  for (const iv of all) {
    const last = out[out.length - 1];
    if (last && (last.end === undefined || iv.start <= last.end)) {
      if (last.end !== undefined && (iv.end === undefined || iv.end > last.end)) last.end = iv.end;
    } else out.push({ ...iv });
  }
  return out;
}

// ---- S1: mutual exclusion ----------------------------------------------------------------------------------

/**
 * Per resource, windows by `ok`; a min-heap on E holds the windows still believed in. Everything left in the heap
 * after popping the ended ones overlaps the new window, so a different lock among them is a violation (no
 * epsilon: E_a == ok_b touches, it does not overlap). Gaps under eps between locks are near misses.
 */
function checkS1(m: Model, eps: bigint): CheckResult {
  const f = new Findings('S1');
  let windows = 0;
  let nearMisses = 0;
  let minGap: bigint | undefined;
  for (const [resource, list] of m.grantsByResource) {
    const heap = new MinHeap<Grant>((a, b) => a.E < b.E);
    let lastEnded: Grant | undefined;
    for (const w of list) {
      if (w.E <= w.ok) continue; // empty window: a failed grant (S2's stats)
      windows++;
      while (heap.size > 0 && heap.peek()!.E <= w.ok) {
        const ended = heap.pop()!;
        if (!lastEnded || ended.E > lastEnded.E) lastEnded = ended;
      }
      let worst: Grant | undefined;
      let worstOverlap = 0n;
      const scan = Math.min(heap.items.length, S1_SCAN_LIMIT);
      for (let i = 0; i < scan; i++) {
        const a = heap.items[i]!;
        if (a.lock === w.lock) continue; // the same lease granted twice (an idempotent retry) is one holder
        const overlap = minBig(a.E, w.E) - w.ok;
        if (overlap > worstOverlap) {
          worst = a;
          worstOverlap = overlap;
        }
      }
      if (worst) {
        f.add(
          `${describeGrant(m, worst)} overlaps ${describeGrant(m, w)} by ${msOfNs(worstOverlap).toFixed(1)} ms`,
          [...grantEvidence(worst), ...grantEvidence(w)],
          { resource, overlap_ns: worstOverlap.toString(), a: worst.lock, b: w.lock },
        );
      } else if (lastEnded && lastEnded.lock !== w.lock) {
        const gap = w.ok - lastEnded.E;
        if (gap < eps) nearMisses++;
        if (minGap === undefined || gap < minGap) minGap = gap;
      }
      heap.push(w);
    }
  }
  const stats = {
    windows,
    overlaps: f.count,
    nearMisses,
    minGapMs: minGap === undefined ? undefined : round3(msOfNs(minGap)),
  };
  return f.result(
    f.count === 0,
    `${windows} windows, ${nearMisses} near misses under ${round3(msOfNs(eps))} ms`,
    stats,
  );
}

// ---- S2: honest validity -----------------------------------------------------------------------------------

/**
 * `0 < V ≤ ttl − drift` and `ok − inv < ttl` for OK acquires that did not wait and for OK extends (V counted from
 * the invoke). A waiting acquire (wait_ms > 0, or not recorded) can legitimately carry a validity counted from a
 * later re-send, so only its deadline is bounded: `inv + V ≤ ok + ttl − drift`, which no send at or before the
 * answer can exceed. Renewals on the KeepAlive stream report what is left at `t`: `0 < V ≤ ttl − drift`.
 */
function checkS2(m: Model, toleranceMs: number): CheckResult {
  const f = new Findings('S2');
  let strict = 0;
  let relaxed = 0;
  let unbounded = 0;
  let empty = 0;
  const emptyExamples: string[] = [];
  const bound = (ttl: number): number => ttl - m.drift(ttl) + toleranceMs;
  for (const g of m.grants) {
    const { invoke, done } = g.op;
    const V = done.validity_ms;
    const ttl = invoke.ttl_ms !== undefined && invoke.ttl_ms > 0 ? invoke.ttl_ms : undefined;
    if (typeof V !== 'number' || !(V > 0)) {
      f.add(`OK acquire by ${g.proc} at ${m.rel(g.ok)} with validity ${String(V)} ms (must be > 0)`, [
        invoke,
        done,
      ]);
    } else if (ttl === undefined) {
      unbounded++;
    } else if (invoke.wait_ms === 0) {
      strict++;
      if (V > bound(ttl)) {
        f.add(
          `OK acquire by ${g.proc} at ${m.rel(g.ok)}: validity ${V} ms > ttl ${ttl} − drift ${m.drift(ttl)} ms`,
          [invoke, done],
        );
      }
      if (g.ok - g.inv >= nsOfMs(ttl)) {
        f.add(
          `OK acquire by ${g.proc} answered ${msOfNs(g.ok - g.inv).toFixed(1)} ms after its invoke, not within its ttl ${ttl} ms`,
          [invoke, done],
        );
      }
    } else {
      relaxed++;
      const D = g.inv + nsOfMs(V);
      if (D > g.ok + nsOfMs(bound(ttl))) {
        f.add(
          `OK acquire by ${g.proc} at ${m.rel(g.ok)}: deadline ${msOfNs(D - g.ok).toFixed(1)} ms after the answer, more than ttl ${ttl} − drift ${m.drift(ttl)} ms`,
          [invoke, done],
        );
      }
    }
    if (g.E <= g.ok) {
      empty++;
      if (emptyExamples.length < 5) emptyExamples.push(`${g.proc} ${shortLock(g.lock)} at ${m.rel(g.ok)}`);
    }
  }
  for (const op of m.ops) {
    if (op.f !== 'extend' || op.type !== 'ok') continue;
    const V = op.done.validity_ms;
    const grant = latestGrant(m, op.invoke.lock ?? op.done.lock, op.inv);
    const ttl =
      op.invoke.ttl_ms !== undefined && op.invoke.ttl_ms > 0 ? op.invoke.ttl_ms : grant?.op.invoke.ttl_ms;
    if (typeof V !== 'number' || !(V > 0)) {
      f.add(`OK extend by ${op.proc} at ${m.rel(op.doneT)} with validity ${String(V)} ms (must be > 0)`, [
        op.invoke,
        op.done,
      ]);
      continue;
    }
    if (ttl === undefined || ttl <= 0) {
      unbounded++;
      continue;
    }
    strict++;
    if (V > bound(ttl)) {
      f.add(
        `OK extend by ${op.proc} at ${m.rel(op.doneT)}: validity ${V} ms > ttl ${ttl} − drift ${m.drift(ttl)} ms`,
        [op.invoke, op.done],
      );
    }
    if (op.doneT - op.inv >= nsOfMs(ttl)) {
      f.add(
        `OK extend by ${op.proc} answered ${msOfNs(op.doneT - op.inv).toFixed(1)} ms after its invoke, not within its ttl ${ttl} ms`,
        [op.invoke, op.done],
      );
    }
  }
  for (const e of m.events) {
    if ((e.f !== 'keepalive' && e.f !== 'renewed') || e.type !== 'ok' || e.req !== undefined) continue;
    const V = e.validity_ms;
    if (typeof V !== 'number' || !(V > 0)) {
      f.add(`keepalive of ${e.proc} at ${m.rel(m.time(e))} with validity ${String(V)} ms (must be > 0)`, [e]);
      continue;
    }
    const ttl = latestGrant(m, e.lock, m.time(e))?.ttlMs;
    if (ttl === undefined) {
      unbounded++;
      continue;
    }
    strict++;
    if (V > bound(ttl)) {
      f.add(
        `keepalive of ${e.proc} at ${m.rel(m.time(e))}: validity ${V} ms > ttl ${ttl} − drift ${m.drift(ttl)} ms`,
        [e],
      );
    }
  }
  return f.result(
    f.count === 0,
    `${strict} strict, ${relaxed} waiting acquires bounded from the answer, ${empty} grants answered after their deadline`,
    { strict, relaxed, unbounded, emptyWindows: empty, emptyExamples },
  );
}

/** The grant of `lock` a renewal or write at `t` belongs to: the latest one invoked by then. */
function latestGrant(m: Model, lock: string | undefined, t: bigint): Grant | undefined {
  if (lock === undefined) return undefined;
  const list = m.grantsByLock.get(lock);
  if (!list) return undefined;
  let best: Grant | undefined;
  for (const g of list) if (g.inv <= t && (!best || g.inv > best.inv)) best = g;
  return best;
}

// ---- S3: fencing-token order -------------------------------------------------------------------------------

/**
 * Per resource, grants by `ok` and, with a second pointer, by E: every grant whose E ≤ ok_h has ended before h,
 * so T_h must exceed the largest such token of another lock. The top two tokens by distinct lock make "of
 * another lock" O(1). Plus: a token names one lock, a lock has one token, and renewals report the grant's token.
 */
function checkS3(m: Model): CheckResult {
  const f = new Findings('S3');
  let checked = 0;
  for (const [resource, list] of m.grantsByResource) {
    const byEnd = [...list].sort((a, b) => (a.E < b.E ? -1 : a.E > b.E ? 1 : 0));
    let best1: Grant | undefined;
    let best2: Grant | undefined;
    const finish = (g: Grant): void => {
      if (g.token === undefined) return;
      if (best1 && g.lock === best1.lock) {
        if (g.token > best1.token!) best1 = g;
      } else if (!best1 || g.token > best1.token!) {
        best2 = best1;
        best1 = g;
      } else if (best2 && g.lock === best2.lock) {
        if (g.token > best2.token!) best2 = g;
      } else if (!best2 || g.token > best2.token!) best2 = g;
    };
    const tokenOwner = new Map<bigint, Grant>();
    const lockToken = new Map<string, Grant>();
    let j = 0;
    for (const h of list) {
      while (j < byEnd.length && byEnd[j]!.E <= h.ok) finish(byEnd[j++]!);
      if (h.token === undefined) {
        f.add(
          `OK acquire by ${h.proc} of ${resource} at ${m.rel(h.ok)} has no usable fencing token (${h.op.done.token})`,
          [h.op.invoke, h.op.done],
        );
        continue;
      }
      checked++;
      const before = best1 && best1.lock !== h.lock ? best1 : best2;
      if (before && h.token <= before.token!) {
        f.add(
          `${describeGrant(m, h)} has a token not above token ${before.token} of ${describeGrant(m, before)}, which ended before it`,
          [...grantEvidence(before), h.op.invoke, h.op.done],
          { resource, earlier: before.lock, later: h.lock },
        );
      }
      const owner = tokenOwner.get(h.token);
      if (owner && owner.lock !== h.lock) {
        f.add(
          `token ${h.token} of ${resource} was given to two locks: ${describeGrant(m, owner)} and ${describeGrant(m, h)}`,
          [owner.op.done, h.op.done],
        );
      } else if (!owner) tokenOwner.set(h.token, h);
      const same = lockToken.get(h.lock);
      if (same && same.token !== h.token) {
        f.add(`lock ${shortLock(h.lock)} of ${resource} got two tokens, ${same.token} and ${h.token}`, [
          same.op.done,
          h.op.done,
        ]);
      } else if (!same) lockToken.set(h.lock, h);
    }
  }
  // Renewals keep the token.
  const renewal = (e: HistoryEvent, t: bigint, what: string, evidence: HistoryEvent[]): void => {
    const g = latestGrant(m, e.lock, t);
    if (!g) {
      f.add(
        `${what} by ${e.proc} at ${m.rel(t)} renews lock ${shortLock(e.lock ?? '?')}, which no OK acquire granted`,
        evidence,
      );
      return;
    }
    const token = parseToken(e.token);
    if (token !== undefined && g.token !== undefined && token !== g.token) {
      f.add(
        `${what} by ${e.proc} at ${m.rel(t)} reports token ${token}, but ${describeGrant(m, g)} was granted token ${g.token}`,
        [g.op.done, ...evidence],
      );
    }
  };
  for (const op of m.ops) {
    if (op.f === 'extend' && op.type === 'ok') {
      const e = { ...op.done, lock: op.done.lock ?? op.invoke.lock, token: op.done.token ?? op.invoke.token };
      renewal(e, op.inv, 'OK extend', [op.invoke, op.done]);
    }
  }
  for (const e of m.events) {
    if ((e.f === 'keepalive' || e.f === 'renewed') && e.type === 'ok' && e.req === undefined) {
      renewal(e, m.time(e), 'keepalive', [e]);
    }
  }
  return f.result(f.count === 0, `${checked} grants in token order, renewals keep their token`, {
    checked,
  });
}

// ---- S4: the fenced store's log ----------------------------------------------------------------------------

/**
 * Replays the fenced store's log (one-off events of the store writer, in its acceptance order = seq): an accepted
 * operation's token is at least the largest accepted before (reads register tokens too), and equal only for the
 * same lock. Refusals of the current holder's own token are counted as spurious (a liveness figure).
 */
function checkS4(m: Model): CheckResult {
  const f = new Findings('S4');
  const byWriter = new Map<string, HistoryEvent[]>();
  for (const e of m.events) {
    if ((e.f !== 'store_write' && e.f !== 'store_read') || e.type === 'invoke' || m.completionOf.has(e))
      continue;
    if (e.store !== 'fenced' || e.token === undefined) continue;
    const list = getOrInit(byWriter, e.writer, () => []);
    list.push(e);
  }
  let accepted = 0;
  let refused = 0;
  let unknown = 0;
  let spurious = 0;
  let refusedNotStale = 0;
  for (const list of byWriter.values()) {
    list.sort((a, b) => a.seq - b.seq);
    const highest = new Map<string, HistoryEvent>();
    for (const e of list) {
      const token = parseToken(e.token);
      const resource = e.resource ?? '';
      if (token === undefined) continue;
      const max = highest.get(resource);
      const maxToken = max ? parseToken(max.token)! : undefined;
      if (e.type === 'ok') {
        accepted++;
        if (maxToken !== undefined && token < maxToken) {
          f.add(
            `the fenced store accepted ${e.f === 'store_write' ? 'a write' : 'a read'} of ${resource} with token ${token} at ${m.rel(m.time(e))} after accepting token ${maxToken}`,
            [max, e],
            { resource, token: token.toString(), highest: maxToken.toString() },
          );
        } else if (maxToken === token && max?.lock && e.lock && max.lock !== e.lock) {
          f.add(
            `the fenced store accepted token ${token} of ${resource} from lock ${shortLock(e.lock)} after accepting it from lock ${shortLock(max.lock)}`,
            [max, e],
          );
        }
        if (maxToken === undefined || token > maxToken) highest.set(resource, e);
      } else if (e.type === 'fail') {
        refused++;
        if (maxToken === undefined || token >= maxToken) refusedNotStale++;
        const holder = holderAt(m, resource, m.time(e));
        if (holder?.token === token) spurious++;
      } else unknown++; // Redis failed: maybe applied, so it neither raises nor tests the maximum
    }
  }
  return f.result(
    f.count === 0,
    `${accepted} accepted, ${refused} refused as stale (${spurious} spurious), in token order`,
    { accepted, refused, unknown, spurious, refusedNotStale },
  );
}

/** The grant whose window holds `t` on `resource` (the latest started, if S1 is broken). */
function holderAt(m: Model, resource: string, t: bigint): Grant | undefined {
  const list = m.grantsByResource.get(resource);
  if (!list) return undefined;
  // Windows are disjoint when S1 holds, so the latest started is the one; a few more cover a broken S1.
  const last = lastAtOrBefore(list, (g) => g.ok, t);
  for (let i = last; i >= 0 && i > last - 4; i--) {
    const g = list[i]!;
    if (g.E > t) return g;
  }
  return undefined;
}

// ---- the set workload (Jepsen set-full) ---------------------------------------------------------------------

interface SetCounts {
  adds: number;
  ok: number;
  fail: number;
  info: number;
  lost: number;
  unexpected: number;
  recovered: number;
  infoAbsent: number;
  unjudged: number;
  finalReads: number;
}

interface SetOutcome {
  result: CheckResult;
  fencedBad: boolean;
  unfencedLost: number;
  /** Every anomaly is a lost update on the unfenced store (what an assumption-breaking run expects). */
  onlyUnfencedLost: boolean;
}

/**
 * Every element whose add is ok (completed before the final read) must be in the final read; a failed add must
 * not be; an info add may be. Elements nobody added are unexpected. Counted per store, fenced and unfenced apart.
 */
function checkSet(m: Model, isFinalRead: (e: HistoryEvent) => boolean): SetOutcome {
  const f = new Findings('S5set');
  const key = (store: string, resource: string): string => `${store}\u0000${resource}`;
  const adds = new Map<string, Map<string, Op[]>>();
  for (const op of m.ops) {
    if (op.f !== 'store_write') continue;
    const k = key(op.invoke.store ?? 'fenced', op.invoke.resource ?? '');
    const elements = getOrInit(adds, k, () => new Map());
    const element = JSON.stringify(op.invoke.value);
    const list = getOrInit(elements, element, () => []);
    list.push(op);
  }
  const finals = new Map<string, HistoryEvent>();
  for (const e of m.events) {
    if (e.f === 'store_read' && e.type === 'ok' && Array.isArray(e.value) && isFinalRead(e)) {
      finals.set(key(e.store ?? 'fenced', e.resource ?? ''), e);
    }
  }
  const counts: Record<string, SetCounts> = {};
  const countsOf = (store: string): SetCounts => {
    counts[store] ??= {
      adds: 0,
      ok: 0,
      fail: 0,
      info: 0,
      lost: 0,
      unexpected: 0,
      recovered: 0,
      infoAbsent: 0,
      unjudged: 0,
      finalReads: 0,
    };
    return counts[store];
  };
  const unread: string[] = [];
  let fencedBad = false;
  let unfencedLost = 0;
  let otherAnomalies = 0;
  for (const k of new Set([...adds.keys(), ...finals.keys()])) {
    const [store = '', resource = ''] = k.split('\u0000');
    const c = countsOf(store);
    const elements = adds.get(k) ?? new Map<string, Op[]>();
    const final = finals.get(k);
    for (const list of elements.values()) {
      c.adds += list.length;
      for (const op of list) c[op.type]++;
    }
    if (!final) {
      if (elements.size > 0) unread.push(`${store} ${resource}`);
      continue;
    }
    c.finalReads++;
    const finalT = m.time(final);
    const present = new Set((final.value as unknown[]).map((x) => JSON.stringify(x)));
    for (const [element, list] of elements) {
      const ok = list.filter((op) => op.type === 'ok');
      const info = list.filter((op) => op.type === 'info');
      const judged = ok.filter((op) => op.doneT <= finalT);
      if (ok.length > 0) {
        if (present.has(element)) continue;
        if (judged.length === 0) {
          c.unjudged++;
          continue;
        }
        c.lost++;
        const op = judged[0]!;
        if (store === 'unfenced') unfencedLost++;
        else fencedBad = true;
        f.add(
          `${store} ${resource}: element ${element} acknowledged to ${op.proc} at ${m.rel(op.doneT)} (token ${op.invoke.token ?? '?'}) is missing from the final read at ${m.rel(finalT)}`,
          [op.invoke, op.done, final],
          { store, resource, element, kind: 'lost' },
        );
      } else if (info.length > 0) {
        if (present.has(element)) c.recovered++;
        else c.infoAbsent++;
      } else if (present.has(element)) {
        c.unexpected++;
        if (store !== 'unfenced') fencedBad = true;
        otherAnomalies++;
        const op = list[0]!;
        f.add(
          `${store} ${resource}: element ${element} whose add failed (${op.done.error?.code ?? 'fail'}) at ${m.rel(op.doneT)} is in the final read`,
          [op.invoke, op.done, final],
          { store, resource, element, kind: 'unexpected' },
        );
      }
    }
    for (const element of present) {
      if (elements.has(element)) continue;
      c.unexpected++;
      if (store !== 'unfenced') fencedBad = true;
      otherAnomalies++;
      f.add(`${store} ${resource}: element ${element} is in the final read but nobody added it`, [final], {
        store,
        resource,
        element,
        kind: 'unexpected',
      });
    }
  }
  const valid: Validity = f.count > 0 ? false : unread.length > 0 ? 'unknown' : true;
  const parts = Object.entries(counts).map(
    ([store, c]) =>
      `${store}: ${c.ok} acknowledged, ${c.lost} lost, ${c.unexpected} unexpected, ${c.recovered} recovered`,
  );
  const result = f.result(
    valid,
    unread.length > 0 && f.count === 0
      ? `no final read of ${unread.join(', ')}: lost updates cannot be judged`
      : parts.length > 0
        ? parts.join('; ')
        : 'no set workload',
    { ...counts, unread },
  );
  return { result, fencedBad, unfencedLost, onlyUnfencedLost: otherAnomalies === 0 && !fencedBad };
}

// ---- S6: no grant without a voting majority ----------------------------------------------------------------

function checkS6(m: Model): CheckResult {
  const f = new Findings('S6');
  let checked = 0;
  for (const op of m.ops) {
    if ((op.f !== 'acquire' && op.f !== 'extend') || op.type !== 'ok') continue;
    checked++;
    const iv = contains(m.lost, op.inv, op.doneT);
    if (iv) {
      f.add(
        `OK ${op.f} by ${op.proc} [invoked ${m.rel(op.inv)}, ok ${m.rel(op.doneT)}] lies wholly inside a period with ${iv.event.voting} voting node(s) (from ${m.rel(iv.start)}${iv.end === undefined ? '' : ` to ${m.rel(iv.end)}`})`,
        [iv.event, op.invoke, op.done],
      );
    }
  }
  const lostMs = m.lost.reduce((sum, iv) => sum + msOfNs((iv.end ?? m.tEnd) - iv.start), 0);
  return f.result(
    f.count === 0,
    `${checked} OK acquires/extends, ${m.lost.length} quorum-lost periods (${(lostMs / 1000).toFixed(1)} s)`,
    { checked, quorumLostPeriods: m.lost.length, quorumLostMs: round3(lostMs) },
  );
}

// ---- client honesty ----------------------------------------------------------------------------------------

/** A worker's store write invoked at or after its own lease's end (as the client knows it) is its own bug (§6.3 7). */
function checkClient(m: Model): CheckResult {
  const f = new Findings('client');
  let checked = 0;
  for (const op of m.ops) {
    if (op.f !== 'store_write' || op.invoke.lock === undefined) continue;
    checked++;
    const g = latestGrant(m, op.invoke.lock, op.inv);
    const what = `${op.proc} wrote ${JSON.stringify(op.invoke.value)} to the ${op.invoke.store ?? '?'} store at ${m.rel(op.inv)}`;
    if (!g) {
      f.add(`${what} under lock ${shortLock(op.invoke.lock)}, which no OK acquire granted`, [
        op.invoke,
        op.done,
      ]);
    } else if (op.inv >= g.Ec) {
      f.add(
        `${what}, ${msOfNs(op.inv - g.Ec).toFixed(1)} ms after its lease ended (${g.ecReason} at ${m.rel(g.Ec)}; ${describeGrant(m, g)})`,
        [g.op.invoke, g.op.done, g.ecEvent, op.invoke, op.done],
      );
    }
  }
  return f.result(f.count === 0, `${checked} store writes inside their lease`, { checked });
}

// ---- liveness ----------------------------------------------------------------------------------------------

/**
 * L1 and L7 from the same hand-off gaps: per resource, from a holder's end (as the client knows it: a retired
 * process still holds its lease) to the next grant, counted from the moment somebody was waiting (an acquire in
 * flight). L1 fails a gap over the bound only in quiet periods; L7 reports gaps and contenders that never won.
 */
function checkL1L7(m: Model, live: LivenessOptions): { L1: CheckResult; L7: CheckResult } {
  const f = new Findings('L1');
  const maxTtlNs = nsOfMs(m.maxTtlMs);
  const boundMs = live.deadlockBoundMs ?? m.maxTtlMs + m.drift(m.maxTtlMs) + (live.retryBudgetMs ?? 2_000);
  const bound = nsOfMs(boundMs);
  const quiet = (a: bigint, b: bigint): boolean => meets(m.disturbed, a, b) === undefined;
  const allGaps: number[] = [];
  const quietGaps: number[] = [];
  const starved: string[] = [];
  for (const [resource, attempts] of m.acquiresByResource) {
    // attempts are in invoke order; prefixMaxDone[k] = latest completion among attempts[0..k].
    const prefixMaxDone: bigint[] = [];
    let running = -1n;
    for (const a of attempts) {
      running = maxBig(running, a.doneT);
      prefixMaxDone.push(running);
    }
    /** The first moment at or after `from` (and before `until`) that an acquire of this resource was in flight. */
    const waiterSince = (from: bigint, until: bigint): bigint | undefined => {
      const k = lastAtOrBefore(attempts, (a) => a.inv, from);
      if (k >= 0 && prefixMaxDone[k]! > from) return from;
      const next = attempts[k + 1];
      return next && next.inv < until ? next.inv : undefined;
    };
    const grants = m.grantsByResource.get(resource) ?? [];
    const ends: { end: bigint; event: HistoryEvent | undefined; g: Grant | undefined }[] =
      grants.length === 0 ? [{ end: -1n, event: undefined, g: undefined }] : [];
    for (let i = 0; i < grants.length; i++) {
      const g = grants[i]!;
      const h = grants[i + 1];
      if (!h) {
        ends.push({ end: g.Ec, event: g.ecEvent, g });
        continue;
      }
      if (h.ok < g.Ec) continue; // h came while g still held: S1's business
      const since = waiterSince(g.Ec, h.ok) ?? h.inv;
      const gap = h.ok - since;
      allGaps.push(msOfNs(gap));
      if (!quiet(g.Ec - maxTtlNs, h.ok)) continue;
      quietGaps.push(msOfNs(gap));
      if (gap > bound) {
        f.add(
          `${resource} was free from ${m.rel(g.Ec)} (${g.ecReason} of ${describeGrant(m, g)}) with waiters from ${m.rel(since)}, granted only at ${m.rel(h.ok)}: ${msOfNs(gap).toFixed(0)} ms > ${boundMs} ms`,
          [g.op.done, g.ecEvent, h.op.invoke, h.op.done],
          { resource, gapMs: round3(msOfNs(gap)) },
        );
      }
    }
    // After the last grant (or with none at all): waiters that were never served for longer than the bound.
    for (const { end, event, g } of ends) {
      const since = waiterSince(end, m.tEnd + 1n);
      if (since === undefined || m.tEnd - since <= bound || !quiet(end - maxTtlNs, m.tEnd)) continue;
      // The evidence: the attempt in flight at `since` (one started earlier and still running, or the next one).
      let i = lastAtOrBefore(attempts, (a) => a.inv, since);
      if (since === end) while (i > 0 && attempts[i]!.doneT <= since) i--;
      const first = attempts[i];
      const last = attempts[attempts.length - 1];
      f.add(
        `${resource} had waiters from ${m.rel(since)}${g ? ` after ${describeGrant(m, g)}` : ''} and was never granted in the ${msOfNs(m.tEnd - since).toFixed(0)} ms left (bound ${boundMs} ms)`,
        [event, first?.invoke, first?.done, last?.invoke, last?.done],
        { resource },
      );
    }
    // L7: contenders that tried several times and never won.
    const tries = new Map<string, { attempts: number; wins: number }>();
    for (const a of attempts) {
      const t = tries.get(a.writer) ?? { attempts: 0, wins: 0 };
      t.attempts++;
      if (a.type === 'ok') t.wins++;
      tries.set(a.writer, t);
    }
    for (const [writer, t] of tries)
      if (t.attempts >= 3 && t.wins === 0) starved.push(`${writer} on ${resource}`);
  }
  const L1 = f.result(
    f.count === 0,
    `${quietGaps.length} hand-offs in quiet periods, longest ${quietGaps.length ? Math.max(...quietGaps).toFixed(0) : 0} ms (bound ${boundMs} ms)`,
    { boundMs, quietGapsMs: quantiles(quietGaps) },
  );
  const gaps = quantiles(allGaps);
  const L7: CheckResult = {
    valid: true,
    summary: `hand-off gap p50 ${gaps.p50 ?? 0} ms, p99 ${gaps.p99 ?? 0} ms, max ${gaps.max ?? 0} ms; ${starved.length} contenders never won`,
    anomalies: [],
    anomalyCount: 0,
    stats: { gapsMs: gaps, neverWon: starved },
  };
  return { L1, L7 };
}

/**
 * L2: acquires started and finished in stable periods (no fault and a quorum since max ttl + settle before) must
 * succeed at least `minStableSuccess` of the time; refusals (held by another, bad request) do not count either way.
 */
function checkL2(m: Model, live: LivenessOptions, settle: bigint): CheckResult {
  const f = new Findings('L2');
  const minRate = live.minStableSuccess ?? 0.99;
  const minSamples = live.minStableSamples ?? 50;
  const back = nsOfMs(m.maxTtlMs) + settle;
  let ok = 0;
  let refused = 0;
  const failures: Op[] = [];
  const latency: number[] = [];
  for (const op of m.ops) {
    if (op.f !== 'acquire' || op.synthesized) continue;
    if (meets(m.disturbed, op.inv - back, op.doneT)) continue;
    if (op.type === 'ok') {
      ok++;
      latency.push(msOfNs(op.doneT - op.inv));
    } else if (op.type === 'fail' && REFUSALS.has(op.done.error?.code ?? '')) refused++;
    else failures.push(op);
  }
  const samples = ok + failures.length;
  const rate = samples === 0 ? 1 : ok / samples;
  if (samples >= minSamples && rate < minRate) {
    for (const op of failures) {
      f.add(
        `acquire by ${op.proc} in a stable period failed (${op.type} ${op.done.error?.code ?? ''}) after ${msOfNs(op.doneT - op.inv).toFixed(1)} ms; stable success rate ${(rate * 100).toFixed(2)} % < ${minRate * 100} %`,
        [op.invoke, op.done],
      );
    }
  }
  const lat = quantiles(latency);
  return f.result(
    f.count === 0,
    `${samples} stable acquires, ${(rate * 100).toFixed(2)} % succeeded${samples < minSamples ? ` (under ${minSamples}: not judged)` : ''}, p99 ${lat.p99 ?? 0} ms`,
    { ok, failures: failures.length, refused, rate: round3(rate), latencyMs: lat },
  );
}

/**
 * L3: an Acquire or Extend invoked while fewer than a quorum vote must fail (definitely) within the budget: an
 * unknown outcome (timeout) or a slow answer while the quorum is still lost, or a call still pending when the
 * budget ran out, is a violation. OK answers there are S6's. Calls during coordinator or client-link faults are
 * left out: their latency measures those faults.
 */
function checkL3(m: Model, live: LivenessOptions): CheckResult {
  const f = new Findings('L3');
  const failFastMs = live.failFastMs ?? 3_000;
  const codes: Record<string, number> = {};
  const latency: number[] = [];
  let checked = 0;
  for (const op of m.ops) {
    if ((op.f !== 'acquire' && op.f !== 'extend') || op.synthesized) continue;
    const iv = contains(m.lost, op.inv, op.inv);
    if (!iv) continue;
    const budget = nsOfMs(failFastMs + (op.invoke.wait_ms ?? 0));
    if (meets(m.otherFaults, op.inv, minBig(op.doneT, op.inv + budget))) continue;
    const back = iv.end ?? m.tEnd + 1n;
    const took = op.doneT - op.inv;
    if (op.doneT < back) {
      if (op.type === 'ok') continue;
      checked++;
      const code = op.done.error?.code ?? op.type;
      codes[code] = (codes[code] ?? 0) + 1;
      latency.push(msOfNs(took));
      if (op.type === 'info') {
        f.add(
          `${op.f} by ${op.proc} without a quorum ended unknown (${code}) after ${msOfNs(took).toFixed(0)} ms instead of failing`,
          [iv.event, op.invoke, op.done],
        );
      } else if (took > budget) {
        f.add(
          `${op.f} by ${op.proc} without a quorum failed only after ${msOfNs(took).toFixed(0)} ms (budget ${msOfNs(budget)} ms)`,
          [iv.event, op.invoke, op.done],
        );
      }
    } else if (back - op.inv > budget) {
      checked++;
      f.add(
        `${op.f} by ${op.proc} invoked without a quorum at ${m.rel(op.inv)} was still pending when the quorum returned ${msOfNs(back - op.inv).toFixed(0)} ms later (budget ${msOfNs(budget)} ms)`,
        [iv.event, op.invoke, op.done],
      );
    }
  }
  const lat = quantiles(latency);
  const codeList = Object.entries(codes)
    .map(([c, n]) => `${c} ${n}`)
    .join(', ');
  return f.result(
    f.count === 0,
    checked === 0
      ? 'no call was made without a quorum'
      : `${checked} calls without a quorum failed fast (p99 ${lat.p99 ?? 0} ms; ${codeList})`,
    { checked, codes, latencyMs: lat, failFastMs },
  );
}

/**
 * L4: after the final nemesis `stop` (the heal), every resource somebody acquires must be granted within the
 * bound. One never tried again after the heal cannot be judged ("unknown"): the harness probes each resource.
 */
function checkL4(m: Model, boundMs: number): CheckResult {
  const f = new Findings('L4');
  let healEvent: HistoryEvent | undefined;
  for (const e of m.nemesis) if (e.nemesis?.phase === 'stop') healEvent = e;
  if (!healEvent) {
    return f.result(true, 'no fault was stopped: nothing to recover from', { applicable: false });
  }
  const heal = m.time(healEvent);
  const bound = nsOfMs(boundMs);
  const unknown: string[] = [];
  const recoveryMs: number[] = [];
  for (const [resource, attempts] of m.acquiresByResource) {
    const after = attempts.filter((a) => a.inv >= heal || a.doneT >= heal);
    const firstOk = after
      .filter((a) => a.type === 'ok' && a.doneT >= heal)
      .sort((a, b) => (a.doneT < b.doneT ? -1 : 1))[0];
    if (firstOk && firstOk.doneT - heal <= bound) {
      recoveryMs.push(msOfNs(firstOk.doneT - heal));
    } else if (firstOk) {
      f.add(
        `${resource} was first acquired ${msOfNs(firstOk.doneT - heal).toFixed(0)} ms after the final heal at ${m.rel(heal)} (bound ${boundMs} ms)`,
        [healEvent, firstOk.invoke, firstOk.done],
        { resource },
      );
    } else if (after.length > 0 && m.tEnd - heal >= bound) {
      const codes = [...new Set(after.map((a) => a.done.error?.code ?? a.type))].join(', ');
      const last = after[after.length - 1]!;
      f.add(
        `${resource} was never acquired again after the final heal at ${m.rel(heal)} (${after.length} attempts: ${codes})`,
        [healEvent, after[0]!.invoke, after[0]!.done, last.invoke, last.done],
        { resource },
      );
    } else if (after.length > 0) {
      unknown.push(`${resource} (history ends ${msOfNs(m.tEnd - heal).toFixed(0)} ms after the heal)`);
    } else unknown.push(`${resource} (not tried after the heal)`);
  }
  const result = f.result(
    f.count > 0 ? false : unknown.length > 0 ? 'unknown' : true,
    unknown.length > 0 && f.count === 0
      ? `cannot judge ${unknown.join(', ')}`
      : `${recoveryMs.length} resources acquired within ${boundMs} ms of the heal at ${m.rel(heal)} (slowest ${recoveryMs.length ? Math.max(...recoveryMs).toFixed(0) : 0} ms)`,
    { healAt: m.rel(heal), boundMs, recoveryMs: quantiles(recoveryMs), unknown },
  );
  return result;
}

/** L6: `lost` events with no fault and a voting quorum over the max ttl + settle before them. */
function checkL6(m: Model, live: LivenessOptions, settle: bigint): CheckResult {
  const f = new Findings('L6');
  const back = nsOfMs(m.maxTtlMs) + settle;
  let lostEvents = 0;
  let spurious = 0;
  const examples: string[] = [];
  for (const e of m.events) {
    if (e.f !== 'lost') continue;
    lostEvents++;
    const t = m.time(e);
    if (meets(m.disturbed, t - back, t)) continue;
    spurious++;
    const text = `${e.proc} lost lock ${shortLock(e.lock ?? '?')} of ${e.resource} at ${m.rel(t)} (${e.error?.code ?? ''}) with no fault nearby`;
    if (examples.length < 5) examples.push(text);
    if (live.spuriousLossFatal) f.add(text, [e]);
  }
  return f.result(f.count === 0, `${lostEvents} lost events, ${spurious} with no fault nearby`, {
    lostEvents,
    spurious,
    examples,
  });
}

// ---- §6.3 item 9 -------------------------------------------------------------------------------------------

function checkExpected(
  assumptionBreaking: boolean,
  checks: Record<CheckName, CheckResult>,
  set: SetOutcome,
): CheckResult {
  const f = new Findings('expected');
  if (!assumptionBreaking) return f.result(true, 'not an assumption-breaking run', { mode: 'normal' });
  const overlap = checks.S1.valid === false;
  const lostUnfenced = set.unfencedLost > 0;
  const clean = checks.S3.valid === true && checks.S4.valid === true && !set.fencedBad;
  const found = [
    overlap && 'an S1 overlap',
    lostUnfenced && `${set.unfencedLost} lost update(s) on the unfenced store`,
  ]
    .filter(Boolean)
    .join(' and ');
  if (!clean) {
    // Checked first: a fencing failure is the worse news, whatever else was found.
    const dirty = [
      checks.S3.valid !== true && 'S3',
      checks.S4.valid !== true && 'S4',
      set.fencedBad && 'the fenced set',
    ].filter(Boolean);
    f.add(`fencing did not hold: ${dirty.join(', ')} not clean${found ? ` (found ${found})` : ''}`, []);
  } else if (!overlap && !lostUnfenced) {
    f.add(
      'assumption-breaking run without an S1 overlap or a lost update on the unfenced store: the fault did not bite, or the checker is blind',
      [],
    );
  }
  return f.result(f.count === 0, `found ${found} as required; S3, S4 and the fenced set are clean`, {
    mode: 'assumption-breaking',
    overlap,
    unfencedLost: set.unfencedLost,
  });
}

// ---- stats and text ----------------------------------------------------------------------------------------

function reportStats(m: Model, meta: { truncated?: number; seed?: number }, s1: CheckResult): ReportStats {
  const ops: Record<string, number> = {};
  const count = (e: HistoryEvent): void => {
    const k = `${e.f}:${e.type}${e.error?.code ? `:${e.error.code}` : ''}`;
    ops[k] = (ops[k] ?? 0) + 1;
  };
  for (const op of m.ops) count(op.done);
  for (const e of m.events) {
    if (e.type === 'invoke' || e.f === 'nemesis' || e.f === 'voting' || m.completionOf.has(e)) continue;
    count(e);
  }
  const all: number[] = [];
  const during: number[] = [];
  const outside: number[] = [];
  for (const op of m.ops) {
    if (op.f !== 'acquire' || op.type !== 'ok') continue;
    const ms = msOfNs(op.doneT - op.inv);
    all.push(ms);
    (meets(m.disturbed, op.inv, op.doneT) ? during : outside).push(ms);
  }
  const faultTimeline: ReportStats['faultTimeline'] = [];
  for (const e of m.events) {
    if (faultTimeline.length >= FAULT_TIMELINE_MAX) break;
    const s = round3(Number(m.time(e) - m.t0) / 1e9);
    if (e.f === 'nemesis' && e.nemesis) {
      faultTimeline.push({ s, fault: e.nemesis.fault, target: e.nemesis.target, phase: e.nemesis.phase });
    } else if (e.f === 'voting')
      faultTimeline.push({ s, fault: 'voting', target: [], phase: 'set', voting: e.voting });
  }
  return {
    events: m.events.length,
    writers: [...new Set(m.events.map((e) => e.writer))].sort(),
    durationMs: round3(msOfNs(m.tEnd - m.t0)),
    ...(meta.seed !== undefined && { seed: meta.seed }),
    truncated: meta.truncated ?? 0,
    ops: Object.fromEntries(Object.entries(ops).sort(([a], [b]) => (a < b ? -1 : 1))),
    latencyMs: {
      acquireOk: quantiles(all),
      duringFaults: quantiles(during),
      outsideFaults: quantiles(outside),
    },
    faults: m.nemesis.filter((e) => e.nemesis?.phase === 'start').length,
    acquisitions: m.grants.length,
    windows: Number(s1.stats?.windows ?? 0),
    faultTimeline,
  };
}

const label = (v: Validity): string => (v === true ? 'valid' : v === false ? 'INVALID' : 'UNKNOWN');

const q = (x: Quantiles): string =>
  x.count === 0 ? 'none' : `p50 ${x.p50} ms, p99 ${x.p99} ms, max ${x.max} ms (${x.count})`;

/** Short human text: a headline, one line per check, then the main figures. */
export function formatReport(report: Report): string {
  const s = report.stats;
  const lines = [
    `history check: ${label(report.valid)} (${s.events} events from ${s.writers.length} writers over ${(s.durationMs / 1000).toFixed(1)} s${s.seed === undefined ? '' : `, seed ${s.seed}`})`,
  ];
  for (const name of CHECK_NAMES) {
    const c = report.checks[name];
    const note =
      c.notCounted === 'expected'
        ? ' [expected in this assumption-breaking run: not counted]'
        : c.notCounted === 'ignored'
          ? ' [ignored: not counted]'
          : '';
    lines.push(
      c.valid === true
        ? `${CHECK_TITLES[name]}: valid (${c.summary})${note}`
        : `${CHECK_TITLES[name]}: ${label(c.valid)}${note}: ${c.summary}`,
    );
  }
  lines.push(
    `acquire ok latency: ${q(s.latencyMs.acquireOk)}; during faults ${q(s.latencyMs.duringFaults)}; outside ${q(s.latencyMs.outsideFaults)}`,
  );
  lines.push(`${s.acquisitions} acquisitions, ${s.windows} belief windows, ${s.faults} faults`);
  lines.push(
    `ops: ${Object.entries(s.ops)
      .map(([k, n]) => `${k} ${n}`)
      .join(', ')}`,
  );
  return lines.join('\n');
}
