/**
 * The set workload (S4 end to end, after Jepsen's set-full): no acknowledged add is missing from the final read of
 * its set.
 */
import type { HistoryEvent } from '../history.js';
import type { Model, Op } from './model.js';
import { Findings, getOrInit } from './support.js';
import type { CheckResult, Validity } from './types.js';

/** `CheckOptions.finalRead` unless given: the store service's final reads, or reads named `final-…`. */
export function defaultFinalRead(e: HistoryEvent): boolean {
  return (
    e.f === 'store_read' &&
    e.type === 'ok' &&
    (e.req?.startsWith('final-') === true || (e.token === undefined && e.lock === undefined))
  );
}

interface SetCounts {
  adds: number;
  ok: number;
  fail: number;
  info: number;
  lost: number;
  unexpected: number;
  recovered: number;
  infoAbsent: number;
  unjudged: number;
  finalReads: number;
}

export interface SetOutcome {
  result: CheckResult;
  fencedBad: boolean;
  unfencedLost: number;
  /** Every anomaly is a lost update on the unfenced store (what an assumption-breaking run expects). */
  onlyUnfencedLost: boolean;
}

/**
 * Every element whose add is ok (completed before the final read) must be in the final read; a failed add must
 * not be; an info add may be. Elements nobody added are unexpected. Counted per store, fenced and unfenced apart.
 */
export function checkSet(m: Model, isFinalRead: (e: HistoryEvent) => boolean): SetOutcome {
  const f = new Findings('S5set');
  const key = (store: string, resource: string): string => `${store}\u0000${resource}`;
  const adds = new Map<string, Map<string, Op[]>>();
  for (const op of m.ops) {
    if (op.f !== 'store_write') continue;
    const k = key(op.invoke.store ?? 'fenced', op.invoke.resource ?? '');
    const elements = getOrInit(adds, k, () => new Map());
    const element = JSON.stringify(op.invoke.value);
    const list = getOrInit(elements, element, () => []);
    list.push(op);
  }
  const finals = new Map<string, HistoryEvent>();
  for (const e of m.events) {
    if (e.f === 'store_read' && e.type === 'ok' && Array.isArray(e.value) && isFinalRead(e)) {
      finals.set(key(e.store ?? 'fenced', e.resource ?? ''), e);
    }
  }
  const counts: Record<string, SetCounts> = {};
  const countsOf = (store: string): SetCounts => {
    counts[store] ??= {
      adds: 0,
      ok: 0,
      fail: 0,
      info: 0,
      lost: 0,
      unexpected: 0,
      recovered: 0,
      infoAbsent: 0,
      unjudged: 0,
      finalReads: 0,
    };
    return counts[store];
  };
  const unread: string[] = [];
  let fencedBad = false;
  let unfencedLost = 0;
  let otherAnomalies = 0;
  for (const k of new Set([...adds.keys(), ...finals.keys()])) {
    const [store = '', resource = ''] = k.split('\u0000');
    const c = countsOf(store);
    const elements = adds.get(k) ?? new Map<string, Op[]>();
    const final = finals.get(k);
    for (const list of elements.values()) {
      c.adds += list.length;
      for (const op of list) c[op.type]++;
    }
    if (!final) {
      if (elements.size > 0) unread.push(`${store} ${resource}`);
      continue;
    }
    c.finalReads++;
    const finalT = m.time(final);
    const present = new Set((final.value as unknown[]).map((x) => JSON.stringify(x)));
    for (const [element, list] of elements) {
      const ok = list.filter((op) => op.type === 'ok');
      const info = list.filter((op) => op.type === 'info');
      const judged = ok.filter((op) => op.doneT <= finalT);
      if (ok.length > 0) {
        if (present.has(element)) continue;
        if (judged.length === 0) {
          c.unjudged++;
          continue;
        }
        c.lost++;
        const op = judged[0]!;
        if (store === 'unfenced') unfencedLost++;
        else fencedBad = true;
        f.add(
          `${store} ${resource}: element ${element} acknowledged to ${op.proc} at ${m.rel(op.doneT)} (token ${op.invoke.token ?? '?'}) is missing from the final read at ${m.rel(finalT)}`,
          [op.invoke, op.done, final],
          { store, resource, element, kind: 'lost' },
        );
      } else if (info.length > 0) {
        if (present.has(element)) c.recovered++;
        else c.infoAbsent++;
      } else if (present.has(element)) {
        c.unexpected++;
        if (store !== 'unfenced') fencedBad = true;
        otherAnomalies++;
        const op = list[0]!;
        f.add(
          `${store} ${resource}: element ${element} whose add failed (${op.done.error?.code ?? 'fail'}) at ${m.rel(op.doneT)} is in the final read`,
          [op.invoke, op.done, final],
          { store, resource, element, kind: 'unexpected' },
        );
      }
    }
    for (const element of present) {
      if (elements.has(element)) continue;
      c.unexpected++;
      if (store !== 'unfenced') fencedBad = true;
      otherAnomalies++;
      f.add(`${store} ${resource}: element ${element} is in the final read but nobody added it`, [final], {
        store,
        resource,
        element,
        kind: 'unexpected',
      });
    }
  }
  const valid: Validity = f.count > 0 ? false : unread.length > 0 ? 'unknown' : true;
  const parts = Object.entries(counts).map(
    ([store, c]) =>
      `${store}: ${c.ok} acknowledged, ${c.lost} lost, ${c.unexpected} unexpected, ${c.recovered} recovered`,
  );
  const result = f.result(
    valid,
    unread.length > 0 && f.count === 0
      ? `no final read of ${unread.join(', ')}: lost updates cannot be judged`
      : parts.length > 0
        ? parts.join('; ')
        : 'no set workload',
    { ...counts, unread },
  );
  return { result, fencedBad, unfencedLost, onlyUnfencedLost: otherAnomalies === 0 && !fencedBad };
}
