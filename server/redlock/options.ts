import type { ConnectionOptions } from 'node:tls';
import type { Logger } from 'pino';
import type { Mode } from './types.js';

export interface NodeConfig {
  /** Shown in status, votes and errors; default `redis-<n>` in list order. */
  name?: string;
  host: string;
  port: number;
  username?: string;
  password?: string;
  /** TLS to this node: true for defaults, or node:tls options (ca, cert, key, servername…). */
  tls?: boolean | ConnectionOptions;
  db?: number;
}

export interface RedlockOptions {
  /** The independent Redis nodes, as `host:port` strings or objects. Node 1 is the SINGLE-mode node. */
  nodes: readonly (string | NodeConfig)[];
  mode?: Mode;
  /** Used when a request gives ttl 0. */
  defaultTtlMs?: number;
  minTtlMs?: number;
  /** Also bounds restart quarantine: a restarted node waits at most this (+ drift) before voting again. */
  maxTtlMs?: number;
  /** Clock drift allowance: ceil(ttl × driftFactor) + driftConstantMs. 1 % covers the rate difference of
   *  ordinary clocks; 2 ms covers Redis's 1 ms expiry resolution plus rounding. */
  driftFactor?: number;
  driftConstantMs?: number;
  /** Per-command timeout for each node. Small next to the ttl (the Redis doc suggests 5–50 ms for 10 s) so
   *  one slow node costs little validity; 100 ms leaves room for a busy 2-core machine. */
  nodeTimeoutMs?: number;
  connectTimeoutMs?: number;
  /** Extra attempts after a split vote, a transient loss of quorum, or validity used up. A resource held by one
   *  other lock id on a quorum is not retried: that is an answer, not a fault. */
  retryCount?: number;
  retryDelayMs?: number;
  /** Random extra delay per retry, so contenders that split the vote do not collide again. */
  retryJitterMs?: number;
  /** How often each node's identity (run_id), eviction policy and latency are checked. */
  healthIntervalMs?: number;
  /** Key layout: lock key = keyPrefix + resource (may be '' to share keys with other Redlock clients). */
  keyPrefix?: string;
  holderPrefix?: string;
  fencePrefix?: string;
  /** Prefix of the engine's own keys and the release channel. */
  systemPrefix?: string;
  /** Fence counters expire after this long unused; a missing counter is re-seeded from the node's clock in µs,
   *  which is above every token ever issued, so expiry only bounds memory and never lowers a token. */
  fenceTtlMs?: number;
  logger?: Logger;
}

export interface ResolvedNode {
  name: string;
  host: string;
  port: number;
  address: string;
  username?: string;
  password?: string;
  tls?: ConnectionOptions;
  db: number;
}

export type ResolvedOptions = Required<Omit<RedlockOptions, 'nodes' | 'logger'>> & {
  nodes: ResolvedNode[];
  logger: Logger | undefined;
};

export const DEFAULTS = {
  mode: 'redlock',
  defaultTtlMs: 30_000,
  minTtlMs: 100,
  maxTtlMs: 3_600_000,
  driftFactor: 0.01,
  driftConstantMs: 2,
  nodeTimeoutMs: 100,
  connectTimeoutMs: 1_000,
  retryCount: 2,
  retryDelayMs: 50,
  retryJitterMs: 100,
  healthIntervalMs: 1_000,
  keyPrefix: 'lk:',
  holderPrefix: 'lkh:',
  fencePrefix: 'fence:',
  systemPrefix: 'redlease:',
  fenceTtlMs: 7 * 24 * 3_600_000,
} as const satisfies Omit<ResolvedOptions, 'nodes' | 'logger'>;

function parseNode(entry: string | NodeConfig, index: number): ResolvedNode {
  const config: NodeConfig = typeof entry === 'string' ? parseAddress(entry, index) : entry;
  const name = config.name ?? `redis-${index + 1}`;
  if (!config.host) throw new RangeError(`node ${name}: host is empty`);
  if (!Number.isInteger(config.port) || config.port < 1 || config.port > 65_535) {
    throw new RangeError(`node ${name}: port must be an integer 1–65535, got ${String(config.port)}`);
  }
  const tls = config.tls === true ? {} : config.tls === false ? undefined : config.tls;
  return {
    name,
    host: config.host,
    port: config.port,
    address: config.host.includes(':') ? `[${config.host}]:${config.port}` : `${config.host}:${config.port}`,
    username: config.username,
    password: config.password,
    tls,
    db: config.db ?? 0,
  };
}

export function parseAddress(address: string, index: number): NodeConfig {
  const match = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(address.trim());
  if (!match) throw new RangeError(`node ${index + 1}: expected host:port, got "${address}"`);
  return { host: (match[1] ?? match[2])!, port: Number(match[3]) };
}

function positiveInteger(name: string, value: number, min = 1): void {
  if (!Number.isInteger(value) || value < min) {
    throw new RangeError(`${name} must be an integer ≥ ${min}, got ${String(value)}`);
  }
}

/** Fills defaults and rejects an unusable configuration with a message that names the option. */
export function resolveOptions(options: RedlockOptions): ResolvedOptions {
  if (!options.nodes || options.nodes.length === 0)
    throw new RangeError('nodes: at least one Redis node is needed');
  const resolved: ResolvedOptions = {
    ...DEFAULTS,
    ...Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)),
    nodes: options.nodes.map(parseNode),
    logger: options.logger,
  };
  const names = new Set(resolved.nodes.map((n) => n.name));
  if (names.size !== resolved.nodes.length) throw new RangeError('nodes: node names must be unique');
  if (resolved.mode !== 'redlock' && resolved.mode !== 'single') {
    throw new RangeError(`mode must be "redlock" or "single", got "${String(resolved.mode)}"`);
  }
  for (const key of ['minTtlMs', 'maxTtlMs', 'defaultTtlMs', 'nodeTimeoutMs', 'connectTimeoutMs'] as const) {
    positiveInteger(key, resolved[key]);
  }
  positiveInteger('healthIntervalMs', resolved.healthIntervalMs, 10);
  for (const key of ['retryCount', 'retryDelayMs', 'retryJitterMs', 'driftConstantMs'] as const) {
    positiveInteger(key, resolved[key], 0);
  }
  if (resolved.minTtlMs > resolved.maxTtlMs) throw new RangeError('minTtlMs must not exceed maxTtlMs');
  if (resolved.defaultTtlMs < resolved.minTtlMs || resolved.defaultTtlMs > resolved.maxTtlMs) {
    throw new RangeError(
      `defaultTtlMs must lie in [minTtlMs, maxTtlMs] = [${resolved.minTtlMs}, ${resolved.maxTtlMs}]`,
    );
  }
  if (!(resolved.driftFactor >= 0 && resolved.driftFactor < 0.5)) {
    throw new RangeError(`driftFactor must be in [0, 0.5), got ${resolved.driftFactor}`);
  }
  positiveInteger('fenceTtlMs', resolved.fenceTtlMs);
  if (resolved.fenceTtlMs < resolved.maxTtlMs) throw new RangeError('fenceTtlMs must be at least maxTtlMs');
  checkPrefixes(resolved);
  return resolved;
}

/** No key of one kind may ever equal a key of another kind. With a non-empty keyPrefix that holds when no prefix
 *  starts another; with keyPrefix '' the resource names are checked instead (see reservedPrefixes). */
function checkPrefixes(o: ResolvedOptions): void {
  const others = [o.holderPrefix, o.fencePrefix, o.systemPrefix];
  for (const p of others)
    if (!p) throw new RangeError('holderPrefix, fencePrefix and systemPrefix must not be empty');
  const all = o.keyPrefix ? [o.keyPrefix, ...others] : others;
  for (const a of all) {
    for (const b of all) {
      if (a !== b && b.startsWith(a))
        throw new RangeError(`key prefixes "${a}" and "${b}" overlap: keys could collide`);
    }
  }
  if (new Set(all).size !== all.length) throw new RangeError('key prefixes must be distinct');
}

/** Resource names that would make a lock key collide with an internal key (only when keyPrefix is ''). */
export function reservedPrefixes(o: ResolvedOptions): string[] {
  return o.keyPrefix ? [] : [o.holderPrefix, o.fencePrefix, o.systemPrefix];
}

/** The clock drift allowance for a ttl. */
export function driftMs(o: Pick<ResolvedOptions, 'driftFactor' | 'driftConstantMs'>, ttlMs: number): number {
  return Math.ceil(ttlMs * o.driftFactor) + o.driftConstantMs;
}
