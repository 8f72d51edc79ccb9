/**
 * The baseline and faults of the server and worker processes (ids in docs/chaos.md), with worker processes
 * recording a history that the checker judges (S1–S6, L1–L4).
 */
import { describe, expect, it } from 'vitest';
import { chaos } from './support/chaos.js';

describe('chaos: processes', { timeout: 60_000 }, () => {
  it('F1: no faults, heavy contention: valid, no lost update fenced or not, no spurious loss', async () => {
    const { report } = await chaos('F1');
    expect(report.valid).toBe(true);
    expect(report.checks.S5set.summary).toMatch(/fenced: [1-9]\d* acknowledged, 0 lost/);
    expect(report.checks.S5set.summary).toMatch(/unfenced: [1-9]\d* acknowledged, 0 lost/);
    expect(report.stats.ops['lost:info:expired'] ?? 0).toBe(0);
  });

  it('F7: the server paused for 2 × ttl with requests in flight: no grant answered with expired validity', async () => {
    const { report } = await chaos('F7');
    expect(report.valid).toBe(true);
    expect(report.checks.S2.valid).toBe(true);
    expect(report.checks.S1.valid).toBe(true);
  });

  it('F17: the server crashes and restarts while locks are held', async () => {
    const { report } = await chaos('F17');
    expect(report.valid).toBe(true);
    expect(report.checks.S3.valid).toBe(true);
  });

  it('F18: KeepAlive streams cut for 2 × ttl, then 0.5 × ttl', async () => {
    const { report } = await chaos('F18');
    expect(report.valid).toBe(true);
  });

  it('F19: a worker killed while holding, another stopped with SIGTERM', async () => {
    const { report, facts } = await chaos('F19');
    expect(report.valid).toBe(true);
    expect(facts.w2Exit).toBe(0);
    expect(report.checks.L1.valid).toBe(true);
  });
});
