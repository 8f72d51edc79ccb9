/**
 * `node --import tsx chaos/check.ts <history-dir> [--assumption-breaking] [--json out.json]`: checks a
 * recorded history offline (docs/chaos.md) — one written by the harness, or copied from a CI artifact —
 * prints the short report and writes the JSON one (default `<dir>/report.json`). Exit code 0 valid, 1
 * invalid, 2 unknown (an incomplete history, or one too thin to judge) or a usage error, so a script can
 * tell "broken" from "cannot say".
 */
import { existsSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { CHECK_NAMES, type CheckName, type CheckOptions, checkHistory, formatReport } from './checker.js';
import { loadHistory } from './history.js';

const HELP = `Usage: node --import tsx chaos/check.ts <history-dir> [options]

Merges the writers' JSONL files in <history-dir>, runs the history checker (S1–S6, client honesty, L1–L7) and
prints a short report. Exit code 0 valid, 1 invalid, 2 unknown (incomplete, or too thin to judge) or a
usage error.

Options:
  --assumption-breaking    the run broke the timing assumptions on purpose (F8 unfenced, F14): an S1 overlap or
                           an unfenced lost update must be found, with S3/S4 clean
  --json <file>            where to write the JSON report (default <history-dir>/report.json)
  --quorum <n>             votes needed for a grant (default 2)
  --recovery-bound-ms <n>  L4 bound after the final heal (default 3 × max ttl + 2000)
  --voting-lag-ms <n>      how late the history may record a quorum coming back (default 0)
  --ignore <checks>        comma-separated checks to report without counting (e.g. client)
  --min-grants <n>         fewer grants than this is too little work to judge (default 0)
  --min-fenced-writes <n>  fewer writes accepted by the fenced store than this is too little work (default 0)
  --min-stable-acquires <n>
                           L2 judges its success rate from this many acquires in stable periods (default 50)
  --seed <n>               recorded in the report
  --help                   this text
`;

class UsageError extends Error {}

function main(argv: string[]): number {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (error) {
    if (!(error instanceof UsageError) && !(error instanceof TypeError)) throw error;
    process.stderr.write(`check: ${error.message}\n\n${HELP}`);
    return 2;
  }
  if (parsed === 'help') {
    process.stdout.write(HELP);
    return 0;
  }
  const { dir, json, options, seed } = parsed;
  const loaded = loadHistory(dir);
  if (loaded.events.length === 0 && loaded.truncated.length === 0) {
    process.stderr.write(`check: no history events in ${dir} (expected <writer>.jsonl files)\n`);
    return 2;
  }
  const report = checkHistory(loaded.events, options, {
    truncated: loaded.truncated.length,
    ...(seed !== undefined && { seed }),
  });
  process.stdout.write(`${formatReport(report)}\n`);
  for (const t of loaded.truncated.slice(0, 5)) {
    process.stdout.write(`truncated: ${t.file}:${t.line}: ${t.text}\n`);
  }
  writeFileSync(json, `${JSON.stringify(report, null, 2)}\n`);
  process.stdout.write(`report: ${json}\n`);
  return report.valid === true ? 0 : report.valid === false ? 1 : 2;
}

function parse(
  argv: string[],
): 'help' | { dir: string; json: string; options: CheckOptions; seed: number | undefined } {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      'assumption-breaking': { type: 'boolean' },
      json: { type: 'string' },
      quorum: { type: 'string' },
      'recovery-bound-ms': { type: 'string' },
      'voting-lag-ms': { type: 'string' },
      ignore: { type: 'string' },
      'min-grants': { type: 'string' },
      'min-fenced-writes': { type: 'string' },
      'min-stable-acquires': { type: 'string' },
      seed: { type: 'string' },
      help: { type: 'boolean' },
    },
    allowPositionals: true,
    strict: true,
  });
  if (values.help) return 'help';
  if (positionals.length !== 1) {
    throw new UsageError(`expected one history directory, got ${positionals.length} arguments`);
  }
  const dir = positionals[0]!;
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new UsageError(`${dir} is not a directory`);
  const integer = (name: string, raw: string | undefined, min: number): number | undefined => {
    if (raw === undefined) return undefined;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min)
      throw new UsageError(`--${name} must be a whole number ≥ ${min}, got "${raw}"`);
    return n;
  };
  const ignore = (values.ignore ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  for (const name of ignore) {
    if (!(CHECK_NAMES as readonly string[]).includes(name)) {
      throw new UsageError(`--ignore: unknown check "${name}" (one of ${CHECK_NAMES.join(', ')})`);
    }
  }
  const quorum = integer('quorum', values.quorum, 1);
  const recoveryBoundMs = integer('recovery-bound-ms', values['recovery-bound-ms'], 0);
  const votingLagMs = integer('voting-lag-ms', values['voting-lag-ms'], 0);
  const grants = integer('min-grants', values['min-grants'], 0);
  const fencedWrites = integer('min-fenced-writes', values['min-fenced-writes'], 0);
  const minStableSamples = integer('min-stable-acquires', values['min-stable-acquires'], 0);
  const options: CheckOptions = {
    assumptionBreaking: values['assumption-breaking'] === true,
    ...(quorum !== undefined && { quorum }),
    ...(recoveryBoundMs !== undefined && { recoveryBoundMs }),
    ...(votingLagMs !== undefined && { votingLagMs }),
    ...(ignore.length > 0 && { ignore: ignore as CheckName[] }),
    minimum: { grants, fencedWrites },
    ...(minStableSamples !== undefined && { liveness: { minStableSamples } }),
  };
  return {
    dir,
    json: values.json ?? join(dir, 'report.json'),
    options,
    seed: integer('seed', values.seed, 0),
  };
}

// `check.ts dir | head` closes stdout early: that is not an error worth a stack trace.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code !== 'EPIPE') throw error;
});

try {
  process.exitCode = main(process.argv.slice(2));
} catch (error) {
  process.stderr.write(`check: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exitCode = 2;
}
