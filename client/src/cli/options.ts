/**
 * Option values of `redlease`: durations, and the connection settings every command shares, from flags or the
 * REDLEASE_* environment variables named after the SDK's LockClientOptions (REDLEASE_ADDRESS for `address`,
 * REDLEASE_TLS_CA for `tls.ca`…). A flag wins over its variable; an empty variable counts as unset.
 */
import { readFileSync } from 'node:fs';
import { InvalidArgumentError } from 'commander';
import type { LockClientOptions } from '../lock-client.js';
import { formatDuration } from './output.js';

/** Bad usage found after parsing (a file that cannot be read, options that do not go together): exit 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

const UNITS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 };

/**
 * Parses `30s`, `500ms`, `1.5m`, `1h`; a number without a unit is seconds, as for `flock -w` and `timeout`.
 * Throws commander's InvalidArgumentError (a usage error naming the option) when malformed or out of
 * [minMs, maxMs].
 */
export function parseDuration(text: string, minMs: number, maxMs: number): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (!match) throw new InvalidArgumentError('expected a duration such as 500ms, 30s, 2m or 1h.');
  const ms = Math.round(Number(match[1]) * UNITS[match[2] ?? 's']!);
  if (ms < minMs || ms > maxMs) {
    throw new InvalidArgumentError(`must be between ${formatDuration(minMs)} and ${formatDuration(maxMs)}.`);
  }
  return ms;
}

/** A commander argParser for durations in [minMs, maxMs]. */
export function duration(minMs: number, maxMs: number): (text: string) => number {
  return (text) => parseDuration(text, minMs, maxMs);
}

/** The shared options as commander parsed them (flags and the variables commander reads itself). */
export interface ConnectionFlags {
  address: string;
  tls?: boolean;
  tlsCa?: string;
  tlsCert?: string;
  tlsKey?: string;
  tlsServerName?: string;
  tokenFile?: string;
  callTimeout: number;
  json?: boolean;
}

/** What a command needs to connect: LockClientOptions' connection part. */
export type Connection = Pick<LockClientOptions, 'address' | 'tls' | 'token' | 'callTimeoutMs'>;

function read(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    throw new UsageError(
      `cannot read ${what} ${JSON.stringify(path)}: ${(error as NodeJS.ErrnoException).code}`,
    );
  }
}

/** REDLEASE_TLS: true/1/yes or false/0/no (a boolean flag of commander's would turn on for any value). */
function tlsFromEnv(value: string | undefined): boolean {
  if (value === undefined || value === '') return false;
  if (/^(1|true|yes)$/i.test(value)) return true;
  if (/^(0|false|no)$/i.test(value)) return false;
  throw new UsageError(`REDLEASE_TLS: expected true or false, got ${JSON.stringify(value)}`);
}

/**
 * The connection from the flags and the environment. The bearer token comes from REDLEASE_TOKEN or a file
 * (--token-file / REDLEASE_TOKEN_FILE), never from a flag's value: a command line is visible to every local user.
 */
export function connection(flags: ConnectionFlags, env: NodeJS.ProcessEnv): Connection {
  if ((flags.tlsCert === undefined) !== (flags.tlsKey === undefined)) {
    throw new UsageError('--tls-cert and --tls-key go together (a client certificate and its key, for mTLS)');
  }
  const files = flags.tlsCa !== undefined || flags.tlsCert !== undefined;
  const wantTls = flags.tls === true || tlsFromEnv(env.REDLEASE_TLS) || files || !!flags.tlsServerName;
  let tls: LockClientOptions['tls'] = wantTls;
  if (wantTls && (files || flags.tlsServerName)) {
    tls = {
      ...(flags.tlsCa !== undefined && { ca: read(flags.tlsCa, 'the CA file') }),
      ...(flags.tlsCert !== undefined && { cert: read(flags.tlsCert, 'the certificate file') }),
      ...(flags.tlsKey !== undefined && { key: read(flags.tlsKey, 'the key file') }),
      ...(flags.tlsServerName && { serverName: flags.tlsServerName }),
    };
  }
  const fromFile = flags.tokenFile === undefined ? undefined : read(flags.tokenFile, 'the token file').trim();
  if (fromFile === '') throw new UsageError(`the token file ${JSON.stringify(flags.tokenFile)} is empty`);
  const token = fromFile ?? (env.REDLEASE_TOKEN || undefined);
  return {
    address: flags.address,
    tls,
    ...(token !== undefined && { token }),
    callTimeoutMs: flags.callTimeout,
  };
}
