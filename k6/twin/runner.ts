/**
 * The built-in twin of `k6 run <script>` for the two lab scripts, for machines without k6 (k6/README.md): the
 * same stages and thresholds (read from the script's profile file, as the script reads them), the same
 * scenario (scenarios.ts), a summary of checks, thresholds and metrics, and k6's exit codes: 0, or 99 when a
 * threshold failed. Flags, as k6's: `-s/--stage <duration>:<target>` (repeatable; replaces the stages),
 * `-e/--env NAME=VALUE` (BASE_URL), `-q/--quiet`. BASE_URL also comes from the environment, as in k6.
 */
import { readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { aggregate, evaluateThresholds, format, type Metric } from './metrics.js';
import { parseDuration, Runtime, type Stage } from './runtime.js';
import { type Profile, SCENARIOS, type Scenario } from './scenarios.js';

/** k6's exit code when thresholds failed. */
export const THRESHOLDS_FAILED = 99;
/** Bad usage: an unknown flag, script or stage (k6 uses a few codes here; the twin one). */
export const USAGE = 2;

export interface Io {
  stdout(text: string): void;
  stderr(text: string): void;
  env: Readonly<Record<string, string | undefined>>;
  /** Called with a function that stops the run early (the runner wires it to SIGINT). */
  onStart?(stop: () => void): void;
}

interface Options {
  script: string;
  stages?: Stage[];
  env: Record<string, string>;
  quiet: boolean;
}

function parse(argv: readonly string[]): Options {
  const { values, positionals } = parseArgs({
    args: [...argv],
    allowPositionals: true,
    options: {
      stage: { type: 'string', short: 's', multiple: true },
      env: { type: 'string', short: 'e', multiple: true },
      quiet: { type: 'boolean', short: 'q' },
    },
  });
  const [command, script, ...rest] = positionals;
  if (command !== 'run' || script === undefined || rest.length > 0) {
    throw new Error('usage: run [-s <duration>:<target>]… [-e NAME=VALUE]… [-q] <script.js>');
  }
  const stages = values.stage?.map((text) => {
    const match = /^([0-9.hms]+):(\d+)$/.exec(text);
    if (!match) throw new Error(`--stage ${JSON.stringify(text)}: write <duration>:<target>, as 10s:5`);
    parseDuration(match[1]!);
    return { duration: match[1]!, target: Number(match[2]) };
  });
  const env: Record<string, string> = {};
  for (const pair of values.env ?? []) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new Error(`--env ${JSON.stringify(pair)}: write NAME=VALUE`);
    env[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return { script, ...(stages && { stages }), env, quiet: values.quiet ?? false };
}

interface ProfileFile extends Profile {
  stages: Stage[];
  thresholds: Record<string, string[]>;
}

export async function runTwin(argv: readonly string[], io: Io): Promise<number> {
  let options: Options;
  let profile: ProfileFile;
  let scenario: Scenario | undefined;
  try {
    options = parse(argv);
    const name = basename(options.script);
    scenario = SCENARIOS[name];
    if (!scenario) {
      throw new Error(
        `the built-in runner knows ${Object.keys(SCENARIOS).join(' and ')} only; install k6 to run ${options.script}`,
      );
    }
    const profilePath = join(dirname(options.script), name.replace(/\.js$/, '.json'));
    profile = JSON.parse(readFileSync(profilePath, 'utf8')) as ProfileFile;
  } catch (error) {
    io.stderr(`k6 (built-in runner): ${(error as Error).message}\n`);
    return USAGE;
  }
  const stages = options.stages ?? profile.stages;
  const baseUrl = options.env.BASE_URL ?? io.env.BASE_URL ?? 'http://localhost:8000';
  const total = stages.reduce((ms, s) => ms + parseDuration(s.duration), 0);
  const maxVus = Math.max(1, ...stages.map((s) => s.target));
  io.stdout(
    `k6 is not installed: the built-in runner runs ${options.script} (k6/twin/scenarios.ts)\n` +
      `  ${(total / 1000).toFixed(0)} s in ${stages.length} stages (${stages.map((s) => `${s.duration}:${s.target}`).join(' ')}), up to ${maxVus} VUs, BASE_URL ${baseUrl}\n\n`,
  );

  const rt = new Runtime(scenario.expectedStatuses, (line) => io.stderr(`${line}\n`));
  scenario.declare(rt);
  let stopped = false;
  io.onStart?.(() => {
    stopped = true;
  });
  await rt.run(
    stages,
    (vu) => scenario.iteration(rt, vu, profile, baseUrl),
    () => stopped,
  );

  const seconds = rt.elapsedMs / 1000;
  let results: ReturnType<typeof evaluateThresholds>;
  try {
    results = evaluateThresholds(profile.thresholds, rt.metrics, seconds);
  } catch (error) {
    io.stderr(`k6 (built-in runner): ${(error as Error).message}\n`);
    return USAGE;
  }
  if (!options.quiet) io.stdout(summary(rt, results, seconds));
  const failed = results.filter((r) => !r.ok);
  if (failed.length > 0) {
    io.stderr(
      `thresholds on metrics '${[...new Set(failed.map((r) => r.key))].join("', '")}' have been crossed\n`,
    );
    return THRESHOLDS_FAILED;
  }
  return 0;
}

/** Checks, thresholds, then every metric (with its submetrics by tag, for the lab's own ones). */
function summary(rt: Runtime, results: ReturnType<typeof evaluateThresholds>, seconds: number): string {
  const lines: string[] = ['  █ THRESHOLDS', ''];
  for (const r of results)
    lines.push(`    ${r.ok ? '✓' : '✗'} ${r.key.padEnd(40)} '${r.expression}' ${r.shown}`);
  lines.push('', '  █ CHECKS', '');
  for (const [name, { passes, fails }] of rt.checks) {
    lines.push(`    ${fails === 0 ? '✓' : '✗'} ${name}  (${passes} passed, ${fails} failed)`);
  }
  lines.push('', `  █ TOTAL RESULTS (${seconds.toFixed(1)} s)`, '');
  for (const metric of [...rt.metrics.byName.values()].sort((a, b) => a.name.localeCompare(b.name))) {
    if (metric.samples.length === 0) continue;
    lines.push(
      `    ${metric.name.padEnd(34, '.')}: ${describe(
        metric,
        metric.samples.map((s) => s.value),
        seconds,
      )}`,
    );
    if (!metric.name.startsWith('lock_')) continue;
    for (const [tags, values] of byTags(metric)) {
      lines.push(`      ${`{${tags}}`.padEnd(32)}: ${describe(metric, values, seconds)}`);
    }
  }
  return `${lines.join('\n')}\n`;
}

function describe(metric: Metric, values: readonly number[], seconds: number): string {
  const a = aggregate(metric.kind, values, seconds);
  if (metric.kind === 'counter') return `${a.count} ${format(metric, 'rate', a.rate!)}`;
  if (metric.kind === 'rate') {
    return `${format(metric, 'rate', a.rate!)} ${a.passes} out of ${a.passes! + a.fails!}`;
  }
  return ['avg', 'min', 'med', 'max', 'p(90)', 'p(95)']
    .map((k) => `${k}=${format(metric, k, a[k]!)}`)
    .join(' ');
}

/** A metric's samples grouped by their tags (`outcome:acquired,mode:wait`), in order of the tags' text. */
function byTags(metric: Metric): [string, number[]][] {
  const groups = new Map<string, number[]>();
  for (const sample of metric.samples) {
    const key = Object.entries(sample.tags)
      .map(([k, v]) => `${k}:${v}`)
      .join(',');
    if (key === '') continue;
    const values = groups.get(key);
    if (values) values.push(sample.value);
    else groups.set(key, [sample.value]);
  }
  return [...groups].sort(([a], [b]) => a.localeCompare(b));
}
