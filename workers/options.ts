/**
 * The worker's options, from flags (node:util parseArgs, strict) and, for the connection settings only, from
 * environment variables: this is the only place the worker reads its environment (worker.ts passes it in).
 * Precedence: flag, then variable (an empty one counts as unset), then default. The server token is read from
 * REDLEASE_TOKEN only, never from a flag: argv is visible to every local user in `ps`.
 *
 * Nothing here logs or exits. An unusable value is an OptionsError whose message is one line naming the flag;
 * worker.ts prints it and exits with code 2.
 */
import { type ParseArgsConfig, parseArgs } from 'node:util';
import {
  OtelSettingError,
  otelVariables,
  parseTracingSettings,
  type TracingSettings,
} from '../telemetry/settings.js';

/** service.name of the workers' spans unless OTEL_SERVICE_NAME says otherwise. */
export const WORKER_SERVICE_NAME = 'redlease-worker';

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

export interface WorkerOptions {
  /** redlease server, `host:port`. */
  address: string;
  /** Bearer token for the server; undefined: none. */
  token: string | undefined;
  /** Redis URL of the FencedStore that holds the shared counter. */
  store: string;
  /** The resource the workers compete for; the counter lives under `counter:<resource>`. */
  resource: string;
  /** Client id of this worker's leases and the `worker` field of every log line. */
  name: string;
  ttlMs: number;
  /** Simulated work per win, during which the lease renews. */
  workMs: number;
  /** How long one acquire waits in the server's queue; 0 = try once. */
  waitMs: number;
  /** Pause between rounds. */
  pauseMs: number;
  /** Rounds (acquire attempts, won or not) before stopping; Infinity = until stopped. */
  rounds: number;
  /** No round starts after this long; Infinity = until stopped. */
  durationMs: number;
  /** Freeze the event loop for `stallMs` between the last lease check and the write. */
  stall: boolean;
  stallMs: number;
  logLevel: LogLevel;
  /** Where spans go (the standard OTEL_* variables); undefined: tracing is off. */
  tracing: TracingSettings | undefined;
}

/** An unusable option. The message is one line: the flag and what to fix. */
export class OptionsError extends Error {
  override readonly name = 'OptionsError';
}

export type ParsedOptions = { help: string } | { options: WorkerOptions };

const LOG_LEVELS: readonly LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];
/** The SDK's (and server's) ttl bounds: 100 ms is about the shortest lease worth renewing, 1 h the longest. */
const MIN_TTL_MS = 100;
const HOUR_MS = 3_600_000;
/** The longest wait the server accepts (DESIGN: wait ≤ 5 min). */
const MAX_WAIT_MS = 300_000;

/** Defaults of the flags that have one (shown by --help from here too). */
const DEFAULTS = {
  address: '127.0.0.1:50051',
  /** 6390: next to the demo's lock nodes on 6381–6383, and not one of them. */
  store: 'redis://127.0.0.1:6390',
  resource: 'shared-resource',
  /** 3 s: renewed every second, so a stalled or partitioned worker loses its lease within seconds. */
  ttlMs: 3_000,
  /** 1 s: long enough that a renewal happens while working, short enough that three workers take turns often. */
  workMs: 1_000,
  /** 30 s: room to queue behind a dozen workers' turns before giving up on a round. */
  waitMs: 30_000,
  pauseMs: 0,
} as const;

interface Flag {
  type: 'string' | 'boolean';
  /** How --help shows the value ('' for booleans). */
  value: string;
  /** The environment variable read when the flag is absent. */
  env?: `REDLEASE_${string}`;
  default: string;
  help: string;
}

/** Every flag, in --help order. */
const FLAGS: Readonly<Record<string, Flag>> = {
  address: {
    type: 'string',
    value: '<host:port>',
    env: 'REDLEASE_ADDRESS',
    default: DEFAULTS.address,
    help: 'redlease server to take leases from',
  },
  store: {
    type: 'string',
    value: '<url>',
    env: 'REDLEASE_STORE',
    default: DEFAULTS.store,
    help: 'redis:// URL of the FencedStore holding the shared counter (a Redis of its own, not a lock node)',
  },
  resource: {
    type: 'string',
    value: '<name>',
    default: DEFAULTS.resource,
    help: 'resource the workers compete for; the counter key is counter:<resource>',
  },
  name: {
    type: 'string',
    value: '<name>',
    default: 'worker-<pid>',
    help: 'worker name: the client id of its leases and the `worker` field of its log lines',
  },
  'ttl-ms': {
    type: 'string',
    value: '<ms>',
    default: String(DEFAULTS.ttlMs),
    help: `lease ttl, renewed every third of it while working [${MIN_TTL_MS}–${HOUR_MS}]`,
  },
  'work-ms': {
    type: 'string',
    value: '<ms>',
    default: String(DEFAULTS.workMs),
    help: `simulated work per win, under the renewing lease [0–${HOUR_MS}]`,
  },
  'wait-ms': {
    type: 'string',
    value: '<ms>',
    default: String(DEFAULTS.waitMs),
    help: `how long one acquire waits in the server's queue; 0 = try once [0–${MAX_WAIT_MS}]`,
  },
  'pause-ms': {
    type: 'string',
    value: '<ms>',
    default: String(DEFAULTS.pauseMs),
    help: `pause between rounds [0–${HOUR_MS}]`,
  },
  rounds: {
    type: 'string',
    value: '<n>',
    default: 'unlimited',
    help: 'stop after this many rounds (acquire attempts, won or not)',
  },
  'duration-ms': {
    type: 'string',
    value: '<ms>',
    default: 'unlimited',
    help: 'start no round after this long (the current one finishes)',
  },
  stall: {
    type: 'boolean',
    value: '',
    default: 'off',
    help: 'after the last lease check, freeze the event loop before writing (a GC pause): the write is refused',
  },
  'stall-ms': {
    type: 'string',
    value: '<ms>',
    default: '3 × --ttl-ms',
    help: `how long --stall freezes the event loop [1–${HOUR_MS}]`,
  },
  'log-level': {
    type: 'string',
    value: '<level>',
    default: 'info',
    help: `pino log level, one of ${LOG_LEVELS.join(', ')}`,
  },
};

const INTRO = [
  'Usage: node --import tsx workers/worker.ts [options]',
  '',
  'A worker competing for a resource: each round it acquires the lease (waiting in the queue), reads the shared',
  'counter through the FencedStore with its fencing token, works while the lease renews, then writes the counter',
  'plus one with its token and releases. Logs one JSON line per event (won, wrote, stale write refused, lease',
  'lost, wait timed out, done) to stdout. SIGTERM or SIGINT: stop after the current step, release, exit 0.',
  '',
  'Options:',
];

export function helpText(): string {
  const lines = [...INTRO];
  for (const [name, flag] of Object.entries(FLAGS)) {
    const left = `--${name} ${flag.value}`.trimEnd();
    const env = flag.env ? ` (${flag.env})` : '';
    lines.push(`  ${left.padEnd(26)} default ${flag.default}${env}`);
    lines.push(`      ${flag.help}`);
  }
  lines.push(`  ${'-h, --help'.padEnd(26)} show this help`);
  lines.push(
    '',
    'Environment only:',
    '  REDLEASE_TOKEN             bearer token for the server (never a flag)',
    '',
    'Tracing (OpenTelemetry’s standard variables; on only with an endpoint; one trace per round):',
  );
  for (const variable of otelVariables(WORKER_SERVICE_NAME)) {
    const choices = variable.choices ? ` [one of ${variable.choices.join(', ')}]` : '';
    lines.push(`  ${variable.name.padEnd(36)} default ${variable.default ?? 'none'}`);
    lines.push(`      ${variable.description}${choices}`);
  }
  lines.push('');
  return lines.join('\n');
}

/**
 * Reads the options. `argv` holds the flags only (`process.argv.slice(2)`); `env` is usually `process.env`.
 * Throws OptionsError for anything unusable.
 */
export function parseOptions(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
  pid: number = process.pid,
): ParsedOptions {
  const values = readFlags(argv);
  if (values.help === true) return { help: helpText() };
  const text = (name: string): string | undefined => {
    const value = values[name];
    if (typeof value === 'string') return value;
    const variable = FLAGS[name]?.env;
    return (variable && env[variable]) || undefined;
  };

  const ttlMs = integer('ttl-ms', text('ttl-ms'), MIN_TTL_MS, HOUR_MS) ?? DEFAULTS.ttlMs;
  const stall = values.stall === true;
  const stallMs = integer('stall-ms', text('stall-ms'), 1, HOUR_MS);
  if (stallMs !== undefined && !stall) throw fail('stall-ms', 'is used only with --stall; add --stall');
  return {
    options: {
      address: address(text('address') ?? DEFAULTS.address),
      token: env.REDLEASE_TOKEN || undefined,
      store: storeUrl(text('store') ?? DEFAULTS.store),
      resource: nonEmpty('resource', text('resource')) ?? DEFAULTS.resource,
      name: nonEmpty('name', text('name')) ?? `worker-${pid}`,
      ttlMs,
      workMs: integer('work-ms', text('work-ms'), 0, HOUR_MS) ?? DEFAULTS.workMs,
      waitMs: integer('wait-ms', text('wait-ms'), 0, MAX_WAIT_MS) ?? DEFAULTS.waitMs,
      pauseMs: integer('pause-ms', text('pause-ms'), 0, HOUR_MS) ?? DEFAULTS.pauseMs,
      rounds: integer('rounds', text('rounds'), 1, Number.MAX_SAFE_INTEGER) ?? Number.POSITIVE_INFINITY,
      durationMs:
        integer('duration-ms', text('duration-ms'), 1, Number.MAX_SAFE_INTEGER) ?? Number.POSITIVE_INFINITY,
      stall,
      // Three ttls: far enough past the lease's validity that the lock has expired on the nodes and the next
      // waiter has had time to take it, read the counter and so register its newer token.
      stallMs: stallMs ?? 3 * ttlMs,
      logLevel: logLevel(text('log-level')),
      tracing: tracingSettings(env),
    },
  };
}

/** The OTEL_* variables; an unusable one is an OptionsError naming it. */
function tracingSettings(env: Readonly<Record<string, string | undefined>>): TracingSettings | undefined {
  try {
    return parseTracingSettings((name) => env[name] || undefined, WORKER_SERVICE_NAME);
  } catch (error) {
    if (error instanceof OtelSettingError) throw new OptionsError(error.message);
    throw error;
  }
}

/** As parseArgs returns them (arrays only for `multiple` flags, which no flag is). */
type Values = Record<string, string | boolean | (string | boolean)[] | undefined>;

/** argv → the value of each flag given. parseArgs's strict mode refuses unknown flags, missing values, stray
 *  arguments and values given to booleans; its messages are single lines naming the flag. */
function readFlags(argv: readonly string[]): Values {
  const options: NonNullable<ParseArgsConfig['options']> = { help: { type: 'boolean', short: 'h' } };
  for (const [name, flag] of Object.entries(FLAGS)) options[name] = { type: flag.type };
  let parsed: { values: Values; tokens: readonly { kind: string; name?: string }[] };
  try {
    parsed = parseArgs({ args: [...argv], options, strict: true, allowPositionals: false, tokens: true });
  } catch (error) {
    if (
      error instanceof TypeError &&
      String((error as { code?: unknown }).code).startsWith('ERR_PARSE_ARGS')
    ) {
      throw new OptionsError(`${error.message.replace(/\s+/g, ' ')} (see --help)`);
    }
    throw error;
  }
  // parseArgs keeps the last of a repeated flag; a flag given twice is more likely a mistake than intended.
  const seen = new Set<string>();
  for (const token of parsed.tokens) {
    if (token.kind !== 'option' || token.name === undefined) continue;
    if (seen.has(token.name)) throw fail(token.name, 'is given more than once; give it once');
    seen.add(token.name);
  }
  return parsed.values;
}

function fail(name: string, problem: string): OptionsError {
  return new OptionsError(`--${name}: ${problem}`);
}

/** A value for a message: quoted and escaped, so the message stays one line, and shortened. */
function quote(text: string): string {
  return JSON.stringify(text.length > 80 ? `${text.slice(0, 77)}...` : text);
}

/** A whole number in [min, max]; undefined when not given (the caller picks the default). */
function integer(name: string, raw: string | undefined, min: number, max: number): number | undefined {
  if (raw === undefined) return undefined;
  const value = /^\d+$/.test(raw) ? Number(raw) : Number.NaN;
  if (Number.isSafeInteger(value) && value >= min && value <= max) return value;
  const what = name.endsWith('-ms') ? 'a whole number of milliseconds' : 'a whole number';
  const range = max === Number.MAX_SAFE_INTEGER ? `≥ ${min}` : `in [${min}, ${max}]`;
  throw fail(name, `must be ${what} ${range}, got ${quote(raw)}`);
}

function nonEmpty(name: string, raw: string | undefined): string | undefined {
  if (raw === '') throw fail(name, 'must not be empty');
  return raw;
}

/** `host:port` with a port in 1–65535 (IPv6 hosts in brackets); the channel reports unreachable hosts. */
function address(raw: string): string {
  const match = /^(\[[0-9A-Fa-f:.]+\]|[^\s:[\]/]+):(\d{1,5})$/.exec(raw);
  const port = Number(match?.[2]);
  if (!match || port < 1 || port > 65_535) {
    throw fail('address', `must be host:port (IPv6 as [::1]:50051), got ${quote(raw)}`);
  }
  return raw;
}

function storeUrl(raw: string): string {
  let url: URL | undefined;
  try {
    url = new URL(raw);
  } catch {
    url = undefined;
  }
  if (url?.protocol !== 'redis:' && url?.protocol !== 'rediss:') {
    // Never echo the value: a store URL may carry a password.
    throw fail('store', 'must be a redis:// or rediss:// URL, like redis://127.0.0.1:6390');
  }
  return raw;
}

function logLevel(raw: string | undefined): LogLevel {
  if (raw === undefined) return 'info';
  const found = LOG_LEVELS.find((level) => level === raw);
  if (!found) throw fail('log-level', `must be one of ${LOG_LEVELS.join(', ')}, got ${quote(raw)}`);
  return found;
}
