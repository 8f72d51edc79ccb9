// The run's settings, from ghz's defaults, then the config file, then the flags the user gave (ghz's
// mergeConfig), checked as ghz's runner.NewConfig checks them. Features the built-in runner does not have are
// refused here, by name, rather than silently run differently from ghz.

import { readFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { extname } from 'node:path';
import { ConfigError, DEFAULTS, type GhzConfig } from './config.js';

/** ghz sets n to math.MaxInt32 when a duration (-z) replaces it. */
const MAX_INT32 = 2_147_483_647;

/** Everything the built-in runner needs, in ghz's units (durations in nanoseconds). */
export interface RunOptions {
  call: string;
  host: string;
  proto?: string;
  protoset?: string;
  /** For --proto: the proto file's directory (unless "."), ".", then the import paths given (ghz's order). */
  importPaths: string[];
  insecure: boolean;
  cacert?: string;
  cert?: string;
  key?: string;
  cname?: string;
  skipTLS: boolean;
  authority?: string;
  /** Total requests (-n); math.MaxInt32 when -z sets the length of the run. */
  total: number;
  concurrency: number;
  connections: number;
  /** Requests per second over all workers; 0 = no limit. */
  rps: number;
  /** -z, or -x (which keeps n): when the run is stopped; 0 = never. */
  durationNs: number;
  durationStop: 'close' | 'wait' | 'ignore';
  /** Per-request deadline; 0 = none. */
  timeoutNs: number;
  connectTimeoutNs: number;
  keepaliveNs: number;
  /** Call data as JSON text (templates not yet applied): one object, or an array sent round-robin. */
  dataText: string;
  /** Call metadata as JSON text (templates not yet applied); '' for none. */
  metadataText: string;
  reflectMetadata: Record<string, string>;
  skipFirst: number;
  countErrors: boolean;
  format: 'summary' | 'csv' | 'json' | 'pretty';
  output?: string;
  name?: string;
  tags?: Record<string, string>;
  cpus: number;
  enableCompression: boolean;
}

/** Where the run reads call data given as `-d @`. */
export type ReadStdin = () => Promise<string>;

/** Merges `file` (a config file, possibly empty) and `flags` (the flags given) over ghz's defaults, and checks. */
export async function resolveOptions(
  file: Partial<GhzConfig>,
  flags: Partial<GhzConfig>,
  readStdin: ReadStdin,
): Promise<RunOptions> {
  const config: Partial<GhzConfig> = { ...DEFAULTS, ...file, ...flags };
  refuseUnsupported(config);

  // ghz's fromConfig: -x bounds a run that still stops after n requests; -z replaces n.
  const maxDuration = config['max-duration'] ?? 0;
  const duration = maxDuration > 0 ? maxDuration : (config.duration ?? 0);
  const total = maxDuration <= 0 && duration > 0 ? MAX_INT32 : config.total!;
  const concurrency = config.concurrency!;
  const connections = Math.max(config.connections ?? 1, 1);

  const proto = config.proto?.trim() || undefined;
  const importPaths: string[] = [];
  if (proto) {
    if (extname(proto) !== '.proto') throw new ConfigError('proto: must have .proto extension');
    const dir = proto.includes('/') ? proto.slice(0, proto.lastIndexOf('/')) || '/' : '.';
    if (dir !== '.') importPaths.push(dir);
    importPaths.push('.', ...(config['import-paths'] ?? []));
  }

  // runner.NewConfig's checks, in its order.
  if (connections > concurrency)
    throw new ConfigError('number of connections cannot be greater than concurrency');
  const call = config.call?.trim() ?? '';
  if (call === '') throw new ConfigError('call required');
  const host = config.host?.trim() ?? '';
  if (host === '') throw new ConfigError('host required');
  const skipFirst = config.skipFirst ?? 0;
  if (skipFirst > total) throw new ConfigError('you cannot skip more requests than those run');

  const stop = (config['duration-stop'] ?? 'close').toLowerCase();
  return {
    call,
    host,
    ...(proto && { proto }),
    ...(config.protoset?.trim() && { protoset: config.protoset.trim() }),
    importPaths,
    insecure: config.insecure ?? false,
    ...(config.cacert?.trim() && { cacert: config.cacert.trim() }),
    ...(config.cert?.trim() && { cert: config.cert.trim() }),
    ...(config.key?.trim() && { key: config.key.trim() }),
    ...(config.cname && { cname: config.cname }),
    skipTLS: config.skipTLS ?? false,
    ...(config.authority && { authority: config.authority }),
    total,
    concurrency,
    connections,
    rps: config.rps ?? 0,
    durationNs: duration,
    durationStop: stop === 'wait' || stop === 'ignore' ? stop : 'close',
    timeoutNs: config.timeout ?? 0,
    connectTimeoutNs: config['connect-timeout'] ?? 0,
    keepaliveNs: config.keepalive ?? 0,
    dataText: await dataText(config, readStdin),
    metadataText: await metadataText(config),
    reflectMetadata: config['reflect-metadata'] ?? {},
    skipFirst,
    countErrors: config['count-errors'] ?? false,
    format: config.format as RunOptions['format'],
    ...(config.output?.trim() && { output: config.output.trim() }),
    ...(config.name?.trim() && { name: config.name.trim() }),
    ...(config.tags && { tags: config.tags }),
    cpus: config.cpus || availableParallelism(),
    enableCompression: config['enable-compression'] ?? false,
  };
}

/** ghz features the built-in runner does not implement: named, so that nothing runs unlike ghz would. */
function refuseUnsupported(config: Partial<GhzConfig>): void {
  const refuse = (what: string) =>
    new ConfigError(
      `${what} is not supported by the built-in runner (see ghz/README.md); install ghz to use it`,
    );
  if (config.async) throw refuse('async');
  if (config['binary-file']) throw refuse('binary call data (binary-file)');
  if (config['load-schedule'] !== 'const') throw refuse(`load-schedule "${config['load-schedule']}"`);
  if (config['concurrency-schedule'] !== 'const') {
    throw refuse(`concurrency-schedule "${config['concurrency-schedule']}"`);
  }
  if (config['lb-strategy']) throw refuse('lb-strategy');
  if (config.debug) throw refuse('debug logging');
  const format = config.format ?? 'summary';
  if (!['summary', 'csv', 'json', 'pretty'].includes(format)) {
    throw new ConfigError(
      ['html', 'influx-summary', 'influx-details', 'prometheus'].includes(format)
        ? `${refuse(`format "${format}"`).message}`
        : `unknown format: ${format}`,
    );
  }
}

/** The call data as ghz passes it to its data provider: the file's text, stdin, or the data as JSON. */
async function dataText(config: Partial<GhzConfig>, readStdin: ReadStdin): Promise<string> {
  const path = config['data-file']?.trim();
  if (config.data === '@') return readStdin();
  if (path) return readText(path);
  return sortedJson(config.data ?? null);
}

async function metadataText(config: Partial<GhzConfig>): Promise<string> {
  const path = config['metadata-file']?.trim();
  if (path) return readText(path);
  return config.metadata === undefined ? '' : sortedJson(config.metadata);
}

async function readText(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    throw new ConfigError(
      `open ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
    );
  }
}

/** JSON with object keys sorted, as Go's json.Marshal writes a map[string]interface{}. */
export function sortedJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v !== null && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  );
}
