/**
 * Server configuration from flags and environment variables: the only place the server reads process.env (main.ts
 * passes it in as `env`). Every option is one row of OPTIONS — flag, environment variable, type, default, range,
 * description — and parsing, `--help` and docs/configuration.md (checked by a test) all come from those rows.
 *
 * Precedence: flag, then environment variable (an empty one counts as unset), then default. Secrets come from
 * environment variables or files, never from flag values: argv is visible to every local user in `ps`.
 * Nothing here logs or exits. An unusable configuration is a ConfigError whose message is one line naming the
 * option (flag and variable) and what to fix; doubtful but usable settings come back as `warnings`.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { isIPv6 } from 'node:net';
import { type ParseArgsConfig, parseArgs } from 'node:util';
import {
  OtelSettingError,
  otelVariables,
  parseTracingSettings,
  type TracingSettings,
} from '../telemetry/settings.js';
import { LOOPBACK_NETWORKS, parseNetworks } from './edge/auth.js';
import { DEFAULTS } from './redlock/options.js';
import type { Mode } from './redlock/types.js';

export interface TlsConfig {
  /** PEM server certificate (chain). */
  cert: Buffer;
  /** PEM private key of `cert`, unencrypted; checked to match it. */
  key: Buffer;
  /** PEM CA certificates that client certificates are verified against. */
  ca?: Buffer;
  /** mTLS: refuse clients without a certificate signed by `ca` (only ever true with `ca`). */
  requireClientCert: boolean;
}

export interface ServerConfig {
  /** Redis nodes as `host:port` (IPv6 as `[::1]:6379`), in order; node 1 is the SINGLE-mode node. */
  nodes: string[];
  redisUsername?: string;
  redisPassword?: string;
  /** Host to bind, without brackets (`::1` for `[::1]:50051`); see hostPort(). */
  grpcHost: string;
  /** 0 = any free port. */
  grpcPort: number;
  /** The lab JSON API and /metrics: host to bind, without brackets. */
  httpHost: string;
  /** 0 = any free port. */
  httpPort: number;
  mode: Mode;
  defaultTtlMs: number;
  minTtlMs: number;
  maxTtlMs: number;
  nodeTimeoutMs: number;
  connectTimeoutMs: number;
  healthIntervalMs: number;
  retryCount: number;
  retryDelayMs: number;
  retryJitterMs: number;
  /** May be '' (share lock keys with other Redlock clients). */
  keyPrefix: string;
  /** Longest any lease may be held from its grant, renewals included; 0 = no server cap. */
  maxHoldMs: number;
  /** Largest wait_timeout_ms accepted; 0 = callers may not wait. */
  maxWaitMs: number;
  maxWaitersPerResource: number;
  maxWaiters: number;
  /** KeepAlive streams per server. */
  maxStreams: number;
  maxLeasesPerStream: number;
  /** Largest request message accepted. */
  maxMessageBytes: number;
  /** HTTP/2 streams (calls) per client connection. */
  maxConcurrentStreams: number;
  /** How often the head waiter of a resource looks again when no release announcement woke it. */
  waitFallbackMs: number;
  /** A KeepAlive stream with no lease attached and no request for this long is ended. */
  streamIdleMs: number;
  /** Time in-flight calls get on SIGTERM before they are cancelled. */
  shutdownGraceMs: number;
  logLevel: LogLevel;
  /** Unset: admin calls are accepted only from `adminNetworks`. */
  adminToken?: string;
  /** CIDRs (`address/prefix`) whose peers may make admin calls without the admin token; may be empty. */
  adminNetworks: string[];
  /** Bearer tokens accepted from clients; empty = no client authentication. */
  clientTokens: string[];
  tls?: TlsConfig;
  /** Where and how spans are exported (OTEL_* variables); undefined: tracing is off. */
  tracing?: TracingSettings;
}

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

/** An unusable configuration. The message is one line: the option (flag and variable) and what to fix. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

export type ParsedConfig = { help: string } | { config: ServerConfig; warnings: string[] };

const MODES: readonly Mode[] = ['redlock', 'single'];
const LOG_LEVELS: readonly LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];
/** The groups of --help and docs/configuration.md, in order. */
export const GROUPS = [
  'Redis nodes',
  'Listening',
  'Leases',
  'Limits',
  'Security',
  'Logging',
  'Tracing',
] as const;
/** service.name of the server's spans unless OTEL_SERVICE_NAME says otherwise. */
export const SERVICE_NAME = 'redlease';

type IntegerKey = Exclude<
  { [K in keyof ServerConfig]-?: ServerConfig[K] extends number ? K : never }[keyof ServerConfig],
  'grpcPort' | 'httpPort'
>;

interface Common {
  /** Absent for values that must never appear in argv (secrets): those are read from the environment only. */
  flag?: `--${string}`;
  /** REDLEASE_* for redlease's own settings; OTEL_* for OpenTelemetry's standard ones (environment only). */
  env: `REDLEASE_${string}` | `OTEL_${string}`;
  group: (typeof GROUPS)[number];
  /** One line, shown in --help and docs/configuration.md. */
  description: string;
}

/** One row of the option table. */
export type OptionSpec = Common &
  (
    | {
        type: 'integer';
        key: IntegerKey;
        default: number;
        min: number;
        max: number;
        unit: 'ms' | 'bytes' | 'count';
        /** The value must also lie between these two options' values. */
        between?: readonly [IntegerKey, IntegerKey];
      }
    | { type: 'choice'; key: 'mode' | 'logLevel'; default: string; choices: readonly string[] }
    | { type: 'string'; key: 'keyPrefix' | 'redisUsername'; default?: string }
    | { type: 'nodes'; key: 'nodes'; default: string }
    | { type: 'networks'; key: 'adminNetworks'; default: string }
    | { type: 'listen'; key: 'grpcListen' | 'httpListen'; default: string }
    /** A secret given directly: environment only. */
    | { type: 'secret'; key: 'redisPassword' | 'adminToken' | 'clientTokens' }
    /** A path; `secret` files are also checked for permissions. */
    | {
        type: 'file';
        key:
          | 'redisPasswordFile'
          | 'adminTokenFile'
          | 'clientTokensFile'
          | 'tlsCertFile'
          | 'tlsKeyFile'
          | 'tlsCaFile';
        secret: boolean;
      }
    | { type: 'boolean'; key: 'tlsRequireClientCert'; default: boolean }
    /** OpenTelemetry's own variable, read and checked by telemetry/settings.ts. */
    | {
        type: 'otel';
        key: `otel:${string}`;
        env: `OTEL_${string}`;
        default?: string;
        choices?: readonly string[];
      }
  );

const H = 3_600_000;

/** Every option of the server. A new option is a new row here (and a line in docs/configuration.md). */
export const OPTIONS: readonly OptionSpec[] = [
  // Redis nodes
  {
    key: 'nodes',
    type: 'nodes',
    flag: '--nodes',
    env: 'REDLEASE_NODES',
    default: '127.0.0.1:6381,127.0.0.1:6382,127.0.0.1:6383',
    group: 'Redis nodes',
    description:
      'Redis nodes, comma-separated host:port (IPv6 as [::1]:6379); node 1 is the SINGLE-mode node',
  },
  {
    key: 'redisUsername',
    type: 'string',
    env: 'REDLEASE_REDIS_USERNAME',
    group: 'Redis nodes',
    description: 'Redis ACL user on every node (needs a password)',
  },
  {
    key: 'redisPassword',
    type: 'secret',
    env: 'REDLEASE_REDIS_PASSWORD',
    group: 'Redis nodes',
    description: 'Redis password on every node',
  },
  {
    key: 'redisPasswordFile',
    type: 'file',
    secret: true,
    flag: '--redis-password-file',
    env: 'REDLEASE_REDIS_PASSWORD_FILE',
    group: 'Redis nodes',
    description: 'file holding the Redis password on one line (instead of REDLEASE_REDIS_PASSWORD)',
  },
  {
    key: 'nodeTimeoutMs',
    type: 'integer',
    unit: 'ms',
    flag: '--node-timeout-ms',
    env: 'REDLEASE_NODE_TIMEOUT_MS',
    default: DEFAULTS.nodeTimeoutMs,
    min: 1,
    max: 60_000,
    group: 'Redis nodes',
    description: 'timeout of each command to one Redis node',
  },
  {
    key: 'connectTimeoutMs',
    type: 'integer',
    unit: 'ms',
    flag: '--connect-timeout-ms',
    env: 'REDLEASE_CONNECT_TIMEOUT_MS',
    default: DEFAULTS.connectTimeoutMs,
    min: 1,
    max: 60_000,
    group: 'Redis nodes',
    description: 'timeout of one connection attempt to a Redis node',
  },
  {
    key: 'healthIntervalMs',
    type: 'integer',
    unit: 'ms',
    flag: '--health-interval-ms',
    env: 'REDLEASE_HEALTH_INTERVAL_MS',
    default: DEFAULTS.healthIntervalMs,
    min: 10,
    max: 600_000,
    group: 'Redis nodes',
    description: "how often each node's identity (run_id), eviction policy and latency are checked",
  },
  // Listening
  {
    key: 'grpcListen',
    type: 'listen',
    flag: '--grpc-listen',
    env: 'REDLEASE_GRPC_LISTEN',
    default: '127.0.0.1:50051',
    group: 'Listening',
    description: 'gRPC listen address, host:port (IPv6 as [::]:50051); port 0 = any free port',
  },
  {
    key: 'httpListen',
    type: 'listen',
    flag: '--http-listen',
    env: 'REDLEASE_HTTP_LISTEN',
    default: '127.0.0.1:8000',
    group: 'Listening',
    description:
      'HTTP listen address of the lab JSON API and /metrics, host:port; port 0 = any free port (HTTPS with the gRPC TLS options)',
  },
  {
    key: 'shutdownGraceMs',
    type: 'integer',
    unit: 'ms',
    flag: '--shutdown-grace-ms',
    env: 'REDLEASE_SHUTDOWN_GRACE_MS',
    default: 10_000,
    min: 0,
    max: 600_000,
    group: 'Listening',
    description: 'time in-flight calls get after SIGTERM before they are cancelled',
  },
  // Leases
  {
    key: 'mode',
    type: 'choice',
    flag: '--mode',
    env: 'REDLEASE_MODE',
    default: DEFAULTS.mode,
    choices: MODES,
    group: 'Leases',
    description: 'redlock: a majority of all nodes; single: node 1 alone (unsafe; for comparison)',
  },
  {
    key: 'defaultTtlMs',
    type: 'integer',
    unit: 'ms',
    flag: '--default-ttl-ms',
    env: 'REDLEASE_DEFAULT_TTL_MS',
    default: DEFAULTS.defaultTtlMs,
    min: 10,
    max: 24 * H,
    between: ['minTtlMs', 'maxTtlMs'],
    group: 'Leases',
    description: 'lease ttl when a request gives ttl_ms 0',
  },
  {
    key: 'minTtlMs',
    type: 'integer',
    unit: 'ms',
    flag: '--min-ttl-ms',
    env: 'REDLEASE_MIN_TTL_MS',
    default: DEFAULTS.minTtlMs,
    min: 10,
    max: 24 * H,
    group: 'Leases',
    description: 'smallest ttl_ms accepted',
  },
  {
    key: 'maxTtlMs',
    type: 'integer',
    unit: 'ms',
    flag: '--max-ttl-ms',
    env: 'REDLEASE_MAX_TTL_MS',
    // Not the engine's 1 h: leases are renewed (KeepAlive), so a long ttl buys a holder nothing, while a
    // restarted node waits out the max ttl before it votes again (docs/configuration.md, "The max ttl").
    default: 60_000,
    min: 10,
    max: 24 * H,
    group: 'Leases',
    description:
      'largest ttl_ms accepted; also how long a node restarted empty may have to wait before it votes again',
  },
  {
    // No cap by default: a lease renewed for as long as its holder works is the contract every client relies
    // on today (leader election holds for days). A cap is a policy for a deployment that wants one.
    key: 'maxHoldMs',
    type: 'integer',
    unit: 'ms',
    flag: '--max-hold-ms',
    env: 'REDLEASE_MAX_HOLD_MS',
    default: 0,
    min: 0,
    max: 720 * H,
    group: 'Leases',
    description:
      'longest a lease may be held from its grant, renewals included; a request’s max_hold_ms may lower it (0: no cap)',
  },
  {
    key: 'retryCount',
    type: 'integer',
    unit: 'count',
    flag: '--retry-count',
    env: 'REDLEASE_RETRY_COUNT',
    default: DEFAULTS.retryCount,
    min: 0,
    max: 100,
    group: 'Leases',
    description: 'extra acquire attempts after a split vote or a transient loss of quorum',
  },
  {
    key: 'retryDelayMs',
    type: 'integer',
    unit: 'ms',
    flag: '--retry-delay-ms',
    env: 'REDLEASE_RETRY_DELAY_MS',
    default: DEFAULTS.retryDelayMs,
    min: 0,
    max: 60_000,
    group: 'Leases',
    description: 'delay before each retry',
  },
  {
    key: 'retryJitterMs',
    type: 'integer',
    unit: 'ms',
    flag: '--retry-jitter-ms',
    env: 'REDLEASE_RETRY_JITTER_MS',
    default: DEFAULTS.retryJitterMs,
    min: 0,
    max: 60_000,
    group: 'Leases',
    description: 'random extra delay per retry, up to this, so split votes do not repeat',
  },
  {
    key: 'keyPrefix',
    type: 'string',
    flag: '--key-prefix',
    env: 'REDLEASE_KEY_PREFIX',
    default: DEFAULTS.keyPrefix,
    group: 'Leases',
    description: "lock key = prefix + resource; --key-prefix='' shares lock keys with other Redlock clients",
  },
  // Limits
  {
    key: 'maxWaitMs',
    type: 'integer',
    unit: 'ms',
    flag: '--max-wait-ms',
    env: 'REDLEASE_MAX_WAIT_MS',
    default: 300_000,
    min: 0,
    max: H,
    group: 'Limits',
    description: 'largest wait_timeout_ms accepted (0: callers may not wait)',
  },
  {
    key: 'maxWaitersPerResource',
    type: 'integer',
    unit: 'count',
    flag: '--max-waiters-per-resource',
    env: 'REDLEASE_MAX_WAITERS_PER_RESOURCE',
    default: 100,
    min: 1,
    max: 100_000,
    group: 'Limits',
    description: 'callers waiting for one resource',
  },
  {
    key: 'maxWaiters',
    type: 'integer',
    unit: 'count',
    flag: '--max-waiters',
    env: 'REDLEASE_MAX_WAITERS',
    default: 10_000,
    min: 1,
    max: 1_000_000,
    group: 'Limits',
    description: 'callers waiting, across all resources',
  },
  {
    key: 'maxStreams',
    type: 'integer',
    unit: 'count',
    flag: '--max-streams',
    env: 'REDLEASE_MAX_STREAMS',
    default: 10_000,
    min: 1,
    max: 1_000_000,
    group: 'Limits',
    description: 'open KeepAlive streams per server',
  },
  {
    key: 'maxLeasesPerStream',
    type: 'integer',
    unit: 'count',
    flag: '--max-leases-per-stream',
    env: 'REDLEASE_MAX_LEASES_PER_STREAM',
    default: 1_000,
    min: 1,
    max: 100_000,
    group: 'Limits',
    description: 'leases on one KeepAlive stream',
  },
  {
    key: 'maxMessageBytes',
    type: 'integer',
    unit: 'bytes',
    flag: '--max-message-bytes',
    env: 'REDLEASE_MAX_MESSAGE_BYTES',
    default: 16_384,
    min: 1_024,
    max: 4_194_304,
    group: 'Limits',
    description: 'largest request message accepted',
  },
  {
    key: 'maxConcurrentStreams',
    type: 'integer',
    unit: 'count',
    flag: '--max-concurrent-streams',
    env: 'REDLEASE_MAX_CONCURRENT_STREAMS',
    default: 1_000,
    min: 1,
    max: 100_000,
    group: 'Limits',
    description: 'concurrent calls (HTTP/2 streams) per client connection',
  },
  {
    key: 'waitFallbackMs',
    type: 'integer',
    unit: 'ms',
    flag: '--wait-fallback-ms',
    env: 'REDLEASE_WAIT_FALLBACK_MS',
    default: 1_000,
    min: 10,
    max: 600_000,
    group: 'Limits',
    description: 'a waiting Acquire looks again this often when no release announcement woke it',
  },
  {
    key: 'streamIdleMs',
    type: 'integer',
    unit: 'ms',
    flag: '--stream-idle-ms',
    env: 'REDLEASE_STREAM_IDLE_MS',
    default: 300_000,
    min: 100,
    max: 86_400_000,
    group: 'Limits',
    description: 'a KeepAlive stream with no lease attached and no request for this long is ended',
  },
  // Security
  {
    key: 'adminToken',
    type: 'secret',
    env: 'REDLEASE_ADMIN_TOKEN',
    group: 'Security',
    description: 'bearer token for admin calls; unset: admin calls are accepted only from --admin-networks',
  },
  {
    key: 'adminNetworks',
    type: 'networks',
    flag: '--admin-networks',
    env: 'REDLEASE_ADMIN_NETWORKS',
    default: LOOPBACK_NETWORKS.join(','),
    group: 'Security',
    description:
      "networks whose peers may make admin calls without the admin token, comma-separated CIDRs (172.16.37.0/24, fd00::/8); --admin-networks='' for none. Unset with an admin token configured: none",
  },
  {
    key: 'adminTokenFile',
    type: 'file',
    secret: true,
    flag: '--admin-token-file',
    env: 'REDLEASE_ADMIN_TOKEN_FILE',
    group: 'Security',
    description: 'file holding the admin token on one line (instead of REDLEASE_ADMIN_TOKEN)',
  },
  {
    key: 'clientTokens',
    type: 'secret',
    env: 'REDLEASE_CLIENT_TOKENS',
    group: 'Security',
    description: 'bearer tokens clients must present, comma-separated; unset: no client authentication',
  },
  {
    key: 'clientTokensFile',
    type: 'file',
    secret: true,
    flag: '--client-tokens-file',
    env: 'REDLEASE_CLIENT_TOKENS_FILE',
    group: 'Security',
    description: 'file of client tokens, one per line; blank lines and # comments are ignored',
  },
  {
    key: 'tlsCertFile',
    type: 'file',
    secret: false,
    flag: '--tls-cert-file',
    env: 'REDLEASE_TLS_CERT_FILE',
    group: 'Security',
    description: 'PEM server certificate (chain); with --tls-key-file, gRPC is served over TLS',
  },
  {
    key: 'tlsKeyFile',
    type: 'file',
    secret: true,
    flag: '--tls-key-file',
    env: 'REDLEASE_TLS_KEY_FILE',
    group: 'Security',
    description: 'PEM private key of the server certificate, unencrypted',
  },
  {
    key: 'tlsCaFile',
    type: 'file',
    secret: false,
    flag: '--tls-ca-file',
    env: 'REDLEASE_TLS_CA_FILE',
    group: 'Security',
    description: 'PEM CA certificates that client certificates are verified against',
  },
  {
    key: 'tlsRequireClientCert',
    type: 'boolean',
    flag: '--tls-require-client-cert',
    env: 'REDLEASE_TLS_REQUIRE_CLIENT_CERT',
    default: false,
    group: 'Security',
    description: 'mTLS: refuse clients without a certificate signed by --tls-ca-file (true or false)',
  },
  // Logging
  {
    key: 'logLevel',
    type: 'choice',
    flag: '--log-level',
    env: 'REDLEASE_LOG_LEVEL',
    default: 'info',
    choices: LOG_LEVELS,
    group: 'Logging',
    description: 'least severe level logged (JSON lines on stdout)',
  },
  // Tracing: OpenTelemetry's standard variables, as its SDKs read them.
  ...otelVariables(SERVICE_NAME).map(
    (v): OptionSpec => ({
      key: `otel:${v.name}`,
      type: 'otel',
      env: v.name,
      ...(v.default !== undefined && { default: v.default }),
      ...(v.choices && { choices: v.choices }),
      group: 'Tracing',
      description: v.description,
    }),
  ),
];

/** The row type of option `K`. */
type Spec<K extends OptionSpec['key']> = OptionSpec extends infer O
  ? O extends { key: infer Keys }
    ? K extends Keys
      ? O
      : never
    : never
  : never;

function option<K extends OptionSpec['key']>(key: K): Spec<K> {
  const spec = OPTIONS.find((o) => o.key === key);
  if (!spec) throw new Error(`no option ${key} in OPTIONS`);
  return spec as Spec<K>;
}

/** `--flag (REDLEASE_VAR)`, or the variable alone for environment-only options: how messages name an option. */
export function optionLabel(spec: OptionSpec): string {
  return spec.flag ? `${spec.flag} (${spec.env})` : spec.env;
}

/** The default as --help and the docs show it. */
export function defaultText(spec: OptionSpec): string {
  if (!('default' in spec) || spec.default === undefined) return 'none';
  if (spec.default === '') return "''";
  return String(spec.default);
}

/** The accepted values as --help and the docs show them, or '' when any value of the right form goes. */
export function rangeText(spec: OptionSpec): string {
  if (spec.type === 'choice' || (spec.type === 'otel' && spec.choices))
    return `one of ${spec.choices!.join(', ')}`;
  if (spec.type !== 'integer') return '';
  if (spec.between) return `${option(spec.between[0]).flag} to ${option(spec.between[1]).flag}`;
  return `${spec.min}–${spec.max}${spec.unit === 'count' ? '' : ` ${spec.unit}`}`;
}

/** `host:port` for binding or dialling, with IPv6 hosts in brackets. */
export function hostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

const INTRO = [
  'Usage: redlease server [options]',
  '',
  'Runs the redlease lock server. Each option is read from its flag, else from its environment variable (empty',
  'counts as unset), else its default. Secrets are read from environment variables or files, never from flags.',
];

export function helpText(): string {
  const lines = [...INTRO];
  for (const group of GROUPS) {
    lines.push('', `${group}:`);
    for (const spec of OPTIONS.filter((o) => o.group === group)) {
      const left = spec.flag ? `${spec.flag} ${valueName(spec)}`.trimEnd() : '(environment only)';
      const range = rangeText(spec);
      lines.push(`  ${left.padEnd(32)} ${spec.env.padEnd(34)} default ${defaultText(spec)}`);
      lines.push(`      ${spec.description}${range ? ` [${range}]` : ''}`);
    }
  }
  lines.push('', `  ${'-h, --help'.padEnd(32)} show this help`, '');
  return lines.join('\n');
}

function valueName(spec: OptionSpec): string {
  switch (spec.type) {
    case 'integer':
      return spec.unit === 'count' ? '<n>' : `<${spec.unit}>`;
    case 'choice':
      return spec.key === 'mode' ? '<mode>' : '<level>';
    case 'nodes':
      return '<host:port,...>';
    case 'networks':
      return '<cidr,...>';
    case 'listen':
      return '<host:port>';
    case 'file':
      return '<path>';
    case 'string':
      return '<prefix>';
    default:
      return '';
  }
}

/**
 * Reads the configuration. `argv` holds the options only (e.g. `process.argv.slice(2)` or what follows
 * `server`); `env` is usually `process.env`. Throws ConfigError for anything unusable.
 */
export function parseConfig(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): ParsedConfig {
  const flags = readFlags(argv);
  if (flags === 'help') return { help: helpText() };
  const warnings: string[] = [];
  warnUnknownVariables(env, warnings);

  const fromEnv = (spec: OptionSpec): string | undefined => env[spec.env] || undefined;
  /** The text given for an option, by flag or else by variable; undefined: use the default. */
  const get = (spec: OptionSpec): string | undefined => flags.get(spec) ?? fromEnv(spec);

  // Integers: those bounded by other options come after them.
  const ints: Partial<Record<IntegerKey, number>> = {};
  const integers = OPTIONS.filter((o): o is Spec<IntegerKey> => o.type === 'integer');
  for (const spec of integers.filter((o) => !o.between)) {
    ints[spec.key] = parseInteger(spec, get(spec), spec.min, spec.max);
  }
  if (ints.minTtlMs! > ints.maxTtlMs!) {
    throw fail(
      option('maxTtlMs'),
      `must not be below ${optionLabel(option('minTtlMs'))} = ${ints.minTtlMs}, got ${ints.maxTtlMs}`,
    );
  }
  for (const spec of integers.filter((o) => o.between)) {
    const [low, high] = spec.between!;
    ints[spec.key] = parseInteger(spec, get(spec), ints[low]!, ints[high]!);
  }
  if (ints.maxHoldMs !== 0 && ints.maxHoldMs! < ints.minTtlMs!) {
    warnings.push(
      `${optionLabel(option('maxHoldMs'))}: ${ints.maxHoldMs} is below ${optionLabel(option('minTtlMs'))}; leases are capped at ${ints.minTtlMs} ms`,
    );
  }

  const mode = parseChoice(option('mode'), get(option('mode')), MODES);
  const nodes = parseNodes(get(option('nodes')) ?? option('nodes').default);
  if (mode === 'redlock' && nodes.length < 3) {
    warnings.push(
      `${optionLabel(option('nodes'))}: redlock mode with ${nodes.length} node${nodes.length === 1 ? '' : 's'} stops when any node fails; use 3 or more`,
    );
  }
  const listen = parseHostPort(
    option('grpcListen'),
    get(option('grpcListen')) ?? option('grpcListen').default,
    0,
  );
  const httpListen = parseHostPort(
    option('httpListen'),
    get(option('httpListen')) ?? option('httpListen').default,
    0,
  );
  const keyPrefix = parseKeyPrefix(get(option('keyPrefix')) ?? DEFAULTS.keyPrefix);

  const secrets = new Secrets(flags, fromEnv, warnings);
  const redisUsername = fromEnv(option('redisUsername'));
  if (redisUsername !== undefined && !/^[\x21-\x7e]+$/.test(redisUsername)) {
    throw fail(option('redisUsername'), 'must be visible ASCII without spaces');
  }
  const redisPassword = secrets.single(option('redisPassword'), option('redisPasswordFile'));
  if (redisUsername !== undefined && redisPassword === undefined) {
    throw fail(
      option('redisUsername'),
      `is set without a password: set ${option('redisPassword').env} or ${option('redisPasswordFile').flag}`,
    );
  }
  const admin = secrets.single(option('adminToken'), option('adminTokenFile'));
  const adminToken = admin === undefined ? undefined : secrets.token(admin, 'the admin token');
  const clientTokens = secrets.clientTokens();
  // Loopback by default; with an admin token and no list given, the token alone admits (as before the list).
  const networksSpec = option('adminNetworks');
  const networksText = get(networksSpec);
  let adminNetworks: string[];
  try {
    adminNetworks = parseNetworks(networksText ?? (adminToken === undefined ? networksSpec.default : ''));
  } catch (error) {
    throw fail(networksSpec, (error as Error).message);
  }
  if (admin && clientTokens.includes(admin.value)) {
    throw fail(admin.spec, 'the admin token is also a client token; give admins a token of their own');
  }
  const tls = parseTls(get, warnings);
  let tracing: TracingSettings | undefined;
  try {
    tracing = parseTracingSettings((name) => env[name] || undefined, SERVICE_NAME);
  } catch (error) {
    if (error instanceof OtelSettingError) throw new ConfigError(error.message);
    throw error;
  }

  if (httpListen.port !== 0 && httpListen.port === listen.port) {
    throw fail(
      option('httpListen'),
      `port ${httpListen.port} is also the gRPC port (${optionLabel(option('grpcListen'))}); give each its own port`,
    );
  }
  for (const [spec, where] of [
    [option('grpcListen'), listen],
    [option('httpListen'), httpListen],
  ] as const) {
    if (isLoopback(where.host)) continue;
    const exposed = `${optionLabel(spec)}: ${hostPort(where.host, where.port)} is reachable from other machines`;
    if (!tls) {
      warnings.push(
        `${exposed} without TLS, so lock ids cross the network in clear text; set --tls-cert-file and --tls-key-file`,
      );
    }
    if (clientTokens.length === 0) {
      warnings.push(
        `${exposed} and no client tokens are set, so anyone who connects can take and release locks; set REDLEASE_CLIENT_TOKENS or --client-tokens-file`,
      );
    }
  }

  const config: ServerConfig = {
    nodes,
    ...(redisUsername !== undefined && { redisUsername }),
    ...(redisPassword !== undefined && { redisPassword: redisPassword.value }),
    grpcHost: listen.host,
    grpcPort: listen.port,
    httpHost: httpListen.host,
    httpPort: httpListen.port,
    mode,
    ...(ints as Record<IntegerKey, number>),
    keyPrefix,
    logLevel: parseChoice(option('logLevel'), get(option('logLevel')), LOG_LEVELS),
    ...(adminToken !== undefined && { adminToken }),
    adminNetworks,
    clientTokens,
    ...(tls && { tls }),
    ...(tracing && { tracing }),
  };
  return { config, warnings };
}

function fail(spec: OptionSpec, problem: string): ConfigError {
  return new ConfigError(`${optionLabel(spec)}: ${problem}`);
}

/** A value for a message: quoted, escaped (so the message stays one line) and shortened. */
function quote(text: string): string {
  return JSON.stringify(text.length > 80 ? `${text.slice(0, 77)}...` : text);
}

/** argv → the value given for each option (booleans as 'true' or their `=value`), or 'help'. */
function readFlags(argv: readonly string[]): Map<OptionSpec, string> | 'help' {
  const byName = new Map(OPTIONS.filter((o) => o.flag).map((o) => [o.flag!.slice(2), o]));
  const options: NonNullable<ParseArgsConfig['options']> = { help: { type: 'boolean', short: 'h' } };
  for (const [name, spec] of byName) options[name] = { type: spec.type === 'boolean' ? 'boolean' : 'string' };
  // Not parseArgs's own strict mode, whose messages are not ours (and some span lines): the same checks are
  // made below on its tokens, so an unknown flag, a missing value or a stray argument is still an error.
  const { tokens } = parseArgs({
    args: [...argv],
    options,
    strict: false,
    allowPositionals: true,
    tokens: true,
  });
  if (tokens.some((t) => t.kind === 'option' && t.name === 'help')) return 'help';
  const given = new Map<OptionSpec, string>();
  for (const token of tokens) {
    if (token.kind === 'option-terminator') continue;
    if (token.kind === 'positional') {
      throw new ConfigError(
        `unexpected argument ${quote(token.value)}: redlease server takes only --options (see --help)`,
      );
    }
    const spec = byName.get(token.name);
    if (!spec) throw new ConfigError(unknownFlag(token.rawName));
    if (given.has(spec)) throw fail(spec, `is given more than once; give it once`);
    if (spec.type === 'boolean') {
      given.set(spec, token.value ?? 'true');
    } else if (token.value === undefined || (!token.inlineValue && token.value.startsWith('-'))) {
      throw fail(spec, `needs a value, as ${spec.flag}=VALUE`);
    } else {
      given.set(spec, token.value);
    }
  }
  return given;
}

function unknownFlag(rawName: string): string {
  const name = rawName.replace(/^-+/, '');
  const envOnly = OPTIONS.find(
    (o) => !o.flag && o.env === `REDLEASE_${name.toUpperCase().replace(/-/g, '_')}`,
  );
  if (envOnly) {
    const file = OPTIONS.find((o) => o.env === `${envOnly.env}_FILE`);
    return `${rawName}: not accepted as a flag, since other users can read argv in ps; set ${envOnly.env}${file?.flag ? ` or use ${file.flag}` : ''}`;
  }
  const guess = closest(
    rawName,
    OPTIONS.flatMap((o) => (o.flag ? [o.flag] : [])),
  );
  return `${rawName}: unknown option${guess ? ` (did you mean ${guess}?)` : ''}; see redlease server --help`;
}

function warnUnknownVariables(env: Readonly<Record<string, string | undefined>>, warnings: string[]): void {
  const known = new Set<string>(OPTIONS.map((o) => o.env));
  for (const name of Object.keys(env).sort()) {
    if (!name.startsWith('REDLEASE_') || known.has(name) || !env[name]) continue;
    const guess = closest(name, [...known]);
    warnings.push(
      `${name} is not a redlease setting and is ignored${guess ? ` (did you mean ${guess}?)` : ''}; see redlease server --help`,
    );
  }
}

/** The candidate within a few typing mistakes of `name`, if any. */
function closest(name: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = 3;
  for (const candidate of candidates) {
    const d = editDistance(name.toLowerCase(), candidate.toLowerCase());
    if (d < bestDistance) [best, bestDistance] = [candidate, d];
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(
        previous[j]! + 1,
        current[j - 1]! + 1,
        previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    previous = current;
  }
  return previous[b.length]!;
}

function parseInteger(spec: Spec<IntegerKey>, raw: string | undefined, min: number, max: number): number {
  const value = raw === undefined ? spec.default : /^\d+$/.test(raw) ? Number(raw) : Number.NaN;
  if (Number.isSafeInteger(value) && value >= min && value <= max) return value;
  const what = {
    ms: 'a whole number of milliseconds',
    bytes: 'a whole number of bytes',
    count: 'a whole number',
  };
  const got = raw === undefined ? `${value} (the default)` : quote(raw);
  const bounds =
    spec.between && Number.isSafeInteger(value)
      ? `; ${option(spec.between[0]).flag} and ${option(spec.between[1]).flag} set this range`
      : '';
  throw fail(spec, `must be ${what[spec.unit]} in [${min}, ${max}], got ${got}${bounds}`);
}

function parseChoice<T extends string>(
  spec: Spec<'mode' | 'logLevel'>,
  raw: string | undefined,
  choices: readonly T[],
): T {
  if (raw === undefined) return spec.default as T;
  const found = choices.find((c) => c === raw);
  if (found === undefined) throw fail(spec, `must be one of ${choices.join(', ')}, got ${quote(raw)}`);
  return found;
}

function parseBoolean(spec: OptionSpec, raw: string | undefined): boolean {
  if (raw === undefined) return false;
  if (raw === 'true' || raw === '1') return true;
  if (raw === 'false' || raw === '0') return false;
  throw fail(spec, `must be true or false, got ${quote(raw)}`);
}

function parseNodes(text: string): string[] {
  const spec = option('nodes');
  const seen = new Set<string>();
  return text.split(',').map((entry, i) => {
    const trimmed = entry.trim();
    if (trimmed === '') throw fail(spec, `entry ${i + 1} of ${quote(text)} is empty (a stray comma?)`);
    const { host, port } = parseHostPort(spec, trimmed, 1);
    const address = hostPort(host, port);
    if (seen.has(address)) throw fail(spec, `${address} is listed twice; list each Redis node once`);
    seen.add(address);
    return address;
  });
}

/** `host:port` or `[ipv6]:port` → the host (lowercase, IPv6 without brackets, as the URL parser normalises it)
 *  and port. */
function parseHostPort(spec: OptionSpec, text: string, minPort: number): { host: string; port: number } {
  const hint = spec.type === 'listen' ? '[::]:50051' : '[::1]:6379';
  let host: string;
  let portText: string;
  const bracketed = /^\[([^\]]*)\]:(.*)$/.exec(text);
  if (bracketed) {
    [host, portText] = [bracketed[1]!, bracketed[2]!];
    if (!isIPv6(host)) throw fail(spec, `${quote(host)} in ${quote(text)} is not an IPv6 address`);
  } else {
    const colon = text.lastIndexOf(':');
    if (colon < 0) throw fail(spec, `${quote(text)} is not host:port`);
    [host, portText] = [text.slice(0, colon), text.slice(colon + 1)];
    if (host.includes(':') || host.includes('[')) {
      throw fail(spec, `${quote(text)}: write an IPv6 address in brackets, as in ${hint}`);
    }
    if (!/^[A-Za-z0-9._-]+$/.test(host)) throw fail(spec, `${quote(text)} is not host:port`);
  }
  const port = /^\d+$/.test(portText) ? Number(portText) : Number.NaN;
  if (!(port >= minPort && port <= 65_535)) {
    throw fail(spec, `the port of ${quote(text)} must be a whole number in [${minPort}, 65535]`);
  }
  try {
    const hostname = new URL(`http://${bracketed ? `[${host}]` : host}/`).hostname;
    return { host: hostname.replace(/^\[(.*)\]$/, '$1'), port };
  } catch {
    throw fail(spec, `${quote(host)} in ${quote(text)} is not a valid host name or address`);
  }
}

function parseKeyPrefix(prefix: string): string {
  const spec = option('keyPrefix');
  if (prefix.length > 64 || !/^[\x21-\x7e]*$/.test(prefix)) {
    throw fail(spec, `must be at most 64 visible ASCII characters, got ${quote(prefix)}`);
  }
  const internal = [DEFAULTS.holderPrefix, DEFAULTS.fencePrefix, DEFAULTS.systemPrefix];
  const clash = prefix && internal.find((p) => p.startsWith(prefix) || prefix.startsWith(p));
  if (clash) {
    throw fail(
      spec,
      `${quote(prefix)} overlaps the internal prefix ${quote(clash)}, so keys could collide; choose one that neither starts nor is started by ${internal.join(', ')}`,
    );
  }
  return prefix;
}

type SingleSecretSpec = Spec<'redisPassword' | 'adminToken'>;
type FileSpec = Spec<
  'redisPasswordFile' | 'adminTokenFile' | 'clientTokensFile' | 'tlsCertFile' | 'tlsKeyFile' | 'tlsCaFile'
>;

/** Secrets: from a `--…-file` flag, else from the variable or its `_FILE` twin (not both). */
class Secrets {
  constructor(
    private readonly flags: ReadonlyMap<OptionSpec, string>,
    private readonly fromEnv: (spec: OptionSpec) => string | undefined,
    private readonly warnings: string[],
  ) {}

  /** The value and where it came from, or undefined when unset. */
  private source(
    valueSpec: OptionSpec,
    fileSpec: FileSpec,
  ): { value: string; path?: undefined } | { path: string; value?: undefined } | undefined {
    const flagPath = this.flags.get(fileSpec);
    if (flagPath !== undefined) return { path: flagPath };
    const value = this.fromEnv(valueSpec);
    const path = this.fromEnv(fileSpec);
    if (value !== undefined && path !== undefined) {
      throw new ConfigError(`${valueSpec.env} and ${fileSpec.env} are both set: keep one of them`);
    }
    if (value !== undefined) return { value };
    return path === undefined ? undefined : { path };
  }

  /** A one-line secret (password, admin token). */
  single(valueSpec: SingleSecretSpec, fileSpec: FileSpec): { value: string; spec: OptionSpec } | undefined {
    const source = this.source(valueSpec, fileSpec);
    if (!source) return undefined;
    if (source.value !== undefined) {
      if (/[\r\n]/.test(source.value)) throw fail(valueSpec, 'must be one line');
      return { value: source.value, spec: valueSpec };
    }
    const text = readFile(fileSpec, source.path, this.warnings)
      .toString('utf8')
      .replace(/[\r\n]+$/, '');
    if (/[\r\n]/.test(text)) throw fail(fileSpec, `${quote(source.path)} must hold the secret on one line`);
    return { value: text, spec: fileSpec };
  }

  /** Checks a bearer token: it travels in an HTTP/2 header, so visible ASCII without spaces. Never echoes it. */
  token(secret: { value: string; spec: OptionSpec }, what: string): string {
    if (!/^[\x21-\x7e]+$/.test(secret.value)) {
      throw fail(secret.spec, `${what} may contain only visible ASCII characters, without spaces`);
    }
    if (secret.value.length < 16) {
      this.warnings.push(
        `${optionLabel(secret.spec)}: ${what} is only ${secret.value.length} characters; use a long random one (openssl rand -hex 32)`,
      );
    }
    return secret.value;
  }

  clientTokens(): string[] {
    const valueSpec = option('clientTokens');
    const fileSpec = option('clientTokensFile');
    const source = this.source(valueSpec, fileSpec);
    if (!source) return [];
    const tokens = new Set<string>();
    if (source.value !== undefined) {
      source.value.split(',').forEach((entry, i) => {
        const value = entry.trim();
        if (value) tokens.add(this.token({ value, spec: valueSpec }, `token ${i + 1}`));
      });
      if (tokens.size === 0) throw fail(valueSpec, 'holds no tokens, only commas and spaces');
      return [...tokens];
    }
    const text = readFile(fileSpec, source.path, this.warnings).toString('utf8');
    text.split(/\r?\n/).forEach((line, i) => {
      const value = line.trim();
      if (value && !value.startsWith('#')) {
        tokens.add(
          this.token({ value, spec: fileSpec }, `the token on line ${i + 1} of ${quote(source.path)}`),
        );
      }
    });
    if (tokens.size === 0) throw fail(fileSpec, `${quote(source.path)} holds no tokens, only comments`);
    return [...tokens];
  }
}

const MAX_FILE_BYTES = 1_048_576;

/** A configuration file's contents: missing, unreadable, not a file, huge or empty is an error naming it;
 *  a secret file that group or others can read is a warning. */
function readFile(spec: FileSpec, path: string, warnings: string[]): Buffer {
  if (path === '') throw fail(spec, 'needs a file path');
  let data: Buffer;
  let mode: number;
  try {
    const stat = statSync(path);
    if (!stat.isFile()) throw fail(spec, `${quote(path)} is not a regular file`);
    if (stat.size > MAX_FILE_BYTES) throw fail(spec, `${quote(path)} is larger than 1 MiB`);
    mode = stat.mode & 0o777;
    data = readFileSync(path);
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    throw fail(spec, `cannot read ${quote(path)}: ${describeFsError(error)}`);
  }
  if (data.toString('utf8').trim() === '') throw fail(spec, `${quote(path)} is empty`);
  if (spec.secret && (mode & 0o044) !== 0) {
    warnings.push(
      `${optionLabel(spec)}: ${quote(path)} is readable by group or others (mode ${mode.toString(8).padStart(4, '0')}); chmod 600 it`,
    );
  }
  return data;
}

function describeFsError(error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return 'no such file';
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
  if (code === 'ENOTDIR') return 'a part of the path is not a directory';
  return code ?? String(error).split('\n')[0]!;
}

function parseTls(get: (spec: OptionSpec) => string | undefined, warnings: string[]): TlsConfig | undefined {
  const [certSpec, keySpec, caSpec, requireSpec] = [
    option('tlsCertFile'),
    option('tlsKeyFile'),
    option('tlsCaFile'),
    option('tlsRequireClientCert'),
  ];
  const certPath = get(certSpec);
  const keyPath = get(keySpec);
  const caPath = get(caSpec);
  const requireClientCert = parseBoolean(requireSpec, get(requireSpec));
  const tlsFlags = `${certSpec.flag} and ${keySpec.flag}`;
  if (certPath === undefined && keyPath !== undefined)
    throw fail(keySpec, `needs ${optionLabel(certSpec)} too`);
  if (certPath !== undefined && keyPath === undefined)
    throw fail(certSpec, `needs ${optionLabel(keySpec)} too`);
  if (certPath === undefined || keyPath === undefined) {
    if (caPath !== undefined) throw fail(caSpec, `client certificates need TLS: set ${tlsFlags} too`);
    if (requireClientCert) throw fail(requireSpec, `client certificates need TLS: set ${tlsFlags} too`);
    return undefined;
  }
  const cert = readFile(certSpec, certPath, warnings);
  const key = readFile(keySpec, keyPath, warnings);
  const leaf = certificate(certSpec, certPath, cert);
  let privateKey: ReturnType<typeof createPrivateKey>;
  try {
    if (!key.includes('-----BEGIN ')) throw new Error('not PEM');
    privateKey = createPrivateKey(key);
  } catch {
    throw fail(keySpec, `${quote(keyPath)} holds no unencrypted PEM private key`);
  }
  if (!leaf.checkPrivateKey(privateKey)) {
    throw fail(keySpec, `${quote(keyPath)} is not the key of the certificate in ${quote(certPath)}`);
  }
  if (Date.parse(leaf.validTo) < Date.now()) {
    warnings.push(
      `${optionLabel(certSpec)}: the certificate in ${quote(certPath)} expired on ${leaf.validTo}`,
    );
  }
  if (requireClientCert && caPath === undefined) {
    throw fail(requireSpec, `needs ${optionLabel(caSpec)} to verify client certificates against`);
  }
  if (caPath === undefined) return { cert, key, requireClientCert };
  const ca = readFile(caSpec, caPath, warnings);
  certificate(caSpec, caPath, ca);
  return { cert, key, ca, requireClientCert };
}

/** The first certificate of a PEM file (the leaf of a chain). */
function certificate(spec: FileSpec, path: string, pem: Buffer): X509Certificate {
  try {
    if (!pem.includes('-----BEGIN CERTIFICATE-----')) throw new Error('not PEM');
    return new X509Certificate(pem);
  } catch {
    throw fail(spec, `${quote(path)} holds no PEM certificate`);
  }
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}
