/**
 * `npm run chaos -- --scenario <id> [--seconds N] [--seed N] [--out DIR]`: one fault scenario (docs/chaos.md)
 * against real redis-server, server and worker processes, for as long as asked, writing the history (one
 * JSONL per writer), report.json and report.txt into DIR. Exit code 0 when the checker says valid and every
 * worker process ended as it should, 1 when invalid or a worker failed, 2 when unknown (an incomplete history,
 * or too little work to judge), on a usage error or when the run could not be set up.
 */
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { formatReport } from './checker.js';
import { formatWorkers } from './harness.js';
import { runScenario } from './run-scenario.js';
import { SCENARIOS } from './scenarios.js';

const HELP = `Usage: npm run chaos -- --scenario <id> [options]

Runs one fault scenario (docs/chaos.md) with worker processes recording a history, heals, checks every
resource can be acquired again, and runs the history checker (S1–S6, L1–L4). Everything on 127.0.0.1.
Exit code 0 valid; 1 invalid, or a worker process failed; 2 unknown (an incomplete history, or one too thin
to judge), or a usage error.

Options:
  --scenario <id>   one of ${SCENARIOS.map((s) => s.id).join(', ')}
  --seconds <n>     how long the workers run and faults are injected (default: the scenario's short CI length;
                    ignored by the scripted scenarios F4, F8, F8u, F14, F25)
  --seed <n>        seeds the fault schedule and the workers' choices (default 1)
  --out <dir>       where the history and the report go (default .redlease/chaos/<scenario>-<seed>-<time>)
  --transport <t>   unary | session: how the workers' SDK sends Acquire, Release and Extend (default session, as the SDK)
  --list            list the scenarios
  --help            this text
`;

async function main(): Promise<number> {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      options: {
        scenario: { type: 'string' },
        seconds: { type: 'string' },
        seed: { type: 'string' },
        out: { type: 'string' },
        transport: { type: 'string' },
        list: { type: 'boolean' },
        help: { type: 'boolean' },
      },
      strict: true,
    }));
  } catch (error) {
    process.stderr.write(`chaos: ${(error as Error).message}\n\n${HELP}`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  if (values.list) {
    for (const s of SCENARIOS) process.stdout.write(`${s.id.padEnd(6)} ${s.title}\n`);
    return 0;
  }
  const scenario = SCENARIOS.find((s) => s.id.toLowerCase() === String(values.scenario ?? '').toLowerCase());
  if (!scenario) {
    process.stderr.write(
      `chaos: --scenario must be one of ${SCENARIOS.map((s) => s.id).join(', ')}${values.scenario === undefined ? '' : `, got "${values.scenario}"`}\n`,
    );
    return 2;
  }
  const number = (name: string, fallback: number, min: number): number => {
    const raw = values[name];
    if (raw === undefined) return fallback;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min)
      throw new UsageError(`--${name} must be a whole number ≥ ${min}, got "${raw}"`);
    return n;
  };
  let seconds: number;
  let seed: number;
  try {
    seconds = number('seconds', scenario.seconds, 1);
    seed = number('seed', 1, 0);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(`chaos: ${error.message}\n`);
    return 2;
  }
  const transport = values.transport ?? 'session';
  if (transport !== 'unary' && transport !== 'session') {
    process.stderr.write(`chaos: --transport must be unary or session, got "${transport}"\n`);
    return 2;
  }
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const dir = String(values.out ?? join('.redlease', 'chaos', `${scenario.id}-${seed}-${stamp}`));
  const log = (message: string): void => {
    process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${message}\n`);
  };
  log(`${scenario.id}: ${scenario.title}; ${transport} lock calls; history in ${dir}`);
  const run = await runScenario(scenario, { dir, seed, seconds, log, transport });
  process.stdout.write(
    `${formatReport(run.report)}\n${formatWorkers(run.workerCount, run.workerFailures)}\n`,
  );
  if (Object.keys(run.facts).length > 0) process.stdout.write(`facts: ${JSON.stringify(run.facts)}\n`);
  const { leaks } = run;
  process.stdout.write(
    `leaks: ${leaks.fdsAfter - leaks.fdsBefore} file descriptors more than before (${leaks.fdsBefore} → ${leaks.fdsAfter}), ${leaks.children.length} child processes left${leaks.children.length ? `: ${leaks.children.join('; ')}` : ''}\n`,
  );
  process.stdout.write(`history and report: ${dir} (${(run.elapsedMs / 1000).toFixed(1)} s)\n`);
  if (run.workerFailures.length > 0) return 1;
  return run.report.valid === true ? 0 : run.report.valid === false ? 1 : 2;
}

class UsageError extends Error {}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(
      `chaos: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    process.exit(2);
  },
);
