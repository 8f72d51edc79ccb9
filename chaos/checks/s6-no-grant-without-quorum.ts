/** S6: no acquire or extend is granted while fewer nodes than a quorum can vote. */
import { contains, type Model } from './model.js';
import { Findings, msOfNs, round3 } from './support.js';
import type { CheckResult } from './types.js';

export function checkS6(m: Model): CheckResult {
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
