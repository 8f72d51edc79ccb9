// The bench report's "waiting for a CPU" part: a table under each uncontended scenario, and its explanation in
// the header, only when the runs measured it (results written before it was, re-rendered, show neither).
import { describe, expect, it } from 'vitest';
import type { BenchOptions } from './options.js';
import { renderReport } from './report.js';
import type { BenchResults } from './results.js';
import type { UncontendedResult } from './scenarios/uncontended.js';

function run(queued: boolean): UncontendedResult {
  return {
    cycles: 1_000,
    cyclesPerSecond: 100,
    p50Ms: 1,
    p99Ms: 2,
    maxMs: 3,
    errors: 0,
    cpuCores: { server: 0.5, redis: 0.2, bench: 0.3, machine: 1.1 },
    ...(queued && { queuedCores: { server: 0.12, redis: 0.34, bench: 0.05, machineIdle: 0.78 } }),
  };
}

function results(queued: boolean): BenchResults {
  return {
    meta: {
      startedAt: '2026-11-29T00:00:00.000Z',
      finishedAt: '2026-11-29T00:01:00.000Z',
      commit: 'abc1234 a commit',
      uncommitted: [],
      node: '20.20.2',
      cpus: 2,
      cpuModel: 'a CPU',
      versions: {},
      options: {
        runs: 1,
        seconds: 10,
        warmupSeconds: 1,
        ttlMs: 10_000,
        serverBuild: 'compiled',
        serverLogLevel: 'warn',
      } as BenchOptions,
      interrupted: false,
    },
    scenarios: [
      {
        scenario: 'uncontended-1',
        loops: 1,
        systems: [{ system: 'redlease-session', runs: [run(queued)], failures: [] }],
      },
    ],
    targets: [],
    serverWarnings: [],
  };
}

describe('the report', () => {
  it('shows how long the processes waited for a CPU when the runs measured it', () => {
    const text = renderReport(results(true), 'markdown');
    expect(text).toContain("- Waiting for a CPU: cores' worth of time");
    expect(text).toContain('| system | service queued | Redis queued | bench queued | machine idle |');
    expect(text).toContain('| redlease-session | 0.12 | 0.34 | 0.05 | 0.78 |');
  });

  it('leaves it out for results written before it was measured', () => {
    const text = renderReport(results(false), 'markdown');
    expect(text).not.toContain('Waiting for a CPU');
    expect(text).not.toContain('queued');
    expect(text).toContain('| redlease-session | 100 |');
  });
});
