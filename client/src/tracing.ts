/**
 * The SDK's spans and trace propagation, through the OpenTelemetry API alone (`@opentelemetry/api`, a peer
 * dependency): the application brings the SDK, exporter and propagator, as with any instrumented library. With
 * none registered every span is the API's no-op and nothing is sent.
 *
 * A LockClient operation (acquire, release, extend) is one CLIENT span, retries included (as events); each send
 * carries its W3C `traceparent`: in the call's metadata for a unary call, in the operation's `trace_context` for a
 * Session operation. The server's span of the call is then the client span's child.
 */
import {
  type Attributes,
  type Context,
  context,
  isSpanContextValid,
  propagation,
  type Span,
  type SpanKind,
  SpanStatusCode,
  type TextMapSetter,
  type Tracer,
  type TracerProvider,
  trace,
} from '@opentelemetry/api';
import { type CallOptions, type ClientMiddleware, Metadata } from 'nice-grpc';

/** The instrumentation scope of the SDK's spans. */
export const SCOPE = '@redlease/client';

export function sdkTracer(provider: TracerProvider | undefined): Tracer {
  return (provider ?? trace.getTracerProvider()).getTracer(SCOPE);
}

/** A call option: the context whose span the call belongs to (default: the active one). */
export interface TraceCallOptions {
  traceContext?: Context;
}

const metadataSetter: TextMapSetter<Metadata> = {
  set: (carrier, key, value) => {
    carrier.set(key, value);
  },
};

/** Whether `ctx` holds a span worth propagating (a real trace, sampled or not). */
function traceable(ctx: Context): boolean {
  const span = trace.getSpanContext(ctx);
  return span !== undefined && isSpanContextValid(span);
}

/**
 * Client middleware: puts the call's trace context (the `traceContext` call option, else the active context) into
 * its metadata through the global propagator. A call outside any trace goes out untouched.
 */
export const traceContextMiddleware: ClientMiddleware<TraceCallOptions> = async function* propagate(
  call,
  options,
) {
  const { traceContext = context.active(), ...rest } = options;
  if (!traceable(traceContext)) return yield* call.next(call.request, rest as CallOptions);
  const metadata = Metadata(rest.metadata);
  propagation.inject(traceContext, metadata, metadataSetter);
  return yield* call.next(call.request, { ...rest, metadata } as CallOptions);
};

const NO_TRACE: Record<string, string> = Object.freeze({}) as Record<string, string>;

/** A Session operation's trace_context: `traceparent` (and `tracestate`) of `ctx`, or nothing. */
export function traceCarrier(ctx: Context | undefined): Record<string, string> {
  const from = ctx ?? context.active();
  if (!traceable(from)) return NO_TRACE;
  const carrier: Record<string, string> = {};
  propagation.inject(from, carrier);
  return carrier;
}

/** Starts a span under the active context; returns it and the context to run (and propagate) its work in. */
export function startSpan(
  tracer: Tracer,
  name: string,
  kind: SpanKind,
  attributes: () => Attributes,
): { span: Span; ctx: Context } {
  const parent = context.active();
  const span = tracer.startSpan(name, { kind }, parent);
  if (span.isRecording()) span.setAttributes(attributes());
  return { span, ctx: trace.setSpan(parent, span) };
}

/** Ends `span` after `error`: recorded as an exception, with its reason when it has one, status ERROR. */
export function endWithError(span: Span, error: unknown): void {
  if (span.isRecording()) {
    const reason = (error as { reason?: unknown }).reason;
    if (typeof reason === 'string' && reason !== '') span.setAttribute('redlease.reason', reason);
    if (error instanceof Error) span.recordException(error);
    span.setStatus({
      code: SpanStatusCode.ERROR,
      message: error instanceof Error ? error.message : String(error),
    });
  }
  span.end();
}

/** `host` and `port` of a `host:port` address ([ipv6]:port too), for server.address / server.port. */
export function serverAttributes(address: string): Attributes {
  const colon = address.lastIndexOf(':');
  const port = Number(address.slice(colon + 1));
  if (colon < 0 || !Number.isInteger(port)) return { 'server.address': address };
  return { 'server.address': address.slice(0, colon).replace(/^\[(.*)\]$/, '$1'), 'server.port': port };
}
