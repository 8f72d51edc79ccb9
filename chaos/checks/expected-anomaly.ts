/** The expected anomaly of an assumption-breaking run: the fault must bite, and fencing must still hold. */
import type { SetOutcome } from './set-workload.js';
import { Findings } from './support.js';
import type { CheckName, CheckResult } from './types.js';

export function checkExpected(
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
