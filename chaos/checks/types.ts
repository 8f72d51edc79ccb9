/**
 * The checker's public shapes: the names of its checks, its options and its report (chaos/checker.ts re-exports
 * them, and every check in this folder shares them).
 */
import type { HistoryEvent } from '../history.js';

export type Validity = boolean | 'unknown';

export const CHECK_NAMES = [
  'history',
  'workload',
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
  workload: 'workload (enough work to judge)',
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
  /** L2: with fewer stable acquires than this the rate is not judged, and L2 is unknown. Default 50. */
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
   * F8u and F14: the run breaks the timing assumptions on purpose, so an S1 overlap or a lost update on the
   * *unfenced* store MUST be found (and is then not counted), while S3, S4 and the fenced set stay clean.
   * Finding nothing is a failure: the fault did not bite or the checker is blind.
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
  /**
   * The least work the run must show (check `workload`); with less, the history is too thin to judge and the
   * report is unknown. `grants`: OK acquires, any writer's. `fencedWrites`: writes the fenced store accepted (its
   * own log). Default none.
   */
  minimum?: { grants?: number; fencedWrites?: number };
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
