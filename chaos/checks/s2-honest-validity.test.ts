/** S2: the validity a grant or renewal promises, against the ttl asked for. */
import { describe, expect, it } from 'vitest';
import { A, B, expectOnly, History, twoHolders } from './test-history.js';

describe('S2 honest validity', () => {
  it('flags validity above ttl − drift, an answer after the ttl, and validity ≤ 0', () => {
    const over = new History();
    over.acquire('A#1', 'r1', 0, 1, { ...A, validity: 1_000 - 12 + 3 }); // 2 ms tolerance
    over.release('A#1', 'r1', A.lock, 300);
    const r1 = over.check();
    expectOnly(r1, ['S2']);
    expect(r1.checks.S2.summary).toBe(
      'OK acquire by A#1 at 0.001 s: validity 991 ms > ttl 1000 − drift 12 ms',
    );

    const late = new History();
    late.acquire('A#1', 'r1', 0, 1_000, { ...A, validity: 900 });
    expectOnly(late.check(), ['S2']);

    const zero = new History();
    zero.acquire('A#1', 'r1', 0, 1, { ...A, validity: 0 });
    expectOnly(zero.check(), ['S2']);

    const extend = twoHolders();
    extend.extend('B#1', 'r1', B.lock, B.token, 500, 501, 1_500);
    expectOnly(extend.check(), ['S2']);
  });

  it('bounds a waiting acquire from its answer: the SDK re-sends a late grant and counts from that', () => {
    const build = (validity: number): History => {
      const h = new History();
      h.acquire('A#1', 'r1', 0, 1_500, { ...A, wait: 2_000, validity });
      h.release('A#1', 'r1', A.lock, 1_700);
      return h;
    };
    expectOnly(build(1_500 + 980).check(), []);
    expectOnly(build(1_500 + 995).check(), ['S2']);
  });

  it('counts a grant answered after its own deadline as an empty window, not an overlap', () => {
    const h = new History();
    h.acquire('A#1', 'r1', 0, 200, { ...A, wait: 500, validity: 150 });
    h.acquire('B#1', 'r1', 199, 201, B);
    h.release('B#1', 'r1', B.lock, 400);
    const report = h.check();
    expectOnly(report, []);
    expect(report.checks.S2.stats).toMatchObject({ emptyWindows: 1 });
    expect(report.stats.windows).toBe(1);
  });
});
