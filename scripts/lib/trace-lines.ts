/**
 * `npm run demo -- --traces`: each finished Acquire trace as one readable line, from the spans the demo's OTLP
 * receiver gets (otlp-receiver.ts). The server exports a span when it ends, children before their parent, so when
 * an Acquire's SERVER span arrives its wait, attempts and node votes are already here.
 *
 *   w2 acquired shared-resource · queued 812 ms · redis-1 granted 0.4 ms · redis-2 granted 0.5 ms ·
 *     redis-3 timeout 100.2 ms · token 1765123456789012
 */
import type { ReceivedSpan } from './otlp-receiver.js';

const ACQUIRE = 'redlease.v1.LockService/Acquire';
/** Spans kept to assemble lines from: a few seconds of a busy demo. */
const KEEP = 5_000;

export class TraceLines {
  private readonly spans = new Map<string, ReceivedSpan>();
  private readonly byParent = new Map<string, ReceivedSpan[]>();

  /** Takes a batch of spans; returns the lines of the Acquire calls that finished in it. */
  add(batch: readonly ReceivedSpan[]): string[] {
    for (const span of batch) this.keep(span);
    const lines: string[] = [];
    for (const span of batch) {
      if (span.name === ACQUIRE && span.kind === 2) lines.push(this.line(span));
    }
    return lines;
  }

  private keep(span: ReceivedSpan): void {
    this.spans.set(span.spanId, span);
    const siblings = this.byParent.get(span.parentSpanId) ?? [];
    siblings.push(span);
    this.byParent.set(span.parentSpanId, siblings);
    if (this.spans.size > KEEP) {
      const oldest = this.spans.values().next().value as ReceivedSpan;
      this.spans.delete(oldest.spanId);
      const list = this.byParent.get(oldest.parentSpanId)?.filter((s) => s !== oldest);
      if (list?.length) this.byParent.set(oldest.parentSpanId, list);
      else this.byParent.delete(oldest.parentSpanId);
    }
  }

  private children(span: ReceivedSpan): ReceivedSpan[] {
    return (this.byParent.get(span.spanId) ?? [])
      .filter((s) => s.traceId === span.traceId)
      .sort((a, b) => a.startMs - b.startMs);
  }

  /** One Acquire call: who, resource, how it ended, queued ms, the last attempt's votes, the token or reason. */
  line(call: ReceivedSpan): string {
    const a = call.attributes;
    const who = String(a['redlease.client_id'] || a['client.address'] || '?');
    const outcome = String(a['redlease.outcome'] ?? (call.status.code === 2 ? 'failed' : 'answered'));
    const parts = [`${who} ${outcome} ${String(a['redlease.resource'] ?? '?')}`];
    const children = this.children(call);
    const wait = children.find((s) => s.name === 'wait');
    if (wait)
      parts.push(
        `queued ${String(wait.attributes['redlease.queued_ms'] ?? Math.round(wait.endMs - wait.startMs))} ms`,
      );
    const attempts = children.filter((s) => s.name === 'attempt');
    const last = attempts.at(-1);
    if (attempts.length > 1) parts.push(`${attempts.length} attempts`);
    if (last) {
      const votes = this.children(last).filter((s) => s.name.startsWith('acquire '));
      votes.sort((x, y) =>
        String(x.attributes['redlease.node']).localeCompare(String(y.attributes['redlease.node'])),
      );
      for (const node of votes) {
        const n = node.attributes;
        const detail =
          n['redlease.node.result'] === 'error' ? ` (${String(n['redlease.node.detail'] ?? '')})` : '';
        parts.push(
          `${String(n['redlease.node'])} ${String(n['redlease.node.result'])}${detail} ${ms(n['redlease.node.latency_ms'])}`,
        );
      }
      const writeBack = this.children(last).find((s) => s.name === 'token write-back');
      if (writeBack)
        parts.push(
          `token written back to ${String((writeBack.attributes['redlease.nodes'] as string[] | undefined)?.join(', ') ?? '?')}`,
        );
    }
    if (a['redlease.fencing_token'] !== undefined) parts.push(`token ${String(a['redlease.fencing_token'])}`);
    else if (a['redlease.reason']) parts.push(String(a['redlease.reason']));
    return parts.join(' · ');
  }
}

function ms(value: unknown): string {
  const n = Number(value);
  return Number.isFinite(n) ? `${n < 10 ? n.toFixed(1) : Math.round(n)} ms` : '? ms';
}
