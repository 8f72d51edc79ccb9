/**
 * Hand-written histories for the checker's self-tests (chaos/checks/*.test.ts, chaos/checker.test.ts): each test
 * asserts which check flips and that every other one stays valid. A checker that cannot fail proves nothing, so
 * most cases come as a pair: the violation, and the nearly identical history that is fine.
 */
import { expect } from 'vitest';
import {
  CHECK_NAMES,
  type CheckName,
  type CheckOptions,
  checkHistory,
  formatReport,
  type Report,
} from '../checker.js';
import type { EventBody, HistoryEvent } from '../history.js';

/** An arbitrary uptime, so times look like real hrtime values. */
const BASE_NS = 5_000_000_000_000n;
export const TTL = 1_000;

/** Builds a history with times in ms (stored as ns strings); `proc` is `writer#n`. */
export class History {
  readonly events: HistoryEvent[] = [];
  private readonly seqs = new Map<string, number>();
  private n = 0;

  add(proc: string, tMs: number, body: Omit<EventBody, 'proc'>): HistoryEvent {
    const writer = proc.split('#')[0]!;
    const seq = this.seqs.get(writer) ?? 0;
    this.seqs.set(writer, seq + 1);
    const event: HistoryEvent = {
      t: (BASE_NS + BigInt(Math.round(tMs * 1e6))).toString(),
      writer,
      seq,
      proc,
      ...body,
    };
    this.events.push(event);
    return event;
  }

  req(): string {
    return `q${++this.n}`;
  }

  /** invoke + ok; validity counts from the invoke (default ttl − drift − 5 ms, a try-once acquire). */
  acquire(
    proc: string,
    resource: string,
    invMs: number,
    okMs: number,
    o: { lock: string; token: number | string; validity?: number; ttl?: number; wait?: number },
  ): void {
    const req = this.req();
    const ttl = o.ttl ?? TTL;
    this.add(proc, invMs, { type: 'invoke', f: 'acquire', req, resource, ttl_ms: ttl, wait_ms: o.wait ?? 0 });
    this.add(proc, okMs, {
      type: 'ok',
      f: 'acquire',
      req,
      resource,
      lock: o.lock,
      token: String(o.token),
      validity_ms: o.validity ?? ttl - 12 - 5,
    });
  }

  acquireFails(
    proc: string,
    resource: string,
    invMs: number,
    doneMs: number,
    type: 'fail' | 'info' = 'fail',
    code = 'ABORTED',
  ): void {
    const req = this.req();
    this.add(proc, invMs, { type: 'invoke', f: 'acquire', req, resource, ttl_ms: TTL, wait_ms: 0 });
    this.add(proc, doneMs, { type, f: 'acquire', req, resource, error: { code, msg: code } });
  }

  release(
    proc: string,
    resource: string,
    lock: string,
    invMs: number,
    doneMs = invMs + 1,
    type = 'ok' as const,
  ) {
    const req = this.req();
    this.add(proc, invMs, { type: 'invoke', f: 'release', req, resource, lock });
    this.add(proc, doneMs, { type, f: 'release', req, resource, lock });
  }

  extend(
    proc: string,
    resource: string,
    lock: string,
    token: number,
    invMs: number,
    okMs: number,
    validity: number,
  ) {
    const req = this.req();
    const common = { req, resource, lock, token: String(token) };
    this.add(proc, invMs, { type: 'invoke', f: 'extend', ...common, ttl_ms: TTL });
    this.add(proc, okMs, { type: 'ok', f: 'extend', ...common, validity_ms: validity });
  }

  keepalive(
    proc: string,
    resource: string,
    lock: string,
    token: number,
    tMs: number,
    validity: number,
  ): void {
    this.add(proc, tMs, {
      type: 'ok',
      f: 'keepalive',
      resource,
      lock,
      token: String(token),
      validity_ms: validity,
    });
  }

  /** A worker's own record of adding `x` (invoke + completion). */
  storeAdd(
    proc: string,
    store: 'fenced' | 'unfenced',
    resource: string,
    grant: { lock: string; token: number },
    x: number,
    invMs: number,
    doneMs: number,
    type: 'ok' | 'fail' | 'info' = 'ok',
  ): void {
    const req = this.req();
    const common = { req, store, resource, lock: grant.lock, token: String(grant.token), value: x };
    this.add(proc, invMs, { type: 'invoke', f: 'store_write', ...common });
    this.add(proc, doneMs, {
      type,
      f: 'store_write',
      ...common,
      ...(type === 'fail' && { error: { code: 'STALE_TOKEN' } }),
    });
  }

  /** The store service's log entry (one-off, writer `store`). */
  storeLog(
    tMs: number,
    type: 'ok' | 'fail',
    f: 'store_write' | 'store_read',
    grant: { lock: string; token: number },
    value: number[],
    store: 'fenced' | 'unfenced' = 'fenced',
  ): void {
    this.add('store#1', tMs, {
      type,
      f,
      store,
      resource: 'r1',
      token: String(grant.token),
      lock: grant.lock,
      value,
      ...(type === 'fail' && { error: { code: 'STALE_TOKEN' } }),
    });
  }

  /** The store service's final read: no token, no lock. */
  finalRead(tMs: number, store: 'fenced' | 'unfenced', value: number[], resource = 'r1'): void {
    this.add('store#1', tMs, { type: 'ok', f: 'store_read', store, resource, value });
  }

  nemesis(tMs: number, fault: string, target: string[], phase: 'start' | 'stop'): void {
    this.add('nemesis#1', tMs, { type: 'info', f: 'nemesis', nemesis: { fault, target, phase } });
  }

  voting(tMs: number, voting: number): void {
    this.add('nemesis#1', tMs, { type: 'info', f: 'voting', voting });
  }

  /**
   * A hand-written history holds a few acquires, far fewer than L2 needs by default to judge a success rate, and
   * a test about another check has no business with L2: here L2 passes any rate on any number of acquires, unless
   * `options.liveness` says otherwise (as l2-fault-tolerance.test.ts does, or calls checkHistory itself).
   */
  check(options: CheckOptions = {}, meta?: { truncated?: number; seed?: number }): Report {
    const liveness = { minStableSamples: 0, minStableSuccess: 0, ...options.liveness };
    return checkHistory(this.events, { ...options, liveness }, meta);
  }
}

export const A = { lock: 'aaaaaaaa11111111', token: 7 };
export const B = { lock: 'bbbbbbbb22222222', token: 8 };

/** Exactly the checks in `invalid` are invalid; every other one is valid (not unknown). */
export function expectOnly(report: Report, invalid: CheckName[], unknown: CheckName[] = []): void {
  const got = Object.fromEntries(CHECK_NAMES.map((name) => [name, report.checks[name].valid]));
  const want = Object.fromEntries(
    CHECK_NAMES.map((name) => [
      name,
      invalid.includes(name) ? false : unknown.includes(name) ? 'unknown' : true,
    ]),
  );
  expect(got, formatReport(report)).toEqual(want);
  for (const name of invalid) expect(report.checks[name].anomalies.length).toBeGreaterThan(0);
}

/** A holds r1 from 0 to its release at 300; B holds it from 400 to its release at 700. Valid. */
export function twoHolders(): History {
  const h = new History();
  h.acquire('A#1', 'r1', 0, 1, A);
  h.release('A#1', 'r1', A.lock, 300);
  h.acquire('B#1', 'r1', 350, 400, B);
  h.release('B#1', 'r1', B.lock, 700);
  return h;
}
