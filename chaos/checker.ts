/**
 * The history checker of the fault suite (docs/chaos.md): derives belief windows, the quorum timeline and the
 * fault timeline from a merged history (chaos/history.ts) and runs every check on them, one file per property in
 * chaos/checks/ (S1–S4, the set workload, S6, client honesty and the liveness properties L1–L4, L6, L7). Every
 * check is one sweep over sorted data or a binary search per operation, so a run of a million events checks in
 * seconds (O(n log n), no pairwise scans).
 *
 * Validity follows Jepsen: `false` when any counted check found a violation, else `"unknown"` when the history
 * cannot be trusted to be complete (a truncated writer file, broken invoke/completion pairing, a set never read
 * back), else `true`.
 */
import { checkClient } from './checks/client-honesty.js';
import { checkExpected } from './checks/expected-anomaly.js';
import { checkCompleteness } from './checks/history-completeness.js';
import { checkL1L7 } from './checks/l1-l7-hand-offs.js';
import { checkL2 } from './checks/l2-fault-tolerance.js';
import { checkL3 } from './checks/l3-fail-fast.js';
import { checkL4 } from './checks/l4-recovery.js';
import { checkL6 } from './checks/l6-spurious-loss.js';
import { buildModel } from './checks/model.js';
import { reportStats } from './checks/report.js';
import { checkS1 } from './checks/s1-mutual-exclusion.js';
import { checkS2 } from './checks/s2-honest-validity.js';
import { checkS3 } from './checks/s3-fencing-order.js';
import { checkS4 } from './checks/s4-fenced-store.js';
import { checkS6 } from './checks/s6-no-grant-without-quorum.js';
import { checkSet, defaultFinalRead } from './checks/set-workload.js';
import { Findings, nsOfMs } from './checks/support.js';
import {
  type Anomaly,
  CHECK_NAMES,
  type CheckName,
  type CheckOptions,
  type CheckResult,
  type Report,
  type Validity,
} from './checks/types.js';
import { checkWorkload } from './checks/workload.js';
import type { HistoryEvent } from './history.js';

export { formatReport } from './checks/report.js';
export {
  type Anomaly,
  CHECK_NAMES,
  CHECK_TITLES,
  type CheckName,
  type CheckOptions,
  type CheckResult,
  type LivenessOptions,
  type Quantiles,
  type Report,
  type ReportStats,
  type Validity,
} from './checks/types.js';

const MAX_REPORT_ANOMALIES = 20;

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
  checks.history = checkCompleteness(m, historyFindings, truncated);
  checks.workload = checkWorkload(m, options.minimum);
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
