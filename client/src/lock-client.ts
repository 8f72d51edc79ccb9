import { randomFillSync } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { hostname } from 'node:os';
import { performance } from 'node:perf_hooks';
import {
  type Context,
  context,
  ROOT_CONTEXT,
  SpanKind,
  type Tracer,
  type TracerProvider,
} from '@opentelemetry/api';
import { delay } from 'abort-controller-x';
import {
  type Channel,
  type ChannelOptions,
  type Client,
  createChannel,
  createClientFactory,
  Metadata,
} from 'nice-grpc';
import { type DeadlineOptions, deadlineMiddleware } from 'nice-grpc-client-middleware-deadline';
import { type DescribeResponse, LockServiceDefinition } from '../../gen/redlease/v1/lock.js';
import { backoffMs } from './backoff.js';
import { credentials } from './credentials.js';
import {
  AuthError,
  InvalidArgumentError,
  isRetryable,
  type LeaseLostError,
  LimitExceededError,
  LockError,
  LockHeldError,
  LockNotHeldError,
  LockTimeoutError,
  toLockError,
  UnavailableError,
} from './errors.js';
import { KeepAliveStream } from './keep-alive-stream.js';
import { Lease, type LeaseOwner } from './lease.js';
import { releaseAll } from './release-all.js';
import { type LockCalls, SessionTransport } from './session-transport.js';
import {
  endWithError,
  sdkTracer,
  serverAttributes,
  startSpan,
  type TraceCallOptions,
  traceContextMiddleware,
} from './tracing.js';

export interface LockClientOptions {
  /** Server address, `host:port` (e.g. `127.0.0.1:50051`). */
  address: string;
  /**
   * TLS for the connection: `true` to verify the server against the system's CAs, or the PEM `ca` to verify
   * it with, plus `cert` and `key` for mTLS and `serverName` when the certificate's name differs from the
   * address. Omit for plaintext.
   */
  tls?:
    | boolean
    | { ca?: string | Buffer; cert?: string | Buffer; key?: string | Buffer; serverName?: string };
  /** Bearer token sent with every call (server flag --client-tokens-file / REDLEASE_CLIENT_TOKENS). */
  token?: string;
  /** Default client id shown by Describe and in server logs; defaults to `hostname:pid`. */
  clientId?: string;
  /** Default lease ttl in ms (100 – 3 600 000); default 0: the server's default (30 000 unless configured). */
  ttlMs?: number;
  /**
   * Time allowed for the server to answer a call, in ms, on top of an Acquire's wait; default 5 000. Past it
   * the call fails with LockTimeoutError.
   */
  callTimeoutMs?: number;
  /**
   * Retries of calls that failed with UNAVAILABLE (no quorum, server restarting or unreachable), with
   * exponential backoff and jitter. Every call is safe to re-send: Acquire re-sends its own lock id, so it
   * gets back the lease it may already have been granted. Default 4 attempts in all, 50 ms doubling to 1 s.
   */
  retry?: { attempts?: number; initialDelayMs?: number; maxDelayMs?: number };
  /** Leases per KeepAlive stream before another stream is opened (the server's default limit is 1 000). */
  maxLeasesPerStream?: number;
  /**
   * How Acquire, Release and Extend travel. `'session'` (default): as messages on one LockService.Session
   * stream, which costs the client and the server far less per operation (on the 2-core bench machine: 2.05x the
   * acquire + release cycles/s of unary calls with 64 concurrent loops, 1.59x with one; docs/performance.md); a
   * server without Session gets unary calls. `'unary'`: one gRPC call each (what a proxy that inspects gRPC
   * methods, or per-call server metrics, may want). Same outcomes, errors and retries either way.
   */
  transport?: 'unary' | 'session';
  /** Extra grpc-js channel options (they override the SDK's). */
  channelOptions?: ChannelOptions;
  /**
   * Where the client's spans go (acquire, release, extend, withLock: one CLIENT span each, retries included);
   * default the global one that an OpenTelemetry SDK registers. With none registered, spans are no-ops. The W3C
   * `traceparent` travels through the global propagator.
   */
  tracerProvider?: TracerProvider;
}

export interface AcquireOptions {
  /** Lease ttl in ms; default the client's `ttlMs`. Renewals ask for the same ttl. */
  ttlMs?: number;
  /** How long to wait in the server's FIFO queue if the resource is held, in ms (≤ 300 000); 0 = try once. */
  waitMs?: number;
  /** Overrides the client's `clientId` for this lease. */
  clientId?: string;
  /** Cancels the acquire (the call leaves the queue; a lease granted meanwhile is released). */
  signal?: AbortSignal;
  /** Renew automatically over the KeepAlive stream until released (default true). */
  autoRenew?: boolean;
  /**
   * Longest the lease may be held from its grant, in ms (0 or absent: no cap of its own; else at least 100). The
   * server's `--max-hold-ms` may be smaller; the smaller wins. At the cap the lease is lost with reason HOLD_CAP.
   */
  maxHoldMs?: number;
}

/** Events a LockClient emits, for logs and metrics. None is needed for correctness: use `lease.signal`. */
export interface LockClientEvents {
  /** A lease was renewed; `validityMs` counts from when the renewal was sent. */
  renewed: [lease: Lease, validityMs: number];
  /** A renewal did not go through (e.g. no quorum); the lease stays held until its deadline and is retried. */
  renewalFailed: [lease: Lease, reason: string];
  /** A lease was lost: the server said so, or its deadline passed without a renewal; `error.reason` says why. */
  lost: [lease: Lease, error: LeaseLostError];
  /** A lease entered jeopardy: less than a third of its ttl left and no renewal succeeded (see LeaseEvents). */
  jeopardy: [lease: Lease, remainingMs: number];
  /** A KeepAlive stream broke; it is reopened with backoff and its leases renewed on the new one. */
  streamError: [error: unknown];
}

/** The server's `redlease-reason` trailer: a stable reason code for every error it returns. */
const REASON_TRAILER = 'redlease-reason';
/** Re-sends of one Acquire whose grant arrived too late to use, before giving up (VALIDITY_EXHAUSTED). */
const MAX_RECLAIMS = 3;
/** Call option through which a call reports the server's trailer (the `redlease-reason`). */
type TrailerOption = { onTrailer: (trailer: Metadata) => void };
type LockServiceClient = Client<typeof LockServiceDefinition, DeadlineOptions & TraceCallOptions>;
const SERVICE = 'redlease.v1.LockService';
/** Lock ids are 16 random bytes; the CSPRNG fills this many at a time (one call per 256 acquires, not one each). */
const LOCK_ID_BYTES = 16;
const lockIdPool = Buffer.alloc(LOCK_ID_BYTES * 256);
let lockIdAt = lockIdPool.length;

/** A new lock id: 32 lowercase hex characters from the CSPRNG, each id's bytes used once. */
function newLockId(): string {
  if (lockIdAt === lockIdPool.length) {
    randomFillSync(lockIdPool);
    lockIdAt = 0;
  }
  lockIdAt += LOCK_ID_BYTES;
  return lockIdPool.toString('hex', lockIdAt - LOCK_ID_BYTES, lockIdAt);
}

/** For retry delays of calls made without a signal. */
const NEVER = new AbortController().signal;
/** Longest wait the server accepts (DESIGN: wait ≤ 5 min). */
const MAX_WAIT_MS = 300_000;

/**
 * Releases close() keeps in flight at once. All at once, a process holding thousands of leases would send
 * thousands of calls in one burst, and every one of them costs the server an HTTP/2 stream and three Redis
 * commands at the same moment (10 000 leases over 100 clients: the server's RSS went from 230 to ~500–670 MiB);
 * a few at a time, close() is hardly slower, since each release takes one round trip.
 */
const CLOSE_CONCURRENCY = 8;

/**
 * Client of a redlease server. One instance per process is enough: it multiplexes every call and the KeepAlive
 * stream(s) over one connection. `close()` releases the leases still held and closes the connection.
 *
 * ```ts
 * const client = new LockClient({ address: '127.0.0.1:50051' });
 * await using lease = await client.acquire('orders', { ttlMs: 10_000, waitMs: 5_000 });
 * await store.write('orders', data, lease.fencingToken); // fenced: refused if a newer holder wrote
 * ```
 */
export class LockClient extends EventEmitter<LockClientEvents> implements AsyncDisposable {
  private channel: Channel;
  private lock: LockServiceClient;
  /** Acquire, Release and Extend: `lock` itself, or a Session stream over it (options.transport). */
  private calls: LockCalls;
  private readonly connect: () => {
    channel: Channel;
    lock: LockServiceClient;
    calls: LockCalls;
  };
  private readonly tracer: Tracer;
  /** rpc.* and server.* attributes of every span. */
  private readonly spanAttributes: Record<string, string | number>;
  /** performance.now() of the last connection replaced for want of any answer (see presumeDead). */
  private replacedAt = Number.NEGATIVE_INFINITY;
  private readonly clientId: string;
  private readonly ttlMs: number;
  private readonly callTimeoutMs: number;
  private readonly attempts: number;
  private readonly initialDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly maxLeasesPerStream: number;
  private readonly streams: KeepAliveStream[] = [];
  /** Leases held, each with the KeepAlive stream renewing it (undefined: autoRenew false). */
  private readonly leases = new Map<Lease, KeepAliveStream | undefined>();
  private readonly owner: LeaseOwner;
  private closing: Promise<void> | undefined;

  constructor(options: LockClientOptions) {
    super();
    this.clientId = options.clientId ?? `${hostname()}:${process.pid}`;
    this.ttlMs = options.ttlMs ?? 0;
    this.callTimeoutMs = options.callTimeoutMs ?? 5_000;
    this.attempts = Math.max(1, options.retry?.attempts ?? 4);
    this.initialDelayMs = options.retry?.initialDelayMs ?? 50;
    this.maxDelayMs = options.retry?.maxDelayMs ?? 1_000;
    this.maxLeasesPerStream = options.maxLeasesPerStream ?? 1_000;
    this.tracer = sdkTracer(options.tracerProvider);
    this.spanAttributes = {
      'rpc.system': 'grpc',
      'rpc.service': SERVICE,
      'redlease.transport': options.transport === 'unary' ? 'unary' : 'session',
      ...(serverAttributes(options.address) as Record<string, string | number>),
    };
    const channelOptions = {
      // Ping every 15 s and drop a connection whose pings go unanswered for 5 s, so a dead server is noticed
      // even with no call in flight. The server accepts pings every 10 s at most (server-options.ts).
      'grpc.keepalive_time_ms': 15_000,
      'grpc.keepalive_timeout_ms': 5_000,
      'grpc.keepalive_permit_without_calls': 1,
      // After a lost connection, try again within 100 ms doubling to 2 s (grpc-js defaults: 1 s up to 120 s), so
      // a restarted server is found again well within a lease's ttl and renewals resume before it expires.
      'grpc.initial_reconnect_backoff_ms': 100,
      'grpc.max_reconnect_backoff_ms': 2_000,
      // Its own connection, not one shared with other channels to the same address: presumeDead() replaces it.
      'grpc.use_local_subchannel_pool': 1,
      ...(typeof options.tls === 'object' && options.tls.serverName
        ? { 'grpc.ssl_target_name_override': options.tls.serverName }
        : {}),
      ...options.channelOptions,
    };
    const metadata = options.token ? Metadata({ authorization: `Bearer ${options.token}` }) : undefined;
    this.connect = () => {
      const channel = createChannel(options.address, credentials(options.tls), channelOptions);
      const lock = createClientFactory()
        .use(traceContextMiddleware)
        .use(deadlineMiddleware)
        .create(LockServiceDefinition, channel, metadata ? { '*': { metadata } } : undefined);
      // The stream is no operation's: opened outside any trace (each operation carries its own).
      const calls =
        options.transport === 'unary'
          ? lock
          : new SessionTransport(
              (requests, signal) => lock.session(requests, { signal, traceContext: ROOT_CONTEXT }),
              lock,
            );
      return { channel, lock, calls };
    };
    ({ channel: this.channel, lock: this.lock, calls: this.calls } = this.connect());
    this.owner = {
      extend: (lease, ttlMs) => this.extend(lease, ttlMs),
      release: (lease) => this.release(lease),
      ended: (lease, lost) => {
        const stream = this.leases.get(lease);
        this.leases.delete(lease);
        stream?.detach(lease);
        if (lost) this.emit('lost', lease, lost);
      },
      jeopardy: (lease, remainingMs) => this.emit('jeopardy', lease, remainingMs),
    };
  }

  /**
   * Takes a lease on `resource`, waiting up to `waitMs` in the server's FIFO queue if it is held. The lease is
   * renewed automatically until released. Rejects with LockHeldError when it is still held after the wait,
   * UnavailableError when no quorum could be reached after retries, InvalidArgumentError for a bad name or
   * ttl, LimitExceededError, AuthError, LockTimeoutError, or the signal's AbortError.
   */
  async acquire(resource: string, options: AcquireOptions = {}): Promise<Lease> {
    this.assertOpen();
    const ttlMs = options.ttlMs ?? this.ttlMs;
    const waitMs = Math.min(options.waitMs ?? 0, MAX_WAIT_MS + 1); // out of range: the server names the field
    const clientId = options.clientId ?? this.clientId;
    const { span, ctx } = startSpan(this.tracer, 'redlease.acquire', SpanKind.CLIENT, () => ({
      ...this.spanAttributes,
      'rpc.method': 'Acquire',
      'redlease.resource': resource,
      'redlease.client_id': clientId,
      'redlease.wait_ms': waitMs,
      'redlease.ttl_ms': ttlMs,
    }));
    try {
      const lease = await this.acquireIn(ctx, span, resource, options, ttlMs, waitMs, clientId);
      span.end();
      return lease;
    } catch (error) {
      endWithError(span, error);
      throw error;
    }
  }

  /** acquire() within its span: every send carries `ctx`; retries and late grants are events of `span`. */
  private async acquireIn(
    ctx: Context,
    span: ReturnType<typeof startSpan>['span'],
    resource: string,
    options: AcquireOptions,
    ttlMs: number,
    waitMs: number,
    clientId: string,
  ): Promise<Lease> {
    // Chosen here, so a re-sent Acquire (after UNAVAILABLE, or an answer that came too late) names the same
    // lease and the server answers it instead of granting a second one.
    const lockId = newLockId();
    const started = performance.now();
    let attempt = 1; // counts sends that failed with UNAVAILABLE
    let reclaims = 0; // counts re-sends of a grant that arrived late
    for (;;) {
      // A reclaim re-sends with wait 0: the server then renews the lease this lock id already holds, without
      // queueing again behind the others (server/coordinator: a try-once lock_id reclaims only its own lease).
      const reclaim = reclaims > 0;
      const waitLeft =
        reclaim || waitMs === 0 ? 0 : Math.max(1, Math.ceil(waitMs - (performance.now() - started)));
      const sentAt = performance.now();
      try {
        const { lease } = await this.sendOnce(resource, (trailer) =>
          this.calls.acquire(
            { resource, ttlMs, clientId, waitTimeoutMs: waitLeft, lockId, maxHoldMs: options.maxHoldMs ?? 0 },
            {
              ...trailer,
              signal: options.signal,
              deadline: waitLeft + this.callTimeoutMs,
              traceContext: ctx,
            },
          ),
        );
        if (!lease) throw new LockError('the server answered without a lease', 'INTERNAL', '', resource);
        // The lease counts from the start of the server's granting attempt: sentAt + queuedMs (the time it
        // waited in the server's queue is known and not lost).
        const startedAt = sentAt + lease.queuedMs;
        if (performance.now() - startedAt > lease.validityMs / 3) {
          // More than a third of the validity went by between the granting attempt and the answer: a slow
          // network or a stalled process. This lease would expire before its first renewal, or already has.
          // Reclaim it at once: the same lease, renewed, its validity counted from the new send.
          span.addEvent('late grant', {
            'redlease.validity_ms': lease.validityMs,
            'redlease.late_ms': Math.round(performance.now() - startedAt),
          });
          if (++reclaims > MAX_RECLAIMS) {
            throw new LockError(
              `the lease on "${resource}" kept arriving too late to use (validity ${lease.validityMs} ms, answer ${Math.round(performance.now() - startedAt)} ms after the granting attempt began); use a longer ttl`,
              'DEADLINE_EXCEEDED',
              'VALIDITY_EXHAUSTED',
              resource,
            );
          }
          continue;
        }
        const { fencingToken, validityMs, nodes, queuedMs, maxHoldMs } = lease;
        if (span.isRecording()) {
          span.setAttributes({
            'redlease.fencing_token': fencingToken,
            'redlease.queued_ms': queuedMs,
            'redlease.validity_ms': validityMs,
            'redlease.nodes': nodes,
            'redlease.sends': attempt + reclaims,
          });
        }
        const grant = {
          resource,
          lockId,
          fencingToken,
          ttlMs,
          clientId,
          nodes,
          sentAt,
          queuedMs,
          validityMs,
          maxHoldMs,
        };
        return this.hold(new Lease(grant, this.owner), options.autoRenew ?? true);
      } catch (mapped) {
        const waitRemains = waitMs === 0 || performance.now() - started < waitMs;
        if (reclaim && mapped instanceof LockHeldError && waitMs > 0 && waitRemains) {
          reclaims = 0; // the late grant ran out meanwhile and someone else took it: wait again
          continue;
        }
        const retry =
          isRetryable(mapped) && attempt < this.attempts && waitRemains && !options.signal?.aborted;
        let pause: Promise<void>;
        if (retry) {
          const delayMs = backoffMs(attempt++, this.initialDelayMs, this.maxDelayMs);
          span.addEvent('retry', retryEvent(mapped, attempt, delayMs));
          pause = delay(options.signal ?? NEVER, delayMs);
        } else {
          pause = Promise.reject(mapped);
        }
        // Whatever ends the call here (this error, or an abort during the pause) may leave a granted lease behind.
        await pause.catch((stop: unknown) => {
          if (!definite(mapped)) this.abandon(resource, lockId, ctx);
          throw stop;
        });
      }
    }
  }

  /** Like `acquire` with no wait, but resolves null instead of rejecting when the resource is held. */
  async tryAcquire(resource: string, options: Omit<AcquireOptions, 'waitMs'> = {}): Promise<Lease | null> {
    try {
      return await this.acquire(resource, { ...options, waitMs: 0 });
    } catch (error) {
      if (error instanceof LockHeldError) return null;
      throw error;
    }
  }

  /**
   * Runs `fn` while holding a lease on `resource`, then releases it. `fn` gets the lease's signal, which aborts
   * if the lease is lost mid-work: pass it on to whatever `fn` awaits, and send `lease.fencingToken` with its
   * writes. Resolves with `fn`'s result; rejects with `fn`'s error, or with the LeaseLostError when the lease
   * was lost before `fn` finished (its work may not have been exclusive).
   */
  async withLock<T>(
    resource: string,
    fn: (signal: AbortSignal, lease: Lease) => Promise<T> | T,
    options: AcquireOptions = {},
  ): Promise<T> {
    // An INTERNAL span: the acquire and release inside it are the calls to the server; fn's own spans nest here too.
    const { span, ctx } = startSpan(this.tracer, 'redlease.withLock', SpanKind.INTERNAL, () => ({
      'redlease.resource': resource,
    }));
    try {
      const result = await context.with(ctx, () => this.withLockIn(resource, fn, options));
      span.end();
      return result;
    } catch (error) {
      endWithError(span, error);
      throw error;
    }
  }

  private async withLockIn<T>(
    resource: string,
    fn: (signal: AbortSignal, lease: Lease) => Promise<T> | T,
    options: AcquireOptions,
  ): Promise<T> {
    const lease = await this.acquire(resource, options);
    let result: T;
    try {
      result = await fn(lease.signal, lease);
      lease.throwIfLost();
    } catch (error) {
      await lease.release().catch(() => undefined); // fn's error is the one to report; the lock expires anyway
      throw error;
    }
    await lease.release();
    return result;
  }

  /** The state of `resource` on each node (never a lock id). A snapshot, for people and monitoring. */
  async describe(resource: string, options: { signal?: AbortSignal } = {}): Promise<DescribeResponse> {
    this.assertOpen();
    return this.call(resource, options.signal, undefined, undefined, (callOptions) =>
      this.lock.describe({ resource }, callOptions),
    );
  }

  /** Leases this client holds right now. */
  get heldLeases(): number {
    return this.leases.size;
  }

  /**
   * Releases every lease still held (best effort, a few at a time: CLOSE_CONCURRENCY; after the first release that
   * fails the rest are left to expire), stops renewing and closes the connection. Idempotent. With
   * `release: false` the leases are left to run out their validity instead.
   */
  close(options: { release?: boolean } = {}): Promise<void> {
    this.closing ??= (async () => {
      if (options.release ?? true) await releaseAll([...this.leases.keys()], CLOSE_CONCURRENCY);
      for (const stream of this.streams) stream.close();
      for (const lease of this.leases.keys())
        lease.lose('lost', 'the LockClient was closed without releasing it');
      if (this.calls instanceof SessionTransport) this.calls.close();
      this.channel.close();
    })();
    return this.closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  private hold(lease: Lease, autoRenew: boolean): Lease {
    if (!lease.isHeld()) return lease; // ended already (an event loop stalled past its deadline): nothing to track
    const stream = autoRenew ? this.streamWithRoom() : undefined;
    this.leases.set(lease, stream);
    stream?.attach(lease);
    return lease;
  }

  private streamWithRoom(): KeepAliveStream {
    const existing = this.streams.find((stream) => stream.size < this.maxLeasesPerStream);
    if (existing) return existing;
    const stream = new KeepAliveStream({
      // One stream renews many leases for as long as they live: it belongs to no operation's trace.
      open: (requests, signal) => this.lock.keepAlive(requests, { signal, traceContext: ROOT_CONTEXT }),
      renewed: (lease, validityMs) => this.emit('renewed', lease, validityMs),
      renewalFailed: (lease, reason) => this.emit('renewalFailed', lease, reason),
      streamError: (error) => this.emit('streamError', error),
      unanswered: () => this.presumeDead(),
    });
    this.streams.push(stream);
    return stream;
  }

  private async extend(lease: Lease, ttlMs: number): Promise<number> {
    const { resource, lockId } = lease;
    const { span, ctx } = startSpan(this.tracer, 'redlease.extend', SpanKind.CLIENT, () => ({
      ...this.spanAttributes,
      'rpc.method': 'Extend',
      'redlease.resource': resource,
      'redlease.fencing_token': lease.fencingToken,
      'redlease.ttl_ms': ttlMs,
    }));
    try {
      let sentAt = 0;
      const answer = await this.call(resource, undefined, ctx, span, (callOptions) => {
        sentAt = performance.now();
        return this.calls.extend({ resource, lockId, ttlMs }, callOptions);
      });
      const validityMs = answer.lease?.validityMs ?? 0;
      lease.renewed(sentAt, validityMs);
      if (span.isRecording()) span.setAttribute('redlease.validity_ms', validityMs);
      span.end();
      return validityMs;
    } catch (error) {
      endWithError(span, error);
      if (error instanceof LockNotHeldError) {
        lease.lose('lost', error.message, error.reason === 'HOLD_CAP_REACHED' ? 'HOLD_CAP' : 'EXPIRED');
      }
      throw error;
    }
  }

  private async release(lease: Lease): Promise<boolean> {
    const { resource, lockId } = lease;
    // Stop renewing first: the server tells the stream the lease is attached to that it was released, and that
    // notice may arrive before the Release answer.
    this.leases.get(lease)?.detach(lease);
    const { span, ctx } = startSpan(this.tracer, 'redlease.release', SpanKind.CLIENT, () => ({
      ...this.spanAttributes,
      'rpc.method': 'Release',
      'redlease.resource': resource,
      'redlease.fencing_token': lease.fencingToken,
    }));
    try {
      await this.call(resource, undefined, ctx, span, (callOptions) =>
        this.calls.release({ resource, lockId }, callOptions),
      );
      lease.markReleased();
      span.end();
      return true;
    } catch (error) {
      endWithError(span, error);
      if (!(error instanceof LockNotHeldError)) {
        lease.markReleased(); // renewal stops either way; the lock runs out its ttl
        throw error;
      }
      lease.lose('lost', 'it was already gone when released', 'EXPIRED');
      return false;
    }
  }

  /** One unary call with the call timeout, typed errors, and retries of UNAVAILABLE with backoff. */
  private async call<T>(
    resource: string,
    signal: AbortSignal | undefined,
    /** The operation's span and its context (every send carries it; retries are events); undefined: none. */
    traceContext: Context | undefined,
    span: ReturnType<typeof startSpan>['span'] | undefined,
    send: (
      options: { signal?: AbortSignal; deadline: number; traceContext?: Context } & TrailerOption,
    ) => Promise<T>,
  ): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.sendOnce(resource, (options) =>
          send({ ...options, signal, deadline: this.callTimeoutMs, traceContext }),
        );
      } catch (error) {
        // While closing, one attempt each: close() must be prompt, and an unreleased lock runs out its ttl.
        const attempts = this.closing ? 1 : this.attempts;
        if (!isRetryable(error) || attempt >= attempts || signal?.aborted) throw error;
        const delayMs = backoffMs(attempt, this.initialDelayMs, this.maxDelayMs);
        span?.addEvent('retry', retryEvent(error, attempt + 1, delayMs));
        await delay(signal ?? NEVER, delayMs);
      }
    }
  }

  /** One send that collects the server's reason trailer; a failure comes back as a typed error (toLockError). */
  private async sendOnce<T>(resource: string, send: (options: TrailerOption) => Promise<T>): Promise<T> {
    let reason = '';
    try {
      return await send({ onTrailer: (trailer) => (reason = trailer.get(REASON_TRAILER) ?? '') });
    } catch (error) {
      const mapped = toLockError(error, resource, reason);
      // No answer at all within the deadline (the server's own DEADLINE_EXCEEDED carries a reason).
      if (mapped instanceof LockTimeoutError && reason === '') this.presumeDead();
      throw mapped;
    }
  }

  /**
   * A call got no answer within its deadline, or a KeepAlive renewal none within half an interval: the
   * connection is presumed dead (half-open, or a link that lost bytes), which gRPC's keepalive pings would
   * notice only after 20 s, longer than most leases. Later calls and the reopened KeepAlive streams go over a
   * new connection; calls still on the old one end by their deadlines. At most once a second.
   */
  private presumeDead(): void {
    if (this.closing || performance.now() - this.replacedAt < 1_000) return;
    this.replacedAt = performance.now();
    const old = this.channel;
    const oldCalls = this.calls;
    ({ channel: this.channel, lock: this.lock, calls: this.calls } = this.connect());
    // Operations still on the old Session stream fail UNAVAILABLE (outcome unknown) and are retried on the new one.
    if (oldCalls instanceof SessionTransport) oldCalls.close();
    old.close();
  }

  /**
   * An Acquire whose outcome is unknown (timed out, cancelled, connection lost) may have been granted: release
   * its lock id in the background so the resource is not blocked until the ttl runs out. Compare-and-delete
   * makes this safe: it removes only this lock id.
   */
  private abandon(resource: string, lockId: string, traceContext: Context): void {
    if (this.closing) return;
    this.lock
      .release({ resource, lockId }, { deadline: this.callTimeoutMs, traceContext })
      .catch(() => undefined);
  }

  private assertOpen(): void {
    if (this.closing) throw new Error('this LockClient is closed; create a new one');
  }
}

/**
 * Errors after which the Acquire certainly did not take effect, so there is nothing to clean up: the server
 * decided (held, bad request, limit, credentials), or answered "no quorum" after undoing its partial votes.
 */
function definite(error: unknown): boolean {
  if (error instanceof UnavailableError) return error.reason !== '';
  return (
    error instanceof LockHeldError ||
    error instanceof InvalidArgumentError ||
    error instanceof LimitExceededError ||
    error instanceof AuthError
  );
}

/** A retry, as an event of the operation's span: which send comes next, after what, and why. */
function retryEvent(error: unknown, nextSend: number, delayMs: number): Record<string, string | number> {
  return {
    'redlease.send': nextSend,
    'redlease.delay_ms': Math.round(delayMs),
    'redlease.reason': error instanceof LockError ? error.reason || error.code : String(error),
  };
}
