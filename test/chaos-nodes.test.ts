/**
 * Redis node faults (ids in docs/chaos.md), with worker processes recording a history that the checker judges
 * (S1–S6, L1–L4). Each scenario runs for seconds with a fixed seed; `npm run chaos` runs them longer.
 */
import { describe, expect, it } from 'vitest';
import { chaos } from './support/chaos.js';

describe('chaos: Redis node faults', { timeout: 60_000 }, () => {
  it('F2: one node crashes and stays down; locks are still granted, extended and released', async () => {
    const { report } = await chaos('F2');
    expect(report.valid).toBe(true);
    expect(report.stats.ops['acquire:ok']).toBeGreaterThan(10);
    // Granted while the node was down (it stays down until the workers are done).
    expect(report.stats.latencyMs.duringFaults.count).toBeGreaterThan(0);
  });

  it('F3: two nodes down: every call fails fast with UNAVAILABLE and no grant; service returns after', async () => {
    const { report } = await chaos('F3');
    expect(report.valid).toBe(true);
    const l3 = report.checks.L3.stats as { checked: number; codes: Record<string, number> };
    expect(l3.checked).toBeGreaterThan(0);
    expect(Object.keys(l3.codes)).toEqual(['UNAVAILABLE']);
    expect(report.checks.S6.valid).toBe(true);
    expect(report.checks.L4.valid).toBe(true);
  });

  it('F6: a node paused for 30 ms, then for 3 × ttl', async () => {
    const { report } = await chaos('F6');
    expect(report.valid).toBe(true);
    expect(report.stats.faults).toBeGreaterThanOrEqual(6);
  });

  it('F21: all three nodes restart empty: nothing granted during the restart quarantine, tokens keep growing', async () => {
    const { report } = await chaos('F21');
    expect(report.valid).toBe(true);
    expect(report.checks.S3.valid).toBe(true);
    expect(report.checks.S6.valid).toBe(true);
  });
});
