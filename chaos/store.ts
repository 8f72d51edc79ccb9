/**
 * The fault suite's store service (docs/chaos.md: the fenced store, the set workloads): an HTTP JSON service
 * inside the harness process that the workload workers read and write through, and that logs every read and
 * write it answers to the history as writer `store`.
 *
 * Two stores per resource, each a set of numbers kept as a JSON array in the store's own Redis (never a lock
 * node):
 * - `fenced`: the SDK's real FencedStore. Reads are fenced too (a read registers the reader's token), which is
 *   what makes read-modify-write of the set safe: once the newest holder has read, an older holder's write is
 *   refused even before the newest one writes.
 * - `unfenced`: plain GET / SET, the token ignored: what the set workload loses without fencing.
 *
 * API (every route is POST with a JSON body; answers are JSON):
 *   /fenced/read    {resource, token, lock}          200 {value: number[]} | 409 {error: 'STALE_TOKEN', highestToken}
 *   /fenced/write   {resource, token, lock, value}   200 {ok: true}        | 409 {error: 'STALE_TOKEN', highestToken}
 *   /unfenced/read  {resource, token?, lock?}        200 {value: number[]}
 *   /unfenced/write {resource, token?, lock?, value} 200 {ok: true}
 *   /final-read     {store, resource}                200 {value: number[]}   (no token: the read after the heal)
 * 400 {error: 'BAD_REQUEST', message} for a malformed request (nothing was sent to Redis), 503 {error:
 * 'STORE_UNAVAILABLE', message} when Redis failed or did not answer (the outcome of a write is then unknown), 500
 * {error: 'INTERNAL', message} when a stored value is not a set of numbers.
 *
 * History: one event per answered operation, in the order Redis ran them (see AcceptanceOrder), as one-off events
 * of the writer's first logical process: `ok` (accepted), `fail` (refused as stale: it changed nothing), or `info`
 * (Redis failed: it may or may not have been applied), with `value` the whole set written or read.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Redis } from 'ioredis';
import { FencedStore, StaleTokenError } from '../client/src/index.js';
import { type EventBody, type EventError, HistoryWriter } from './history.js';

export interface StoreServiceOptions {
  /** History directory: events go to `<dir>/<writer>.jsonl`. */
  dir: string;
  /** `redis://127.0.0.1:port` of the store's own redis-server (not a lock node). */
  redis: string;
  /** History writer name; default `store`. */
  writer?: string;
  /**
   * Prefix of every key (default `chaos:`): fenced sets live in the FencedStore hashes `<prefix>fenced:<resource>`,
   * unfenced ones in the strings `<prefix>unfenced:<resource>`. A test sharing one Redis gives each run its own.
   */
  keyPrefix?: string;
}

export type StoreName = 'fenced' | 'unfenced';

/** A request body bigger than this is refused: a set of every element a 20-minute run could add fits easily. */
const MAX_BODY_BYTES = 4 * 1024 * 1024;
/**
 * Redis on loopback answers in well under a millisecond; 2 s means it is stalled (the FencedStore's own default).
 * Workers time out their store calls later than this, so they normally get the 503 rather than a timeout.
 */
const COMMAND_TIMEOUT_MS = 2_000;
/** After a lost connection, reconnect soon, then at most once a second (the same policy as FencedStore). */
const RECONNECT_STEP_MS = 100;
const RECONNECT_MAX_MS = 1_000;
/**
 * Idle keep-alive connections are kept this long. Longer than any pause a scenario gives a worker (SIGSTOP for a
 * few TTLs), so a client that reuses a connection after waking does not meet a socket the server closed meanwhile.
 */
const KEEP_ALIVE_TIMEOUT_MS = 120_000;

/** An HTTP answer: status and JSON body. */
interface Reply {
  status: number;
  body: Record<string, unknown>;
}

/** An event without its completion type. */
type EventBase = Omit<EventBody, 'type'>;

/** A request that cannot be served as sent; nothing reached Redis. */
class BadRequest extends Error {}

/** A stored value that is not a JSON array of numbers: the key is not ours, or the data was damaged. */
class NotASet extends Error {}

/**
 * Records operations in the order Redis ran them, which on one connection is the order they were sent.
 *
 * Replies on one connection come back in that order, but the continuations of their promises may not run in it:
 * a refusal (a thrown StaleTokenError) takes a different number of microtask hops than an acceptance, so two
 * replies read from one TCP chunk can reach our code swapped. So each operation takes a ticket synchronously just
 * before its command is sent, and its event is recorded only after those of every earlier ticket. Every ticket
 * must be finished (success or failure), or later events wait forever; the callers finish in a finally path.
 *
 * The one case this cannot see: ioredis re-sends a script as EVAL after a NOSCRIPT reply, behind commands sent
 * meanwhile. It sends EVAL first on every new connection, so that happens only if someone runs SCRIPT FLUSH on
 * the store's Redis, which no scenario does.
 */
class AcceptanceOrder {
  #issued = 0;
  #recorded = 0;
  readonly #waiting = new Map<number, () => void>();
  /** flush() callers: each waits for the tickets taken before it called. */
  #flushes: { upTo: number; resolve: () => void }[] = [];

  /** Call synchronously right before sending the command. */
  take(): number {
    return this.#issued++;
  }

  /** Runs `record` once every earlier ticket's has run; resolves with its result. */
  finish<T>(ticket: number, record: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.#waiting.set(ticket, () => {
        try {
          resolve(record());
        } catch (error) {
          reject(error);
        }
      });
      for (let run = this.#waiting.get(this.#recorded); run; run = this.#waiting.get(this.#recorded)) {
        this.#waiting.delete(this.#recorded);
        this.#recorded++;
        run();
      }
      this.#flushes = this.#flushes.filter((flush) => {
        if (flush.upTo > this.#recorded) return true;
        flush.resolve();
        return false;
      });
    });
  }

  /** Resolves once every ticket taken so far is recorded (later ones are not waited for). */
  flushed(): Promise<void> {
    const upTo = this.#issued;
    if (this.#recorded >= upTo) return Promise.resolve();
    return new Promise((resolve) => this.#flushes.push({ upTo, resolve }));
  }
}

type Settled<T> = { ok: true; value: T } | { ok: false; error: unknown };

function settle<T>(promise: Promise<T>): Promise<Settled<T>> {
  return promise.then(
    (value) => ({ ok: true as const, value }),
    (error: unknown) => ({ ok: false as const, error }),
  );
}

export class StoreService {
  readonly #fenced: FencedStore;
  readonly #unfenced: Redis;
  readonly #unfencedPrefix: string;
  readonly #history: HistoryWriter;
  readonly #http: Server;
  readonly #fencedOrder = new AcceptanceOrder();
  readonly #unfencedOrder = new AcceptanceOrder();
  #closing: Promise<void> | undefined;

  private constructor(
    /** `http://127.0.0.1:<port>`. */
    readonly url: string,
    parts: {
      fenced: FencedStore;
      unfenced: Redis;
      unfencedPrefix: string;
      history: HistoryWriter;
      http: Server;
    },
  ) {
    this.#fenced = parts.fenced;
    this.#unfenced = parts.unfenced;
    this.#unfencedPrefix = parts.unfencedPrefix;
    this.#history = parts.history;
    this.#http = parts.http;
  }

  /** Connects to the store's Redis (both stores) and listens on a free loopback port. */
  static async start(options: StoreServiceOptions): Promise<StoreService> {
    const keyPrefix = options.keyPrefix ?? 'chaos:';
    const fenced = await FencedStore.connect({
      redis: options.redis,
      keyPrefix: `${keyPrefix}fenced:`,
      commandTimeoutMs: COMMAND_TIMEOUT_MS,
    });
    let unfenced: Redis | undefined;
    let http: Server | undefined;
    try {
      unfenced = await connectUnfenced(options.redis);
      const history = new HistoryWriter(options.dir, options.writer ?? 'store');
      let service: StoreService | undefined;
      http = createServer((request, response) => {
        // Requests arrive only after listen() resolved, so `service` is set by then.
        void service?.handle(request, response);
      });
      http.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS;
      const server = http;
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen({ host: '127.0.0.1', port: 0 }, () => {
          server.off('error', reject);
          resolve();
        });
      });
      const { port } = http.address() as AddressInfo;
      service = new StoreService(`http://127.0.0.1:${port}`, {
        fenced,
        unfenced,
        unfencedPrefix: `${keyPrefix}unfenced:`,
        history,
        http,
      });
      return service;
    } catch (error) {
      http?.close();
      unfenced?.disconnect();
      await fenced.close();
      throw error;
    }
  }

  /** Stops listening, drops open connections, closes both Redis connections and the history file. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      const closed = new Promise<void>((resolve) => this.#http.close(() => resolve()));
      this.#http.closeAllConnections();
      await closed;
      await Promise.allSettled([this.#fenced.close(), this.#unfenced.quit()]);
      this.#unfenced.disconnect();
      this.#history.close();
    })();
    return this.#closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  private async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    let reply: Reply;
    try {
      reply = await this.route(request);
    } catch (error) {
      if (error instanceof BadRequest) {
        reply = { status: 400, body: { error: 'BAD_REQUEST', message: error.message } };
      } else if (error instanceof NotASet) {
        reply = { status: 500, body: { error: 'INTERNAL', message: error.message } };
      } else {
        reply = { status: 503, body: { error: 'STORE_UNAVAILABLE', message: message(error) } };
      }
    }
    const text = JSON.stringify(reply.body);
    response.writeHead(reply.status, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(text),
    });
    response.end(text);
  }

  private async route(request: IncomingMessage): Promise<Reply> {
    if (request.method !== 'POST') {
      request.resume();
      return { status: 405, body: { error: 'METHOD_NOT_ALLOWED', message: 'every route is POST' } };
    }
    const path = (request.url ?? '').split('?')[0];
    const routes: Record<string, (body: Record<string, unknown>) => Promise<Reply>> = {
      '/fenced/read': (body) => this.fencedRead(body),
      '/fenced/write': (body) => this.fencedWrite(body),
      '/unfenced/read': (body) => this.unfencedRead(body),
      '/unfenced/write': (body) => this.unfencedWrite(body),
      '/final-read': async (body) => {
        const store = body.store;
        if (store !== 'fenced' && store !== 'unfenced') {
          throw new BadRequest(`store must be "fenced" or "unfenced", got ${JSON.stringify(store)}`);
        }
        return { status: 200, body: { value: await this.finalRead(store, resourceField(body)) } };
      },
    };
    const handler = path === undefined ? undefined : routes[path];
    if (!handler) {
      request.resume();
      return { status: 404, body: { error: 'NOT_FOUND', message: `no route ${path}` } };
    }
    return await handler(await readBody(request));
  }

  private async fencedRead(body: Record<string, unknown>): Promise<Reply> {
    const resource = resourceField(body);
    const token = tokenField(body, true);
    const lock = lockField(body);
    const base = { f: 'store_read', store: 'fenced', resource, token: String(token), lock } as const;
    const ticket = this.#fencedOrder.take();
    const outcome = await settle(this.#fenced.read(resource, token));
    return await this.#fencedOrder.finish(ticket, (): Reply => {
      return outcome.ok ? this.read(base, outcome.value.value) : this.failed(base, outcome.error);
    });
  }

  private async fencedWrite(body: Record<string, unknown>): Promise<Reply> {
    const resource = resourceField(body);
    const token = tokenField(body, true);
    const lock = lockField(body);
    const value = setField(body);
    const base = { f: 'store_write', store: 'fenced', resource, token: String(token), lock, value } as const;
    const ticket = this.#fencedOrder.take();
    const outcome = await settle(this.#fenced.write(resource, JSON.stringify(value), token));
    return await this.#fencedOrder.finish(ticket, (): Reply => {
      if (outcome.ok) {
        this.#history.record({ ...base, type: 'ok' });
        return { status: 200, body: { ok: true } };
      }
      return this.failed(base, outcome.error);
    });
  }

  private async unfencedRead(body: Record<string, unknown>): Promise<Reply> {
    const resource = resourceField(body);
    const token = tokenField(body, false);
    const lock = lockField(body);
    const base = {
      f: 'store_read',
      store: 'unfenced',
      resource,
      ...(token !== undefined && { token: String(token) }),
      ...(lock !== undefined && { lock }),
    } as const;
    const ticket = this.#unfencedOrder.take();
    const outcome = await settle(this.#unfenced.get(this.#unfencedPrefix + resource));
    return await this.#unfencedOrder.finish(ticket, (): Reply => {
      return outcome.ok ? this.read(base, outcome.value) : this.failed(base, outcome.error);
    });
  }

  private async unfencedWrite(body: Record<string, unknown>): Promise<Reply> {
    const resource = resourceField(body);
    const token = tokenField(body, false);
    const lock = lockField(body);
    const value = setField(body);
    const base = {
      f: 'store_write',
      store: 'unfenced',
      resource,
      ...(token !== undefined && { token: String(token) }),
      ...(lock !== undefined && { lock }),
      value,
    } as const;
    const ticket = this.#unfencedOrder.take();
    const outcome = await settle(this.#unfenced.set(this.#unfencedPrefix + resource, JSON.stringify(value)));
    return await this.#unfencedOrder.finish(ticket, (): Reply => {
      if (outcome.ok) {
        this.#history.record({ ...base, type: 'ok' });
        return { status: 200, body: { ok: true } };
      }
      return this.failed(base, outcome.error);
    });
  }

  /**
   * The set as stored, without a token: the final read after the heal (also `POST /final-read`). The fenced one
   * peeks at the key rather than reading with a token, which would register a token no lease has. Recorded like
   * any read but without token or lock: that is how the checker tells the final read apart. Rejects when Redis
   * fails (recorded as `info`).
   */
  async finalRead(store: StoreName, resource: string): Promise<number[]> {
    const base = { f: 'store_read', store, resource } as const;
    const order = store === 'fenced' ? this.#fencedOrder : this.#unfencedOrder;
    const ticket = order.take();
    const outcome = await settle(
      store === 'fenced'
        ? this.#fenced.peek(resource).then((peeked) => peeked.value)
        : this.#unfenced.get(this.#unfencedPrefix + resource),
    );
    const reply = await order.finish(ticket, () =>
      outcome.ok ? this.read(base, outcome.value) : this.failed(base, outcome.error),
    );
    return reply.body.value as number[];
  }

  /**
   * Resolves once every operation sent so far is recorded (their events wait for earlier ones, see
   * AcceptanceOrder). Each event is written synchronously, so the file then holds them all: a harness calls this
   * before loading the history.
   */
  async flush(): Promise<void> {
    await Promise.all([this.#fencedOrder.flushed(), this.#unfencedOrder.flushed()]);
  }

  /** A read Redis answered: recorded with the set it read, unless the stored value is not a set. */
  private read(base: EventBase, stored: string | null): Reply {
    let value: number[];
    try {
      value = parseSet(stored, base.resource ?? '');
    } catch (error) {
      return this.failed(base, error);
    }
    this.#history.record({ ...base, type: 'ok', value });
    return { status: 200, body: { value } };
  }

  /**
   * A refused or failed operation: recorded, then answered. Stale → `fail` and 409 (the scripts change nothing
   * when they refuse). Anything else → `info` (the command may have run before Redis or the connection failed)
   * and rethrown, to become a 503 (or a 500 for a damaged value).
   */
  private failed(base: EventBase, error: unknown): Reply {
    if (error instanceof StaleTokenError) {
      const stale: EventError = { code: 'STALE_TOKEN', msg: error.message };
      this.#history.record({ ...base, type: 'fail', error: stale });
      return { status: 409, body: { error: 'STALE_TOKEN', highestToken: error.highestToken } };
    }
    const code = error instanceof NotASet ? 'INTERNAL' : 'UNAVAILABLE';
    this.#history.record({ ...base, type: 'info', error: { code, msg: message(error) } });
    // No invoke of ours is open (store events are one-off), but a process is retired after every `info`.
    this.#history.retire();
    throw error;
  }
}

/** A second connection for the unfenced store, as fail-fast as FencedStore's (no offline queue, no resend). */
async function connectUnfenced(url: string): Promise<Redis> {
  let connected = false;
  let lastError: Error | undefined;
  const redis = new Redis(url, {
    lazyConnect: true,
    connectTimeout: COMMAND_TIMEOUT_MS,
    commandTimeout: COMMAND_TIMEOUT_MS,
    // A command cut off by a disconnect is reported (→ `info`), never silently re-sent on the next connection,
    // where it could run after commands recorded later.
    enableOfflineQueue: false,
    autoResendUnfulfilledCommands: false,
    maxRetriesPerRequest: 0,
    retryStrategy: (times) => (connected ? Math.min(times * RECONNECT_STEP_MS, RECONNECT_MAX_MS) : null),
  });
  redis.on('error', (error: Error) => {
    lastError = error;
  });
  try {
    await redis.connect();
  } catch (error) {
    redis.disconnect();
    throw new Error(
      `store: cannot connect to Redis for the unfenced store: ${lastError?.message ?? message(error)}`,
    );
  }
  connected = true;
  return redis;
}

async function readBody(request: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new BadRequest(`body is over ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk);
  }
  let body: unknown;
  try {
    body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new BadRequest('body must be JSON');
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new BadRequest('body must be a JSON object');
  }
  return body as Record<string, unknown>;
}

function resourceField(body: Record<string, unknown>): string {
  const { resource } = body;
  if (typeof resource !== 'string' || resource === '') {
    throw new BadRequest('resource must be a non-empty string');
  }
  return resource;
}

/** A fencing token, as a JSON number or a decimal string (the history's form); required for the fenced store. */
function tokenField(body: Record<string, unknown>, required: true): number;
function tokenField(body: Record<string, unknown>, required: false): number | undefined;
function tokenField(body: Record<string, unknown>, required: boolean): number | undefined {
  const raw = body.token;
  if (raw === undefined && !required) return undefined;
  const token = typeof raw === 'string' && /^\d+$/.test(raw) ? Number(raw) : raw;
  if (typeof token !== 'number' || !Number.isSafeInteger(token) || token <= 0) {
    throw new BadRequest(`token must be a positive safe integer, got ${JSON.stringify(raw)}`);
  }
  return token;
}

function lockField(body: Record<string, unknown>): string | undefined {
  const { lock } = body;
  if (lock === undefined) return undefined;
  if (typeof lock !== 'string') throw new BadRequest('lock must be a string');
  return lock;
}

function setField(body: Record<string, unknown>): number[] {
  const { value } = body;
  if (!isSet(value)) throw new BadRequest('value must be an array of safe integers');
  return value;
}

function isSet(value: unknown): value is number[] {
  return Array.isArray(value) && value.every((x) => Number.isSafeInteger(x));
}

/** The stored JSON array; nothing stored yet is the empty set. */
function parseSet(stored: string | null, resource: string): number[] {
  if (stored === null) return [];
  let value: unknown;
  try {
    value = JSON.parse(stored);
  } catch {
    value = undefined;
  }
  if (!isSet(value)) {
    throw new NotASet(`the store's value for ${JSON.stringify(resource)} is not a JSON array of integers`);
  }
  return value;
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
