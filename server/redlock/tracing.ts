/**
 * The engine's spans, through the OpenTelemetry API alone: a span per Redlock attempt, and one CLIENT span per
 * script sent to one node, ending when that node answers (or its timeout fires). With no tracer provider
 * registered (tracing off) every span here is the API's non-recording no-op and no attribute is computed.
 *
 * Attributes follow OpenTelemetry's database conventions (db.system.name, db.operation.name, server.address,
 * server.port); what is redlock's own is under `redlease.*`. Lock ids never appear.
 */
import { type Attributes, context, type Span, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import type { NodeReply, RedisNode } from './redis-node.js';
import type { Script } from './scripts.js';

export const tracer = trace.getTracer('redlease.engine');

/** What one node's answer meant, as its span says it. */
export type NodeResult =
  | 'granted'
  | 'held'
  | 'written'
  | 'extended'
  | 'released'
  | 'not-held'
  | 'error'
  | 'timeout'
  | 'quarantined'
  | 'not-voting';

/** The engine operations whose node calls are traced. */
export type NodeOperation = 'acquire' | 'commit' | 'release' | 'extend';

/** Reads a voting reply's value: the result, and optionally the fence counter seen and more attributes. */
type Describe<T> = (value: T) => { result: NodeResult; counter?: number; attributes?: Attributes };

/**
 * Runs `script` on `node` inside a span `<operation> <node>`, a child of the active span. Resolves with the
 * reply as RedisNode.run does (never rejects).
 */
export async function tracedRun<T>(
  node: RedisNode,
  operation: NodeOperation,
  script: Script,
  keys: readonly string[],
  args: readonly (string | number)[],
  describe: Describe<T>,
): Promise<NodeReply<T>> {
  const span = tracer.startSpan(`${operation} ${node.name}`, { kind: SpanKind.CLIENT });
  const started = performance.now();
  const reply = await node.run<T>(script, keys, args);
  if (span.isRecording()) {
    const latencyMs = Math.round((performance.now() - started) * 1_000) / 1_000;
    span.setAttributes({
      'db.system.name': 'redis',
      'db.operation.name': 'EVALSHA',
      'db.query.summary': `EVALSHA ${script.name}`,
      'server.address': node.host,
      'server.port': node.port,
      'redlease.node': node.name,
      'redlease.node.latency_ms': latencyMs,
    });
    if (!reply.ok) {
      const result: NodeResult = reply.detail === 'timed out' ? 'timeout' : 'error';
      span.setAttributes({ 'redlease.node.result': result, 'redlease.node.detail': reply.detail });
      span.setStatus({ code: SpanStatusCode.ERROR, message: reply.detail });
    } else if (!reply.voting) {
      const result: NodeResult = reply.detail.startsWith('quarantined') ? 'quarantined' : 'not-voting';
      span.setAttributes({ 'redlease.node.result': result, 'redlease.node.detail': reply.detail });
    } else {
      const { result, counter, attributes } = describe(reply.value);
      span.setAttribute('redlease.node.result', result);
      if (counter !== undefined) span.setAttribute('redlease.node.counter', counter);
      if (attributes) span.setAttributes(attributes);
    }
  }
  span.end();
  return reply;
}

/**
 * Runs `work` as the active span `span`, which it ends: after `describe` has recorded the result (only when the
 * span is recorded), or with an error status when `work` throws.
 */
export async function inSpan<T>(
  span: Span,
  work: () => Promise<T>,
  describe?: (result: T) => void,
): Promise<T> {
  try {
    const result = await context.with(trace.setSpan(context.active(), span), work);
    if (describe && span.isRecording()) describe(result);
    return result;
  } catch (error) {
    if (span.isRecording()) {
      span.setStatus({
        code: SpanStatusCode.ERROR,
        message: error instanceof Error ? error.message : String(error),
      });
    }
    throw error;
  } finally {
    span.end();
  }
}
