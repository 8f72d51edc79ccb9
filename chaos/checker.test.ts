/**
 * The checker's self-tests (RELIABILITY.md §6.6 (a)–(j) and more): hand-written histories, each asserting which
 * check flips and that every other one stays valid. A checker that cannot fail proves nothing, so most cases
 * come as a pair: the violation, and the nearly identical history that is fine.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  CHECK_NAMES,
  type CheckName,
  type CheckOptions,
  checkHistory,
  formatReport,
  type Report,
} from './checker.js';
import type { EventBody, HistoryEvent } from './history.js';

/** An arbitrary uptime, so times look like real hrtime values. */
const BASE_NS = 5_000_000_000_000n;
const TTL = 1_000;

/** Builds a history with times in ms (stored as ns strings); `proc` is `writer#n`. */
class History {
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

  check(options?: CheckOptions, meta?: { truncated?: number; seed?: number }): Report {
    return checkHistory(this.events, options, meta);
  }
}

const A = { lock: 'aaaaaaaa11111111', token: 7 };
const B = { lock: 'bbbbbbbb22222222', token: 8 };

/** Exactly the checks in `invalid` are invalid; every other one is valid (not unknown). */
function expectOnly(report: Report, invalid: CheckName[], unknown: CheckName[] = []): void {
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
function twoHolders(): History {
  const h = new History();
  h.acquire('A#1', 'r1', 0, 1, A);
  h.release('A#1', 'r1', A.lock, 300);
  h.acquire('B#1', 'r1', 350, 400, B);
  h.release('B#1', 'r1', B.lock, 700);
  return h;
}

describe('§6.6 self-tests', () => {
  it('a baseline of two holders one after the other is valid', () => {
    const report = twoHolders().check();
    expectOnly(report, []);
    expect(report.valid).toBe(true);
    expect(report.stats.acquisitions).toBe(2);
    expect(report.stats.windows).toBe(2);
    expect(formatReport(report)).toContain('S1 mutual exclusion: valid (2 windows');
  });

  it('(a) two overlapping windows: S1 invalid, with both windows as evidence', () => {
    const h = new History();
    h.acquire('A#1', 'r1', 0, 1, A); // D = 983
    h.acquire('B#1', 'r1', 499, 500, B);
    h.release('B#1', 'r1', B.lock, 600);
    const report = h.check();
    expectOnly(report, ['S1']);
    expect(report.valid).toBe(false);
    const [anomaly] = report.checks.S1.anomalies;
    expect(anomaly!.message).toBe(
      'A#1 lock aaaaaaaa token 7 [ok 0.001 s → end 0.983 s (deadline)] overlaps B#1 lock bbbbbbbb token 8 [ok 0.500 s → end 0.600 s (release)] by 100.0 ms',
    );
    expect(anomaly!.events.map((e) => `${e.proc} ${e.type} ${e.f}`)).toEqual([
      'A#1 invoke acquire',
      'A#1 ok acquire',
      'B#1 invoke acquire',
      'B#1 ok acquire',
      'B#1 invoke release',
    ]);
    expect(report.anomalies[0]).toEqual(anomaly);
    expect(formatReport(report)).toContain('S1 mutual exclusion: INVALID: A#1 lock aaaaaaaa token 7');
  });

  it('(b) windows that touch exactly (E_a == ok_b) are valid, counted as a near miss', () => {
    const h = new History();
    h.acquire('A#1', 'r1', 0, 1, { ...A, validity: 983 });
    h.acquire('B#1', 'r1', 900, 983, B);
    const report = h.check();
    expectOnly(report, []);
    expect(report.checks.S1.stats).toMatchObject({ windows: 2, nearMisses: 1, minGapMs: 0 });
  });

  it('(c) an info acquire by A, then an OK acquire by B, is valid', () => {
    const h = new History();
    h.acquireFails('A#1', 'r1', 0, 2_000, 'info', 'DEADLINE_EXCEEDED');
    h.acquire('B#1', 'r1', 100, 101, B);
    h.release('B#1', 'r1', B.lock, 600);
    // A's writer carries on as a new logical process.
    h.acquire('A#2', 'r1', 2_100, 2_101, { ...A, token: 9 });
    h.release('A#2', 'r1', A.lock, 2_500);
    expectOnly(h.check(), []);
  });

  it('(d) a token decreasing across disjoint windows: S3 invalid', () => {
    const h = new History();
    h.acquire('A#1', 'r1', 0, 1, { ...A, token: 10 });
    h.release('A#1', 'r1', A.lock, 300);
    h.acquire('B#1', 'r1', 350, 400, { ...B, token: 9 });
    h.release('B#1', 'r1', B.lock, 700);
    const report = h.check();
    expectOnly(report, ['S3']);
    expect(report.checks.S3.summary).toMatch(
      /B#1 lock bbbbbbbb token 9 .* has a token not above token 10 of A#1/,
    );
  });

  it('(e) an extend pushes D out, and an overlap inside the extended part is invalid', () => {
    const build = (renew: (h: History) => void): History => {
      const h = new History();
      h.acquire('A#1', 'r1', 0, 1, A); // D = 983
      renew(h);
      h.acquire('B#1', 'r1', 1_199, 1_200, B);
      h.release('B#1', 'r1', B.lock, 1_400);
      return h;
    };
    // Without the renewal A's window ends at 983: B at 1200 is fine.
    expectOnly(build(() => {}).check(), []);
    const extended = build((h) => h.extend('A#1', 'r1', A.lock, A.token, 800, 801, 980)).check();
    expectOnly(extended, ['S1']);
    expect(extended.checks.S1.summary).toContain('end 1.780 s (deadline)');
    // The same with a KeepAlive renewal (D := t + validity).
    const kept = build((h) => h.keepalive('A#1', 'r1', A.lock, A.token, 800, 900)).check();
    expectOnly(kept, ['S1']);
    expect(kept.checks.S1.summary).toContain('end 1.700 s (deadline)');
  });

  it('(f) a release invoke ends the window even when the release completes info', () => {
    const h = new History();
    h.acquire('A#1', 'r1', 0, 1, A);
    h.release('A#1', 'r1', A.lock, 300, 2_000, 'info' as 'ok');
    h.acquire('B#1', 'r1', 350, 400, B);
    h.release('B#1', 'r1', B.lock, 700);
    expectOnly(h.check(), []);
  });

  it('(g) a process crash ends its window: a kill of its writer, or an open invocation at its end', () => {
    const killed = new History();
    killed.acquire('w1#1', 'r1', 0, 1, A);
    killed.nemesis(300, 'kill', ['w1'], 'start');
    killed.acquire('w2#1', 'r1', 350, 400, B);
    killed.release('w2#1', 'r1', B.lock, 700);
    const report = killed.check();
    expectOnly(report, []);
    expect(report.stats.faults).toBe(1);

    // No kill recorded: w1's extend never completes, so it becomes info at w1's last event (the invoke).
    const ended = new History();
    ended.acquire('w1#1', 'r1', 0, 1, A);
    ended.add('w1#1', 300, {
      type: 'invoke',
      f: 'extend',
      req: 'x1',
      resource: 'r1',
      lock: A.lock,
      ttl_ms: TTL,
    });
    ended.acquire('w2#1', 'r1', 350, 400, B);
    ended.release('w2#1', 'r1', B.lock, 700);
    const r2 = ended.check();
    expectOnly(r2, []);
    expect(r2.stats.ops['extend:info:CRASHED']).toBe(1);
    // Without the crash the same history overlaps.
    const alive = new History();
    alive.acquire('w1#1', 'r1', 0, 1, A);
    alive.acquire('w2#1', 'r1', 350, 400, B);
    expectOnly(alive.check(), ['S1']);
  });

  it('(h) the fenced store accepts a stale token: S4 invalid', () => {
    const build = (secondAccepted: boolean): History => {
      const h = twoHolders();
      h.storeLog(450, 'ok', 'store_read', B, []);
      h.storeLog(500, 'ok', 'store_write', B, [2]);
      // A's write, sent at 250 inside its lease, reaches the store late.
      h.storeLog(600, secondAccepted ? 'ok' : 'fail', 'store_write', A, [1]);
      return h;
    };
    const refused = build(false).check();
    expectOnly(refused, []);
    expect(refused.checks.S4.stats).toMatchObject({
      accepted: 2,
      refused: 1,
      spurious: 0,
      refusedNotStale: 0,
    });
    const accepted = build(true).check();
    expectOnly(accepted, ['S4']);
    expect(accepted.checks.S4.summary).toBe(
      'the fenced store accepted a write of r1 with token 7 at 0.600 s after accepting token 8',
    );
  });

  it('(i) an OK acquire inside a quorum-lost interval: S6 invalid', () => {
    const build = (okMs: number): History => {
      const h = new History();
      h.voting(0, 1);
      h.acquire('A#1', 'r1', 100, okMs, { ...A, validity: 980 - okMs + 100 });
      h.voting(500, 3);
      h.release('A#1', 'r1', A.lock, 600);
      return h;
    };
    const report = build(101).check();
    expectOnly(report, ['S6']);
    expect(report.checks.S6.summary).toMatch(
      /OK acquire by A#1 .* wholly inside a period with 1 voting node/,
    );
    // Answered after the quorum came back: it may have been granted then.
    expectOnly(build(501).check(), []);
    // A recorder that learns of the quorum's return by polling: the period may have ended before it said so.
    expectOnly(build(460).check(), ['S6']);
    expectOnly(build(460).check({ votingLagMs: 50 }), []);
  });

  it('(j) an assumption-breaking run with no anomaly fails', () => {
    const report = twoHolders().check({ assumptionBreaking: true });
    expectOnly(report, ['expected']);
    expect(report.valid).toBe(false);
    expect(report.checks.expected.summary).toMatch(/did not bite, or the checker is blind/);
  });
});

describe('assumption-breaking runs', () => {
  it('an S1 overlap with tokens in order and the store refusing the stale writer is the expected result', () => {
    const h = new History();
    h.acquire('A#1', 'r1', 0, 1, { ...A, validity: 3_900, ttl: 4_000 });
    h.acquire('B#1', 'r1', 99, 100, { ...B, validity: 3_900, ttl: 4_000 });
    h.storeAdd('B#1', 'fenced', 'r1', B, 2, 110, 120);
    h.storeLog(115, 'ok', 'store_read', B, []);
    h.storeLog(118, 'ok', 'store_write', B, [2]);
    h.storeAdd('A#1', 'fenced', 'r1', A, 1, 130, 140, 'fail');
    h.storeLog(135, 'fail', 'store_read', A, []);
    h.release('B#1', 'r1', B.lock, 200);
    h.release('A#1', 'r1', A.lock, 210);
    h.finalRead(300, 'fenced', [2]);
    const report = h.check({ assumptionBreaking: true });
    expect(report.valid, formatReport(report)).toBe(true);
    expect(report.checks.S1.valid).toBe(false);
    expect(report.checks.S1.notCounted).toBe('expected');
    expect(report.checks.expected.valid).toBe(true);
    expect(formatReport(report)).toContain('[expected in this assumption-breaking run: not counted]');
    // The same history in a normal run is invalid.
    expect(h.check().valid).toBe(false);
  });

  it('an unfenced lost update counts as the expected anomaly; a fenced one never does', () => {
    const build = (store: 'fenced' | 'unfenced'): History => {
      const h = twoHolders();
      h.storeAdd('A#1', store, 'r1', A, 1, 100, 110);
      h.storeAdd('B#1', store, 'r1', B, 2, 450, 460);
      // B's read-modify-write started from a set without A's element: 1 is lost.
      h.finalRead(800, store, [2]);
      return h;
    };
    const unfenced = build('unfenced').check({ assumptionBreaking: true });
    expect(unfenced.valid, formatReport(unfenced)).toBe(true);
    expect(unfenced.checks.S5set).toMatchObject({ valid: false, notCounted: 'expected' });
    expect(unfenced.checks.expected.summary).toContain('1 lost update(s) on the unfenced store');

    const fenced = build('fenced').check({ assumptionBreaking: true });
    expectOnly(fenced, ['S5set', 'expected']);
    expect(fenced.checks.expected.summary).toMatch(/fencing did not hold/);
  });
});

describe('pairing', () => {
  it('an invoke never completed by a process that ended becomes info; an info acquire retires the process', () => {
    const h = twoHolders();
    h.add('C#1', 800, { type: 'invoke', f: 'acquire', req: 'c1', resource: 'r1', ttl_ms: TTL, wait_ms: 0 });
    h.add('C#1', 900, { type: 'info', f: 'lost', resource: 'r9', lock: 'zz', token: '1' });
    const report = h.check();
    expectOnly(report, []);
    expect(report.stats.ops['acquire:info:CRASHED']).toBe(1);
    expect(report.checks.history.stats).toMatchObject({ synthesizedCompletions: 1 });

    // The process keeps going after its info: the history is broken, so nothing can be concluded.
    const broken = twoHolders();
    broken.acquireFails('C#1', 'r1', 800, 810, 'info', 'DEADLINE_EXCEEDED');
    broken.acquireFails('C#1', 'r1', 820, 830);
    const r2 = broken.check();
    expectOnly(r2, [], ['history']);
    expect(r2.valid).toBe('unknown');
    expect(r2.checks.history.summary).toMatch(/C#1 recorded acquire invoke at 0.820 s after it was retired/);
  });

  it('an info acquire retires the process, ending the windows it held', () => {
    const h = new History();
    h.acquire('A#1', 'r1', 0, 1, A);
    h.acquireFails('A#1', 'r2', 100, 200, 'info', 'DEADLINE_EXCEEDED');
    h.acquire('B#1', 'r1', 299, 300, B);
    h.release('B#1', 'r1', B.lock, 400);
    expectOnly(h.check(), []);
  });

  it('a completion without an invoke makes the history unknown', () => {
    const h = twoHolders();
    h.add('C#1', 800, { type: 'ok', f: 'acquire', req: 'nope', resource: 'r1', lock: 'cc', token: '9' });
    const report = h.check();
    expect(report.valid).toBe('unknown');
    expect(report.checks.history.summary).toMatch(/with no open invoke/);
  });
});

describe('S2 honest validity', () => {
  it('flags validity above ttl − drift, an answer after the ttl, and validity ≤ 0', () => {
    const over = new History();
    over.acquire('A#1', 'r1', 0, 1, { ...A, validity: 1_000 - 12 + 3 }); // 2 ms tolerance
    over.release('A#1', 'r1', A.lock, 300);
    const r1 = over.check();
    expectOnly(r1, ['S2']);
    expect(r1.checks.S2.summary).toBe(
      'OK acquire by A#1 at 0.001 s: validity 991 ms > ttl 1000 − drift 12 ms',
    );

    const late = new History();
    late.acquire('A#1', 'r1', 0, 1_000, { ...A, validity: 900 });
    expectOnly(late.check(), ['S2']);

    const zero = new History();
    zero.acquire('A#1', 'r1', 0, 1, { ...A, validity: 0 });
    expectOnly(zero.check(), ['S2']);

    const extend = twoHolders();
    extend.extend('B#1', 'r1', B.lock, B.token, 500, 501, 1_500);
    expectOnly(extend.check(), ['S2']);
  });

  it('bounds a waiting acquire from its answer: the SDK re-sends a late grant and counts from that', () => {
    const build = (validity: number): History => {
      const h = new History();
      h.acquire('A#1', 'r1', 0, 1_500, { ...A, wait: 2_000, validity });
      h.release('A#1', 'r1', A.lock, 1_700);
      return h;
    };
    expectOnly(build(1_500 + 980).check(), []);
    expectOnly(build(1_500 + 995).check(), ['S2']);
  });

  it('counts a grant answered after its own deadline as an empty window, not an overlap', () => {
    const h = new History();
    h.acquire('A#1', 'r1', 0, 200, { ...A, wait: 500, validity: 150 });
    h.acquire('B#1', 'r1', 199, 201, B);
    h.release('B#1', 'r1', B.lock, 400);
    const report = h.check();
    expectOnly(report, []);
    expect(report.checks.S2.stats).toMatchObject({ emptyWindows: 1 });
    expect(report.stats.windows).toBe(1);
  });
});

describe('S3 tokens', () => {
  it('a token given to two lock ids is invalid', () => {
    const h = new History();
    h.acquire('A#1', 'r1', 0, 1, A);
    h.release('A#1', 'r1', A.lock, 300);
    h.acquire('B#1', 'r1', 350, 400, { ...B, token: A.token + 5 });
    h.release('B#1', 'r1', B.lock, 500);
    h.acquire('C#1', 'r1', 550, 600, { lock: 'cccccccc', token: A.token + 5 });
    h.release('C#1', 'r1', 'cccccccc', 700);
    const report = h.check();
    expectOnly(report, ['S3']);
    expect(report.checks.S3.anomalies.map((a) => a.message)).toContainEqual(
      expect.stringContaining('token 12 of r1 was given to two locks'),
    );
  });

  it('an extend or keepalive reporting another token is invalid', () => {
    const extend = twoHolders();
    extend.extend('B#1', 'r1', B.lock, 99, 500, 501, 900);
    const r1 = extend.check();
    expectOnly(r1, ['S3']);
    expect(r1.checks.S3.summary).toMatch(/OK extend by B#1 .* reports token 99, but .* was granted token 8/);

    const keepalive = twoHolders();
    keepalive.keepalive('B#1', 'r1', B.lock, 99, 500, 900);
    expectOnly(keepalive.check(), ['S3']);
  });

  it('tokens of different resources are independent', () => {
    const h = new History();
    h.acquire('A#1', 'r1', 0, 1, { ...A, token: 100 });
    h.release('A#1', 'r1', A.lock, 300);
    h.acquire('B#1', 'r2', 350, 400, { ...B, token: 5 });
    h.release('B#1', 'r2', B.lock, 700);
    expectOnly(h.check(), []);
  });
});

describe('S4 and the set workload', () => {
  it('reads are fenced too: an accepted read below the highest token is invalid', () => {
    const h = twoHolders();
    h.storeLog(450, 'ok', 'store_read', B, []);
    h.storeLog(460, 'ok', 'store_read', A, []);
    expectOnly(h.check(), ['S4']);
  });

  it('reports lost, unexpected and recovered elements for the fenced and unfenced stores apart', () => {
    const h = new History();
    h.acquire('A#1', 'r1', 0, 1, A);
    h.storeAdd('A#1', 'fenced', 'r1', A, 1, 100, 110);
    h.storeAdd('A#1', 'unfenced', 'r1', A, 11, 120, 130);
    h.release('A#1', 'r1', A.lock, 300);
    h.acquire('B#1', 'r1', 350, 400, B);
    h.storeAdd('B#1', 'fenced', 'r1', B, 2, 450, 460);
    h.storeAdd('B#1', 'unfenced', 'r1', B, 12, 465, 468, 'fail');
    // The store did not answer: B's process is retired, and the new one releases the lease.
    h.storeAdd('B#1', 'fenced', 'r1', B, 3, 470, 480, 'info');
    h.release('B#2', 'r1', B.lock, 700);
    h.finalRead(900, 'fenced', [1, 2, 3]);
    h.finalRead(900, 'unfenced', [12]);
    const report = h.check();
    expectOnly(report, ['S5set']);
    expect(report.checks.S5set.stats).toMatchObject({
      fenced: { ok: 2, info: 1, lost: 0, unexpected: 0, recovered: 1 },
      unfenced: { ok: 1, fail: 1, lost: 1, unexpected: 1 },
    });
    expect(report.checks.S5set.anomalies.map((a) => a.message)).toEqual([
      'unfenced r1: element 11 acknowledged to A#1 at 0.130 s (token 7) is missing from the final read at 0.900 s',
      'unfenced r1: element 12 whose add failed (STALE_TOKEN) at 0.468 s is in the final read',
    ]);
  });

  it('a set never read back cannot be judged', () => {
    const h = twoHolders();
    h.storeAdd('A#1', 'fenced', 'r1', A, 1, 100, 110);
    const report = h.check();
    expectOnly(report, [], ['S5set']);
    expect(report.valid).toBe('unknown');
  });
});

describe('client honesty', () => {
  it('a store write after the writer’s own window ended is a client violation', () => {
    const h = new History();
    h.acquire('A#1', 'r1', 0, 1, A); // D = 983
    h.storeAdd('A#1', 'fenced', 'r1', A, 1, 1_200, 1_210, 'fail');
    h.release('A#1', 'r1', A.lock, 1_300);
    h.finalRead(1_500, 'fenced', []);
    const report = h.check();
    expectOnly(report, ['client']);
    expect(report.checks.client.summary).toMatch(
      /A#1 wrote 1 to the fenced store at 1.200 s, 217.0 ms after its lease ended \(deadline/,
    );
    // Reported, but not counted when the scenario asks for it (F8's --no-hold-check worker).
    const ignored = h.check({ ignore: ['client'] });
    expect(ignored.valid).toBe(true);
    expect(ignored.checks.client.notCounted).toBe('ignored');
  });
});

describe('S6 and the quorum timeline', () => {
  it('3 nodes vote until the first voting event; an acquire that straddles the loss is not a violation', () => {
    const h = new History();
    h.acquire('A#1', 'r1', 0, 200, { ...A, validity: 780 });
    h.voting(100, 1);
    h.acquireFails('B#1', 'r1', 150, 160, 'fail', 'UNAVAILABLE');
    h.voting(300, 2);
    h.release('A#1', 'r1', A.lock, 400);
    const report = h.check();
    expectOnly(report, []);
    expect(report.checks.S6.stats).toMatchObject({ quorumLostPeriods: 1 });
    expect(report.checks.L3.stats).toMatchObject({ checked: 1 });
  });

  it('an extend inside a quorum-lost period is invalid; quorum 3 makes 2 voting nodes too few', () => {
    const h = twoHolders();
    h.voting(450, 2);
    h.extend('B#1', 'r1', B.lock, B.token, 500, 501, 900);
    h.voting(650, 3);
    expectOnly(h.check(), []);
    expectOnly(h.check({ quorum: 3 }), ['S6']);
  });
});

describe('liveness', () => {
  it('L4: a resource never acquired again after the final heal is invalid', () => {
    const build = (recovers: boolean): History => {
      const h = twoHolders();
      h.nemesis(1_000, 'blackhole', ['P1'], 'start');
      h.nemesis(2_000, 'blackhole', ['P1'], 'stop');
      for (let i = 0; i < 20; i++) h.acquireFails('probe#1', 'r1', 2_100 + i * 500, 2_150 + i * 500);
      if (recovers) h.acquire('probe#1', 'r1', 12_200, 12_210, { lock: 'pppp', token: 20 });
      else h.acquireFails('probe#1', 'r1', 12_200, 12_210);
      return h;
    };
    const stuck = build(false).check({ recoveryBoundMs: 8_000 });
    expectOnly(stuck, ['L4']);
    expect(stuck.checks.L4.summary).toBe(
      'r1 was never acquired again after the final heal at 2.000 s (21 attempts: ABORTED)',
    );
    const late = build(true).check({ recoveryBoundMs: 8_000 });
    expectOnly(late, ['L4']);
    expect(late.checks.L4.summary).toMatch(/first acquired 10210 ms after the final heal/);
    expectOnly(build(true).check({ recoveryBoundMs: 11_000 }), []);
  });

  it('L4: a history that ends before the bound, or a resource not tried after the heal, is unknown', () => {
    const h = twoHolders();
    h.nemesis(800, 'pause', ['R1'], 'start');
    h.nemesis(900, 'pause', ['R1'], 'stop');
    const report = h.check();
    expectOnly(report, [], ['L4']);
    expect(report.checks.L4.summary).toBe('cannot judge r1 (not tried after the heal)');
  });

  it('L1: in a quiet period, a free resource with waiters must be granted within the bound', () => {
    const h = new History();
    h.acquire('A#1', 'r1', 0, 1, A);
    h.release('A#1', 'r1', A.lock, 300);
    for (let i = 0; i < 10; i++) h.acquireFails('B#1', 'r1', 400 + i * 400, 410 + i * 400);
    h.acquire('B#1', 'r1', 4_400, 4_410, B);
    h.release('B#1', 'r1', B.lock, 4_500);
    const report = h.check();
    expectOnly(report, ['L1']);
    expect(report.checks.L1.summary).toMatch(
      /r1 was free from 0.300 s .* with waiters from 0.400 s, granted only at 4.410 s/,
    );
    // The same wait while a fault is active is not judged.
    h.nemesis(350, 'blackhole', ['P2'], 'start');
    expectOnly(h.check(), []);
  });

  it('L1: waiters never served until the history ends, in a quiet period, are invalid', () => {
    const h = new History();
    h.acquire('A#1', 'r1', 0, 1, A);
    h.release('A#1', 'r1', A.lock, 300);
    for (let i = 0; i < 10; i++) h.acquireFails('B#1', 'r1', 400 + i * 400, 410 + i * 400);
    const report = h.check();
    expectOnly(report, ['L1']);
    expect(report.checks.L1.summary).toMatch(
      /r1 had waiters from 0.400 s after A#1 .* and was never granted/,
    );
    expectOnly(h.check({ liveness: { deadlockBoundMs: 5_000 } }), []);
  });

  it('L3: a call without a quorum that times out instead of failing is invalid', () => {
    const build = (type: 'fail' | 'info', code: string): History => {
      const h = twoHolders();
      h.voting(800, 1);
      h.acquireFails('C#1', 'r1', 900, 1_000, type, code);
      h.voting(5_000, 3);
      return h;
    };
    expectOnly(build('fail', 'UNAVAILABLE').check(), []);
    const report = build('info', 'DEADLINE_EXCEEDED').check();
    expectOnly(report, ['L3']);
    expect(report.checks.L3.summary).toMatch(/ended unknown \(DEADLINE_EXCEEDED\)/);
  });

  it('L2: stable acquires must succeed; refusals do not count', () => {
    const h = new History();
    for (let i = 0; i < 60; i++) {
      const at = i * 100;
      if (i % 10 === 0) h.acquireFails(`w${i}#1`, 'r1', at, at + 5, 'fail', 'UNAVAILABLE');
      else if (i % 10 === 1) h.acquireFails(`w${i}#1`, 'r1', at, at + 5, 'fail', 'ABORTED');
      else {
        const lock = `lock${i}`;
        h.acquire(`w${i}#1`, 'r1', at, at + 1, { lock, token: i });
        h.release(`w${i}#1`, 'r1', lock, at + 50);
      }
    }
    const report = h.check();
    expectOnly(report, ['L2']);
    expect(report.checks.L2.stats).toMatchObject({ ok: 48, failures: 6, refused: 6 });
    expectOnly(h.check({ liveness: { minStableSuccess: 0.85 } }), []);
  });

  it('L6 counts losses with no fault nearby; fatal only when asked', () => {
    const h = twoHolders();
    h.add('B#1', 650, {
      type: 'info',
      f: 'lost',
      resource: 'r1',
      lock: B.lock,
      token: '8',
      error: { code: 'expired' },
    });
    const report = h.check();
    expectOnly(report, []);
    expect(report.checks.L6.stats).toMatchObject({ lostEvents: 1, spurious: 1 });
    expectOnly(h.check({ liveness: { spuriousLossFatal: true } }), ['L6']);
  });
});

describe('report', () => {
  it('a truncated history is unknown even when every check passes', () => {
    const report = twoHolders().check({}, { truncated: 1, seed: 42 });
    expectOnly(report, [], ['history']);
    expect(report.valid).toBe('unknown');
    expect(report.stats.seed).toBe(42);
    expect(formatReport(report)).toMatch(/^history check: UNKNOWN \(.*seed 42\)/);
  });

  it('keeps stats by op and code, latency split by faults, and a JSON-safe shape', () => {
    const h = twoHolders();
    h.nemesis(1_000, 'kill', ['R2'], 'start');
    h.acquire('C#1', 'r1', 1_100, 1_150, { lock: 'cc', token: 9 });
    h.release('C#1', 'r1', 'cc', 1_200);
    h.acquireFails('A#2', 'r1', 1_300, 1_310);
    const report = h.check();
    expect(report.stats.ops).toMatchObject({ 'acquire:ok': 3, 'acquire:fail:ABORTED': 1, 'release:ok': 3 });
    expect(report.stats.latencyMs.duringFaults).toEqual({ count: 1, p50: 50, p99: 50, max: 50 });
    expect(report.stats.latencyMs.outsideFaults.count).toBe(2);
    expect(report.stats.faultTimeline).toEqual([{ s: 1, fault: 'kill', target: ['R2'], phase: 'start' }]);
    expect(JSON.parse(JSON.stringify(report)).valid).toBe(report.valid);
    expect(formatReport(report).split('\n')).toHaveLength(CHECK_NAMES.length + 4);
  });

  it('checks a large history in well under a second per 100 000 events', () => {
    const h = new History();
    for (let i = 0; i < 25_000; i++) {
      const at = i * 10;
      const lock = `l${i}`;
      h.acquire(`w${i % 8}#1`, `r${i % 4}`, at, at + 1, { lock, token: i + 1 });
      h.release(`w${i % 8}#1`, `r${i % 4}`, lock, at + 30);
    }
    const started = performance.now();
    const report = h.check();
    expect(report.valid, formatReport(report)).toBe(true);
    expect(performance.now() - started).toBeLessThan(5_000);
  });
});

describe('chaos/check.ts', () => {
  const run = (args: string[]) =>
    spawnSync(process.execPath, ['--import', 'tsx', 'chaos/check.ts', ...args], {
      cwd: join(import.meta.dirname, '..'),
      encoding: 'utf8',
    });

  /** Writes each writer's events as `<writer>.jsonl`, in seq order, like HistoryWriter. */
  function writeHistory(h: History): string {
    const dir = mkdtempSync(join(tmpdir(), 'redlease-check-'));
    const byWriter = new Map<string, string[]>();
    for (const e of h.events) {
      const lines = byWriter.get(e.writer) ?? [];
      lines.push(JSON.stringify(e));
      byWriter.set(e.writer, lines);
    }
    for (const [writer, lines] of byWriter)
      writeFileSync(join(dir, `${writer}.jsonl`), `${lines.join('\n')}\n`);
    return dir;
  }

  it('exits 0 on a valid history and writes report.json next to it', () => {
    const dir = writeHistory(twoHolders());
    try {
      const result = run([dir]);
      expect(result.status, result.stderr).toBe(0);
      expect(result.stdout).toMatch(/^history check: valid/);
      expect(result.stdout).toContain('S1 mutual exclusion: valid (2 windows');
      const report = JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8')) as Report;
      expect(report.valid).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('exits 1 on an invalid history, 2 on a truncated one or a usage error', () => {
    const h = new History();
    h.acquire('A#1', 'r1', 0, 1, A);
    h.acquire('B#1', 'r1', 499, 500, B);
    const dir = writeHistory(h);
    try {
      const out = join(dir, 'elsewhere.json');
      const invalid = run([dir, '--json', out]);
      expect(invalid.status, invalid.stderr).toBe(1);
      expect(invalid.stdout).toContain('S1 mutual exclusion: INVALID');
      expect(existsSync(out)).toBe(true);
      expect(existsSync(join(dir, 'report.json'))).toBe(false);

      // An assumption-breaking run expects exactly this overlap… but has no clean proof of fencing to fail.
      expect(run([dir, '--assumption-breaking']).status).toBe(0);

      writeFileSync(join(dir, 'w9.jsonl'), '{"t":"12","writer":"w9","se');
      const truncated = run([dir, '--ignore', 'S1']);
      expect(truncated.status).toBe(2);
      expect(truncated.stdout).toContain('truncated: w9.jsonl:1');

      expect(run([]).status).toBe(2);
      expect(run([join(dir, 'missing')]).status).toBe(2);
      expect(run([dir, '--bogus']).status).toBe(2);
      expect(run([dir, '--ignore', 'S9']).status).toBe(2);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
