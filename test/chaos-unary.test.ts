/**
 * The workers' SDK on unary calls (`transport: 'unary'`; every other chaos test runs the SDK's default, the
 * Session stream) through the faults that hit the link to the server hardest: the server crashing and restarting
 * (F17), the links between workers and server cut (F18), and the server paused with operations in flight (F7).
 * The history checker judges them as it judges the Session stream.
 */
import { describe, expect, it } from 'vitest';
import { chaos } from './support/chaos.js';

/** Every worker that finished says which transport its SDK used: all of them unary calls. */
function allUnary(done: Record<string, unknown>[]): void {
  expect(done.length).toBeGreaterThan(0);
  for (const line of done) expect(line.transport, String(line.worker)).toBe('unary');
}

describe('chaos: the SDK on unary calls', { timeout: 60_000 }, () => {
  it('F7 (server paused with operations in flight): no grant answered with expired validity', async () => {
    const { report, workersDone } = await chaos('F7', 1, 'unary');
    expect(report.valid).toBe(true);
    allUnary(workersDone);
    expect(report.checks.S1.valid).toBe(true);
    expect(report.checks.S2.valid).toBe(true);
  });

  it('F17 (server crashes and restarts while locks are held): valid, tokens stay monotonic', async () => {
    const { report, workersDone } = await chaos('F17', 1, 'unary');
    expect(report.valid).toBe(true);
    allUnary(workersDone);
    expect(report.checks.S3.valid).toBe(true);
  });

  it('F18 (links between workers and server cut for 2 × ttl, then 0.5 × ttl): valid', async () => {
    const { report, workersDone } = await chaos('F18', 1, 'unary');
    expect(report.valid).toBe(true);
    allUnary(workersDone);
  });
});
