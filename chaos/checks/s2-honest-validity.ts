/**
 * S2, honest validity: a grant or a renewal never promises more time than was asked for, nor any after it ran out.
 */
import { latestGrant, type Model, shortLock } from './model.js';
import { Findings, msOfNs, nsOfMs } from './support.js';
import type { CheckResult } from './types.js';

/**
 * `0 < V ≤ ttl − drift` and `ok − inv < ttl` for OK acquires that did not wait and for OK extends (V counted from
 * the invoke). A waiting acquire (wait_ms > 0, or not recorded) can legitimately carry a validity counted from a
 * later re-send, so only its deadline is bounded: `inv + V ≤ ok + ttl − drift`, which no send at or before the
 * answer can exceed. Renewals on the KeepAlive stream report what is left at `t`: `0 < V ≤ ttl − drift`.
 */
export function checkS2(m: Model, toleranceMs: number): CheckResult {
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
