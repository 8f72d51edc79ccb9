/** S4: the fenced store's own log never accepts a lower token after a higher one. */
import { describe, expect, it } from 'vitest';
import { A, B, expectOnly, type History, twoHolders } from './test-history.js';

describe('S4 fenced store', () => {
  it('the fenced store accepts a stale token: S4 invalid', () => {
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

  it('reads are fenced too: an accepted read below the highest token is invalid', () => {
    const h = twoHolders();
    h.storeLog(450, 'ok', 'store_read', B, []);
    h.storeLog(460, 'ok', 'store_read', A, []);
    expectOnly(h.check(), ['S4']);
  });
});
