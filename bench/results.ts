/** The shape of a bench run's results (also the JSON file), and the helpers that summarise them over runs. */
import type { BenchOptions, ScenarioName, SystemName } from './options.js';
import type { ContendedResult } from './scenarios/contended.js';
import type { KeepaliveResult } from './scenarios/keepalive.js';
import type { UncontendedResult } from './scenarios/uncontended.js';
import { type Spread, spread } from './stats.js';

/** One system's runs of a scenario: `runs[i]` is round i (null: that run failed, see `failures`). */
export interface SystemRuns<R> {
  system: SystemName;
  runs: (R | null)[];
  failures: string[];
}

export type ScenarioResult =
  | { scenario: 'uncontended-1' | 'uncontended-64'; loops: number; systems: SystemRuns<UncontendedResult>[] }
  | { scenario: 'contended-16'; clients: number; systems: SystemRuns<ContendedResult>[] }
  | { scenario: 'keepalive'; systems: SystemRuns<KeepaliveResult>[] };

export interface TargetResult {
  scenario: ScenarioName;
  system: SystemName;
  /** The target, e.g. "cycles/s ≥ 1.5× etcd". */
  target: string;
  /** What was measured, e.g. "2.10× [1.9–2.3]". */
  measured: string;
  /** undefined: could not be judged (the peer was not measured). */
  pass: boolean | undefined;
}

export interface BenchMeta {
  startedAt: string;
  finishedAt: string;
  /** `git log --oneline -1` of the work tree measured, and the files under server/ and client/ changed in it. */
  commit: string;
  uncommitted: string[];
  node: string;
  cpus: number;
  cpuModel: string;
  versions: Record<string, string>;
  options: BenchOptions;
  interrupted: boolean;
}

export interface BenchResults {
  meta: BenchMeta;
  scenarios: ScenarioResult[];
  targets: TargetResult[];
  /** The server's last warn-or-worse log lines (pino JSON), e.g. why leases were lost. */
  serverWarnings: Record<string, unknown>[];
}

/** Median, min and max of `metric` over the runs that completed. */
export function metricSpread<R>(runs: SystemRuns<R> | undefined, metric: (run: R) => number): Spread {
  return spread((runs?.runs ?? []).filter((r): r is R => r !== null).map(metric));
}

/**
 * Ratio system ÷ peer of `metric`, taken per round (both measured in the same run, minutes apart at most on a
 * shared machine) and then summarised over the rounds: that is what makes ratios meaningful on a noisy box.
 */
export function ratioSpread<R>(
  system: SystemRuns<R> | undefined,
  peer: SystemRuns<R> | undefined,
  metric: (run: R) => number,
): Spread {
  const ratios: number[] = [];
  const rounds = Math.min(system?.runs.length ?? 0, peer?.runs.length ?? 0);
  for (let i = 0; i < rounds; i++) {
    const a = system?.runs[i];
    const b = peer?.runs[i];
    if (a && b) ratios.push(metric(a) / metric(b));
  }
  return spread(ratios.filter(Number.isFinite));
}

/** The completed runs of one system. */
export function completed<R>(runs: SystemRuns<R> | undefined): R[] {
  return (runs?.runs ?? []).filter((r): r is R => r !== null);
}
