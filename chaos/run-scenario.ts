/**
 * Runs one scenario end to end: harness up, workers started, the faults, heal, probe, final reads, checker.
 * Shared by the CI tests and `npm run chaos`.
 */
import { mkdirSync } from 'node:fs';
import type { Report } from './checker.js';
import { Harness } from './harness.js';
import { mulberry32, type Scenario } from './scenarios.js';

export interface ScenarioRun {
  report: Report;
  facts: Record<string, unknown>;
  dir: string;
  /** Wall time of the whole run, ms. */
  elapsedMs: number;
}

export async function runScenario(
  scenario: Scenario,
  options: { dir: string; seed: number; seconds?: number; log?: (message: string) => void },
): Promise<ScenarioRun> {
  const started = performance.now();
  const seconds = options.seconds ?? scenario.seconds;
  const log = options.log ?? (() => {});
  mkdirSync(options.dir, { recursive: true });
  const h = await Harness.start({
    dir: options.dir,
    seed: options.seed,
    resources: ['r1', 'r2'],
    ...scenario.harness,
  });
  try {
    const workers = scenario.workers?.(seconds) ?? [];
    h.startWorkers(workers);
    log(`${scenario.id}: ${workers.length} workers for ${seconds} s, seed ${options.seed}`);
    const facts = await scenario.run({ h, random: mulberry32(options.seed), seconds, log });
    log(`${scenario.id}: faults done; healing, waiting for the workers, probing, checking`);
    const report = await h.finish(scenario.check);
    return { report, facts, dir: options.dir, elapsedMs: performance.now() - started };
  } finally {
    await h.dispose();
  }
}
