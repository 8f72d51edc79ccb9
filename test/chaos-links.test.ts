/**
 * Faults on the links between the server and the nodes (the fault proxy; ids in docs/chaos.md), with worker
 * processes recording a history that the checker judges (S1–S6, L1–L4).
 */
import { describe, expect, it } from 'vitest';
import { chaos } from './support/chaos.js';

describe('chaos: link faults', { timeout: 60_000 }, () => {
  it('F9: the server cut from one node (blackhole, then reset, then refuse)', async () => {
    const { report } = await chaos('F9');
    expect(report.valid).toBe(true);
    // Granted while a node was cut off.
    expect(report.stats.latencyMs.duringFaults.count).toBeGreaterThan(0);
  });

  it('F10: the server cut from two nodes: calls fail fast (timeouts, not hangs), nothing granted', async () => {
    const { report } = await chaos('F10');
    expect(report.valid).toBe(true);
    expect((report.checks.L3.stats as { checked: number }).checked).toBeGreaterThan(0);
    expect(report.checks.S6.valid).toBe(true);
  });

  it('F11: requests applied, replies lost on one node: no phantom grant, the resource is free again', async () => {
    const { report } = await chaos('F11');
    expect(report.valid).toBe(true);
    expect(report.checks.L4.valid).toBe(true);
  });

  it('F12: 0–300 ms latency on every node link with a 1 s ttl: validity stays honest', async () => {
    const { report } = await chaos('F12');
    expect(report.valid).toBe(true);
    expect(report.checks.S2.valid).toBe(true);
  });

  it('F13: flapping partitions', async () => {
    const { report } = await chaos('F13');
    expect(report.valid).toBe(true);
    expect(report.stats.faults).toBeGreaterThan(5);
  });
});
