/**
 * The coordinator's part of a trace, through the OpenTelemetry API (and @opentelemetry/core's suppression flag):
 * the `wait` span of a queued Acquire, the hand-off link, what a lock operation came to (on the span of the call
 * that asked), and KeepAlive renewals as events of their stream's span rather than spans of their own. With
 * tracing off every span here is a no-op and nothing is computed.
 */
import { type Attributes, type Context, context, type Span, trace } from '@opentelemetry/api';
import { suppressTracing } from '@opentelemetry/core';

export const tracer = trace.getTracer('redlease.coordinator');

/** Sets `attributes` on the span of the call under way, if it is recorded. */
export function annotate(attributes: () => Attributes): void {
  const span = trace.getActiveSpan();
  if (span?.isRecording()) span.setAttributes(attributes());
}

/** The span of the call under way, if one is recorded (a KeepAlive stream keeps its own). */
export function recordingSpan(): Span | undefined {
  const span = trace.getActiveSpan();
  return span?.isRecording() ? span : undefined;
}

/**
 * A context with no active span and tracing suppressed: work run in it (a KeepAlive renewal) makes no spans and
 * annotates none, so a stream that renews for hours stays one span with an event per renewal.
 */
export function untraced(): Context {
  return suppressTracing(trace.deleteSpan(context.active()));
}
