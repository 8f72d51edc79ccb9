/** Pairing invocations with completions, and what an unfinished or retired process means for the history. */
import { describe, expect, it } from 'vitest';
import { A, B, expectOnly, History, TTL, twoHolders } from './test-history.js';

describe('pairing', () => {
  it('an invoke never completed by a process that ended becomes info; an info acquire retires the process', () => {
    const h = twoHolders();
    h.add('C#1', 800, { type: 'invoke', f: 'acquire', req: 'c1', resource: 'r1', ttl_ms: TTL, wait_ms: 0 });
    h.add('C#1', 900, { type: 'info', f: 'lost', resource: 'r9', lock: 'zz', token: '1' });
    const report = h.check();
    expectOnly(report, []);
    expect(report.stats.ops['acquire:info:CRASHED']).toBe(1);
    expect(report.checks.history.stats).toMatchObject({ synthesizedCompletions: 1 });

    // The process keeps going after its info: the history is broken, so nothing can be concluded.
    const broken = twoHolders();
    broken.acquireFails('C#1', 'r1', 800, 810, 'info', 'DEADLINE_EXCEEDED');
    broken.acquireFails('C#1', 'r1', 820, 830);
    const r2 = broken.check();
    expectOnly(r2, [], ['history']);
    expect(r2.valid).toBe('unknown');
    expect(r2.checks.history.summary).toMatch(/C#1 recorded acquire invoke at 0.820 s after it was retired/);
  });

  it('an info acquire retires the process, ending the windows it held', () => {
    const h = new History();
    h.acquire('A#1', 'r1', 0, 1, A);
    h.acquireFails('A#1', 'r2', 100, 200, 'info', 'DEADLINE_EXCEEDED');
    h.acquire('B#1', 'r1', 299, 300, B);
    h.release('B#1', 'r1', B.lock, 400);
    expectOnly(h.check(), []);
  });

  it('a completion without an invoke makes the history unknown', () => {
    const h = twoHolders();
    h.add('C#1', 800, { type: 'ok', f: 'acquire', req: 'nope', resource: 'r1', lock: 'cc', token: '9' });
    const report = h.check();
    expect(report.valid).toBe('unknown');
    expect(report.checks.history.summary).toMatch(/with no open invoke/);
  });
});
