/** The workload: a run that did too little to show anything is unknown, not valid. */
import type { Model } from './model.js';
import { Findings } from './support.js';
import type { CheckOptions, CheckResult } from './types.js';

/**
 * Counts the grants and the writes the fenced store accepted, against the run's `minimum`: a workload that did
 * nothing (a worker that never started, a scenario that never reached its faults) leaves a history every check
 * finds valid, so fewer than the minimum makes the report unknown.
 */
export function checkWorkload(m: Model, minimum: CheckOptions['minimum'] = {}): CheckResult {
  const f = new Findings('workload');
  const grants = m.grants.length;
  let fencedWrites = 0;
  for (const e of m.events) {
    // The store's own log (one-off events), as S4 reads it: not the writers' completions.
    if (e.f === 'store_write' && e.type === 'ok' && e.store === 'fenced' && !m.completionOf.has(e))
      fencedWrites++;
  }
  const least = { grants: minimum.grants ?? 0, fencedWrites: minimum.fencedWrites ?? 0 };
  const short = [
    grants < least.grants && `${grants} grants, fewer than ${least.grants}`,
    fencedWrites < least.fencedWrites &&
      `${fencedWrites} fenced writes accepted, fewer than ${least.fencedWrites}`,
  ].filter((x): x is string => typeof x === 'string');
  const atLeast = (n: number): string => (n > 0 ? ` (at least ${n})` : '');
  return f.result(
    short.length > 0 ? 'unknown' : true,
    short.length > 0
      ? `too little work to judge: ${short.join('; ')}`
      : `${grants} grants${atLeast(least.grants)}, ${fencedWrites} fenced writes accepted${atLeast(least.fencedWrites)}`,
    { grants, fencedWrites, minimum: least },
  );
}
