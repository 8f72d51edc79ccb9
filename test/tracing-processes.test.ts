/**
 * Traces across real processes: the server, an SDK application, a plain grpc-js client and a demo worker each in
 * a process of its own, exporting over real OTLP/HTTP (http/json) to a receiver this test runs
 * (scripts/lib/otlp-receiver.ts). Also: with no endpoint the server records and sends nothing, and a bad OTEL_*
 * value stops the server and the worker with one line and exit code 2.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { credentials, Client as GrpcClient, Metadata as GrpcMetadata } from '@grpc/grpc-js';
import { describe, expect, it, onTestFinished } from 'vitest';
import { AcquireRequest, AcquireResponse } from '../gen/redlease/v1/lock.js';
import {
  type OtlpReceiver,
  type ReceivedSpan,
  OtlpReceiver as Receiver,
  SPAN_KIND,
} from '../scripts/lib/otlp-receiver.js';
import { RedisCluster } from '../scripts/lib/redis-process.js';
import { RedisProcess, startServerProcess, uniqueResource, waitFor } from './support/server.js';
import { WorkerProcess } from './support/worker-process.js';

const run = promisify(execFile);

async function receiver(options: { port?: number; host?: string } = {}): Promise<OtlpReceiver> {
  const r = await Receiver.start(options);
  onTestFinished(() => r.close());
  return r;
}

async function cluster(): Promise<RedisCluster> {
  const c = await RedisCluster.start(3);
  onTestFinished(() => c.dispose());
  return c;
}

/** The variables that send a process's spans to `r` quickly (a 50 ms batch delay instead of 5 s). */
function exportingTo(r: OtlpReceiver): Record<string, string> {
  return {
    OTEL_EXPORTER_OTLP_ENDPOINT: r.endpoint,
    OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
    OTEL_BSP_SCHEDULE_DELAY: '50',
  };
}

function find(r: OtlpReceiver, what: string, match: (s: ReceivedSpan) => boolean): Promise<ReceivedSpan> {
  return waitFor(what, () => r.spans.find(match), 15_000, 20);
}

async function tracedClient(address: string, resource: string, transport: string, r: OtlpReceiver) {
  const { stdout } = await run(
    process.execPath,
    ['--import', 'tsx', 'test/fixtures/traced-client.ts', address, resource, transport, r.endpoint],
    { timeout: 30_000 },
  );
  return JSON.parse(stdout.trim()) as { traceId: string };
}

describe('a trace crosses processes over OTLP/HTTP', () => {
  it.each(['unary', 'session'])(
    'the SDK’s span in one process is the parent of the server’s span in another (%s)',
    async (transport) => {
      const [nodes, r] = await Promise.all([cluster(), receiver()]);
      const server = await startServerProcess(nodes, [], exportingTo(r));
      const address = `127.0.0.1:${server.grpcPort}`;
      const resource = uniqueResource(`xproc-${transport}`);
      const { traceId } = await tracedClient(address, resource, transport, r);

      const sdk = await find(
        r,
        'the SDK acquire span',
        (s) => s.name === 'redlease.acquire' && s.attributes['redlease.resource'] === resource,
      );
      expect(sdk).toMatchObject({ service: 'traced-client', kind: SPAN_KIND.client, traceId });
      const call = await find(
        r,
        'the server Acquire span',
        (s) => s.name === 'redlease.v1.LockService/Acquire' && s.attributes['redlease.resource'] === resource,
      );
      expect(call).toMatchObject({ service: 'redlease', kind: SPAN_KIND.server, traceId });
      expect(call.parentSpanId).toBe(sdk.spanId);
      expect(call.attributes).toMatchObject({
        'redlease.client_id': `traced-${transport}`,
        'redlease.outcome': 'acquired',
      });
      const attempt = await waitFor('the attempt span', () =>
        r.children(call).find((s) => s.name === 'attempt'),
      );
      const votes = await waitFor('three node spans', () => {
        const nodesSpans = r.children(attempt).filter((s) => s.name.startsWith('acquire '));
        return nodesSpans.length === 3 ? nodesSpans : undefined;
      });
      expect(votes.map((v) => v.attributes['redlease.node.result'])).toEqual([
        'granted',
        'granted',
        'granted',
      ]);
      // The release too, under its own SDK span.
      const release = await find(
        r,
        'the server Release span',
        (s) => s.name === 'redlease.v1.LockService/Release' && s.attributes['redlease.resource'] === resource,
      );
      const sdkRelease = r.spans.find((s) => s.spanId === release.parentSpanId);
      expect(sdkRelease?.name).toBe('redlease.release');

      // The server's log lines written under the call's span carry its ids.
      const granted = await waitFor('the server’s "lock acquired" line', () =>
        server.logs.find((l) => l.msg === 'lock acquired' && l.resource === resource),
      );
      expect(granted.trace_id).toBe(traceId);
      expect(granted.span_id).toBe(call.spanId);
    },
    60_000,
  );

  it('a traceparent sent by a plain grpc-js client is honoured the same way', async () => {
    const [nodes, r] = await Promise.all([cluster(), receiver()]);
    const server = await startServerProcess(nodes, [], exportingTo(r));
    const client = new GrpcClient(`127.0.0.1:${server.grpcPort}`, credentials.createInsecure());
    onTestFinished(() => client.close());
    const resource = uniqueResource('xproc-grpcjs');
    const traceId = '0af7651916cd43dd8448eb211c80319c';
    const parentId = 'b9c7c989f97918e1';
    const metadata = new GrpcMetadata();
    metadata.set('traceparent', `00-${traceId}-${parentId}-01`);
    const answer = await new Promise<AcquireResponse>((resolve, reject) =>
      client.makeUnaryRequest(
        '/redlease.v1.LockService/Acquire',
        (request: AcquireRequest) => Buffer.from(AcquireRequest.encode(request).finish()),
        (bytes: Buffer) => AcquireResponse.decode(bytes),
        AcquireRequest.fromPartial({ resource, ttlMs: 5_000, clientId: 'grpc-js' }),
        metadata,
        (error, value) => (error ? reject(error) : resolve(value!)),
      ),
    );
    expect(answer.lease?.fencingToken).toBeGreaterThan(0);
    const call = await find(
      r,
      'the server Acquire span',
      (s) => s.name === 'redlease.v1.LockService/Acquire' && s.attributes['redlease.resource'] === resource,
    );
    expect(call.traceId).toBe(traceId);
    expect(call.parentSpanId).toBe(parentId);
  });

  it('a worker round is one trace: worker → SDK → server → three nodes → the store’s Redis call', async () => {
    const [nodes, r, store] = await Promise.all([
      cluster(),
      receiver(),
      RedisProcess.start({ name: 'trace-store' }),
    ]);
    onTestFinished(() => store.dispose());
    const server = await startServerProcess(nodes, [], exportingTo(r));
    const resource = uniqueResource('xproc-worker');
    const worker = WorkerProcess.start(
      [
        ...['--address', `127.0.0.1:${server.grpcPort}`, '--store', `redis://${store.address}`],
        ...['--resource', resource, '--name', 'w-traced', '--rounds', '1', '--work-ms', '50'],
      ],
      exportingTo(r),
    );
    expect(await worker.finish(30_000), worker.dump()).toEqual({ code: 0, signal: null });

    const round = await find(
      r,
      'the round span',
      (s) => s.name === 'round' && s.service === 'redlease-worker',
    );
    expect(round.parentSpanId).toBe('');
    expect(round.attributes).toMatchObject({ 'redlease.worker': 'w-traced', 'redlease.outcome': 'wrote' });
    expect(round.events.map((e) => e.name)).toEqual(['won', 'wrote']);
    const names = (spans: ReceivedSpan[]) => spans.map((s) => s.name);
    const steps = await waitFor('the round’s steps', () => {
      const children = r.children(round);
      return children.length >= 5 ? children : undefined;
    });
    expect(names(steps)).toEqual([
      'redlease.acquire',
      'fenced read',
      'work',
      'fenced write',
      'redlease.release',
    ]);
    const write = steps[3]!;
    expect(write.attributes).toMatchObject({
      'db.system.name': 'redis',
      'redlease.store.key': `counter:${resource}`,
    });
    const call = await waitFor('the server span under the SDK acquire', () => r.children(steps[0]!)[0]);
    expect(call).toMatchObject({
      name: 'redlease.v1.LockService/Acquire',
      service: 'redlease',
      traceId: round.traceId,
    });
    const attempt = await waitFor('the attempt', () => r.children(call).find((s) => s.name === 'attempt'));
    const votes = await waitFor('three votes', () => {
      const found = r.children(attempt).filter((s) => s.name.startsWith('acquire '));
      return found.length === 3 ? found : undefined;
    });
    expect(votes.map((v) => v.attributes['redlease.node']).sort()).toEqual(['redis-1', 'redis-2', 'redis-3']);
    // The worker's own log lines of the round carry the round's trace id.
    expect(worker.logs.find((l) => l.event === 'won')?.trace_id).toBe(round.traceId);
  });
});

describe('tracing off', () => {
  it('with no endpoint the server records no span and runs no exporter, even where a default one would send', async () => {
    // Listening where an OTLP exporter sends by default (localhost:4318, IPv4 or IPv6): a server that traced
    // without being asked would show up here.
    const [nodes, r] = await Promise.all([cluster(), receiver({ port: 4318, host: '::' })]);
    const server = await startServerProcess(nodes, [], {
      OTEL_EXPORTER_OTLP_ENDPOINT: '',
      OTEL_SERVICE_NAME: 'should-not-appear',
      OTEL_TRACES_SAMPLER: 'always_on',
      OTEL_BSP_SCHEDULE_DELAY: '50',
    });
    const resource = uniqueResource('trace-off');
    // A traced client: its acquire carries a sampled traceparent, and its own spans reach the receiver.
    await tracedClient(`127.0.0.1:${server.grpcPort}`, resource, 'session', r);
    await find(
      r,
      'the client span',
      (s) => s.name === 'redlease.acquire' && s.attributes['redlease.resource'] === resource,
    );
    // A graceful stop would flush any span queued in the server.
    await server.stop('SIGTERM');
    // Nothing but the client's http/json exports: no span from the server, in either encoding.
    expect(r.spans.filter((s) => s.service !== 'traced-client')).toEqual([]);
    expect(r.protobufBytes).toBe(0);
    const acquired = server.logs.find((l) => l.msg === 'lock acquired' && l.resource === resource);
    expect(acquired).toBeDefined();
    expect(acquired).not.toHaveProperty('trace_id');
    expect(server.listening?.tracing).toBe('off');
  });
});

describe('bad tracing configuration', () => {
  it.each([
    [
      'server',
      'server/main.ts',
      { OTEL_EXPORTER_OTLP_ENDPOINT: '127.0.0.1:4318' },
      'redlease: OTEL_EXPORTER_OTLP_ENDPOINT: "127.0.0.1:4318" is not',
    ],
    [
      'server',
      'server/main.ts',
      { OTEL_TRACES_SAMPLER: 'xray' },
      'redlease: OTEL_TRACES_SAMPLER: must be one of',
    ],
    [
      'worker',
      'workers/worker.ts',
      { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'collector:4318/v1/traces' },
      'worker: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "collector:4318/v1/traces" is not',
    ],
    [
      'worker',
      'workers/worker.ts',
      { OTEL_TRACES_SAMPLER: 'sometimes' },
      'worker: OTEL_TRACES_SAMPLER: must be one of',
    ],
  ])('the %s stops with one line naming the variable, exit code 2 (%j)', async (_who, script, env, line) => {
    const result = await run(process.execPath, ['--import', 'tsx', script], {
      env: { ...process.env, ...env },
      timeout: 30_000,
    }).then(
      () => ({ code: 0, stderr: '', stdout: '' }),
      (error: { code: number; stderr: string; stdout: string }) => error,
    );
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    const lines = result.stderr.trimEnd().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]!.startsWith(line), lines[0]).toBe(true);
  });
});
