/**
 * The server's spans, recorded in this process: a real server on three real redis-server processes, called over
 * real gRPC (and HTTP), with OpenTelemetry's own NodeTracerProvider and an InMemorySpanExporter registered here in
 * place of the OTLP exporter main.ts would set up. The OTLP endpoint in the server's environment only turns its
 * spans on; nothing is sent there.
 */
import { SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import {
  InMemorySpanExporter,
  NodeTracerProvider,
  type ReadableSpan,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-node';
import { Metadata, Status } from 'nice-grpc';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { LockClient as SdkClient } from '../client/src/index.js';
import { rejection, startTestServer, type TestServer, uniqueResource, waitFor } from './support/server.js';

const exporter = new InMemorySpanExporter();
const provider = new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
provider.register();
afterAll(() => provider.shutdown());
beforeEach(() => exporter.reset());

/** Tracing on in the server (its middleware and per-operation spans); the spans go to this file's provider. */
const TRACED = { env: { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:9' } };

type Span = ReadableSpan;

const spans = (): Span[] => exporter.getFinishedSpans();
const idOf = (span: Span): string => span.spanContext().spanId;
const parentOf = (span: Span): string | undefined => span.parentSpanContext?.spanId;
function childrenOf(parent: Span): Span[] {
  return spans()
    .filter((s) => parentOf(s) === idOf(parent) && s.spanContext().traceId === parent.spanContext().traceId)
    .sort((a, b) => toMs(a.startTime) - toMs(b.startTime));
}
function toMs([seconds, nanos]: [number, number]): number {
  return seconds * 1_000 + nanos / 1e6;
}
const durationMs = (span: Span): number => toMs(span.endTime) - toMs(span.startTime);

/** The finished SERVER span of `method` on `resource` (waiting for it: a span ends after its answer is sent). */
function serverSpan(method: string, resource: string, nth = 1): Promise<Span> {
  return waitFor(
    `the ${method} span of ${resource}`,
    () =>
      spans().filter(
        (s) =>
          s.kind === SpanKind.SERVER &&
          s.name === `redlease.v1.LockService/${method}` &&
          s.attributes['redlease.resource'] === resource,
      )[nth - 1],
  );
}

/** The node spans of an attempt, by node name. */
function votes(attempt: Span): Record<string, unknown> {
  return Object.fromEntries(
    childrenOf(attempt)
      .filter((s) => s.name.startsWith('acquire '))
      .map((s) => [s.attributes['redlease.node'], s.attributes['redlease.node.result']]),
  );
}

async function acquire(t: TestServer, resource: string, extra: { waitTimeoutMs?: number } = {}) {
  return t.lock.acquire({ resource, ttlMs: 5_000, clientId: 'tracer-1', waitTimeoutMs: 0, ...extra });
}

describe('an Acquire over gRPC is one SERVER span, an attempt, and a child per Redis node', () => {
  it('3 of 3: every node granted, with its latency and fence counter; the token is the largest counter', async () => {
    const t = await startTestServer([], TRACED);
    const resource = uniqueResource('trace-3of3');
    const { lease } = await acquire(t, resource);

    const call = await serverSpan('Acquire', resource);
    expect(call.kind).toBe(SpanKind.SERVER);
    expect(call.attributes).toMatchObject({
      'rpc.system': 'grpc',
      'rpc.service': 'redlease.v1.LockService',
      'rpc.method': 'Acquire',
      'rpc.grpc.status_code': Status.OK,
      'redlease.resource': resource,
      'redlease.client_id': 'tracer-1',
      'redlease.outcome': 'acquired',
      'redlease.fencing_token': lease!.fencingToken,
    });
    expect(call.status.code).toBe(SpanStatusCode.UNSET);
    const [attempt, ...others] = childrenOf(call);
    expect(others).toEqual([]);
    expect(attempt!.name).toBe('attempt');
    expect(attempt!.attributes).toMatchObject({ 'redlease.attempt': 1, 'redlease.result': 'granted' });
    expect(votes(attempt!)).toEqual({ 'redis-1': 'granted', 'redis-2': 'granted', 'redis-3': 'granted' });
    const nodes = childrenOf(attempt!).filter((s) => s.name.startsWith('acquire '));
    for (const node of nodes) {
      expect(node.kind).toBe(SpanKind.CLIENT);
      expect(node.attributes).toMatchObject({
        'db.system.name': 'redis',
        'db.operation.name': 'EVALSHA',
        'server.address': '127.0.0.1',
      });
      expect(node.attributes['redlease.node.latency_ms']).toBeGreaterThan(0);
      expect(node.attributes['redlease.node.counter']).toBeGreaterThan(0);
    }
    const counters = nodes.map((n) => Number(n.attributes['redlease.node.counter']));
    expect(lease!.fencingToken).toBe(Math.max(...counters));
  });

  it('2 of 3: granted by two, and the stopped node’s span says error or timeout', async () => {
    const t = await startTestServer([], TRACED);
    await t.nodes[2].kill();
    const resource = uniqueResource('trace-2of3');
    const { lease } = await acquire(t, resource);
    expect(lease!.nodes).toEqual(['redis-1', 'redis-2']);

    const call = await serverSpan('Acquire', resource);
    const [attempt] = childrenOf(call);
    const byNode = votes(attempt!);
    expect(byNode['redis-1']).toBe('granted');
    expect(byNode['redis-2']).toBe('granted');
    expect(['error', 'timeout']).toContain(byNode['redis-3']);
    const stopped = childrenOf(attempt!).find((s) => s.name === 'acquire redis-3')!;
    expect(stopped.status.code).toBe(SpanStatusCode.ERROR);
    expect(String(stopped.attributes['redlease.node.detail'])).not.toBe('');
    expect(call.status.code).toBe(SpanStatusCode.UNSET);
  });

  it('no quorum: the call span is an error with its status and reason, and so is every attempt', async () => {
    const t = await startTestServer([], TRACED);
    await Promise.all([t.nodes[1].kill(), t.nodes[2].kill()]);
    const resource = uniqueResource('trace-noquorum');
    const error = await rejection(acquire(t, resource), Error);
    expect((error as { code?: Status }).code).toBe(Status.UNAVAILABLE);

    const call = await serverSpan('Acquire', resource);
    expect(call.status.code).toBe(SpanStatusCode.ERROR);
    expect(call.attributes).toMatchObject({
      'rpc.grpc.status_code': Status.UNAVAILABLE,
      'redlease.reason': 'QUORUM_UNAVAILABLE',
      'redlease.outcome': 'unavailable',
    });
    const attempts = childrenOf(call).filter((s) => s.name === 'attempt');
    expect(attempts.length).toBe(3); // the first try and the two retries of --retry-count's default
    for (const attempt of attempts) {
      expect(attempt.status.code).toBe(SpanStatusCode.ERROR);
      expect(attempt.attributes['redlease.result']).toBe('QUORUM_UNAVAILABLE');
      expect(votes(attempt)).toMatchObject({ 'redis-1': 'granted' });
    }
  });
});

describe('waiting, hand-off, Release and Extend', () => {
  it('a waited Acquire has a wait span as long as its time in the queue, linked to the Release that handed over', async () => {
    const t = await startTestServer([], TRACED);
    const resource = uniqueResource('trace-wait');
    const { lease: held } = await acquire(t, resource);
    const sentAt = performance.now();
    const waiting = acquire(t, resource, { waitTimeoutMs: 10_000 });
    await waitFor('the second Acquire to queue', () => t.server.coordinator.waiterCount === 1);
    // The holder keeps the lock a while: the wait span must cover it.
    const HOLD_MS = 300;
    await new Promise((resolve) => setTimeout(resolve, HOLD_MS));
    await t.lock.release({ resource, lockId: held!.lockId });
    const { lease } = await waiting;
    const answeredAt = performance.now();

    const call = await serverSpan('Acquire', resource, 2);
    const wait = childrenOf(call).find((s) => s.name === 'wait')!;
    expect(wait.attributes).toMatchObject({
      'redlease.queue.position': 0,
      'redlease.outcome': 'acquired',
      'redlease.wait_timeout_ms': 10_000,
    });
    // At least from joining (after it was sent) to the release, at most from the send to the answer.
    expect(durationMs(wait)).toBeGreaterThanOrEqual(HOLD_MS);
    expect(durationMs(wait)).toBeLessThanOrEqual(answeredAt - sentAt);
    expect(Math.abs(Number(wait.attributes['redlease.queued_ms']) - durationMs(wait))).toBeLessThanOrEqual(1);
    // queued_ms counts from the call's arrival in the coordinator, a moment before it joined the queue: never
    // less than the wait (whole ms, rounded down), never more than the call took.
    expect(lease!.queuedMs).toBeGreaterThanOrEqual(Math.floor(durationMs(wait)) - 1);
    expect(lease!.queuedMs).toBeLessThanOrEqual(answeredAt - sentAt);
    // It ends where the granting attempt begins.
    const granting = childrenOf(call)
      .filter((s) => s.name === 'attempt')
      .at(-1)!;
    expect(granting.attributes['redlease.result']).toBe('granted');
    expect(Math.abs(toMs(wait.endTime) - toMs(granting.startTime))).toBeLessThanOrEqual(1);

    const release = await serverSpan('Release', resource);
    expect(wait.links.map((l) => l.context.spanId)).toEqual([idOf(release)]);
    expect(wait.links[0]!.attributes).toMatchObject({ 'redlease.link': 'hand-off' });
  });

  it('Release and Extend carry one child span per node', async () => {
    const t = await startTestServer([], TRACED);
    const resource = uniqueResource('trace-release');
    const { lease } = await acquire(t, resource);
    await t.lock.extend({ resource, lockId: lease!.lockId, ttlMs: 6_000 });
    await t.lock.release({ resource, lockId: lease!.lockId });

    const extend = await serverSpan('Extend', resource);
    expect(extend.attributes).toMatchObject({
      'redlease.outcome': 'extended',
      'redlease.client_id': 'tracer-1',
    });
    expect(childrenOf(extend).map((s) => [s.name, s.attributes['redlease.node.result']])).toEqual(
      expect.arrayContaining([
        ['extend redis-1', 'extended'],
        ['extend redis-2', 'extended'],
        ['extend redis-3', 'extended'],
      ]),
    );
    const release = await serverSpan('Release', resource);
    expect(release.attributes).toMatchObject({ 'redlease.outcome': 'released' });
    expect(childrenOf(release).map((s) => [s.name, s.attributes['redlease.node.result']])).toEqual(
      expect.arrayContaining([
        ['release redis-1', 'released'],
        ['release redis-2', 'released'],
        ['release redis-3', 'released'],
      ]),
    );
  });
});

describe('streams and the HTTP API', () => {
  it('each Session operation is its own span, a child of the SDK span that sent it', async () => {
    const t = await startTestServer([], TRACED);
    const client = new SdkClient({ address: t.address, clientId: 'sdk-1', transport: 'session' });
    const resource = uniqueResource('trace-session');
    const lease = await client.acquire(resource, { autoRenew: false });
    await lease.release();
    await client.close();

    const sdkAcquire = await waitFor('the SDK acquire span', () =>
      spans().find((s) => s.name === 'redlease.acquire' && s.attributes['redlease.resource'] === resource),
    );
    expect(sdkAcquire.kind).toBe(SpanKind.CLIENT);
    const op = await serverSpan('Acquire', resource);
    expect(op.attributes).toMatchObject({ 'redlease.transport': 'session', 'redlease.outcome': 'acquired' });
    expect(op.spanContext().traceId).toBe(sdkAcquire.spanContext().traceId);
    expect(parentOf(op)).toBe(idOf(sdkAcquire));
    expect(childrenOf(op).map((s) => s.name)).toEqual(['attempt']);
    // Linked to the stream's own span, whose trace is not the operation's.
    const stream = await waitFor('the Session span', () =>
      spans().find((s) => s.name === 'redlease.v1.LockService/Session'),
    );
    expect(op.links.map((l) => l.context.spanId)).toEqual([idOf(stream)]);
    const release = await serverSpan('Release', resource);
    const sdkRelease = spans().find(
      (s) => s.name === 'redlease.release' && s.attributes['redlease.resource'] === resource,
    )!;
    expect(parentOf(release)).toBe(idOf(sdkRelease));
  });

  it('a KeepAlive stream is one span: renewals are events, not spans, and LOST is an event with its reason', async () => {
    const t = await startTestServer([], TRACED);
    const client = new SdkClient({ address: t.address, clientId: 'sdk-2' });
    const resource = uniqueResource('trace-keepalive');
    const lost = new Promise((resolve) => client.once('lost', resolve));
    let renewals = 0;
    client.on('renewed', () => renewals++);
    await client.acquire(resource, { ttlMs: 300 }); // renewed every 100 ms
    await waitFor('three renewals', () => renewals >= 3);
    // The lock vanishes from every node: the next renewal finds another holder (none), and the lease is LOST.
    await Promise.all(t.nodes.map((n) => n.command('FLUSHALL')));
    await lost;
    await client.close();

    const stream = await waitFor('the KeepAlive span', () =>
      spans().find((s) => s.name === 'redlease.v1.LockService/KeepAlive'),
    );
    const renewed = stream.events.filter((e) => e.name === 'renewed');
    expect(renewed.length).toBeGreaterThanOrEqual(3);
    expect(renewed[0]!.attributes).toMatchObject({ 'redlease.resource': resource });
    const lossEvent = stream.events.find((e) => e.name === 'lost');
    expect(lossEvent?.attributes).toMatchObject({
      'redlease.resource': resource,
      'redlease.loss': 'not_held',
    });
    expect(String(lossEvent?.attributes?.['redlease.reason'])).toMatch(/does not hold/);
    // No span at all for the renewals: not under the stream, not anywhere else in its trace.
    const inTrace = spans().filter((s) => s.spanContext().traceId === stream.spanContext().traceId);
    expect(inTrace.map((s) => s.name)).toEqual(['redlease.v1.LockService/KeepAlive']);
    expect(spans().filter((s) => s.name.startsWith('extend '))).toEqual([]);
  });

  it('an HTTP request is one SERVER span, a child of the traceparent it carries', async () => {
    const t = await startTestServer([], TRACED);
    const resource = uniqueResource('trace-http');
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const parentId = '00f067aa0ba902b7';
    const response = await fetch(`http://127.0.0.1:${t.server.httpPort}/lock/acquire`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', traceparent: `00-${traceId}-${parentId}-01` },
      body: JSON.stringify({ resource, client_id: 'curl-1' }),
    });
    expect(response.status).toBe(200);
    const span = await waitFor('the HTTP span', () =>
      spans().find((s) => s.name === 'POST /lock/acquire' && s.kind === SpanKind.SERVER),
    );
    expect(span.spanContext().traceId).toBe(traceId);
    expect(parentOf(span)).toBe(parentId);
    expect(span.attributes).toMatchObject({
      'http.request.method': 'POST',
      'http.route': '/lock/acquire',
      'http.response.status_code': 200,
      'redlease.resource': resource,
      'redlease.client_id': 'curl-1',
      'redlease.outcome': 'acquired',
    });
    expect(childrenOf(span).map((s) => s.name)).toEqual(['attempt']);

    const held = await fetch(`http://127.0.0.1:${t.server.httpPort}/lock/acquire`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ resource }),
    });
    expect(held.status).toBe(409);
    const refused = await waitFor(
      'the second HTTP span',
      () => spans().filter((s) => s.name === 'POST /lock/acquire')[1],
    );
    expect(refused.attributes).toMatchObject({
      'http.response.status_code': 409,
      'redlease.reason': 'LOCK_HELD',
      'redlease.outcome': 'held',
    });
    // A 4xx is the caller's answer, not a failure of the server.
    expect(refused.status.code).toBe(SpanStatusCode.UNSET);
  });
});

describe('the call runs under its span', () => {
  it('a traceparent in gRPC metadata makes the call span its child', async () => {
    const t = await startTestServer([], TRACED);
    const resource = uniqueResource('trace-metadata');
    const traceId = 'a3ce929d0e0e47364bf92f3577b34da6';
    const parentId = 'b7ad6b7169203331';
    await t.lock.acquire(
      { resource, ttlMs: 5_000, clientId: 'raw', waitTimeoutMs: 0 },
      { metadata: Metadata({ traceparent: `00-${traceId}-${parentId}-01` }) },
    );
    const call = await serverSpan('Acquire', resource);
    expect(call.spanContext().traceId).toBe(traceId);
    expect(parentOf(call)).toBe(parentId);
    expect(trace.getActiveSpan()).toBeUndefined(); // nothing leaked into the test's own context
  });
});
