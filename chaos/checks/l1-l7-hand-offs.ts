/**
 * L1, deadlock freedom, and L7, bounded contention: both read the hand-offs of each resource from one holder
 * to the next.
 */
import type { HistoryEvent } from '../history.js';
import { describeGrant, type Grant, type Model, meets } from './model.js';
import { Findings, lastAtOrBefore, maxBig, msOfNs, nsOfMs, quantiles, round3 } from './support.js';
import type { CheckResult, LivenessOptions } from './types.js';

/**
 * L1 and L7 from the same hand-off gaps: per resource, from a holder's end (as the client knows it: a retired
 * process still holds its lease) to the next grant, counted from the moment somebody was waiting (an acquire in
 * flight). L1 fails a gap over the bound only in quiet periods; L7 reports gaps and contenders that never won.
 */
export function checkL1L7(m: Model, live: LivenessOptions): { L1: CheckResult; L7: CheckResult } {
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
