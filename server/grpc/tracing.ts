import {
  type Attributes,
  type Context,
  context,
  propagation,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  type TextMapGetter,
  trace,
} from '@opentelemetry/api';
import { isAbortError } from 'abort-controller-x';
import { type CallContext, type Metadata, ServerError, type ServerMiddleware, Status } from 'nice-grpc';
import { REASON_TRAILER } from '../edge/status.js';

export const tracer = trace.getTracer('redlease.grpc');

/** W3C Trace Context from a call's metadata. */
const metadataGetter: TextMapGetter<Metadata> = {
  get: (carrier, key) => {
    const value = carrier.get(key);
    return typeof value === 'string' ? value : undefined;
  },
  keys: (carrier) => Array.from(carrier, ([key]) => key),
};

/** …and from a Session operation's trace_context map. */
export const recordGetter: TextMapGetter<Record<string, string>> = {
  get: (carrier, key) => carrier[key],
  keys: (carrier) => Object.keys(carrier),
};

/**
 * Codes that make a gRPC SERVER span an error (OpenTelemetry's RPC conventions): the others (NOT_FOUND, ABORTED
 * for a held lock, FAILED_PRECONDITION…) are answers the caller asked for, not failures of the server.
 */
const SERVER_ERRORS: ReadonlySet<Status> = new Set([
  Status.UNKNOWN,
  Status.DEADLINE_EXCEEDED,
  Status.UNIMPLEMENTED,
  Status.INTERNAL,
  Status.UNAVAILABLE,
  Status.DATA_LOSS,
]);

/**
 * One SERVER span per call (`redlease.v1.LockService/Acquire`), a child of the caller's span when its metadata
 * carries a W3C `traceparent`. It carries OpenTelemetry's rpc.* attributes, the request's resource and client id,
 * the final status code and the `redlease-reason`; the coordinator adds the outcome (redlease.outcome). The call
 * runs with the span active, so the coordinator's and the engine's spans are its children and log lines carry
 * its ids. Sits outside the error mapping, so it sees the status the caller gets. Installed only when tracing
 * is on.
 */
export function serverSpans(): ServerMiddleware {
  return (call, callContext) => {
    const parent = propagation.extract(ROOT_CONTEXT, callContext.metadata, metadataGetter);
    const path = call.method.path;
    const slash = path.lastIndexOf('/');
    const span = tracer.startSpan(path.slice(1), { kind: SpanKind.SERVER }, parent);
    if (span.isRecording()) {
      span.setAttributes({
        'rpc.system': 'grpc',
        'rpc.service': path.slice(1, slash),
        'rpc.method': path.slice(slash + 1),
        ...peerAttributes(callContext.peer),
        ...(call.requestStream ? {} : requestAttributes(call.request)),
      });
    }
    // The handler's generator, typed loosely here: this middleware passes its messages through unchanged.
    const next = call.next(call.request, callContext) as AsyncGenerator<unknown, unknown, undefined>;
    return bound(trace.setSpan(parent, span), traced(span, next, callContext)) as ReturnType<
      typeof call.next
    >;
  };
}

/** The resource and client id of a request that names them (Acquire, Release, Extend, Describe). */
export function requestAttributes(request: unknown): Attributes {
  const { resource, clientId } = request as { resource?: unknown; clientId?: unknown };
  const attributes: Attributes = {};
  if (typeof resource === 'string' && resource !== '') attributes['redlease.resource'] = resource;
  if (typeof clientId === 'string' && clientId !== '') attributes['redlease.client_id'] = clientId;
  return attributes;
}

/** Ends `span` with a call's final status: its code, its reason, and an error status for server failures. */
export function endCall(span: Span, code: Status, message: string, reason: string): void {
  if (span.isRecording()) {
    span.setAttribute('rpc.grpc.status_code', code);
    if (reason !== '') span.setAttribute('redlease.reason', reason);
    if (SERVER_ERRORS.has(code)) {
      span.setStatus({ code: SpanStatusCode.ERROR, message: `${Status[code]}: ${message}` });
    }
  }
  span.end();
}

async function* traced<T, R>(
  span: Span,
  next: AsyncGenerator<T, R, undefined>,
  callContext: CallContext,
): AsyncGenerator<T, R, undefined> {
  let code = Status.OK;
  let message = '';
  try {
    return yield* next;
  } catch (error) {
    if (error instanceof ServerError) {
      code = error.code;
      message = error.details;
    } else if (isAbortError(error) && callContext.signal.aborted) {
      code = Status.CANCELLED;
      message = 'cancelled by the client';
    } else {
      code = Status.UNKNOWN;
      message = error instanceof Error ? error.message : String(error);
      if (span.isRecording()) span.recordException(error as Error);
    }
    throw error;
  } finally {
    endCall(span, code, message, callContext.trailer.get(REASON_TRAILER) ?? '');
  }
}

/**
 * Runs every step of `inner` in `ctx`: a generator's body runs in the context of whoever resumes it, so without
 * this the handler would not see the call's span once nice-grpc starts iterating.
 */
async function* bound<T, R>(
  ctx: Context,
  inner: AsyncGenerator<T, R, undefined>,
): AsyncGenerator<T, R, undefined> {
  let step: IteratorResult<T, R> | undefined;
  try {
    step = await context.with(ctx, () => inner.next());
    while (!step.done) {
      yield step.value;
      step = await context.with(ctx, () => inner.next());
    }
    return step.value;
  } finally {
    // The caller stopped early (the call was cancelled): let the handler's own finally blocks run, in ctx.
    if (step !== undefined && !step.done) await context.with(ctx, () => inner.return(undefined as R));
  }
}

/** client.address and client.port from grpc-js's peer ("127.0.0.1:51234", "[::1]:51234"). */
function peerAttributes(peer: string): Attributes {
  const colon = peer.lastIndexOf(':');
  const port = Number(peer.slice(colon + 1));
  if (colon < 0 || !Number.isInteger(port)) return {};
  return { 'client.address': peer.slice(0, colon).replace(/^\[(.*)\]$/, '$1'), 'client.port': port };
}
