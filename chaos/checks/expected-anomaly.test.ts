/** Assumption-breaking runs: the expected anomaly must be found, and fencing must hold. */
import { describe, expect, it } from 'vitest';
import { formatReport } from '../checker.js';
import { A, B, expectOnly, History, twoHolders } from './test-history.js';

describe('assumption-breaking runs', () => {
  it('an assumption-breaking run with no anomaly fails', () => {
    const report = twoHolders().check({ assumptionBreaking: true });
    expectOnly(report, ['expected']);
    expect(report.valid).toBe(false);
    expect(report.checks.expected.summary).toMatch(/did not bite, or the checker is blind/);
  });

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
