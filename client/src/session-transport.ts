import type { Context } from '@opentelemetry/api';
import { AbortError } from 'abort-controller-x';
import { type Pushable, pushable } from 'it-pushable';
import { ClientError, Metadata, Status } from 'nice-grpc';
import type {
  AcquireRequest,
  AcquireResponse,
  ExtendRequest,
  ExtendResponse,
  ReleaseRequest,
  ReleaseResponse,
  SessionRequest,
  SessionResponse,
} from '../../gen/redlease/v1/lock.js';
import { traceCarrier } from './tracing.js';

/** What a LockClient call passes: its signal, its deadline (ms from now), where the reason trailer goes, and the
 *  trace context it belongs to (tracing.ts). */
export interface CallOptions {
  signal?: AbortSignal;
  deadline: number;
  onTrailer?: (trailer: Metadata) => void;
  traceContext?: Context;
}

/** Acquire, Release and Extend, whether sent as unary calls or as Session operations. */
export interface LockCalls {
  acquire(request: AcquireRequest, options: CallOptions): Promise<AcquireResponse>;
  release(request: ReleaseRequest, options: CallOptions): Promise<ReleaseResponse>;
  extend(request: ExtendRequest, options: CallOptions): Promise<ExtendResponse>;
}

type Operation = Exclude<SessionRequest['op'], undefined | { $case: 'cancel' }>;
type Result = Exclude<SessionResponse['result'], undefined>;

interface Pending {
  op: Operation;
  /** W3C Trace Context of the operation (its request's trace_context). */
  traceContext: Record<string, string>;
  options: CallOptions;
  resolve: (result: Result) => void;
  reject: (error: unknown) => void;
  /** Stops its deadline timer and abort listener. */
  done: () => void;
}

interface Stream {
  requests: Pushable<SessionRequest>;
  abort: AbortController;
  /** Operations awaiting an answer: sent, or queued behind `maxInFlight` others. */
  pending: Map<number, Pending>;
  /** Sent and not answered yet (at most `maxInFlight`: the server refuses more per stream). */
  sent: Set<number>;
  /** Waiting for room, oldest first. */
  queued: number[];
}

const PATH = '/redlease.v1.LockService/Session';
/** Operations the server accepts in flight on one stream (lock.proto, Session); more wait here, in order. */
const MAX_IN_FLIGHT = 1_000;
/** A stream with no operation in flight is half-closed after this long; the next operation opens a new one. */
const IDLE_CLOSE_MS = 5_000;
/** The server's `redlease-reason` trailer, which a SessionError's reason stands in for. */
const REASON_TRAILER = 'redlease-reason';

/**
 * Acquire, Release and Extend as operations on one LockService.Session stream, opened on first use and again
 * after it ends. Each operation fails exactly as its unary call would have (the same ClientError code, the reason
 * handed to `onTrailer`), so the LockClient's error mapping and retries apply unchanged:
 * - its deadline passing: DEADLINE_EXCEEDED without a reason (the operation is cancelled on the stream);
 * - its signal aborting: AbortError (the operation is cancelled: a waiting Acquire leaves the queue);
 * - the stream ending under it: UNAVAILABLE without a reason, its outcome unknown, like a broken connection;
 * - a server without Session (UNIMPLEMENTED): the operation and every later one go as unary calls (`fallback`).
 */
export class SessionTransport implements LockCalls {
  private stream: Stream | undefined;
  private nextId = 1;
  private unsupported = false;
  private closed = false;
  private idleTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly open: (
      requests: AsyncIterable<SessionRequest>,
      signal: AbortSignal,
    ) => AsyncIterable<SessionResponse>,
    private readonly fallback: LockCalls,
    private readonly maxInFlight = MAX_IN_FLIGHT,
  ) {}

  async acquire(request: AcquireRequest, options: CallOptions): Promise<AcquireResponse> {
    if (this.unsupported) return this.fallback.acquire(request, options);
    const result = await this.send({ $case: 'acquire', value: request }, options);
    return expectCase(result, 'acquire');
  }

  async release(request: ReleaseRequest, options: CallOptions): Promise<ReleaseResponse> {
    if (this.unsupported) return this.fallback.release(request, options);
    const result = await this.send({ $case: 'release', value: request }, options);
    return expectCase(result, 'release');
  }

  async extend(request: ExtendRequest, options: CallOptions): Promise<ExtendResponse> {
    if (this.unsupported) return this.fallback.extend(request, options);
    const result = await this.send({ $case: 'extend', value: request }, options);
    return expectCase(result, 'extend');
  }

  /** Operations in flight on the stream. */
  get inFlight(): number {
    return this.stream?.pending.size ?? 0;
  }

  /**
   * Ends the stream; operations still in flight fail UNAVAILABLE (outcome unknown). Later operations open a
   * new stream unless `final`.
   */
  close(final = true): void {
    if (final) this.closed = true;
    clearTimeout(this.idleTimer);
    const stream = this.stream;
    if (!stream) return;
    this.stream = undefined;
    this.failAll(stream, new ClientError(PATH, Status.UNAVAILABLE, 'the session stream was closed'));
    stream.abort.abort();
  }

  private send(op: Operation, options: CallOptions): Promise<Result> {
    const { signal, deadline } = options;
    if (signal?.aborted) return Promise.reject(new AbortError());
    if (this.closed) {
      return Promise.reject(new ClientError(PATH, Status.UNAVAILABLE, 'the session stream was closed'));
    }
    const stream = this.stream ?? this.openStream();
    clearTimeout(this.idleTimer);
    const id = this.nextId++;
    return new Promise<Result>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.cancel(stream, id);
        reject(new ClientError(PATH, Status.DEADLINE_EXCEEDED, 'Deadline exceeded'));
      }, deadline);
      const onAbort = (): void => {
        this.cancel(stream, id);
        reject(new AbortError());
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      const done = (): void => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
      };
      const traceContext = traceCarrier(options.traceContext);
      stream.pending.set(id, { op, traceContext, options, resolve, reject, done });
      if (stream.sent.size < this.maxInFlight) this.write(stream, id, op, traceContext);
      else stream.queued.push(id);
    });
  }

  private write(stream: Stream, id: number, op: Operation, traceContext: Record<string, string>): void {
    stream.sent.add(id);
    stream.requests.push({ id, op, traceContext });
  }

  /** An answer (or a cancel) made room: send the oldest queued operations. */
  private sendQueued(stream: Stream): void {
    while (stream.sent.size < this.maxInFlight && stream.queued.length > 0) {
      const id = stream.queued.shift()!;
      const pending = stream.pending.get(id);
      if (pending) this.write(stream, id, pending.op, pending.traceContext);
    }
  }

  /** Gives up on operation `id`: no answer is awaited any more, and the server is told to stop it. */
  private cancel(stream: Stream, id: number): void {
    const pending = stream.pending.get(id);
    if (!pending) return;
    pending.done();
    stream.pending.delete(id);
    if (stream.sent.has(id)) {
      // Still in flight on the server until it answers (CANCELLED, or its outcome): `sent` keeps counting it.
      stream.requests.push({ id, op: { $case: 'cancel', value: {} }, traceContext: {} });
    } else {
      stream.queued.splice(stream.queued.indexOf(id), 1); // never sent: nothing to tell the server
    }
    this.idleLater(stream);
  }

  /** With nothing in flight, half-close the stream after IDLE_CLOSE_MS unless an operation comes first. */
  private idleLater(stream: Stream): void {
    if (stream.pending.size > 0 || stream.sent.size > 0 || this.stream !== stream) return;
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => {
      if (this.stream !== stream || stream.pending.size > 0 || stream.sent.size > 0) return;
      this.stream = undefined;
      stream.requests.end();
    }, IDLE_CLOSE_MS);
    this.idleTimer.unref();
  }

  private openStream(): Stream {
    const stream: Stream = {
      requests: pushable({ objectMode: true }),
      abort: new AbortController(),
      pending: new Map(),
      sent: new Set(),
      queued: [],
    };
    this.stream = stream;
    void (async () => {
      for await (const response of this.open(stream.requests, stream.abort.signal)) {
        this.answer(stream, response);
      }
      throw new ClientError(PATH, Status.UNAVAILABLE, 'the server ended the session stream');
    })().catch((error: unknown) => this.ended(stream, error));
    return stream;
  }

  private answer(stream: Stream, response: SessionResponse): void {
    if (stream.sent.delete(response.id)) this.sendQueued(stream);
    const pending = stream.pending.get(response.id);
    const result = response.result;
    if (pending && result) {
      stream.pending.delete(response.id);
      pending.done();
      if (result.$case === 'error') {
        const { code, message, reason } = result.value;
        if (reason !== '') pending.options.onTrailer?.(Metadata({ [REASON_TRAILER]: reason }));
        pending.reject(new ClientError(PATH, code as Status, message));
      } else {
        pending.resolve(result);
      }
    } // else: given up on (deadline, abort) before its answer came
    this.idleLater(stream);
  }

  private ended(stream: Stream, error: unknown): void {
    if (this.stream === stream) this.stream = undefined;
    if (error instanceof ClientError && error.code === Status.UNIMPLEMENTED) {
      // An older server: what was sent never ran. Send it again, and everything after, as unary calls.
      this.unsupported = true;
      for (const [id, pending] of stream.pending) {
        stream.pending.delete(id);
        pending.done();
        this.resend(pending);
      }
      return;
    }
    this.failAll(stream, asUnavailable(error));
  }

  private resend(pending: Pending): void {
    const { op, options } = pending;
    const sent =
      op.$case === 'acquire'
        ? this.fallback.acquire(op.value, options).then((value) => ({ $case: 'acquire' as const, value }))
        : op.$case === 'release'
          ? this.fallback.release(op.value, options).then((value) => ({ $case: 'release' as const, value }))
          : this.fallback.extend(op.value, options).then((value) => ({ $case: 'extend' as const, value }));
    sent.then(pending.resolve, pending.reject);
  }

  private failAll(stream: Stream, error: unknown): void {
    for (const pending of stream.pending.values()) {
      pending.done();
      pending.reject(error);
    }
    stream.pending.clear();
    stream.sent.clear();
    stream.queued.length = 0;
    stream.requests.end();
  }
}

/**
 * The stream broke under operations in flight: for them it is a broken connection (UNAVAILABLE, no reason, so
 * retried and, for an Acquire, its outcome unknown) whatever status the stream itself ended with — except a
 * refusal of the stream as a whole (credentials, a stream-wide limit), which every operation shares.
 */
function asUnavailable(error: unknown): ClientError {
  if (
    error instanceof ClientError &&
    (error.code === Status.UNAUTHENTICATED || error.code === Status.PERMISSION_DENIED)
  ) {
    return error;
  }
  const detail = error instanceof ClientError ? `${Status[error.code]}: ${error.details}` : String(error);
  return new ClientError(PATH, Status.UNAVAILABLE, `the session stream broke (${detail})`);
}

interface ResultValue {
  acquire: AcquireResponse;
  release: ReleaseResponse;
  extend: ExtendResponse;
}

function expectCase<K extends keyof ResultValue>(result: Result, kind: K): ResultValue[K] {
  if (result.$case !== kind) {
    throw new ClientError(PATH, Status.INTERNAL, `the server answered a ${kind} with a ${result.$case}`);
  }
  return result.value as unknown as ResultValue[K];
}
