/**
 * The tables `npm run bench` prints (and docs/performance.md shows): per scenario, each system's medians
 * [min–max] over the runs, the ratios of redlease to each peer (per-round ratios, summarised), and the issue's
 * targets with PASS/FAIL.
 */
import { availableParallelism } from 'node:os';
import type { BenchOptions, SystemName } from './options.js';
import {
  type BenchResults,
  completed,
  metricSpread,
  ratioSpread,
  type ScenarioResult,
  type SystemRuns,
  type TargetResult,
} from './results.js';
import type { ContendedResult } from './scenarios/contended.js';
import type { KeepaliveResult } from './scenarios/keepalive.js';
import type { UncontendedResult } from './scenarios/uncontended.js';
import { spread } from './stats.js';
import { medianRange, num, renderMarkdown, renderTable, times } from './table.js';

type Render = (header: readonly string[], rows: readonly (readonly string[])[]) => string;

/** The process that serves each system, whose CPU the tables show. */
const SERVICE_PROCESS: Record<SystemName, string> = {
  redlease: 'server',
  'redlease-sdk': 'server',
  'redlease-session': 'server',
  'redlease-traced': 'traced-server',
  'node-redlock': '',
  etcd: 'etcd',
  'grpc-echo': 'echo',
  'grpc-echo-stream': 'echo',
};

/** Bench-process CPU from which its single event loop is probably what limits a run. */
const CLIENT_BOUND_CORES = 0.85;

const DESCRIPTIONS: Record<ScenarioResult['scenario'], string> = {
  'uncontended-1': '1 client, acquire + release cycles on distinct resources (closed loop)',
  'uncontended-64': '64 concurrent loops on one connection, distinct resources (closed loops)',
  'contended-16': '16 clients (own connections) on ONE resource: acquire (waiting) → hold → release',
  keepalive: 'leases held through the SDK and renewed over KeepAlive streams, nobody else on those resources',
};

function label(system: SystemName): string {
  if (system === 'grpc-echo') return 'grpc-echo (cycle = 2 calls)';
  if (system === 'grpc-echo-stream') return 'grpc-echo-stream (cycle = 2 messages)';
  if (system === 'node-redlock') return 'node-redlock (in-process)';
  return system;
}

type PerGroup = { cpuCores: Record<string, number>; queuedCores?: Record<string, number> };

/** One process group's cores used ("cpuCores") or waited ("queuedCores"), median [min–max]; '–' for no process. */
function cores<R extends PerGroup>(
  runs: SystemRuns<R>,
  process: string,
  measure: 'cpuCores' | 'queuedCores' = 'cpuCores',
): string {
  return process === '' ? '–' : medianRange(metricSpread(runs, (r) => r[measure]?.[process] ?? Number.NaN));
}

function failures(runs: SystemRuns<unknown>): string {
  return runs.failures.length > 0 ? ` (${runs.failures.length} failed run(s): ${runs.failures[0]})` : '';
}

function uncontendedTable(systems: SystemRuns<UncontendedResult>[], render: Render): string {
  const header = [
    'system',
    'cycles/s',
    'p50 ms',
    'p99 ms',
    'service CPU',
    'Redis CPU',
    'bench CPU',
    'machine CPU',
    'errors',
  ];
  const rows = systems.map((s) => [
    label(s.system) + failures(s),
    medianRange(metricSpread(s, (r) => r.cyclesPerSecond)),
    medianRange(metricSpread(s, (r) => r.p50Ms)),
    medianRange(metricSpread(s, (r) => r.p99Ms)),
    cores(s, SERVICE_PROCESS[s.system]),
    cores(s, 'redis'),
    cores(s, 'bench'),
    cores(s, 'machine'),
    String(completed(s).reduce((n, r) => n + r.errors, 0)),
  ]);
  return render(header, rows);
}

type MaybeQueued = { queuedCores?: Record<string, number> };

/** Whether a run of this system read its processes' run-queue wait (results from before it was measured: no). */
function measuredQueue(system: SystemRuns<MaybeQueued>): boolean {
  return completed(system).some((run) => run.queuedCores !== undefined);
}

/**
 * How long each system's processes waited for a CPU, beside the cores the machine left idle in the same seconds:
 * waiting while a CPU idles is time the scheduler lost, not the code.
 */
function queuedTable<R extends PerGroup>(systems: SystemRuns<R>[], render: Render): string {
  const measured = systems.filter(measuredQueue);
  if (measured.length === 0) return '';
  const rows = measured.map((s) => [
    label(s.system),
    cores(s, SERVICE_PROCESS[s.system], 'queuedCores'),
    cores(s, 'redis', 'queuedCores'),
    cores(s, 'bench', 'queuedCores'),
    cores(s, 'machineIdle', 'queuedCores'),
  ]);
  return [
    'Waiting for a CPU (cores, medians over runs):',
    render(['system', 'service queued', 'Redis queued', 'bench queued', 'machine idle'], rows),
  ].join('\n\n');
}

function contendedTable(systems: SystemRuns<ContendedResult>[], render: Render): string {
  const header = [
    'system',
    'grants/s',
    'hand-off p50 ms',
    'hand-off p99 ms',
    'stalls > 1 s',
    'longest gap ms',
    "Jain's index",
    'back to releaser',
    'timeouts',
    'overlaps',
  ];
  const rows = systems.map((s) => {
    const runs = completed(s);
    const jain = metricSpread(s, (r) => r.jainIndex);
    return [
      label(s.system) + failures(s),
      medianRange(metricSpread(s, (r) => r.grantsPerSecond)),
      medianRange(metricSpread(s, (r) => r.handoffP50Ms)),
      medianRange(metricSpread(s, (r) => r.handoffP99Ms)),
      `${runs.reduce((n, r) => n + r.stalls, 0)} in ${runs.filter((r) => r.stalls > 0).length}/${runs.length} runs`,
      medianRange(metricSpread(s, (r) => r.longestGapMs)),
      `${jain.median.toFixed(3)} [min ${jain.min.toFixed(3)}]`,
      `${num(metricSpread(s, (r) => r.regrabPercent).median)} %`,
      String(runs.reduce((n, r) => n + r.timeouts, 0)),
      String(runs.reduce((n, r) => n + r.overlaps, 0)),
    ];
  });
  return render(header, rows);
}

function keepaliveTable(systems: SystemRuns<KeepaliveResult>[], render: Render): string {
  const run = completed(systems[0])[0];
  if (!run) return `no completed run${systems[0] ? failures(systems[0]) : ''}`;
  const rows: string[][] = [
    [
      'leases / streams / ttl',
      `${run.leases} / ${run.streams} / ${run.ttlMs} ms (renewed every ${num(run.ttlMs / 3)} ms)`,
    ],
    ['acquired (failures) in', `${run.acquired} (${run.acquireFailures}) in ${num(run.acquireSeconds)} s`],
    ['kept alive for', `${run.seconds} s: ${num(run.renewalsPerSecond)} renewals/s`],
    ['spurious losses', `${run.losses}${lossText(run.lossReasons)}`],
    ['held at the end', String(run.heldAtEnd)],
    ['renewals failed / stream errors', `${run.renewalFailures} / ${run.streamErrors}`],
    [
      'renewal round trip p50 / p99 / max',
      `${num(run.renewalRttP50Ms)} / ${num(run.renewalRttP99Ms)} / ${num(run.renewalRttMaxMs)} ms`,
    ],
    [
      'renewal lag p50 / p99 / max',
      `${num(run.renewalLagP50Ms)} / ${num(run.renewalLagP99Ms)} / ${num(run.renewalLagMaxMs)} ms`,
    ],
    [
      'server RSS before / max',
      `${num(run.serverRssBeforeMiB)} / ${num(run.serverRssMaxMiB)} MiB (${num(run.serverRssPerLeaseKiB)} KiB per lease)`,
    ],
    [
      'server RSS max at teardown',
      `${num(run.serverRssTeardownMaxMiB)} MiB (the ${run.streams} clients close(), each releasing its leases 8 at a time)`,
    ],
    ['server CPU mean / max', `${num(run.serverCpuMeanCores)} / ${num(run.serverCpuMaxCores)} cores`],
    [
      'holders (client) CPU mean / max',
      `${num(run.holdersCpuMeanCores)} / ${num(run.holdersCpuMaxCores)} cores (own process)`,
    ],
    ['Redis CPU mean (3 nodes)', `${num(run.redisCpuMeanCores)} cores`],
    [
      'machine CPU mean / max (everyone)',
      `${num(run.machineCpuMeanCores)} / ${num(run.machineCpuMaxCores)} cores of ${availableParallelism()}`,
    ],
  ];
  return render(['keepalive', 'redlease-session'], rows);
}

/** " (kind: reason × n; …)", at most 200 characters. */
function lossText(reasons: Record<string, number>): string {
  const text = Object.entries(reasons)
    .map(([reason, n]) => `${reason} × ${n}`)
    .join('; ');
  if (text === '') return '';
  return ` (${text.length > 200 ? `${text.slice(0, 199)}…` : text})`;
}

/** Ratios of redlease (raw and SDK) to every other system measured, per metric. */
function ratioTable<R>(
  systems: SystemRuns<R>[],
  metrics: readonly { name: string; value: (r: R) => number }[],
  render: Render,
): string {
  const rows: string[][] = [];
  // Each way of using redlease against every peer, and against the ways listed before it (not after).
  const subjects = ['redlease', 'redlease-sdk', 'redlease-session'] as const;
  for (const [index, subject] of subjects.entries()) {
    const mine = systems.find((s) => s.system === subject);
    if (!mine) continue;
    const later: readonly SystemName[] = subjects.slice(index);
    for (const peer of systems) {
      if (later.includes(peer.system)) continue;
      rows.push([
        `${subject} ÷ ${peer.system}`,
        ...metrics.map((m) => medianRange(ratioSpread(mine, peer, m.value), times)),
      ]);
    }
  }
  return rows.length === 0
    ? ''
    : render(['ratio (per run, median [min–max])', ...metrics.map((m) => m.name)], rows);
}

function targetTable(targets: readonly TargetResult[], render: Render): string {
  const verdict = (pass: boolean | undefined): string =>
    pass === undefined ? 'n/a' : pass ? 'PASS' : 'FAIL';
  return render(
    ['target', 'system', 'measured', 'verdict'],
    targets.map((t) => [`${t.scenario}: ${t.target}`, t.system, t.measured, verdict(t.pass)]),
  );
}

function scenarioSection(
  result: ScenarioResult,
  render: Render,
  targets: readonly TargetResult[],
  heading: string,
): string {
  const parts: string[] = [];
  const runs = Math.max(0, ...result.systems.map((s) => s.runs.length));
  parts.push(
    `${heading}${result.scenario}: ${DESCRIPTIONS[result.scenario]} — ${runs} run(s), medians [min–max]`,
  );
  if (result.scenario === 'keepalive') {
    parts.push(keepaliveTable(result.systems, render));
  } else if (result.scenario === 'contended-16') {
    parts.push(contendedTable(result.systems, render));
    parts.push(queuedTable(result.systems, render));
    parts.push(
      ratioTable(
        result.systems,
        [
          { name: 'grants/s', value: (r) => r.grantsPerSecond },
          { name: 'hand-off p50', value: (r) => r.handoffP50Ms },
          { name: 'hand-off p99', value: (r) => r.handoffP99Ms },
        ],
        render,
      ),
    );
  } else {
    parts.push(uncontendedTable(result.systems, render));
    parts.push(queuedTable(result.systems, render));
    const clientBound = result.systems
      .map((s) => ({
        system: s.system,
        cores: metricSpread(s, (r) => r.cpuCores.bench ?? Number.NaN).median,
      }))
      .filter((s) => s.cores >= CLIENT_BOUND_CORES);
    if (clientBound.length > 0) {
      parts.push(
        `The bench process (all clients, one event loop) was near one core for ${clientBound.map((s) => `${s.system} (${num(s.cores)})`).join(', ')}: there the clients may limit the numbers more than the service does.`,
      );
    }
    const echo = result.systems.find((s) => s.system === 'grpc-echo');
    if (echo) {
      const calls = metricSpread(echo, (r) => 2 * r.cyclesPerSecond);
      parts.push(
        `grpc-js echo ceiling: ${medianRange(calls)} calls/s, so ${num(calls.median / 2)} cycles/s for a cycle of two calls.`,
      );
    }
    const streamEcho = result.systems.find((s) => s.system === 'grpc-echo-stream');
    if (streamEcho) {
      const messages = metricSpread(streamEcho, (r) => 2 * r.cyclesPerSecond);
      parts.push(
        `grpc-js stream echo ceiling: ${medianRange(messages)} request messages/s on open streams, so ${num(messages.median / 2)} cycles/s for a cycle of two requests sent as messages.`,
      );
    }
    parts.push(
      ratioTable(
        result.systems,
        [
          { name: 'cycles/s', value: (r) => r.cyclesPerSecond },
          { name: 'p50', value: (r) => r.p50Ms },
          { name: 'p99', value: (r) => r.p99Ms },
        ],
        render,
      ),
    );
  }
  const mine = targets.filter((t) => t.scenario === result.scenario);
  if (mine.length > 0) parts.push(targetTable(mine, render));
  return parts.filter((p) => p !== '').join('\n\n');
}

/**
 * How busy the machine was with processes that are not the bench's (other users' builds and tests): machine
 * CPU minus ours, per run. A shared box is noisy; this says how noisy it was during this run.
 */
function othersLine(scenarios: readonly ScenarioResult[]): string {
  const others: number[] = [];
  for (const scenario of scenarios) {
    if (scenario.scenario === 'keepalive') continue;
    for (const system of scenario.systems as SystemRuns<{ cpuCores: Record<string, number> }>[]) {
      for (const run of completed(system)) {
        const { machine = Number.NaN, ...ours } = run.cpuCores;
        const own = Object.values(ours).reduce((sum, v) => sum + (Number.isFinite(v) ? v : 0), 0);
        others.push(Math.max(0, machine - own)); // the two are sampled a moment apart: never below 0
      }
    }
  }
  const s = spread(others);
  if (Number.isNaN(s.median)) return '';
  return `Other processes on the machine (not the bench's) used ${num(s.median)} cores (median over runs; min ${num(s.min)}, max ${num(s.max)}); loopback networking done in the kernel counts there too.`;
}

/** Whether any run read its processes' run-queue wait (the keep-alive soak does not). */
function measuredWaiting(scenarios: readonly ScenarioResult[]): boolean {
  return scenarios.some(
    (scenario) =>
      scenario.scenario !== 'keepalive' &&
      (scenario.systems as SystemRuns<MaybeQueued>[]).some(measuredQueue),
  );
}

/** The whole report: a header, then one section per scenario. */
export function renderReport(results: BenchResults, format: 'text' | 'markdown' = 'text'): string {
  const render = format === 'markdown' ? renderMarkdown : renderTable;
  const { meta } = results;
  const o = meta.options;
  const header = [
    `redlease bench — ${meta.commit}${meta.uncommitted.length > 0 ? ` + uncommitted changes in ${meta.uncommitted.join(', ')}` : ''}`,
    `${meta.cpus} × ${meta.cpuModel}, Node ${meta.node}; ${Object.entries(meta.versions)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')}`,
    results.scenarios.some((r) => r.scenario !== 'keepalive')
      ? `${o.runs} run(s) × ${o.seconds} s (+${o.warmupSeconds} s warmup) per system, interleaved; ttl ${o.ttlMs} ms; server ${serverBuild(o)}, --log-level ${o.serverLogLevel}${meta.interrupted ? '; INTERRUPTED' : ''}`
      : `keepalive: one run; server ${serverBuild(o)}, --log-level ${o.serverLogLevel}${meta.interrupted ? '; INTERRUPTED' : ''}`,
    "CPU columns: cores used during the measured seconds (medians over runs) by the process serving that system, the 3 Redis nodes, the bench process itself (all clients), and the whole machine (anyone's processes).",
    measuredWaiting(results.scenarios)
      ? "Waiting for a CPU: cores' worth of time those processes were runnable but not running (their threads' run-queue wait, /proc/<pid>/task/*/schedstat), beside the cores the machine left idle in the same seconds. Waiting while a CPU idles is time lost to scheduling, not to work."
      : '',
    othersLine(results.scenarios),
  ]
    .filter((line) => line !== '')
    .map((line) => (format === 'markdown' ? `- ${line}` : line))
    .join('\n');
  const heading = format === 'markdown' ? '#### ' : '';
  const sections = results.scenarios.map((s) => scenarioSection(s, render, results.targets, heading));
  return `${[header, ...sections].join('\n\n')}\n`;
}

function serverBuild(o: BenchOptions): string {
  return o.serverBuild === 'compiled' ? 'compiled (dist/server/main.js)' : 'under tsx (server/main.ts)';
}
