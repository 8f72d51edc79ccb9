/**
 * S3, fencing-token order: each grant of a resource carries a larger token than every grant that ended before it.
 */
import type { HistoryEvent } from '../history.js';
import { describeGrant, type Grant, grantEvidence, latestGrant, type Model, shortLock } from './model.js';
import { Findings, parseToken } from './support.js';
import type { CheckResult } from './types.js';

/**
 * Per resource, grants by `ok` and, with a second pointer, by E: every grant whose E ≤ ok_h has ended before h,
 * so T_h must exceed the largest such token of another lock. The top two tokens by distinct lock make "of
 * another lock" O(1). Plus: a token names one lock, a lock has one token, and renewals report the grant's token.
 */
export function checkS3(m: Model): CheckResult {
  const f = new Findings('S3');
  let checked = 0;
  for (const [resource, list] of m.grantsByResource) {
    const byEnd = [...list].sort((a, b) => (a.E < b.E ? -1 : a.E > b.E ? 1 : 0));
    let best1: Grant | undefined;
    let best2: Grant | undefined;
    const finish = (g: Grant): void => {
      if (g.token === undefined) return;
      if (best1 && g.lock === best1.lock) {
        if (g.token > best1.token!) best1 = g;
      } else if (!best1 || g.token > best1.token!) {
        best2 = best1;
        best1 = g;
      } else if (best2 && g.lock === best2.lock) {
        if (g.token > best2.token!) best2 = g;
      } else if (!best2 || g.token > best2.token!) best2 = g;
    };
    const tokenOwner = new Map<bigint, Grant>();
    const lockToken = new Map<string, Grant>();
    let j = 0;
    for (const h of list) {
      while (j < byEnd.length && byEnd[j]!.E <= h.ok) finish(byEnd[j++]!);
      if (h.token === undefined) {
        f.add(
          `OK acquire by ${h.proc} of ${resource} at ${m.rel(h.ok)} has no usable fencing token (${h.op.done.token})`,
          [h.op.invoke, h.op.done],
        );
        continue;
      }
      checked++;
      const before = best1 && best1.lock !== h.lock ? best1 : best2;
      if (before && h.token <= before.token!) {
        f.add(
          `${describeGrant(m, h)} has a token not above token ${before.token} of ${describeGrant(m, before)}, which ended before it`,
          [...grantEvidence(before), h.op.invoke, h.op.done],
          { resource, earlier: before.lock, later: h.lock },
        );
      }
      const owner = tokenOwner.get(h.token);
      if (owner && owner.lock !== h.lock) {
        f.add(
          `token ${h.token} of ${resource} was given to two locks: ${describeGrant(m, owner)} and ${describeGrant(m, h)}`,
          [owner.op.done, h.op.done],
        );
      } else if (!owner) tokenOwner.set(h.token, h);
      const same = lockToken.get(h.lock);
      if (same && same.token !== h.token) {
        f.add(`lock ${shortLock(h.lock)} of ${resource} got two tokens, ${same.token} and ${h.token}`, [
          same.op.done,
          h.op.done,
        ]);
      } else if (!same) lockToken.set(h.lock, h);
    }
  }
  // Renewals keep the token.
  const renewal = (e: HistoryEvent, t: bigint, what: string, evidence: HistoryEvent[]): void => {
    const g = latestGrant(m, e.lock, t);
    if (!g) {
      f.add(
        `${what} by ${e.proc} at ${m.rel(t)} renews lock ${shortLock(e.lock ?? '?')}, which no OK acquire granted`,
        evidence,
      );
      return;
    }
    const token = parseToken(e.token);
    if (token !== undefined && g.token !== undefined && token !== g.token) {
      f.add(
        `${what} by ${e.proc} at ${m.rel(t)} reports token ${token}, but ${describeGrant(m, g)} was granted token ${g.token}`,
        [g.op.done, ...evidence],
      );
    }
  };
  for (const op of m.ops) {
    if (op.f === 'extend' && op.type === 'ok') {
      const e = { ...op.done, lock: op.done.lock ?? op.invoke.lock, token: op.done.token ?? op.invoke.token };
      renewal(e, op.inv, 'OK extend', [op.invoke, op.done]);
    }
  }
  for (const e of m.events) {
    if ((e.f === 'keepalive' || e.f === 'renewed') && e.type === 'ok' && e.req === undefined) {
      renewal(e, m.time(e), 'keepalive', [e]);
    }
  }
  return f.result(f.count === 0, `${checked} grants in token order, renewals keep their token`, {
    checked,
  });
}
