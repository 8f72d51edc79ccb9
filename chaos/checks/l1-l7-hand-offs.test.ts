/** L1: a free resource with waiters is handed on within the bound in quiet periods. */
import { describe, expect, it } from 'vitest';
import { A, B, expectOnly, History } from './test-history.js';

describe('L1 deadlock freedom', () => {
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
});
