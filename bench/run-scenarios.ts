/**
 * Runs the scenarios: for each, `runs` rounds; in each round every system is measured once, in an order rotated
 * by one system per round, so no system always runs first (cold) or last (after the others heated the box).
 * A failed run is recorded and the others go on; Ctrl-C stops after the run under way.
 */
import type { BenchEnvironment } from './environment.js';
import type { LockSystem } from './lock-system.js';
import type { BenchOptions, ScenarioName } from './options.js';
import type { Progress } from './progress.js';
import type { ScenarioResult, SystemRuns } from './results.js';
import { type ContendedResult, runContended } from './scenarios/contended.js';
import { runKeepalive } from './scenarios/keepalive.js';
import { errorText, type RunContext } from './scenarios/run-context.js';
import { runUncontended, type UncontendedResult } from './scenarios/uncontended.js';
import { num } from './table.js';

/** Systems each scenario measures: the echo ceilings have no lock to contend for; keepalive is the SDK's. */
const UNCONTENDED = [
  'redlease',
  'redlease-sdk',
  'redlease-session',
  'redlease-traced',
  'node-redlock',
  'etcd',
  'grpc-echo',
  'grpc-echo-stream',
];
const SCENARIO_SYSTEMS: Record<ScenarioName, readonly string[]> = {
  'uncontended-1': UNCONTENDED,
  'uncontended-64': UNCONTENDED,
  'contended-16': ['redlease', 'redlease-sdk', 'redlease-session', 'node-redlock', 'etcd'],
  keepalive: ['redlease-session'],
};

export async function runScenarios(
  env: BenchEnvironment,
  options: BenchOptions,
  progress: Progress,
  signal: AbortSignal,
): Promise<ScenarioResult[]> {
  const results: ScenarioResult[] = [];
  const allSystems = env.systems();
  for (const scenario of options.scenarios) {
    if (signal.aborted) break;
    const systems = allSystems.filter((s) => SCENARIO_SYSTEMS[scenario].includes(s.name));
    if (scenario === 'keepalive') {
      // A soak rather than a comparison: one run of --keepalive-seconds, whatever --runs says.
      const entry: SystemRuns<Awaited<ReturnType<typeof runKeepalive>>> = {
        system: 'redlease-session',
        runs: [],
        failures: [],
      };
      results.push({ scenario, systems: [entry] });
      const context = runContext(env, progress, signal, `${scenario} · redlease-session`, `ka-${Date.now()}`);
      progress.step(`${context.label}: starting the lease holders`);
      await record(entry, progress, signal, context.label, () =>
        runKeepalive(
          {
            address: env.serverAddress,
            serverPid: env.server?.child.pid,
            redisPids: env.cluster?.nodes.map((n) => n.pid) ?? [],
          },
          {
            streams: options.keepaliveStreams,
            leases: options.keepaliveLeases,
            ttlMs: options.keepaliveTtlMs,
            seconds: options.keepaliveSeconds,
          },
          context,
        ),
      );
      continue;
    }
    const entries = systems.map((s) => ({ system: s.name, runs: [] as never[], failures: [] as string[] }));
    const result =
      scenario === 'contended-16'
        ? { scenario, clients: 16, systems: entries }
        : { scenario, loops: scenario === 'uncontended-64' ? 64 : 1, systems: entries };
    results.push(result as ScenarioResult);
    for (let round = 0; round < options.runs && !signal.aborted; round++) {
      for (let k = 0; k < systems.length && !signal.aborted; k++) {
        const index = (k + round) % systems.length;
        const system = systems[index]!;
        const label = `${scenario} run ${round + 1}/${options.runs} · ${system.name}`;
        const context = runContext(env, progress, signal, label, `${scenario}-r${round}-${Date.now()}`);
        progress.step(label);
        const entry = entries[index] as SystemRuns<unknown>;
        await record(
          entry,
          progress,
          signal,
          label,
          () => measure(scenario, system, options, context),
          round,
        );
        const done = entry.runs[round];
        if (done) progress.step(`${label}: ${brief(done as UncontendedResult | ContendedResult)}`);
      }
    }
  }
  return results;
}

function measure(scenario: ScenarioName, system: LockSystem, options: BenchOptions, context: RunContext) {
  const { seconds, warmupSeconds } = options;
  if (scenario === 'contended-16') {
    return runContended(
      system,
      { clients: 16, seconds, warmupSeconds, waitMs: options.waitMs, holdMs: options.holdMs },
      context,
    );
  }
  const loops = scenario === 'uncontended-64' ? 64 : 1;
  return runUncontended(
    system,
    { loops, seconds, warmupSeconds, freshResources: options.freshResources },
    context,
  );
}

/** Runs one measurement into `entry.runs[round]`; a failure (or an interrupted run) is kept as null plus why. */
async function record<R>(
  entry: SystemRuns<R>,
  progress: Progress,
  signal: AbortSignal,
  label: string,
  run: () => Promise<R>,
  round = 0,
): Promise<void> {
  try {
    const result = await run();
    if (signal.aborted) throw new Error('interrupted (Ctrl-C): a partial run is not a measurement');
    entry.runs[round] = result;
  } catch (error) {
    entry.runs[round] = null;
    entry.failures.push(errorText(error));
    progress.log(`${label}: FAILED: ${errorText(error)}`);
  }
}

function runContext(
  env: BenchEnvironment,
  progress: Progress,
  signal: AbortSignal,
  label: string,
  resourcePrefix: string,
): RunContext {
  return {
    signal,
    progress,
    label,
    resourcePrefix: `bench-${resourcePrefix}`,
    cpuMeter: () => env.cpuMeter(),
  };
}

/** One run's result in a few words, for the progress output. */
function brief(result: UncontendedResult | ContendedResult): string {
  if ('cyclesPerSecond' in result) {
    return `${num(result.cyclesPerSecond)} cycles/s, p50 ${num(result.p50Ms)} ms, p99 ${num(result.p99Ms)} ms${result.errors > 0 ? `, ${result.errors} errors` : ''}`;
  }
  return `${num(result.grantsPerSecond)} grants/s, hand-off p50 ${num(result.handoffP50Ms)} ms, p99 ${num(result.handoffP99Ms)} ms, ${result.stalls} stalls, Jain ${result.jainIndex.toFixed(3)}`;
}
