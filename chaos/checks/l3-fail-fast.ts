/** L3, fail fast: without a quorum, calls fail quickly and definitely instead of hanging. */
import { contains, type Model, meets } from './model.js';
import { Findings, minBig, msOfNs, nsOfMs, quantiles } from './support.js';
import type { CheckResult, LivenessOptions } from './types.js';

/**
 * L3: an Acquire or Extend invoked while fewer than a quorum vote must fail (definitely) within the budget: an
 * unknown outcome (timeout) or a slow answer while the quorum is still lost, or a call still pending when the
 * budget ran out, is a violation. OK answers there are S6's. Calls during coordinator or client-link faults are
 * left out: their latency measures those faults.
 */
export function checkL3(m: Model, live: LivenessOptions): CheckResult {
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
