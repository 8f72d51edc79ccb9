/**
 * Runs one scenario end to end: harness up, workers started, the faults, heal, probe, final reads, checker.
 * Shared by the CI tests and `npm run chaos`.
 */
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { waitFor } from '../scripts/lib/wait.js';
import type { CheckName, CheckOptions, Report } from './checker.js';
import { Harness } from './harness.js';
import { mulberry32, type Scenario } from './scenarios.js';

export interface ScenarioRun {
  report: Report;
  facts: Record<string, unknown>;
  dir: string;
  /** Wall time of the whole run, ms. */
  elapsedMs: number;
  /** Open file descriptors of this process before and after, and child processes left behind (pid: command). */
  leaks: { fdsBefore: number; fdsAfter: number; children: string[] };
  /** Each worker's last line (`{"event":"done", worker, workload, transport, …counts}`), for workers that finished. */
  workersDone: Record<string, unknown>[];
  /** Worker processes started, and those that did not exit 0 (nor were killed by the nemesis): any fails the run. */
  workerCount: number;
  workerFailures: string[];
}

/**
 * The checker's options for a run of a scenario: its own, with its minimum work. L2 judges a success rate from
 * 50 acquires with no fault in the max ttl + 1 s before them. A short form (the CI tests; `npm run chaos` without
 * a longer --seconds) never has that many, nor has a scripted scenario, nor one whose faults never pause however
 * long it runs: those report L2 without counting it. A longer run of any other scenario counts it, and is
 * unknown when it still has too few.
 */
export function checkOptions(scenario: Scenario, seconds: number): CheckOptions {
  const check = scenario.check ?? {};
  const countsL2 = scenario.workers !== undefined && !scenario.faultsNeverPause && seconds > scenario.seconds;
  const ignore: CheckName[] = [...(check.ignore ?? []), ...(countsL2 ? [] : ['L2' as const])];
  return { ...check, minimum: { ...scenario.minimum }, ignore };
}

const openFds = (): number => readdirSync('/proc/self/fd').length;

/** Live children of this process (zombies excluded), from /proc. */
function children(): string[] {
  const found: string[] = [];
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const command = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
      // tsx's own esbuild service lives as long as this process: not ours to count.
      if (Number(fields[1]) === process.pid && fields[0] !== 'Z' && !command.includes('esbuild --service'))
        found.push(`${pid}: ${command}`);
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

export async function runScenario(
  scenario: Scenario,
  options: {
    dir: string;
    seed: number;
    seconds?: number;
    log?: (message: string) => void;
    /** How the workers' SDK sends its lock calls (default session, the SDK's own default). */
    transport?: 'unary' | 'session';
  },
): Promise<ScenarioRun> {
  const started = performance.now();
  const fdsBefore = openFds();
  const seconds = options.seconds ?? scenario.seconds;
  const log = options.log ?? (() => {});
  mkdirSync(options.dir, { recursive: true });
  const h = await Harness.start({
    dir: options.dir,
    seed: options.seed,
    resources: ['r1', 'r2'],
    transport: options.transport,
    ...scenario.harness,
  });
  try {
    const workers = scenario.workers?.(seconds) ?? [];
    h.startWorkers(workers);
    log(`${scenario.id}: ${workers.length} workers for ${seconds} s, seed ${options.seed}`);
    // The faults are timed from the workload's start: on a loaded machine a worker process takes seconds to come
    // up, and a fault over before the workers made their first call tests nothing. (One that exits at once is
    // not waited for: it fails the run at the end.)
    await waitFor(
      'the workers to make their first call',
      () => workers.every((w) => h.started(w.name) || !h.workers.get(w.name)?.running),
      30_000,
      20,
    );
    const facts = await scenario.run({ h, random: mulberry32(options.seed), seconds, log });
    log(`${scenario.id}: faults done; healing, waiting for the workers, probing, checking`);
    const { report, workerFailures } = await h.finish(checkOptions(scenario, seconds));
    const workersDone = [...h.workers.values()].flatMap((w) => w.events('done'));
    await h.dispose();
    const leaks = { fdsBefore, fdsAfter: openFds(), children: children() };
    return {
      report,
      facts,
      dir: options.dir,
      elapsedMs: performance.now() - started,
      leaks,
      workersDone,
      workerCount: h.workers.size,
      workerFailures,
    };
  } finally {
    await h.dispose();
  }
}
