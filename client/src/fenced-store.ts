import { readFileSync } from 'node:fs';
import { type Span, SpanKind, type Tracer, type TracerProvider } from '@opentelemetry/api';
import { Redis, type RedisOptions } from 'ioredis';
import { endWithError, sdkTracer, serverAttributes, startSpan } from './tracing.js';

/** Read once at module load; ioredis runs them by EVALSHA and falls back to EVAL when Redis answers NOSCRIPT. */
const READ_LUA = readFileSync(new URL('./lua/fenced-read-1.lua', import.meta.url), 'utf8');
const WRITE_LUA = readFileSync(new URL('./lua/fenced-write-1.lua', import.meta.url), 'utf8');

const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';
const DEFAULT_KEY_PREFIX = 'redlease:fenced:';
/** A healthy Redis answers in well under a millisecond; 2 s means it is stalled, and the caller should know. */
const DEFAULT_COMMAND_TIMEOUT_MS = 2_000;
/** Covers the TCP (and TLS) handshake plus the ready check; a dead address is reported within this. */
const DEFAULT_CONNECT_TIMEOUT_MS = 2_000;
/** Reconnect after a lost connection: soon at first, then at most once a second, so a dead Redis costs little. */
const RECONNECT_STEP_MS = 100;
const RECONNECT_MAX_MS = 1_000;
const MAX_KEY_BYTES = 1024;
const MAX_VALUE_BYTES = 1024 * 1024;

/** Options of {@link FencedStore.connect}. */
export interface FencedStoreOptions {
  /** `redis://[user:password@]host:port[/db]` or `rediss://…` for TLS. Default `redis://127.0.0.1:6379`. */
  redis?: string;
  /** Prefix of every Redis key this store touches. Default `redlease:fenced:`. */
  keyPrefix?: string;
  /** Per-command timeout in ms. Default 2000. */
  commandTimeoutMs?: number;
  /** How long {@link FencedStore.connect} may take, in ms. Default 2000. */
  connectTimeoutMs?: number;
  /**
   * Passed to ioredis (username, password, tls, db, …). The settings that make every call fail fast are fixed
   * by the store and cannot be overridden: no offline queue, no resending after a reconnect, the two timeouts.
   */
  redisOptions?: RedisOptions;
  /**
   * Where the store's spans go (one CLIENT span per fenced read and write, named `fenced read` / `fenced write`,
   * with OpenTelemetry's Redis attributes); default the global provider. With none registered, no-ops.
   */
  tracerProvider?: TracerProvider;
}

/**
 * A fenced read or write was refused because a larger fencing token was already seen for the key: the caller's
 * lease is no longer the newest one. The refused operation changed nothing. This is a normal outcome for a holder
 * that lost its lease (for example after a long pause), not a Redis failure.
 */
export class StaleTokenError extends Error {
  override readonly name = 'StaleTokenError';

  constructor(
    /** Which operation was refused. */
    readonly operation: 'read' | 'write',
    /** The key, without the store's prefix. */
    readonly key: string,
    /** The refused token (the caller's). */
    readonly token: number,
    /** The larger token already seen for the key. */
    readonly highestToken: number,
  ) {
    const what =
      operation === 'read'
        ? `fenced read of ${JSON.stringify(key)}`
        : `fenced write to ${JSON.stringify(key)}`;
    super(`${what} refused: token ${token} is older than token ${highestToken} already seen`);
  }
}

/** The scripts as ioredis commands on this store's connection (see defineCommand in connect). */
interface FencedCommands {
  fencedRead(key: string, token: string): Promise<unknown>;
  fencedWrite(key: string, token: string, value: string): Promise<unknown>;
}

/**
 * A small Redis-backed key/value store whose operations carry the caller's fencing token — the storage-side check
 * that makes fencing useful (Kleppmann): a holder that paused past its lease cannot overwrite the work of the next
 * holder.
 *
 * The rule, per key: the store remembers the largest token seen by a fenced {@link read} or {@link write}. An
 * operation with a smaller token is refused with {@link StaleTokenError} and changes nothing; one with an equal or
 * larger token is accepted and its token becomes the largest seen (an equal token is the same lease, since every
 * lease gets its own token). Check and update happen in one Lua script, so they are atomic.
 *
 * Use a Redis of its own (never one of the lock nodes): the data outlives leases, and the lock nodes' keys are the
 * coordinator's. Each key is one hash `<keyPrefix><key>` with fields `value` and `token`.
 *
 * Errors other than StaleTokenError mean Redis failed or did not answer in time (the message names its address).
 * Calls fail at once while the connection is down (it reconnects in the background); a write whose answer was lost
 * may or may not have been applied, and retrying it with the same token is safe.
 */
export class FencedStore {
  readonly #redis: Redis;
  readonly #commands: FencedCommands;
  readonly #keyPrefix: string;
  readonly #tracer: Tracer;
  #closing: Promise<void> | undefined;

  private constructor(
    redis: Redis,
    /** `host:port` of the store's Redis, as used in error messages. */
    readonly address: string,
    keyPrefix: string,
    tracerProvider: TracerProvider | undefined,
  ) {
    this.#redis = redis;
    this.#commands = redis as Redis & FencedCommands;
    this.#keyPrefix = keyPrefix;
    this.#tracer = sdkTracer(tracerProvider);
  }

  /**
   * Connect to the store's Redis. Rejects with an Error naming the address when Redis refuses the connection, or
   * does not answer within `connectTimeoutMs`; it never waits longer than that.
   */
  static async connect(options: FencedStoreOptions = {}): Promise<FencedStore> {
    const url = options.redis ?? DEFAULT_REDIS_URL;
    const address = describeAddress(url);
    const keyPrefix = options.keyPrefix ?? DEFAULT_KEY_PREFIX;
    if (typeof keyPrefix !== 'string') {
      throw new TypeError(`keyPrefix must be a string, got ${typeof keyPrefix}`);
    }
    const commandTimeoutMs = checkTimeout(
      'commandTimeoutMs',
      options.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS,
    );
    const connectTimeoutMs = checkTimeout(
      'connectTimeoutMs',
      options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
    );

    let connected = false;
    let lastError: Error | undefined;
    const redis = new Redis(url, {
      ...options.redisOptions,
      lazyConnect: true,
      connectTimeout: connectTimeoutMs,
      commandTimeout: commandTimeoutMs,
      // Fail fast: a call made while the connection is down is rejected at once rather than queued, and a call cut
      // off by a disconnect is reported, never silently sent again on the next connection.
      enableOfflineQueue: false,
      autoResendUnfulfilledCommands: false,
      maxRetriesPerRequest: 0,
      // No retries while connecting (connect() reports the failure); after that, reconnect in the background.
      retryStrategy: (times) => (connected ? Math.min(times * RECONNECT_STEP_MS, RECONNECT_MAX_MS) : null),
    });
    // Failures reach callers through rejected calls; the last one explains a failed connect.
    redis.on('error', (error: Error) => {
      lastError = error;
    });
    redis.defineCommand('fencedRead', { numberOfKeys: 1, lua: READ_LUA });
    redis.defineCommand('fencedWrite', { numberOfKeys: 1, lua: WRITE_LUA });

    // connectTimeout only bounds the TCP handshake; this bounds the whole connect, ready check included.
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), connectTimeoutMs);
    });
    let outcome: 'ready' | 'timeout';
    try {
      outcome = await Promise.race([redis.connect().then(() => 'ready' as const), timedOut]);
    } catch (error) {
      redis.disconnect();
      const reason = lastError?.message ?? (error instanceof Error ? error.message : String(error));
      throw new Error(`FencedStore: cannot connect to Redis at ${address}: ${reason}`, {
        cause: lastError ?? error,
      });
    } finally {
      clearTimeout(timer);
    }
    if (outcome === 'timeout') {
      redis.disconnect();
      const detail = lastError ? ` (last error: ${lastError.message})` : '';
      throw new Error(
        `FencedStore: Redis at ${address} did not answer within ${connectTimeoutMs} ms (connectTimeoutMs)${detail}`,
      );
    }
    connected = true;
    return new FencedStore(redis, address, keyPrefix, options.tracerProvider);
  }

  /**
   * Fenced read: return the key's value and register `token` as seen for the key.
   *
   * Reads are fenced because of read-modify-write: once the holder of token 11 has read a key, a write with
   * token 10 (a holder that paused past its lease) is refused, even before the holder of 11 writes. So nobody
   * older can slip a write in between the current holder's read and its write.
   *
   * @param token the lease's fencing token (a positive safe integer).
   * @returns `value`: the stored value, or null when none was written yet. `highestToken`: the largest token
   *   seen for the key before this read (0 if none); at most `token`, since a larger one means refusal.
   * @throws StaleTokenError when a larger token was already seen; nothing was changed.
   */
  async read(key: string, token: number): Promise<{ value: string | null; highestToken: number }> {
    checkKey(key);
    checkToken(token);
    return this.#traced('read', key, token, async (span) => {
      const reply = await this.#call(`fenced read of ${JSON.stringify(key)}`, () =>
        this.#commands.fencedRead(this.#keyPrefix + key, String(token)),
      );
      if (Array.isArray(reply) && reply[0] === 1 && reply.length === 3) {
        const [, value, maxBefore] = reply;
        if (value === null || typeof value === 'string') {
          const highestToken = parseToken(maxBefore, reply);
          if (span.isRecording()) span.setAttribute('redlease.store.highest_token', highestToken);
          return { value, highestToken };
        }
      }
      if (Array.isArray(reply) && reply[0] === 0 && reply.length === 2) {
        throw new StaleTokenError('read', key, token, parseToken(reply[1], reply));
      }
      throw unexpectedReply('fenced-read', reply);
    });
  }

  /**
   * Fenced write: store `value` under `key` unless a larger token was already seen for the key (by a write or a
   * fenced read). On success `token` becomes the largest token seen.
   *
   * @param token the lease's fencing token (a positive safe integer).
   * @returns `previousToken`: the largest token seen for the key before this write (0 if none).
   * @throws StaleTokenError when a larger token was already seen; nothing was changed.
   */
  async write(key: string, value: string, token: number): Promise<{ previousToken: number }> {
    checkKey(key);
    checkValue(value);
    checkToken(token);
    return this.#traced('write', key, token, async (span) => {
      const reply = await this.#call(`fenced write to ${JSON.stringify(key)}`, () =>
        this.#commands.fencedWrite(this.#keyPrefix + key, String(token), value),
      );
      if (Array.isArray(reply) && reply.length === 2 && (reply[0] === 1 || reply[0] === 0)) {
        const seen = parseToken(reply[1], reply);
        if (reply[0] === 1) {
          if (span.isRecording()) span.setAttribute('redlease.store.previous_token', seen);
          return { previousToken: seen };
        }
        throw new StaleTokenError('write', key, token, seen);
      }
      throw unexpectedReply('fenced-write', reply);
    });
  }

  /**
   * Unfenced inspection, for observers and tests: the stored value (null if none) and the largest token seen for
   * the key (0 if none). Registers no token and changes nothing.
   */
  async peek(key: string): Promise<{ value: string | null; token: number }> {
    checkKey(key);
    const reply = await this.#call(`peek at ${JSON.stringify(key)}`, () =>
      this.#redis.hmget(this.#keyPrefix + key, 'value', 'token'),
    );
    const [value, token] = reply;
    return { value: value ?? null, token: token == null ? 0 : parseToken(token, reply) };
  }

  /** Close the connection (QUIT, or drop it when Redis does not answer). Idempotent; later calls are rejected. */
  close(): Promise<void> {
    this.#closing ??= this.#redis.quit().then(
      () => undefined,
      () => this.#redis.disconnect(),
    );
    return this.#closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** A fenced operation inside its CLIENT span; a refusal (StaleTokenError) ends it as an error naming both tokens. */
  async #traced<T>(
    operation: 'read' | 'write',
    key: string,
    token: number,
    run: (span: Span) => Promise<T>,
  ): Promise<T> {
    const { span } = startSpan(this.#tracer, `fenced ${operation}`, SpanKind.CLIENT, () => ({
      'db.system.name': 'redis',
      'db.operation.name': 'EVALSHA',
      'db.query.summary': `EVALSHA fenced-${operation}-1`,
      ...serverAttributes(this.address),
      'redlease.store.key': key,
      'redlease.fencing_token': token,
    }));
    try {
      const result = await run(span);
      span.end();
      return result;
    } catch (error) {
      if (error instanceof StaleTokenError && span.isRecording()) {
        span.setAttributes({
          'redlease.store.refused': true,
          'redlease.store.highest_token': error.highestToken,
        });
      }
      endWithError(span, error);
      throw error;
    }
  }

  /** Runs one Redis call; a failure becomes an Error naming the operation and the address (cause kept). */
  async #call<T>(what: string, run: () => Promise<T>): Promise<T> {
    if (this.#closing !== undefined) throw new Error(`FencedStore: ${what} after close()`);
    try {
      return await run();
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      throw new Error(`FencedStore: ${what} failed on Redis at ${this.address}: ${reason}`, { cause: error });
    }
  }
}

/** `host:port` of a redis:// or rediss:// URL, for messages (never the credentials). */
function describeAddress(url: unknown): string {
  if (typeof url !== 'string') throw new TypeError(`redis must be a redis:// URL string, got ${typeof url}`);
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new TypeError(`redis must be a URL like redis://127.0.0.1:6379, got ${JSON.stringify(url)}`);
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') {
    throw new TypeError(`redis must use redis:// or rediss://, got ${JSON.stringify(parsed.protocol)}`);
  }
  return `${parsed.hostname || '127.0.0.1'}:${parsed.port || '6379'}`;
}

function checkTimeout(name: string, ms: unknown): number {
  if (typeof ms !== 'number' || !Number.isInteger(ms) || ms <= 0) {
    throw new RangeError(`${name} must be a positive integer number of milliseconds, got ${String(ms)}`);
  }
  return ms;
}

function checkKey(key: unknown): asserts key is string {
  if (typeof key !== 'string') throw new TypeError(`key must be a string, got ${typeof key}`);
  if (key.length === 0) throw new RangeError('key must be a non-empty string');
  const bytes = Buffer.byteLength(key, 'utf8');
  if (bytes > MAX_KEY_BYTES) {
    throw new RangeError(
      `key must be at most ${MAX_KEY_BYTES} bytes in UTF-8, got ${bytes}: use a shorter key`,
    );
  }
}

function checkToken(token: unknown): asserts token is number {
  if (typeof token !== 'number') {
    throw new TypeError(`token must be a number (the lease's fencing token), got ${typeof token}`);
  }
  if (!Number.isSafeInteger(token) || token <= 0) {
    throw new RangeError(
      `token must be a positive safe integer (1 to ${Number.MAX_SAFE_INTEGER}), the lease's fencing token; got ${token}`,
    );
  }
}

function checkValue(value: unknown): asserts value is string {
  if (typeof value !== 'string') {
    throw new TypeError(`value must be a string (serialize other data first), got ${typeof value}`);
  }
  const bytes = Buffer.byteLength(value, 'utf8');
  if (bytes > MAX_VALUE_BYTES) {
    throw new RangeError(`value must be at most ${MAX_VALUE_BYTES} bytes (1 MiB) in UTF-8, got ${bytes}`);
  }
}

/** A token as stored by the scripts (a decimal string); anything else means the key holds foreign data. */
function parseToken(raw: unknown, reply: unknown): number {
  const token = typeof raw === 'string' && /^\d+$/.test(raw) ? Number(raw) : Number.NaN;
  if (!Number.isSafeInteger(token)) throw unexpectedReply('fenced store', reply);
  return token;
}

function unexpectedReply(script: string, reply: unknown): Error {
  return new Error(`FencedStore: unexpected reply from ${script}: ${JSON.stringify(reply)}`);
}
