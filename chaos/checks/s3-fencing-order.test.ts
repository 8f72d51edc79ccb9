/** S3: fencing tokens grow from grant to grant, one token per lock. */
import { describe, expect, it } from 'vitest';
import { A, B, expectOnly, History, twoHolders } from './test-history.js';

describe('S3 fencing-token order', () => {
  it('a token decreasing across disjoint windows: S3 invalid', () => {
    const h = new History();
    h.acquire('A#1', 'r1', 0, 1, { ...A, token: 10 });
    h.release('A#1', 'r1', A.lock, 300);
    h.acquire('B#1', 'r1', 350, 400, { ...B, token: 9 });
    h.release('B#1', 'r1', B.lock, 700);
    const report = h.check();
    expectOnly(report, ['S3']);
    expect(report.checks.S3.summary).toMatch(
      /B#1 lock bbbbbbbb token 9 .* has a token not above token 10 of A#1/,
    );
  });

  it('a token given to two lock ids is invalid', () => {
    const h = new History();
    h.acquire('A#1', 'r1', 0, 1, A);
    h.release('A#1', 'r1', A.lock, 300);
    h.acquire('B#1', 'r1', 350, 400, { ...B, token: A.token + 5 });
    h.release('B#1', 'r1', B.lock, 500);
    h.acquire('C#1', 'r1', 550, 600, { lock: 'cccccccc', token: A.token + 5 });
    h.release('C#1', 'r1', 'cccccccc', 700);
    const report = h.check();
    expectOnly(report, ['S3']);
    expect(report.checks.S3.anomalies.map((a) => a.message)).toContainEqual(
      expect.stringContaining('token 12 of r1 was given to two locks'),
    );
  });

  it('an extend or keepalive reporting another token is invalid', () => {
    const extend = twoHolders();
    extend.extend('B#1', 'r1', B.lock, 99, 500, 501, 900);
    const r1 = extend.check();
    expectOnly(r1, ['S3']);
    expect(r1.checks.S3.summary).toMatch(/OK extend by B#1 .* reports token 99, but .* was granted token 8/);

    const keepalive = twoHolders();
    keepalive.keepalive('B#1', 'r1', B.lock, 99, 500, 900);
    expectOnly(keepalive.check(), ['S3']);
  });

  it('tokens of different resources are independent', () => {
    const h = new History();
    h.acquire('A#1', 'r1', 0, 1, { ...A, token: 100 });
    h.release('A#1', 'r1', A.lock, 300);
    h.acquire('B#1', 'r2', 350, 400, { ...B, token: 5 });
    h.release('B#1', 'r2', B.lock, 700);
    expectOnly(h.check(), []);
  });
});
