/** S4, the fenced store: it never accepts a token lower than one it has already accepted. */
import type { HistoryEvent } from '../history.js';
import { type Grant, type Model, shortLock } from './model.js';
import { Findings, getOrInit, lastAtOrBefore, parseToken } from './support.js';
import type { CheckResult } from './types.js';

/**
 * Replays the fenced store's log (one-off events of the store writer, in its acceptance order = seq): an accepted
 * operation's token is at least the largest accepted before (reads register tokens too), and equal only for the
 * same lock. Refusals of the current holder's own token are counted as spurious (a liveness figure).
 */
export function checkS4(m: Model): CheckResult {
  const f = new Findings('S4');
  const byWriter = new Map<string, HistoryEvent[]>();
  for (const e of m.events) {
    if ((e.f !== 'store_write' && e.f !== 'store_read') || e.type === 'invoke' || m.completionOf.has(e))
      continue;
    if (e.store !== 'fenced' || e.token === undefined) continue;
    const list = getOrInit(byWriter, e.writer, () => []);
    list.push(e);
  }
  let accepted = 0;
  let refused = 0;
  let unknown = 0;
  let spurious = 0;
  let refusedNotStale = 0;
  for (const list of byWriter.values()) {
    list.sort((a, b) => a.seq - b.seq);
    const highest = new Map<string, HistoryEvent>();
    for (const e of list) {
      const token = parseToken(e.token);
      const resource = e.resource ?? '';
      if (token === undefined) continue;
      const max = highest.get(resource);
      const maxToken = max ? parseToken(max.token)! : undefined;
      if (e.type === 'ok') {
        accepted++;
        if (maxToken !== undefined && token < maxToken) {
          f.add(
            `the fenced store accepted ${e.f === 'store_write' ? 'a write' : 'a read'} of ${resource} with token ${token} at ${m.rel(m.time(e))} after accepting token ${maxToken}`,
            [max, e],
            { resource, token: token.toString(), highest: maxToken.toString() },
          );
        } else if (maxToken === token && max?.lock && e.lock && max.lock !== e.lock) {
          f.add(
            `the fenced store accepted token ${token} of ${resource} from lock ${shortLock(e.lock)} after accepting it from lock ${shortLock(max.lock)}`,
            [max, e],
          );
        }
        if (maxToken === undefined || token > maxToken) highest.set(resource, e);
      } else if (e.type === 'fail') {
        refused++;
        if (maxToken === undefined || token >= maxToken) refusedNotStale++;
        const holder = holderAt(m, resource, m.time(e));
        if (holder?.token === token) spurious++;
      } else unknown++; // Redis failed: maybe applied, so it neither raises nor tests the maximum
    }
  }
  return f.result(
    f.count === 0,
    `${accepted} accepted, ${refused} refused as stale (${spurious} spurious), in token order`,
    { accepted, refused, unknown, spurious, refusedNotStale },
  );
}

/** The grant whose window holds `t` on `resource` (the latest started, if S1 is broken). */
function holderAt(m: Model, resource: string, t: bigint): Grant | undefined {
  const list = m.grantsByResource.get(resource);
  if (!list) return undefined;
  // Windows are disjoint when S1 holds, so the latest started is the one; a few more cover a broken S1.
  const last = lastAtOrBefore(list, (g) => g.ok, t);
  for (let i = last; i >= 0 && i > last - 4; i--) {
    const g = list[i]!;
    if (g.E > t) return g;
  }
  return undefined;
}
