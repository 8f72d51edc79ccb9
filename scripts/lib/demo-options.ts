/**
 * The demo launcher's options (scripts/demo.ts), from flags only (node:util parseArgs, strict). Nothing here logs
 * or exits: an unusable value is a DemoOptionsError whose message is one line naming the flag (exit code 2).
 */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { DEFAULT_STATE_DIR } from './demo-state.js';

export interface DemoOptions {
  /** The three Redis lock nodes, redis-1..3. */
  redisPorts: [number, number, number];
  /** The workers' FencedStore Redis. */
  storePort: number;
  grpcPort: number;
  httpPort: number;
  workers: number;
  /** The server's --default-ttl-ms: the ttl of an acquire that gives none (the curl examples). */
  ttlMs: number;
  /** The server's --max-ttl-ms: also the longest a restarted node is quarantined. */
  maxTtlMs: number;
  /** Workers' pause between rounds. */
  pauseMs: number;
  /** Absolute. */
  stateDir: string;
  /** Print each finished acquire trace as one line (the server and workers export to the launcher). */
  traces: boolean;
}

export class DemoOptionsError extends Error {
  override readonly name = 'DemoOptionsError';
}

const DEFAULT_PORTS = { redis: [6381, 6382, 6383], store: 6390, grpc: 50051, http: 8000 } as const;

const DEFAULTS = {
  workers: 3,
  /** 10 s: a lock taken with curl stays long enough to look at it (Describe, a second acquire refused). */
  ttlMs: 10_000,
  /** 30 s: a restarted node rejoins within half a minute even when the quarantine cannot be shortened. */
  maxTtlMs: 30_000,
  /** 1 s: three workers then write a few readable lines a second. */
  pauseMs: 1_000,
} as const;
/** Nine workers fit the prefix and two cores; more would only make the log scroll. */
const MAX_WORKERS = 9;
/** The server's ttl bounds (server/config.ts): 100 ms is its --min-ttl-ms default, 1 day its upper limit. */
const MIN_TTL_MS = 100;
const MAX_TTL_LIMIT_MS = 86_400_000;

const DEMO_HELP = `Usage: npm run demo -- [options]     (or: node --import tsx scripts/demo.ts [options])

Starts the whole system as child processes and shows their logs interleaved: three Redis lock nodes, a Redis for
the workers' FencedStore, the redlease server (gRPC and the HTTP lab API) and the workers. Runs until Ctrl-C or
SIGTERM, which stop the workers, then the server, then Redis, and exit 0. Control the nodes meanwhile with
npm run nodes -- <stop|start|restart|pause|resume|status> <redis-1|redis-2|redis-3|store>.

Options:
  --redis-ports <p1,p2,p3>  lock node ports                      default ${DEFAULT_PORTS.redis.join(',')}
  --store-port <port>       store Redis port                     default ${DEFAULT_PORTS.store}
  --grpc-port <port>        server gRPC port                     default ${DEFAULT_PORTS.grpc}
  --http-port <port>        server HTTP port (lab API, /metrics) default ${DEFAULT_PORTS.http}
  --port-offset <n>         add n to every default port above (e.g. 1000: 7381-7383, 7390, 51051, 9000);
                            a port given by its own flag is taken as it is
  --workers <n>             workers w1..wn, 0-${MAX_WORKERS}                  default ${DEFAULTS.workers}
  --ttl-ms <ms>             lease ttl when a request gives none  default ${DEFAULTS.ttlMs}
  --max-ttl-ms <ms>         largest ttl accepted; also the longest a restarted node is quarantined
                                                                 default ${DEFAULTS.maxTtlMs}
  --pause-ms <ms>           workers' pause between rounds        default ${DEFAULTS.pauseMs}
  --state-dir <dir>         state file, control socket, Redis data and logs (wiped at start)
                                                                 default .redlease/demo
  --traces                  trace the server and the workers (OpenTelemetry) and print each finished
                            acquire as one "trace" line: who, resource, queued ms, each node's vote and
                            latency, token; with OTEL_EXPORTER_OTLP_ENDPOINT set (a Jaeger or collector
                            taking OTLP/HTTP), the same spans are sent there too
  -h, --help                show this help

Everything listens on 127.0.0.1 only. One demo per state dir: a second start says which pid runs it.
Exit codes: 0 stopped by Ctrl-C, SIGTERM or SIGHUP; 1 failed (already running, a port in use, a process that
would not start, the server died) or a second Ctrl-C killed everything; 2 bad option. npm run demo exits with the
same code, and SIGINT or SIGTERM sent to the npm process stops the demo as Ctrl-C does, with or without a terminal.
`;

export type ParsedDemoOptions = { help: string } | { options: DemoOptions };

export function parseDemoOptions(argv: readonly string[]): ParsedDemoOptions {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        'redis-ports': { type: 'string' },
        'store-port': { type: 'string' },
        'grpc-port': { type: 'string' },
        'http-port': { type: 'string' },
        'port-offset': { type: 'string' },
        workers: { type: 'string' },
        'ttl-ms': { type: 'string' },
        'max-ttl-ms': { type: 'string' },
        'pause-ms': { type: 'string' },
        'state-dir': { type: 'string' },
        traces: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (error) {
    if (error instanceof TypeError)
      throw new DemoOptionsError(`${error.message.replace(/\s+/g, ' ')} (see --help)`);
    throw error;
  }
  if (values.help === true) return { help: DEMO_HELP };
  const text = (name: string): string | undefined => {
    const value = values[name];
    return typeof value === 'string' ? value : undefined;
  };

  if (text('state-dir') === '') throw fail('state-dir', 'must not be empty');
  const offset = integer('port-offset', text('port-offset'), -65_535, 65_535) ?? 0;
  /** A default port moved by --port-offset. */
  const shift = (fallback: number): number => {
    const shifted = fallback + offset;
    if (shifted < 1 || shifted > 65_535) {
      throw fail('port-offset', `moves port ${fallback} to ${shifted}, outside 1-65535`);
    }
    return shifted;
  };
  const port = (name: string, fallback: number): number =>
    integer(name, text(name), 1, 65_535) ?? shift(fallback);
  const redisText = text('redis-ports');
  let redisPorts: [number, number, number];
  if (redisText === undefined) {
    redisPorts = [
      shift(DEFAULT_PORTS.redis[0]),
      shift(DEFAULT_PORTS.redis[1]),
      shift(DEFAULT_PORTS.redis[2]),
    ];
  } else {
    const parts = redisText.split(',');
    if (parts.length !== 3)
      throw fail('redis-ports', `needs three ports, like 7381,7382,7383; got "${redisText}"`);
    redisPorts = parts.map((p) => integer('redis-ports', p.trim(), 1, 65_535)!) as [number, number, number];
  }
  const options: DemoOptions = {
    redisPorts,
    storePort: port('store-port', DEFAULT_PORTS.store),
    grpcPort: port('grpc-port', DEFAULT_PORTS.grpc),
    httpPort: port('http-port', DEFAULT_PORTS.http),
    workers: integer('workers', text('workers'), 0, MAX_WORKERS) ?? DEFAULTS.workers,
    ttlMs: integer('ttl-ms', text('ttl-ms'), MIN_TTL_MS, MAX_TTL_LIMIT_MS) ?? DEFAULTS.ttlMs,
    maxTtlMs: integer('max-ttl-ms', text('max-ttl-ms'), MIN_TTL_MS, MAX_TTL_LIMIT_MS) ?? DEFAULTS.maxTtlMs,
    pauseMs: integer('pause-ms', text('pause-ms'), 0, 3_600_000) ?? DEFAULTS.pauseMs,
    stateDir: resolve(text('state-dir') ?? DEFAULT_STATE_DIR),
    traces: values.traces === true,
  };
  if (options.ttlMs > options.maxTtlMs) {
    throw fail(
      'ttl-ms',
      `${options.ttlMs} is above --max-ttl-ms ${options.maxTtlMs}; lower it or raise that`,
    );
  }
  const all = [...options.redisPorts, options.storePort, options.grpcPort, options.httpPort];
  const twice = all.find((p, i) => all.indexOf(p) !== i);
  if (twice !== undefined)
    throw new DemoOptionsError(`port ${twice} is given to two services; give each its own`);
  return { options };
}

function fail(name: string, problem: string): DemoOptionsError {
  return new DemoOptionsError(`--${name}: ${problem}`);
}

/** A whole number in [min, max] (a leading minus allowed where min < 0); undefined when not given. */
function integer(name: string, raw: string | undefined, min: number, max: number): number | undefined {
  if (raw === undefined) return undefined;
  const value = /^-?\d+$/.test(raw) ? Number(raw) : Number.NaN;
  if (Number.isSafeInteger(value) && value >= min && value <= max) return value;
  throw fail(name, `must be a whole number in [${min}, ${max}], got ${JSON.stringify(raw.slice(0, 40))}`);
}
