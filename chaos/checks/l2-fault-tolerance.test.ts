/** L2: acquires in stable periods succeed. */
import { describe, expect, it } from 'vitest';
import { expectOnly, History } from './test-history.js';

describe('L2 fault tolerance', () => {
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
});
