/** L2, fault tolerance: with a quorum voting and no fault about, acquires succeed. */
import { type Model, meets, type Op } from './model.js';
import { Findings, msOfNs, nsOfMs, quantiles, round3 } from './support.js';
import type { CheckResult, LivenessOptions } from './types.js';

/** Refusals that say "held by someone else" or "bad request": normal outcomes, not availability failures (L2). */
const REFUSALS = new Set([
  'ABORTED',
  'FAILED_PRECONDITION',
  'INVALID_ARGUMENT',
  'RESOURCE_EXHAUSTED',
  'PERMISSION_DENIED',
  'UNAUTHENTICATED',
]);

/**
 * L2: acquires started and finished in stable periods (no fault and a quorum since max ttl + settle before) must
 * succeed at least `minStableSuccess` of the time; refusals (held by another, bad request) do not count either way.
 * With fewer than `minStableSamples` of them the rate says nothing, and L2 is unknown: a run too thin to judge.
 */
export function checkL2(m: Model, live: LivenessOptions, settle: bigint): CheckResult {
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
  const judged = samples >= minSamples;
  if (judged && rate < minRate) {
    for (const op of failures) {
      f.add(
        `acquire by ${op.proc} in a stable period failed (${op.type} ${op.done.error?.code ?? ''}) after ${msOfNs(op.doneT - op.inv).toFixed(1)} ms; stable success rate ${(rate * 100).toFixed(2)} % < ${minRate * 100} %`,
        [op.invoke, op.done],
      );
    }
  }
  const lat = quantiles(latency);
  return f.result(
    f.count > 0 ? false : judged ? true : 'unknown',
    `${samples} stable acquires, ${(rate * 100).toFixed(2)} % succeeded${judged ? '' : ` (under ${minSamples}: too few to judge)`}, p99 ${lat.p99 ?? 0} ms`,
    { ok, failures: failures.length, refused, rate: round3(rate), minSamples, latencyMs: lat },
  );
}
