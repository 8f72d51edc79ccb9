/**
 * The lab's k6 scripts (k6/lock-contention.js, k6/redis-failure.js) and their twins (k6/twin/): statically, that
 * each script and its twin read the same profile and use the same metrics and checks; and for real, the twins run
 * as `npm run k6` runs them (no k6 here) against a real server on three real Redis nodes, the failure one with
 * nodes stopped mid-run. Stages are shortened with k6's own --stage flag; each run is bounded by them.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { SCENARIOS } from '../k6/twin/scenarios.js';
import { ScriptRun } from './support/demo.js';
import { scrape } from './support/prometheus.js';
import { startTestServer, type TestServer, waitFor } from './support/server.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const SCRIPTS = ['lock-contention', 'redis-failure'] as const;
/** A run: its stages, plus the twin's start-up and summary; the graceful stop is not reached by these scenarios. */
const RUN_TIMEOUT_MS = 60_000;

const read = (path: string): string => readFileSync(`${ROOT}${path}`, 'utf8');

/** Names of the custom metrics (`new Counter('x')`) and the checks (`'name': …` inside check) of a source. */
function surface(source: string): { metrics: string[]; checks: string[] } {
  const metrics = [...source.matchAll(/new (?:Counter|Rate|Trend)\('([a-z_]+)'/g)].map((m) => m[1]!);
  const twinMetrics = [...source.matchAll(/metrics\.get\('(lock_[a-z_]+)'/g)].map((m) => m[1]!);
  const checks = [...source.matchAll(/'([a-z0-9 ]+: [^']+|a 503 [^']+)':/g)].map((m) => m[1]!);
  return { metrics: [...new Set([...metrics, ...twinMetrics])].sort(), checks: [...new Set(checks)].sort() };
}

/** Runs the twin (K6_BUILTIN=1: even where k6 is installed) against `t`'s HTTP port. */
function runTwin(t: TestServer, script: string, stages: string[]): ScriptRun {
  return new ScriptRun('k6/run.ts', ['run', ...stages.flatMap((s) => ['--stage', s]), `k6/${script}.js`], {
    K6_BUILTIN: '1',
    BASE_URL: `http://127.0.0.1:${t.server.httpPort}`,
  });
}

async function counter(t: TestServer, name: string, labels: Record<string, string>): Promise<number> {
  return (await scrape(t.server.httpPort)).metrics.value(name, labels) ?? 0;
}

/** The lines of the twin's summary that judged thresholds. */
const thresholdLines = (stdout: string): string[] =>
  stdout.split('\n').filter((l) => /^ {4}[✓✗] \S+ +'/.test(l));

describe('k6 scripts and their twins', () => {
  it.each(SCRIPTS)(
    '%s.js and its twin read %s.json for stages and thresholds, with the same metrics and checks',
    (name) => {
      const script = read(`k6/${name}.js`);
      expect(script).toContain(`open('./${name}.json')`);
      expect(script).toMatch(/stages: profile\.stages,\s*thresholds: profile\.thresholds/);
      const profile = JSON.parse(read(`k6/${name}.json`)) as { stages: unknown[]; thresholds: object };
      expect(profile.stages.length).toBeGreaterThan(0);
      expect(Object.keys(profile.thresholds).length).toBeGreaterThan(0);
      expect(Object.keys(SCENARIOS)).toContain(`${name}.js`);
      const twin = read('k6/twin/scenarios.ts');
      const part = twin.slice(
        twin.indexOf(`const ${name === 'lock-contention' ? 'lockContention' : 'redisFailure'}`),
      );
      const scriptSurface = surface(script);
      const twinSurface = surface(part.slice(0, part.indexOf('\n};\n')));
      expect(twinSurface, 'the twin of the script').toEqual(scriptSurface);
      expect(scriptSurface.checks.length).toBeGreaterThan(0);
    },
  );
});

describe('the lock-contention twin against a real server', () => {
  it(
    'ramps up, tags acquires by outcome and mode, holds its thresholds, and the server sees the contention',
    async () => {
      const t = await startTestServer();
      const run = runTwin(t, 'lock-contention', ['2s:4', '4s:12', '1s:0']);
      const exit = await run.finish(RUN_TIMEOUT_MS);
      expect(exit, run.dump()).toEqual({ code: 0, signal: null });
      expect(run.stdout).toContain('7 s in 3 stages (2s:4 4s:12 1s:0), up to 12 VUs');
      const thresholds = thresholdLines(run.stdout);
      expect(thresholds.length, run.stdout).toBe(6);
      expect(
        thresholds.filter((l) => l.includes('✗')),
        run.stdout,
      ).toEqual([]);
      // Waiters got the lock after queueing; one-shot tries were refused while it was held.
      expect(run.stdout).toMatch(/^ {6}\{outcome:acquired,mode:wait\} +: [1-9]\d* /m);
      expect(run.stdout).toMatch(/^ {6}\{outcome:held,mode:try\} +: [1-9]\d* /m);
      expect(await counter(t, 'redlease_acquisitions_total', { result: 'held' })).toBeGreaterThan(0);
      expect(await counter(t, 'redlease_wait_seconds_count', { outcome: 'acquired' })).toBeGreaterThan(0);
      expect(await counter(t, 'redlease_hold_seconds_count', { end: 'released' })).toBeGreaterThan(0);
    },
    RUN_TIMEOUT_MS + 10_000,
  );
});

describe('the redis-failure twin against a real server, nodes stopped mid-run', () => {
  it(
    'one node stopped, as in the lab: every acquire is still granted, no 503',
    async () => {
      const t = await startTestServer();
      const run = runTwin(t, 'redis-failure', ['1s:3', '6s:3', '1s:0']);
      await waitFor(
        'the twin to be granted locks',
        async () => (await counter(t, 'redlease_acquisitions_total', { result: 'acquired' })) >= 10,
        15_000,
        50,
      );
      await t.nodes[1].stop();
      const exit = await run.finish(RUN_TIMEOUT_MS);
      expect(exit, run.dump()).toEqual({ code: 0, signal: null });
      expect(
        thresholdLines(run.stdout).filter((l) => l.includes('✗')),
        run.stdout,
      ).toEqual([]);
      expect(run.stdout).not.toContain('outcome:unavailable');
      expect(run.stderr).not.toContain('no quorum');
      expect(await counter(t, 'redlease_acquisitions_total', { result: 'unavailable' })).toBe(0);
    },
    RUN_TIMEOUT_MS + 10_000,
  );

  it(
    'two nodes stopped: 503 QUORUM_UNAVAILABLE with Retry-After; both started again: it reports the recovery',
    async () => {
      // A short max ttl, so the two restarted nodes' quarantine (≤ 2 s + drift) fits in the run.
      const t = await startTestServer(['--max-ttl-ms', '2000', '--default-ttl-ms', '2000']);
      const run = runTwin(t, 'redis-failure', ['1s:3', '12s:3', '1s:0']);
      await waitFor(
        'the twin to be granted locks',
        async () => (await counter(t, 'redlease_acquisitions_total', { result: 'acquired' })) >= 10,
        15_000,
        50,
      );
      const down = performance.now();
      await Promise.all([t.nodes[0].stop(), t.nodes[1].stop()]);
      await waitFor(
        'the twin to be answered 503',
        async () => (await counter(t, 'redlease_acquisitions_total', { result: 'unavailable' })) >= 5,
        10_000,
        50,
      );
      await Promise.all([t.nodes[0].startAgain(), t.nodes[1].startAgain()]);
      const downMs = performance.now() - down;
      const exit = await run.finish(RUN_TIMEOUT_MS);
      expect(exit, run.dump()).toEqual({ code: 0, signal: null });
      // The checks held throughout: every 503 said QUORUM_UNAVAILABLE and carried Retry-After.
      expect(
        thresholdLines(run.stdout).filter((l) => l.includes('✗')),
        run.stdout,
      ).toEqual([]);
      expect(run.stdout).toMatch(
        /✓ a 503 says QUORUM_UNAVAILABLE and when to retry {2}\(\d+ passed, 0 failed\)/,
      );
      expect(run.stdout).toMatch(/^ {6}\{outcome:unavailable\} +: [1-9]\d* /m);
      expect(run.stderr).toMatch(/VU \d: no quorum \(503 QUORUM_UNAVAILABLE\)/);
      // Every VU was served again, and said after how long: at most the outage, the quarantine, and slack.
      const recovered = [...run.stderr.matchAll(/VU (\d): served again after ([\d.]+) s without a quorum/g)];
      expect(new Set(recovered.map((m) => m[1])).size, run.stderr).toBe(3);
      const longest = Math.max(...recovered.map((m) => Number(m[2]) * 1000));
      expect(longest).toBeLessThan(downMs + 2_000 + 22 + 2_000);
      expect(run.stdout).toMatch(/^ {4}lock_recovery_ms\.+: avg=/m);
    },
    RUN_TIMEOUT_MS + 30_000,
  );
});
