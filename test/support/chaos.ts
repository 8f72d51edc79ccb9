/**
 * Runs a chaos scenario for a test: a fresh history folder under the OS temp dir, kept when the test fails. Every
 * scenario must show work: its worker processes all ended as they should, and the history holds at least the
 * scenario's minimum of grants and fenced writes (the checker's `workload`), or the test fails here.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, onTestFinished } from 'vitest';
import { formatReport } from '../../chaos/checker.js';
import { formatWorkers } from '../../chaos/harness.js';
import { runScenario, type ScenarioRun } from '../../chaos/run-scenario.js';
import { SCENARIOS } from '../../chaos/scenarios.js';

export async function chaos(
  id: string,
  seed = 1,
  transport: 'unary' | 'session' = 'session',
): Promise<ScenarioRun> {
  const scenario = SCENARIOS.find((s) => s.id === id);
  if (!scenario) throw new Error(`no scenario ${id}`);
  const dir = mkdtempSync(join(tmpdir(), `redlease-chaos-${id}-`));
  onTestFinished((context) => {
    if (context.task.result?.state === 'pass') rmSync(dir, { recursive: true, force: true });
    else console.log(`chaos ${id}: history kept in ${dir}`);
  });
  const run = await runScenario(scenario, { dir, seed, transport });
  console.log(
    `${id} (${(run.elapsedMs / 1000).toFixed(1)} s):\n${formatReport(run.report)}\n${formatWorkers(run.workerCount, run.workerFailures)}`,
  );
  expect(run.workerFailures, 'worker processes that did not end as they should').toEqual([]);
  const { workload } = run.report.checks;
  expect(workload.valid, `${id} did too little to judge: ${workload.summary}`).toBe(true);
  return run;
}
