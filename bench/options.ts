/**
 * `npm run bench` flags. Every flag is one row of FLAGS — name, kind, default, range, help — and parsing and
 * `--help` both come from those rows, so the help never drifts from what is parsed.
 */
import { parseArgs } from 'node:util';

/** The scenarios, in the order they run. */
export const SCENARIOS = ['uncontended-1', 'uncontended-64', 'contended-16', 'keepalive'] as const;
export type ScenarioName = (typeof SCENARIOS)[number];

/**
 * Every system the bench can measure. `redlease` is raw unary gRPC through the generated client; `redlease-sdk`
 * is the SDK's LockClient on unary calls; `redlease-session` the SDK with `transport: 'session'` (its default); `grpc-echo` is the ceiling (a grpc-js unary echo: one "cycle" = two calls);
 * `grpc-echo-stream` the ceiling for requests sent as messages on one open bidirectional stream per client.
 * `redlease-traced` is `redlease-session` with tracing on at both ends (sampler always_on, every span exported over
 * OTLP http/protobuf to a local receiver), against a second server started with the OTEL_* variables.
 */
export const SYSTEMS = [
  'redlease',
  'redlease-sdk',
  'redlease-session',
  'redlease-traced',
  'node-redlock',
  'etcd',
  'grpc-echo',
  'grpc-echo-stream',
] as const;
export type SystemName = (typeof SYSTEMS)[number];

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export const SERVER_BUILDS = ['compiled', 'tsx'] as const;

export interface BenchOptions {
  scenarios: ScenarioName[];
  runs: number;
  seconds: number;
  warmupSeconds: number;
  /** Also run etcd (installing etcd-server when it is missing). */
  peers: boolean;
  /** Systems to measure (etcd only with `peers`). */
  systems: SystemName[];
  /** JSON results file; undefined: bench/results/<timestamp>.json. */
  out: string | undefined;
  /** Print the tables as Markdown (for docs/performance.md). */
  markdown: boolean;
  serverLogLevel: (typeof LOG_LEVELS)[number];
  /** How the redlease server runs: compiled to JavaScript first (as the container image runs it) or under tsx. */
  serverBuild: (typeof SERVER_BUILDS)[number];
  /** Directory for the server's V8 CPU profile (.cpuprofile), written when it stops; undefined: none. */
  serverCpuProf: string | undefined;
  ttlMs: number;
  /** Uncontended scenarios: every cycle on a never-used resource. */
  freshResources: boolean;
  waitMs: number;
  holdMs: number;
  redlockRetryDelayMs: number;
  redlockRetryJitterMs: number;
  keepaliveSeconds: number;
  keepaliveStreams: number;
  keepaliveLeases: number;
  keepaliveTtlMs: number;
  etcdDataDir: string | undefined;
}

type Flag =
  | {
      name: string;
      key: keyof BenchOptions;
      kind: 'number';
      default: number;
      min: number;
      max: number;
      integer: boolean;
      help: string;
    }
  | { name: string; key: keyof BenchOptions; kind: 'string'; default?: string; help: string }
  | {
      name: string;
      key: keyof BenchOptions;
      kind: 'list' | 'choice';
      default: string;
      choices: readonly string[];
      help: string;
    }
  | { name: string; key: keyof BenchOptions; kind: 'boolean'; help: string };

const DEFAULT_SCENARIOS = SCENARIOS.filter((s) => s !== 'keepalive').join(',');

const FLAGS: readonly Flag[] = [
  {
    name: 'scenario',
    key: 'scenarios',
    kind: 'list',
    default: DEFAULT_SCENARIOS,
    choices: SCENARIOS,
    help: 'scenarios to run, comma-separated (keepalive only when named, and once whatever --runs says: a soak of one ttl of acquisitions + --keepalive-seconds)',
  },
  {
    name: 'runs',
    key: 'runs',
    kind: 'number',
    default: 5,
    min: 1,
    max: 100,
    integer: true,
    help: 'runs of each scenario; every run measures each system once, in a rotated order (interleaved)',
  },
  {
    name: 'seconds',
    key: 'seconds',
    kind: 'number',
    default: 10,
    min: 0.2,
    max: 3_600,
    integer: false,
    help: 'measured seconds per system per run',
  },
  {
    name: 'warmup-seconds',
    key: 'warmupSeconds',
    kind: 'number',
    default: 1,
    min: 0,
    max: 600,
    integer: false,
    help: 'unmeasured seconds before each measurement (JIT, connections, Redis script cache)',
  },
  {
    name: 'peers',
    key: 'peers',
    kind: 'boolean',
    help: 'also measure etcd v3lock (runs a local etcd; installs etcd-server with apt-get when missing)',
  },
  {
    name: 'systems',
    key: 'systems',
    kind: 'list',
    default: SYSTEMS.join(','),
    choices: SYSTEMS,
    help: 'systems to measure, comma-separated (etcd only with --peers)',
  },
  {
    name: 'out',
    key: 'out',
    kind: 'string',
    help: 'JSON results file (default bench/results/<timestamp>.json)',
  },
  {
    name: 'markdown',
    key: 'markdown',
    kind: 'boolean',
    help: 'print the tables as Markdown (what docs/performance.md shows)',
  },
  {
    name: 'server-log-level',
    key: 'serverLogLevel',
    kind: 'choice',
    default: 'warn',
    choices: LOG_LEVELS,
    help: 'the server\'s --log-level; "info" measures with one log line per lock event',
  },
  {
    name: 'server-build',
    key: 'serverBuild',
    kind: 'choice',
    default: 'compiled',
    choices: SERVER_BUILDS,
    help: "compiled: build the server first (npm run build, into dist/) and run dist/server/main.js, as the container image does; tsx: run server/main.ts under tsx, as npm start does (esbuild's keepNames helper then runs on every named closure)",
  },
  {
    name: 'server-cpu-prof',
    key: 'serverCpuProf',
    kind: 'string',
    help: "write the server's V8 CPU profile (.cpuprofile, for Chrome DevTools) into this directory",
  },
  {
    name: 'ttl-ms',
    key: 'ttlMs',
    kind: 'number',
    default: 10_000,
    min: 100,
    max: 3_600_000,
    integer: true,
    help: "lease ttl of redlease and node-redlock (an etcd lock lives as long as its client's lease: granted for the run, revoked at its end)",
  },
  {
    name: 'fresh-resources',
    key: 'freshResources',
    kind: 'boolean',
    help: "uncontended scenarios: every cycle on a never-locked resource (redlease's first acquire of a resource seeds its fencing token: one more Redis round trip) instead of 16 reused resources per loop",
  },
  {
    name: 'wait-ms',
    key: 'waitMs',
    kind: 'number',
    default: 5_000,
    min: 1,
    max: 300_000,
    integer: true,
    help: "contended-16: how long one acquire may wait (redlease wait_timeout_ms, the SDK's waitMs, node-redlock's retry window)",
  },
  {
    name: 'hold-ms',
    key: 'holdMs',
    kind: 'number',
    default: 1,
    min: 0,
    max: 10_000,
    integer: true,
    help: 'contended-16: how long a holder keeps the lock before releasing it',
  },
  {
    name: 'redlock-retry-delay-ms',
    key: 'redlockRetryDelayMs',
    kind: 'number',
    default: 10,
    min: 1,
    max: 10_000,
    integer: true,
    help: "contended-16: node-redlock's retryDelay (its polling period while the lock is held)",
  },
  {
    name: 'redlock-retry-jitter-ms',
    key: 'redlockRetryJitterMs',
    kind: 'number',
    default: 10,
    min: 0,
    max: 10_000,
    integer: true,
    help: "contended-16: node-redlock's retryJitter",
  },
  {
    name: 'keepalive-seconds',
    key: 'keepaliveSeconds',
    kind: 'number',
    default: 120,
    min: 1,
    max: 86_400,
    integer: false,
    help: 'keepalive: measured seconds, after every lease is held',
  },
  {
    name: 'keepalive-streams',
    key: 'keepaliveStreams',
    kind: 'number',
    default: 100,
    min: 1,
    max: 10_000,
    integer: true,
    help: 'keepalive: LockClients, each with its own connection and one KeepAlive stream',
  },
  {
    name: 'keepalive-leases',
    key: 'keepaliveLeases',
    kind: 'number',
    default: 10_000,
    min: 1,
    max: 1_000_000,
    integer: true,
    help: 'keepalive: leases in all, spread evenly over the streams (≤ 1 000 per stream: the server limit)',
  },
  {
    name: 'keepalive-ttl-ms',
    key: 'keepaliveTtlMs',
    kind: 'number',
    default: 30_000,
    min: 1_000,
    max: 3_600_000,
    integer: true,
    help: "keepalive: lease ttl (the server's default); the SDK renews every third of it",
  },
  {
    name: 'etcd-data-dir',
    key: 'etcdDataDir',
    kind: 'string',
    help: "etcd's data dir parent (default /dev/shm: in memory, like the Redis nodes, which run without persistence)",
  },
];

export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** `npm run bench -- --help`. */
export function helpText(): string {
  const lines = [
    'Usage: npm run bench -- [options]',
    '',
    'Starts 3 Redis nodes, the redlease server (a separate process), a grpc-js echo server and, with --peers,',
    'etcd; runs each scenario --runs times, measuring every system once per run in a rotated order (closed',
    'loops on the same Redis nodes); prints medians [min–max], the ratios to each peer and the issue 6 targets;',
    'writes JSON results. Progress goes to stderr, the tables to stdout.',
    '',
    'Options:',
  ];
  for (const flag of FLAGS) {
    const value =
      flag.kind === 'boolean'
        ? ''
        : flag.kind === 'number'
          ? ' <n>'
          : flag.kind === 'list'
            ? ' <a,b>'
            : flag.kind === 'choice'
              ? ` <${flag.choices.join('|')}>`
              : ' <path>';
    const defaultText =
      flag.kind === 'boolean' || flag.kind === 'string' ? '' : ` (default ${String(flag.default)})`;
    const choices = flag.kind === 'list' ? `; one of ${flag.choices.join(', ')}` : '';
    lines.push(`  --${flag.name}${value}`, `      ${flag.help}${choices}${defaultText}`);
  }
  lines.push('  --help', '      this text', '');
  return lines.join('\n');
}

/** Parses `argv` (without node and the script); throws UsageError with a one-line message. */
export function parseBenchOptions(argv: readonly string[]): BenchOptions | { help: string } {
  const spec: Record<string, { type: 'string' | 'boolean' }> = { help: { type: 'boolean' } };
  for (const flag of FLAGS) spec[flag.name] = { type: flag.kind === 'boolean' ? 'boolean' : 'string' };
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs({ args: [...argv], options: spec, strict: true, allowPositionals: false }).values;
  } catch (error) {
    throw new UsageError(`${(error as Error).message} (npm run bench -- --help lists the options)`);
  }
  if (values.help) return { help: helpText() };
  const options: Record<string, unknown> = {};
  for (const flag of FLAGS) options[flag.key] = parseFlag(flag, values[flag.name]);
  const parsed = options as unknown as BenchOptions;
  if (!parsed.peers) parsed.systems = parsed.systems.filter((s) => s !== 'etcd');
  if (parsed.systems.length === 0) throw new UsageError('--systems: nothing left to measure');
  return parsed;
}

function parseFlag(flag: Flag, raw: string | boolean | undefined): unknown {
  if (flag.kind === 'boolean') return raw === true;
  if (flag.kind === 'string') return typeof raw === 'string' && raw !== '' ? raw : flag.default;
  const text = typeof raw === 'string' ? raw : String(flag.default);
  if (flag.kind === 'number') {
    const value = Number(text);
    if (text.trim() === '' || !Number.isFinite(value) || (flag.integer && !Number.isInteger(value))) {
      throw new UsageError(
        `--${flag.name}: expected ${flag.integer ? 'a whole number' : 'a number'}, got "${text}"`,
      );
    }
    if (value < flag.min || value > flag.max) {
      throw new UsageError(`--${flag.name}: must be in [${flag.min}, ${flag.max}], got ${value}`);
    }
    return value;
  }
  const items = flag.kind === 'list' ? text.split(',').map((s) => s.trim()) : [text];
  for (const item of items) {
    if (!flag.choices.includes(item)) {
      throw new UsageError(`--${flag.name}: unknown value "${item}"; one of ${flag.choices.join(', ')}`);
    }
  }
  // Keep the canonical order (scenarios run in SCENARIOS order), without duplicates.
  return flag.kind === 'list' ? flag.choices.filter((c) => items.includes(c)) : text;
}
