/** The set workload: acknowledged adds must be in the final read, per store. */
import { describe, expect, it } from 'vitest';
import { A, B, expectOnly, History, twoHolders } from './test-history.js';

describe('the set workload', () => {
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
