/** S6 and the quorum timeline: no grant while fewer than a quorum vote. */
import { describe, expect, it } from 'vitest';
import { A, B, expectOnly, History, twoHolders } from './test-history.js';

describe('S6 no grant without quorum', () => {
  it('an OK acquire inside a quorum-lost interval: S6 invalid', () => {
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
