// `npm run bench` itself, as a smoke check: a short run of two scenarios without etcd (node-redlock needs no
// install) must start everything, measure every system, print its tables, write JSON results of the documented
// shape with positive numbers, and leave nothing running. Not a performance test: no speed is asserted.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import type { BenchResults } from '../bench/results.js';
import type { ContendedResult } from '../bench/scenarios/contended.js';
import type { UncontendedResult } from '../bench/scenarios/uncontended.js';

/** Runs the bench to its end (SIGKILL after `timeoutMs`: its children die with it); its exit and output. */
async function bench(args: readonly string[], timeoutMs = 50_000) {
  const child = spawn(process.execPath, ['--import', 'tsx', 'bench/main.ts', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const [code] = (await once(child, 'close')) as [number | null];
  clearTimeout(timer);
  return { code, stdout, stderr };
}

describe('npm run bench', () => {
  it('runs uncontended-1 and contended-16 and writes results of the documented shape', {
    timeout: 60_000,
  }, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'redlease-bench-test-'));
    onTestFinished(() => rm(dir, { recursive: true, force: true }));
    const out = join(dir, 'results.json');
    const run = await bench([
      '--scenario',
      'uncontended-1,contended-16',
      '--runs',
      '1',
      '--seconds',
      '1',
      '--warmup-seconds',
      '0.2',
      // Bounds node-redlock's retry window, so a stalled run drains quickly.
      '--wait-ms',
      '1000',
      '--systems',
      'redlease,redlease-sdk,redlease-session,node-redlock,grpc-echo,grpc-echo-stream',
      '--out',
      out,
    ]);
    expect(run.code, `${run.stdout}\n${run.stderr}`).toBe(0);
    // Progress on stderr (plain lines: not a terminal), tables on stdout.
    expect(run.stderr).toContain('contended-16 run 1/1 · node-redlock');
    expect(run.stdout).toContain('uncontended-1: 1 client');
    expect(run.stdout).toMatch(/target\s+system\s+measured\s+verdict/);

    const results = JSON.parse(await readFile(out, 'utf8')) as BenchResults;
    expect(results.meta.options.runs).toBe(1);
    expect(results.meta.commit).not.toBe('');
    expect(results.scenarios.map((s) => s.scenario)).toEqual(['uncontended-1', 'contended-16']);

    const [uncontended, contended] = results.scenarios;
    expect(uncontended?.systems.map((s) => s.system)).toEqual([
      'redlease',
      'redlease-sdk',
      'redlease-session',
      'node-redlock',
      'grpc-echo',
      'grpc-echo-stream',
    ]);
    for (const system of uncontended?.systems ?? []) {
      expect(system.failures, system.system).toEqual([]);
      const run = system.runs[0] as UncontendedResult;
      expect(run.cycles, system.system).toBeGreaterThan(0);
      expect(run.cyclesPerSecond).toBeGreaterThan(0);
      expect(run.p50Ms).toBeGreaterThan(0);
      expect(run.p99Ms).toBeGreaterThanOrEqual(run.p50Ms);
      expect(run.errors, run.firstError).toBe(0);
      expect(run.cpuCores.bench).toBeGreaterThan(0);
    }

    expect(run.stdout).toContain('grpc-js stream echo ceiling:');

    // The echo ceilings have no lock to contend for.
    expect(contended?.systems.map((s) => s.system)).toEqual([
      'redlease',
      'redlease-sdk',
      'redlease-session',
      'node-redlock',
    ]);
    for (const system of contended?.systems ?? []) {
      expect(system.failures, system.system).toEqual([]);
      const run = system.runs[0] as ContendedResult;
      expect(run.shares).toHaveLength(16);
      expect(run.jainIndex).toBeGreaterThan(0);
      expect(run.jainIndex).toBeLessThanOrEqual(1);
      expect(run.longestGapMs).toBeGreaterThan(0);
      expect(run.errors, run.firstError).toBe(0);
      expect(run.overlaps, 'a grant before the previous holder released').toBe(0);
      if (system.system === 'node-redlock') {
        // A split vote can leave node-redlock stalled for its whole retry window (longer than this 1 s run):
        // then there are no grants, and the whole measured window is one gap (a stall counts only gaps > 1 s,
        // which a 1 s window cannot hold).
        if (run.grants === 0) expect(run.longestGapMs).toBeGreaterThanOrEqual(900);
      } else {
        // A FIFO queue hands over at every release, so there are grants and hand-offs to measure.
        expect(run.grants, system.system).toBeGreaterThan(0);
        expect(run.shares.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 6);
        expect(run.handoffs).toBeGreaterThan(0);
        expect(run.handoffP50Ms).toBeGreaterThanOrEqual(0);
      }
    }

    // The targets are judged (those against etcd are n/a without --peers), never thrown away.
    expect(results.targets.length).toBeGreaterThan(0);
    expect(results.targets.find((t) => t.target === "cycle p50 ≤ etcd's")?.pass).toBeUndefined();
  });

  it('documents every flag in --help and refuses unknown ones', async () => {
    const help = await bench(['--help']);
    expect(help.code).toBe(0);
    for (const flag of [
      '--scenario',
      '--runs',
      '--seconds',
      '--peers',
      '--out',
      '--server-log-level',
      '--keepalive-seconds',
    ]) {
      expect(help.stdout).toContain(flag);
    }
    const wrong = await bench(['--scenario', 'nope']);
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toContain('--scenario: unknown value "nope"');
  });
});
