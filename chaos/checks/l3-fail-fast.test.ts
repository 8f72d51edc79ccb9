/** L3: without a quorum, calls fail fast and definitely. */
import { describe, expect, it } from 'vitest';
import { expectOnly, type History, twoHolders } from './test-history.js';

describe('L3 fail fast', () => {
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
});
