/** The whole report: validity over every check, its figures and text, and how fast a large history checks. */
import { describe, expect, it } from 'vitest';
import { CHECK_NAMES, formatReport } from './checker.js';
import { expectOnly, History, twoHolders } from './checks/test-history.js';

describe('report', () => {
  it('a truncated history is unknown even when every check passes', () => {
    const report = twoHolders().check({}, { truncated: 1, seed: 42 });
    expectOnly(report, [], ['history']);
    expect(report.valid).toBe('unknown');
    expect(report.stats.seed).toBe(42);
    expect(formatReport(report)).toMatch(/^history check: UNKNOWN \(.*seed 42\)/);
  });

  it('keeps stats by op and code, latency split by faults, and a JSON-safe shape', () => {
    const h = twoHolders();
    h.nemesis(1_000, 'kill', ['R2'], 'start');
    h.acquire('C#1', 'r1', 1_100, 1_150, { lock: 'cc', token: 9 });
    h.release('C#1', 'r1', 'cc', 1_200);
    h.acquireFails('A#2', 'r1', 1_300, 1_310);
    const report = h.check();
    expect(report.stats.ops).toMatchObject({ 'acquire:ok': 3, 'acquire:fail:ABORTED': 1, 'release:ok': 3 });
    expect(report.stats.latencyMs.duringFaults).toEqual({ count: 1, p50: 50, p99: 50, max: 50 });
    expect(report.stats.latencyMs.outsideFaults.count).toBe(2);
    expect(report.stats.faultTimeline).toEqual([{ s: 1, fault: 'kill', target: ['R2'], phase: 'start' }]);
    expect(JSON.parse(JSON.stringify(report)).valid).toBe(report.valid);
    expect(formatReport(report).split('\n')).toHaveLength(CHECK_NAMES.length + 4);
  });

  it('checks a large history in well under a second per 100 000 events', () => {
    const h = new History();
    for (let i = 0; i < 25_000; i++) {
      const at = i * 10;
      const lock = `l${i}`;
      h.acquire(`w${i % 8}#1`, `r${i % 4}`, at, at + 1, { lock, token: i + 1 });
      h.release(`w${i % 8}#1`, `r${i % 4}`, lock, at + 30);
    }
    const started = performance.now();
    const report = h.check();
    expect(report.valid, formatReport(report)).toBe(true);
    expect(performance.now() - started).toBeLessThan(5_000);
  });
});
