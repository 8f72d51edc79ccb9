/** L6: leases lost with no fault nearby are counted, and fatal only when asked. */
import { describe, expect, it } from 'vitest';
import { B, expectOnly, twoHolders } from './test-history.js';

describe('L6 no spurious loss', () => {
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
