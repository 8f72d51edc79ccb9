import { context, propagation, type Span, SpanKind, trace } from '@opentelemetry/api';
import { isAbortError } from 'abort-controller-x';
import { type CallContext, Status } from 'nice-grpc';
import type { Logger } from 'pino';
import type {
  AcquireRequest,
  AcquireResponse,
  ExtendRequest,
  ExtendResponse,
  ReleaseRequest,
  ReleaseResponse,
  SessionError,
  SessionRequest,
  SessionResponse,
} from '../../gen/redlease/v1/lock.js';
import {
  type Coordinator,
  InvalidArgumentError,
  LimitError,
  ShuttingDownError,
} from '../coordinator/index.js';
import { errorStatus } from '../edge/status.js';
import { AsyncChannel } from './async-channel.js';
import { endCall, recordGetter, requestAttributes, tracer } from './tracing.js';

/** For the type checker: an Acquire always runs with its own controller's signal. */
const NEVER = new AbortController().signal;
/** Operations one Session stream may have in flight (lock.proto, Session). */
export const SESSION_MAX_IN_FLIGHT = 1_000;
/** Answers the client has not read yet before its stream is ended: a client that sends without reading. */
const MAX_UNREAD = 4 * SESSION_MAX_IN_FLIGHT;

/** The unary methods a Session operation means exactly (lock-service.ts). */
export interface SessionOperations {
  acquire(request: AcquireRequest, signal: AbortSignal): Promise<AcquireResponse>;
  release(request: ReleaseRequest): Promise<ReleaseResponse>;
  extend(request: ExtendRequest): Promise<ExtendResponse>;
}

type Operation = Exclude<SessionRequest['op'], undefined | { $case: 'cancel' }>;
type Result = Exclude<SessionResponse['result'], undefined>;

/**
 * One Session stream: every operation runs at once, concurrently, and is answered when it completes (in completion
 * order, by id). Ends when the client half-closes and every answer is out; with UNAVAILABLE after the answers in
 * flight when the server shuts down; with a status for a stream-wide protocol error. However it ends, waiting
 * Acquires are abandoned (they leave their queues) and granted leases stay in place.
 *
 * `traced` (tracing on): each operation is a SERVER span of its own, like the unary call it stands for, a child of
 * the span its request's trace_context names (else of the stream's span) and linked to the stream's span.
 */
export async function* session(
  operations: SessionOperations,
  coordinator: Coordinator,
  requests: AsyncIterable<SessionRequest>,
  callContext: CallContext,
  log: Logger,
  traced = false,
): AsyncGenerator<SessionResponse> {
  const channel = new AsyncChannel<SessionResponse>();
  // Only an Acquire can be stopped (it may wait): the others, which never wait, carry no AbortController.
  const inFlight = new Map<number, AbortController | undefined>();
  let drained: (() => void) | undefined;
  let shuttingDown = false;

  const answer = (id: number, result: Result): void => channel.push({ id, result });
  const start = (id: number, op: Operation, traceContext: Record<string, string>): void => {
    const controller = op.$case === 'acquire' ? new AbortController() : undefined;
    inFlight.set(id, controller);
    const span = traced ? operationSpan(id, op, traceContext) : undefined;
    const work = (): Promise<Result> => run(operations, op, controller?.signal);
    (span ? context.with(trace.setSpan(context.active(), span), work) : work())
      .then(
        (result) => {
          if (span) endCall(span, Status.OK, '', '');
          answer(id, result);
        },
        (error: unknown) => {
          const failure = sessionError(error, controller?.signal, log);
          if (span) endCall(span, failure.code, failure.message, failure.reason);
          answer(id, { $case: 'error', value: failure });
        },
      )
      .finally(() => {
        inFlight.delete(id);
        if (inFlight.size === 0) drained?.();
      });
  };
  const allAnswered = (): Promise<void> =>
    inFlight.size === 0 ? Promise.resolve() : new Promise((resolve) => (drained = resolve));

  const abortAll = (): void => {
    for (const controller of inFlight.values()) controller?.abort();
  };
  const onAbort = (): void => {
    abortAll();
    channel.fail(callContext.signal.reason);
  };
  callContext.signal.addEventListener('abort', onAbort, { once: true });
  const stopWatching = coordinator.onShutdown(() => {
    shuttingDown = true;
    // Waiting Acquires fail by themselves (the coordinator fails its queues); the rest finish quickly.
    void allAnswered().then(() => channel.fail(new ShuttingDownError()));
  });

  void (async () => {
    for await (const request of requests) {
      if (channel.size > MAX_UNREAD) {
        throw new LimitError(
          'SESSION_FLOOD',
          `${channel.size} answers on this Session stream are unread (limit ${MAX_UNREAD}); read answers before sending more requests`,
        );
      }
      const { id, op } = request;
      if (op === undefined) {
        throw new InvalidArgumentError(
          'op',
          'SESSION_NO_OPERATION',
          `Session request ${id} carries no operation: set one of acquire, release, extend or cancel`,
        );
      }
      if (op.$case === 'cancel') {
        inFlight.get(id)?.abort(); // an id not in flight, or a Release or Extend: nothing to stop
        continue;
      }
      if (inFlight.has(id)) {
        throw new InvalidArgumentError(
          'id',
          'SESSION_DUPLICATE_ID',
          `Session request id ${id} is already in flight on this stream: use an id unique among the operations in flight`,
        );
      }
      if (shuttingDown) {
        answer(id, { $case: 'error', value: sessionError(new ShuttingDownError(), undefined, log) });
      } else if (inFlight.size >= SESSION_MAX_IN_FLIGHT) {
        const limit = new LimitError(
          'SESSION_IN_FLIGHT_LIMIT',
          `${inFlight.size} operations are already in flight on this Session stream (limit ${SESSION_MAX_IN_FLIGHT}); wait for answers, or open another stream`,
        );
        answer(id, { $case: 'error', value: sessionError(limit, undefined, log) });
      } else {
        start(id, op, request.traceContext);
      }
    }
    await allAnswered();
    channel.end();
  })().catch((error: unknown) => {
    abortAll();
    channel.fail(error instanceof Error ? error : new Error(String(error)));
  });

  try {
    yield* channel;
  } finally {
    callContext.signal.removeEventListener('abort', onAbort);
    stopWatching();
    abortAll(); // the stream ended first (cancelled, broken): nobody is left to answer
  }
}

const METHODS = { acquire: 'Acquire', release: 'Release', extend: 'Extend' } as const;

/** The span of one Session operation, named as its unary call; started in the stream's context. */
function operationSpan(id: number, op: Operation, traceContext: Record<string, string>): Span {
  const stream = trace.getSpanContext(context.active());
  const parent = propagation.extract(context.active(), traceContext, recordGetter);
  const method = METHODS[op.$case];
  const span = tracer.startSpan(
    `redlease.v1.LockService/${method}`,
    {
      kind: SpanKind.SERVER,
      ...(stream && { links: [{ context: stream, attributes: { 'redlease.link': 'session stream' } }] }),
    },
    parent,
  );
  if (span.isRecording()) {
    span.setAttributes({
      'rpc.system': 'grpc',
      'rpc.service': 'redlease.v1.LockService',
      'rpc.method': method,
      'redlease.transport': 'session',
      'redlease.session.operation_id': id,
      ...requestAttributes(op.value),
    });
  }
  return span;
}

async function run(
  operations: SessionOperations,
  op: Operation,
  signal: AbortSignal | undefined,
): Promise<Result> {
  switch (op.$case) {
    case 'acquire':
      return { $case: 'acquire', value: await operations.acquire(op.value, signal ?? NEVER) };
    case 'release':
      return { $case: 'release', value: await operations.release(op.value) };
    case 'extend':
      return { $case: 'extend', value: await operations.extend(op.value) };
  }
}

/** The status the unary call would have ended with, as a SessionError (edge/status.ts has the one table). */
function sessionError(error: unknown, signal: AbortSignal | undefined, log: Logger): SessionError {
  if (isAbortError(error) && signal?.aborted) {
    return { code: Status.CANCELLED, message: 'cancelled by the client', reason: 'CANCELLED' };
  }
  const mapped = errorStatus(error);
  if (mapped) return { code: mapped.status, message: mapped.message, reason: mapped.reason };
  log.error({ err: error, method: '/redlease.v1.LockService/Session' }, 'internal error');
  return { code: Status.INTERNAL, message: 'internal error; the server logged the details', reason: '' };
}
