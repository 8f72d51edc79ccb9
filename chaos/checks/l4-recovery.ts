/** L4, recovery: after the final heal every resource can be acquired again within a bound. */
import type { HistoryEvent } from '../history.js';
import type { Model } from './model.js';
import { Findings, msOfNs, nsOfMs, quantiles } from './support.js';
import type { CheckResult } from './types.js';

/**
 * L4: after the final nemesis `stop` (the heal), every resource somebody acquires must be granted within the
 * bound. One never tried again after the heal cannot be judged ("unknown"): the harness probes each resource.
 */
export function checkL4(m: Model, boundMs: number): CheckResult {
  const f = new Findings('L4');
  let healEvent: HistoryEvent | undefined;
  for (const e of m.nemesis) if (e.nemesis?.phase === 'stop') healEvent = e;
  if (!healEvent) {
    return f.result(true, 'no fault was stopped: nothing to recover from', { applicable: false });
  }
  const heal = m.time(healEvent);
  const bound = nsOfMs(boundMs);
  const unknown: string[] = [];
  const recoveryMs: number[] = [];
  for (const [resource, attempts] of m.acquiresByResource) {
    const after = attempts.filter((a) => a.inv >= heal || a.doneT >= heal);
    const firstOk = after
      .filter((a) => a.type === 'ok' && a.doneT >= heal)
      .sort((a, b) => (a.doneT < b.doneT ? -1 : 1))[0];
    if (firstOk && firstOk.doneT - heal <= bound) {
      recoveryMs.push(msOfNs(firstOk.doneT - heal));
    } else if (firstOk) {
      f.add(
        `${resource} was first acquired ${msOfNs(firstOk.doneT - heal).toFixed(0)} ms after the final heal at ${m.rel(heal)} (bound ${boundMs} ms)`,
        [healEvent, firstOk.invoke, firstOk.done],
        { resource },
      );
    } else if (after.length > 0 && m.tEnd - heal >= bound) {
      const codes = [...new Set(after.map((a) => a.done.error?.code ?? a.type))].join(', ');
      const last = after[after.length - 1]!;
      f.add(
        `${resource} was never acquired again after the final heal at ${m.rel(heal)} (${after.length} attempts: ${codes})`,
        [healEvent, after[0]!.invoke, after[0]!.done, last.invoke, last.done],
        { resource },
      );
    } else if (after.length > 0) {
      unknown.push(`${resource} (history ends ${msOfNs(m.tEnd - heal).toFixed(0)} ms after the heal)`);
    } else unknown.push(`${resource} (not tried after the heal)`);
  }
  const result = f.result(
    f.count > 0 ? false : unknown.length > 0 ? 'unknown' : true,
    unknown.length > 0 && f.count === 0
      ? `cannot judge ${unknown.join(', ')}`
      : `${recoveryMs.length} resources acquired within ${boundMs} ms of the heal at ${m.rel(heal)} (slowest ${recoveryMs.length ? Math.max(...recoveryMs).toFixed(0) : 0} ms)`,
    { healAt: m.rel(heal), boundMs, recoveryMs: quantiles(recoveryMs), unknown },
  );
  return result;
}
