/** S1 and the belief windows it compares: how a window starts, is extended and ends. */
import { describe, expect, it } from 'vitest';
import { formatReport } from '../checker.js';
import { A, B, expectOnly, History, TTL, twoHolders } from './test-history.js';

describe('S1 mutual exclusion', () => {
  it('a baseline of two holders one after the other is valid', () => {
    const report = twoHolders().check();
    expectOnly(report, []);
    expect(report.valid).toBe(true);
    expect(report.stats.acquisitions).toBe(2);
    expect(report.stats.windows).toBe(2);
    expect(formatReport(report)).toContain('S1 mutual exclusion: valid (2 windows');
  });

  it('two overlapping windows: S1 invalid, with both windows as evidence', () => {
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

  it('windows that touch exactly (E_a == ok_b) are valid, counted as a near miss', () => {
    const h = new History();
    h.acquire('A#1', 'r1', 0, 1, { ...A, validity: 983 });
    h.acquire('B#1', 'r1', 900, 983, B);
    const report = h.check();
    expectOnly(report, []);
    expect(report.checks.S1.stats).toMatchObject({ windows: 2, nearMisses: 1, minGapMs: 0 });
  });

  it('an info acquire by A, then an OK acquire by B, is valid', () => {
    const h = new History();
    h.acquireFails('A#1', 'r1', 0, 2_000, 'info', 'DEADLINE_EXCEEDED');
    h.acquire('B#1', 'r1', 100, 101, B);
    h.release('B#1', 'r1', B.lock, 600);
    // A's writer carries on as a new logical process.
    h.acquire('A#2', 'r1', 2_100, 2_101, { ...A, token: 9 });
    h.release('A#2', 'r1', A.lock, 2_500);
    expectOnly(h.check(), []);
  });

  it('an extend pushes D out, and an overlap inside the extended part is invalid', () => {
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

  it('a release invoke ends the window even when the release completes info', () => {
    const h = new History();
    h.acquire('A#1', 'r1', 0, 1, A);
    h.release('A#1', 'r1', A.lock, 300, 2_000, 'info' as 'ok');
    h.acquire('B#1', 'r1', 350, 400, B);
    h.release('B#1', 'r1', B.lock, 700);
    expectOnly(h.check(), []);
  });

  it('a process crash ends its window: a kill of its writer, or an open invocation at its end', () => {
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
});
