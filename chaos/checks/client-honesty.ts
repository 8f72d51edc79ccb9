/** Client honesty: a worker never writes to a store after its own lease has ended. */
import { describeGrant, latestGrant, type Model, shortLock } from './model.js';
import { Findings, msOfNs } from './support.js';
import type { CheckResult } from './types.js';

/**
 * A worker's store write invoked at or after its own lease's end (as the client knows it) is its own bug,
 * whatever the fenced store then does with it.
 */
export function checkClient(m: Model): CheckResult {
  const f = new Findings('client');
  let checked = 0;
  for (const op of m.ops) {
    if (op.f !== 'store_write' || op.invoke.lock === undefined) continue;
    checked++;
    const g = latestGrant(m, op.invoke.lock, op.inv);
    const what = `${op.proc} wrote ${JSON.stringify(op.invoke.value)} to the ${op.invoke.store ?? '?'} store at ${m.rel(op.inv)}`;
    if (!g) {
      f.add(`${what} under lock ${shortLock(op.invoke.lock)}, which no OK acquire granted`, [
        op.invoke,
        op.done,
      ]);
    } else if (op.inv >= g.Ec) {
      f.add(
        `${what}, ${msOfNs(op.inv - g.Ec).toFixed(1)} ms after its lease ended (${g.ecReason} at ${m.rel(g.Ec)}; ${describeGrant(m, g)})`,
        [g.op.invoke, g.op.done, g.ecEvent, op.invoke, op.done],
      );
    }
  }
  return f.result(f.count === 0, `${checked} store writes inside their lease`, { checked });
}
