/**
 * Issue 6's targets, judged from one bench run's results. Ratios are per-round ratios summarised over the
 * rounds (medians); a target against a peer that was not measured (no --peers) is "n/a", not a pass.
 */
import type { SystemName } from './options.js';
import {
  completed,
  metricSpread,
  ratioSpread,
  type ScenarioResult,
  type SystemRuns,
  type TargetResult,
} from './results.js';
import type { Spread } from './stats.js';
import { medianRange, num, times } from './table.js';

/** The systems the targets are about: redlease through raw calls, through the SDK, and through the SDK on a Session. */
const SUBJECTS: readonly SystemName[] = ['redlease', 'redlease-sdk', 'redlease-session'];

function find<R>(systems: SystemRuns<R>[], name: SystemName): SystemRuns<R> | undefined {
  return systems.find((s) => s.system === name);
}

/** "1.62× [1.50–1.71]" (one run: "1.62×"). */
function ratioText(ratio: Spread): string {
  return medianRange(ratio, times);
}

/** pass when `ok(median)`; undefined when nothing was measured. */
function judge(value: number, ok: (v: number) => boolean): boolean | undefined {
  return Number.isNaN(value) ? undefined : ok(value);
}

export function evaluateTargets(scenarios: readonly ScenarioResult[]): TargetResult[] {
  const targets: TargetResult[] = [];
  for (const result of scenarios) {
    for (const subject of SUBJECTS) {
      if (result.scenario === 'uncontended-64') {
        const mine = find(result.systems, subject);
        if (!mine) continue;
        const vsEtcd = ratioSpread(mine, find(result.systems, 'etcd'), (r) => r.cyclesPerSecond);
        const vsEcho = ratioSpread(mine, find(result.systems, 'grpc-echo'), (r) => r.cyclesPerSecond);
        targets.push(
          {
            scenario: result.scenario,
            system: subject,
            target: 'cycles/s ≥ 1.5× etcd',
            measured: ratioText(vsEtcd),
            pass: judge(vsEtcd.median, (v) => v >= 1.5),
          },
          {
            scenario: result.scenario,
            system: subject,
            target: 'cycles/s ≥ 0.8× grpc-js echo ceiling for two calls',
            measured: ratioText(vsEcho),
            pass: judge(vsEcho.median, (v) => v >= 0.8),
          },
        );
      } else if (result.scenario === 'uncontended-1') {
        const mine = find(result.systems, subject);
        if (!mine) continue;
        const vsEtcd = ratioSpread(mine, find(result.systems, 'etcd'), (r) => r.p50Ms);
        const p99 = metricSpread(mine, (r) => r.p99Ms);
        targets.push(
          {
            scenario: result.scenario,
            system: subject,
            target: "cycle p50 ≤ etcd's",
            measured: ratioText(vsEtcd),
            pass: judge(vsEtcd.median, (v) => v <= 1),
          },
          {
            scenario: result.scenario,
            system: subject,
            target: 'cycle p99 ≤ 5 ms',
            measured: `${medianRange(p99)} ms`,
            pass: judge(p99.median, (v) => v <= 5),
          },
        );
      } else if (result.scenario === 'contended-16') {
        const mine = find(result.systems, subject);
        if (!mine) continue;
        const runs = completed(mine);
        const vsEtcd = ratioSpread(mine, find(result.systems, 'etcd'), (r) => r.handoffP50Ms);
        const p99 = metricSpread(mine, (r) => r.handoffP99Ms);
        const jain = metricSpread(mine, (r) => r.jainIndex);
        const stalls = runs.reduce((n, r) => n + r.stalls, 0);
        const stalledRuns = runs.filter((r) => r.stalls > 0).length;
        targets.push(
          {
            scenario: result.scenario,
            system: subject,
            target: "hand-off p50 ≤ 0.5× etcd's",
            measured: ratioText(vsEtcd),
            pass: judge(vsEtcd.median, (v) => v <= 0.5),
          },
          {
            scenario: result.scenario,
            system: subject,
            target: 'hand-off p99 ≤ 10 ms',
            measured: `${medianRange(p99)} ms`,
            pass: judge(p99.median, (v) => v <= 10),
          },
          {
            scenario: result.scenario,
            system: subject,
            target: 'zero stalls > 1 s in every run',
            measured: `${stalls} stall(s) in ${stalledRuns} of ${runs.length} run(s)`,
            pass: runs.length === 0 ? undefined : stalls === 0,
          },
          {
            scenario: result.scenario,
            system: subject,
            target: "Jain's index ≥ 0.99 (every run)",
            measured: `min ${jain.min.toFixed(4)}, median ${jain.median.toFixed(4)}`,
            pass: judge(jain.min, (v) => v >= 0.99),
          },
        );
      } else if (result.scenario === 'keepalive') {
        const mine = find(result.systems, subject);
        const run = completed(mine)[0];
        if (!run) continue;
        targets.push(
          {
            scenario: result.scenario,
            system: subject,
            target: 'zero spurious losses',
            measured: `${run.losses} lost of ${run.acquired} held`,
            pass: run.losses === 0 && run.acquireFailures === 0,
          },
          {
            scenario: result.scenario,
            system: subject,
            target: 'server RSS ≤ 400 MiB',
            measured: `max ${num(run.serverRssMaxMiB)} MiB`,
            pass: run.serverRssMaxMiB <= 400,
          },
          {
            scenario: result.scenario,
            system: subject,
            target: 'server CPU ≤ 1 core',
            measured: `mean ${num(run.serverCpuMeanCores)}, max ${num(run.serverCpuMaxCores)} cores`,
            pass: run.serverCpuMeanCores <= 1,
          },
        );
      }
    }
  }
  return targets;
}
