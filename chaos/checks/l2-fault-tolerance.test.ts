/** L2: acquires in stable periods succeed, judged only on enough of them. */
import { describe, expect, it } from 'vitest';
import { checkHistory } from '../checker.js';
import { expectOnly, History, twoHolders } from './test-history.js';

/** `n` acquires, one after the other, 100 ms apart; one for which `fails(i)` names a code fails with it. */
function acquires(n: number, fails: (i: number) => string | undefined = () => undefined): History {
  const h = new History();
  for (let i = 0; i < n; i++) {
    const at = i * 100;
    const code = fails(i);
    if (code) h.acquireFails(`w${i}#1`, 'r1', at, at + 5, 'fail', code);
    else {
      const lock = `lock${i}`;
      h.acquire(`w${i}#1`, 'r1', at, at + 1, { lock, token: i });
      h.release(`w${i}#1`, 'r1', lock, at + 50);
    }
  }
  return h;
}

describe('L2 fault tolerance', () => {
  it('L2: stable acquires must succeed; refusals do not count', () => {
    const h = acquires(60, (i) => (i % 10 === 0 ? 'UNAVAILABLE' : i % 10 === 1 ? 'ABORTED' : undefined));
    const report = h.check({ liveness: { minStableSuccess: 0.99 } });
    expectOnly(report, ['L2']);
    expect(report.checks.L2.stats).toMatchObject({ ok: 48, failures: 6, refused: 6 });
    expectOnly(h.check({ liveness: { minStableSuccess: 0.85 } }), []);
    // The same with the checker's own defaults (99 %, judged from 50 stable acquires).
    expect(checkHistory(h.events).checks.L2.valid).toBe(false);
  });

  it('L2: fewer stable acquires than it needs leave L2 and the report unknown, not valid', () => {
    const thin = checkHistory(twoHolders().events);
    expect(thin.checks.L2.valid).toBe('unknown');
    expect(thin.checks.L2.summary).toBe(
      '2 stable acquires, 100.00 % succeeded (under 50: too few to judge), p99 50 ms',
    );
    expect(thin.valid).toBe('unknown');

    expect(checkHistory(acquires(49).events).checks.L2.valid).toBe('unknown');
    const enough = checkHistory(acquires(50).events);
    expect(enough.checks.L2.valid).toBe(true);
    expect(enough.valid).toBe(true);
    // Failures among too few acquires are no verdict either way.
    const failing = acquires(20, (i) => (i % 2 ? 'UNAVAILABLE' : undefined));
    expect(checkHistory(failing.events).checks.L2.valid).toBe('unknown');
    expect(checkHistory(failing.events, { liveness: { minStableSamples: 20 } }).checks.L2.valid).toBe(false);
  });
});
