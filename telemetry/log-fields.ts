/**
 * Log lines that lead to traces: while a span is active, `trace_id` and `span_id` (and `trace_flags`) of it, the
 * field names OpenTelemetry's log data model uses. A pino `mixin`; installed only when tracing is on.
 */
import { context, isSpanContextValid, trace } from '@opentelemetry/api';

export function traceLogFields(): Record<string, string> {
  const span = trace.getSpanContext(context.active());
  // A new object each time: pino merges the log call's fields into it.
  if (span === undefined || !isSpanContextValid(span)) return {};
  return {
    trace_id: span.traceId,
    span_id: span.spanId,
    trace_flags: `0${span.traceFlags.toString(16)}`.slice(-2),
  };
}
