/** Client honesty: no store write after the writer’s own lease ended. */
import { describe, expect, it } from 'vitest';
import { A, expectOnly, History } from './test-history.js';

describe('client honesty', () => {
  it('a store write after the writer’s own window ended is a client violation', () => {
    const h = new History();
    h.acquire('A#1', 'r1', 0, 1, A); // D = 983
    h.storeAdd('A#1', 'fenced', 'r1', A, 1, 1_200, 1_210, 'fail');
    h.release('A#1', 'r1', A.lock, 1_300);
    h.finalRead(1_500, 'fenced', []);
    const report = h.check();
    expectOnly(report, ['client']);
    expect(report.checks.client.summary).toMatch(
      /A#1 wrote 1 to the fenced store at 1.200 s, 217.0 ms after its lease ended \(deadline/,
    );
    // Reported, but not counted when the scenario asks for it (F8's --no-hold-check worker).
    const ignored = h.check({ ignore: ['client'] });
    expect(ignored.valid).toBe(true);
    expect(ignored.checks.client.notCounted).toBe('ignored');
  });
});
