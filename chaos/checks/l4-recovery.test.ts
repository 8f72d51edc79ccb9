/** L4: after the final heal, every resource is acquired again within the bound. */
import { describe, expect, it } from 'vitest';
import { expectOnly, type History, twoHolders } from './test-history.js';

describe('L4 recovery after the heal', () => {
  it('L4: a resource never acquired again after the final heal is invalid', () => {
    const build = (recovers: boolean): History => {
      const h = twoHolders();
      h.nemesis(1_000, 'blackhole', ['P1'], 'start');
      h.nemesis(2_000, 'blackhole', ['P1'], 'stop');
      for (let i = 0; i < 20; i++) h.acquireFails('probe#1', 'r1', 2_100 + i * 500, 2_150 + i * 500);
      if (recovers) h.acquire('probe#1', 'r1', 12_200, 12_210, { lock: 'pppp', token: 20 });
      else h.acquireFails('probe#1', 'r1', 12_200, 12_210);
      return h;
    };
    const stuck = build(false).check({ recoveryBoundMs: 8_000 });
    expectOnly(stuck, ['L4']);
    expect(stuck.checks.L4.summary).toBe(
      'r1 was never acquired again after the final heal at 2.000 s (21 attempts: ABORTED)',
    );
    const late = build(true).check({ recoveryBoundMs: 8_000 });
    expectOnly(late, ['L4']);
    expect(late.checks.L4.summary).toMatch(/first acquired 10210 ms after the final heal/);
    expectOnly(build(true).check({ recoveryBoundMs: 11_000 }), []);
  });

  it('L4: a history that ends before the bound, or a resource not tried after the heal, is unknown', () => {
    const h = twoHolders();
    h.nemesis(800, 'pause', ['R1'], 'start');
    h.nemesis(900, 'pause', ['R1'], 'stop');
    const report = h.check();
    expectOnly(report, [], ['L4']);
    expect(report.checks.L4.summary).toBe('cannot judge r1 (not tried after the heal)');
  });
});
