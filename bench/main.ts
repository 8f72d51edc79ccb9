/**
 * `npm run bench`: starts what the scenarios need, runs them (interleaving the systems), prints the report on
 * stdout and writes the JSON results. Wiring only; see run-scenarios.ts and the scenarios.
 * Ctrl-C (or SIGTERM) stops after the run under way and still cleans up; a second one exits at once (the
 * children die with this process).
 */
import { execFileSync } from 'node:child_process';
import { setMaxListeners } from 'node:events';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BenchEnvironment } from './environment.js';
import { type BenchOptions, parseBenchOptions, UsageError } from './options.js';
import { Progress } from './progress.js';
import { renderReport } from './report.js';
import type { BenchMeta, BenchResults } from './results.js';
import { runScenarios } from './run-scenarios.js';
import { evaluateTargets } from './targets.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

function git(args: string[]): string {
  try {
    // trimEnd: porcelain lines start with a status column that may be a space.
    return execFileSync('git', args, {
      cwd: ROOT,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trimEnd();
  } catch {
    return '';
  }
}

function version(command: string, args: string[]): string | undefined {
  try {
    const out = execFileSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    return /v?(\d+\.\d+\.\d+)/.exec(out)?.[1];
  } catch {
    return undefined;
  }
}

function meta(
  options: BenchOptions,
  env: BenchEnvironment,
  startedAt: Date,
  interrupted: boolean,
): BenchMeta {
  const versions: Record<string, string> = {};
  const redis = version('redis-server', ['--version']);
  if (redis) versions['redis-server'] = redis;
  versions['node-redlock'] = '5.0.0-beta.2';
  const etcd = env.etcdPath ? version(env.etcdPath, ['--version']) : undefined;
  if (etcd) versions.etcd = etcd;
  const changed = git(['status', '--porcelain', '--', 'server', 'client/src']);
  return {
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    commit: git(['log', '--oneline', '-1']),
    uncommitted: changed === '' ? [] : changed.split('\n').map((line) => line.slice(3)),
    node: process.versions.node,
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model.trim() ?? 'unknown',
    versions,
    options,
    interrupted,
  };
}

async function main(): Promise<number> {
  let parsed: ReturnType<typeof parseBenchOptions>;
  try {
    parsed = parseBenchOptions(process.argv.slice(2));
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(`bench: ${error.message}\n`);
    return 2;
  }
  if ('help' in parsed) {
    process.stdout.write(parsed.help);
    return 0;
  }
  const options = parsed;
  const progress = new Progress();
  const interrupt = new AbortController();
  // Every call of every loop listens on it (up to 64 at once): not a leak.
  setMaxListeners(0, interrupt.signal);
  const onSignal = (signal: NodeJS.Signals): void => {
    if (interrupt.signal.aborted) process.exit(130); // the second one: children die with us (pdeathsig, exit hooks)
    progress.log(`${signal}: stopping after the run under way and cleaning up (again to exit at once)`);
    interrupt.abort();
  };
  // Installed before any child starts, so redis-process.ts leaves the signals to us and cleanup stays orderly.
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const startedAt = new Date();
  const env = await BenchEnvironment.start(options, progress);
  let results: BenchResults;
  try {
    const scenarios = await runScenarios(env, options, progress, interrupt.signal);
    results = {
      meta: meta(options, env, startedAt, interrupt.signal.aborted),
      scenarios,
      targets: evaluateTargets(scenarios),
      // pino levels: 40 warn, 50 error, 60 fatal.
      serverWarnings: (env.server?.logs ?? []).filter((line) => (line.level ?? 0) >= 40).slice(-100),
    };
  } finally {
    progress.step('stopping');
    await env.dispose();
    progress.clear();
  }
  process.stdout.write(renderReport(results, options.markdown ? 'markdown' : 'text'));
  const stamp = startedAt
    .toISOString()
    .replaceAll(':', '-')
    .replace(/\.\d+Z$/, 'Z');
  const out = options.out ?? join(ROOT, 'bench', 'results', `${stamp}.json`);
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify(results, null, 2)}\n`);
  process.stderr.write(`results: ${relative(process.cwd(), out) || out}\n`);
  if (options.serverCpuProf !== undefined) {
    process.stderr.write(
      `server CPU profile: ${options.serverCpuProf}/*.cpuprofile (open in Chrome DevTools)\n`,
    );
  }
  return interrupt.signal.aborted ? 130 : 0;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(
      `bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    process.exit(1);
  },
);
