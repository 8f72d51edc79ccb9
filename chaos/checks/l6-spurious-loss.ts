/** L6, no spurious loss: a lease is not lost with no fault nearby. */
import { type Model, meets, shortLock } from './model.js';
import { Findings, nsOfMs } from './support.js';
import type { CheckResult, LivenessOptions } from './types.js';

/** L6: `lost` events with no fault and a voting quorum over the max ttl + settle before them. */
export function checkL6(m: Model, live: LivenessOptions, settle: bigint): CheckResult {
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
