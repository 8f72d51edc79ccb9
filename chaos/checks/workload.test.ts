/** The workload: a history with less work than the run's minimum is too thin to judge. */
import { describe, expect, it } from 'vitest';
import { A, B, expectOnly, twoHolders } from './test-history.js';

describe('workload', () => {
  it('fewer grants or fenced writes than the minimum make the report unknown, not valid', () => {
    const h = twoHolders();
    // B's own record of its add (not counted: the store's log is) and the fenced store's acceptance of it.
    h.storeAdd('B#1', 'fenced', 'r1', B, 2, 450, 470);
    h.storeLog(455, 'ok', 'store_read', B, []);
    h.storeLog(460, 'ok', 'store_write', B, [2]);
    // A refused write is not an accepted one.
    h.storeLog(480, 'fail', 'store_write', A, [1]);
    h.finalRead(800, 'fenced', [2]);

    const enough = h.check({ minimum: { grants: 2, fencedWrites: 1 } });
    expectOnly(enough, []);
    expect(enough.checks.workload.summary).toBe(
      '2 grants (at least 2), 1 fenced writes accepted (at least 1)',
    );
    expect(enough.checks.workload.stats).toMatchObject({ grants: 2, fencedWrites: 1 });

    const fewGrants = h.check({ minimum: { grants: 3, fencedWrites: 1 } });
    expectOnly(fewGrants, [], ['workload']);
    expect(fewGrants.valid).toBe('unknown');
    expect(fewGrants.checks.workload.summary).toBe('too little work to judge: 2 grants, fewer than 3');

    const fewWrites = h.check({ minimum: { fencedWrites: 2 } });
    expectOnly(fewWrites, [], ['workload']);
    expect(fewWrites.checks.workload.summary).toBe(
      'too little work to judge: 1 fenced writes accepted, fewer than 2',
    );
  });

  it('without a minimum any history is enough', () => {
    const report = twoHolders().check();
    expect(report.checks.workload).toMatchObject({
      valid: true,
      summary: '2 grants, 0 fenced writes accepted',
    });
  });
});
