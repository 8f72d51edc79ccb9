/**
 * GET /metrics on a real server over three real Redis nodes: the exposition format, every family DESIGN.md
 * ("Observability") asks for with its type, and series that move as locks are taken, waited for, kept alive,
 * lost and released, as HTTP calls are made, as nodes stop and as the mode changes. Counters and histograms are
 * read as deltas between two scrapes (a series prom-client has not touched yet counts as 0); gauges are read
 * where the state is exact.
 */
import { readFileSync } from 'node:fs';
import { ClientError, Status } from 'nice-grpc';
import { describe, expect, it } from 'vitest';
import { LeaseState } from '../gen/redlease/v1/lock.js';
import { newLockId } from '../server/redlock/index.js';
import { openStream } from './support/keepalive-stream.js';
import { type Exposition, type Labels, parseExposition, scrape } from './support/prometheus.js';
import { rejection, startTestServer, type TestServer, uniqueResource, waitFor } from './support/server.js';

/** The families DESIGN.md's "Observability" names, and the standard process metrics, with their types. */
const EXPECTED_FAMILIES: Readonly<Record<string, 'counter' | 'gauge' | 'histogram'>> = {
  redlease_acquisitions_total: 'counter',
  redlease_releases_total: 'counter',
  redlease_extensions_total: 'counter',
  redlease_rpc_duration_seconds: 'histogram',
  redlease_held_locks: 'gauge',
  redlease_waiters: 'gauge',
  redlease_wait_seconds: 'histogram',
  redlease_handoff_seconds: 'histogram',
  redlease_hold_seconds: 'histogram',
  redlease_keepalive_streams: 'gauge',
  redlease_kept_alive_leases: 'gauge',
  redlease_leases_lost_total: 'counter',
  redlease_node_up: 'gauge',
  redlease_node_latency_seconds: 'gauge',
  redlease_node_quarantined: 'gauge',
  redlease_node_quarantine_remaining_seconds: 'gauge',
  redlease_node_voting: 'gauge',
  redlease_node_restarts_total: 'counter',
  redlease_quorum: 'gauge',
  redlease_quorum_available: 'gauge',
  redlease_mode: 'gauge',
  process_cpu_seconds_total: 'counter',
  process_resident_memory_bytes: 'gauge',
  nodejs_eventloop_lag_seconds: 'gauge',
};

async function metricsOf(t: TestServer): Promise<Exposition> {
  return (await scrape(t.server.httpPort)).metrics;
}

/** How much a counter (or a histogram's _count/_sum) moved between two scrapes; an absent series is 0. */
function delta(before: Exposition, after: Exposition, name: string, labels: Labels = {}): number {
  return (after.value(name, labels) ?? 0) - (before.value(name, labels) ?? 0);
}

const grpcCall = (method: string, code: string): Labels => ({ transport: 'grpc', method, code });
const httpCall = (method: string, code: string): Labels => ({ transport: 'http', method, code });

/** Waits until a scrape satisfies `check`, and returns that scrape. */
async function scrapeUntil(
  t: TestServer,
  what: string,
  check: (m: Exposition) => boolean,
  timeoutMs = 5_000,
): Promise<Exposition> {
  return waitFor(
    what,
    async () => {
      const m = await metricsOf(t);
      return check(m) ? m : undefined;
    },
    timeoutMs,
  );
}

async function grpcError(call: Promise<unknown>): Promise<ClientError> {
  return rejection(call, ClientError);
}

function http(t: TestServer, method: 'GET' | 'POST', path: string, body?: unknown): Promise<Response> {
  return fetch(`http://127.0.0.1:${t.server.httpPort}${path}`, {
    method,
    ...(body !== undefined && {
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    }),
    signal: AbortSignal.timeout(5_000),
  });
}

/** The "## Metrics" section of docs/server.md, up to the next second-level heading. */
function metricsSection(): string {
  const doc = readFileSync(new URL('../docs/server.md', import.meta.url), 'utf8');
  const start = doc.indexOf('\n## Metrics\n');
  if (start < 0) throw new Error('docs/server.md has no "## Metrics" section');
  const end = doc.indexOf('\n## ', start + 1);
  return doc.slice(start, end < 0 ? undefined : end);
}

describe('Prometheus metrics at GET /metrics', () => {
  it('serve the 0.0.4 text format with every family DESIGN.md lists, typed, plus process metrics', async () => {
    const t = await startTestServer();
    const { contentType, metrics } = await scrape(t.server.httpPort);
    expect(contentType).toMatch(/^text\/plain; version=0\.0\.4(;|$)/);

    const names = t.server.metrics.names();
    for (const [name, type] of Object.entries(EXPECTED_FAMILIES)) {
      expect(names, name).toContain(name);
      expect(metrics.types.get(name), `# TYPE of ${name}`).toBe(type);
    }
    // Every family the server registers is typed in the exposition, and every sample belongs to a typed family.
    for (const name of names) expect(metrics.types.has(name), `# TYPE of ${name}`).toBe(true);
    for (const sample of metrics.samples) {
      const family = metrics.types.has(sample.name)
        ? sample.name
        : sample.name.replace(/_(bucket|sum|count)$/, '');
      expect(metrics.types.get(family), `family of ${sample.name}`).toBeDefined();
    }

    // Exact state of an idle server on three healthy nodes.
    expect(metrics.value('redlease_held_locks')).toBe(0);
    expect(metrics.value('redlease_waiters')).toBe(0);
    expect(metrics.value('redlease_keepalive_streams')).toBe(0);
    expect(metrics.value('redlease_kept_alive_leases')).toBe(0);
    expect(metrics.value('redlease_quorum')).toBe(2);
    expect(metrics.value('redlease_quorum_available')).toBe(1);
    expect(metrics.value('redlease_mode', { mode: 'redlock' })).toBe(1);
    expect(metrics.value('redlease_mode', { mode: 'single' })).toBe(0);
    t.nodes.forEach((node, i) => {
      const labels = { node: `redis-${i + 1}`, address: node.address };
      expect(metrics.value('redlease_node_up', labels), `up ${node.address}`).toBe(1);
      expect(metrics.value('redlease_node_voting', labels)).toBe(1);
      expect(metrics.value('redlease_node_quarantined', labels)).toBe(0);
      expect(metrics.value('redlease_node_quarantine_remaining_seconds', labels)).toBe(0);
      const latency = metrics.value('redlease_node_latency_seconds', labels);
      expect(latency).toBeGreaterThan(0);
      expect(latency).toBeLessThan(1);
    });
    expect(metrics.all('redlease_node_up')).toHaveLength(3);
    expect(metrics.value('process_cpu_seconds_total')).toBeGreaterThan(0);
    expect(metrics.value('process_resident_memory_bytes')).toBeGreaterThan(1_000_000);
  });

  it('docs/server.md "Metrics" lists every redlease_ family with its type and labels, and no other', async () => {
    const t = await startTestServer();
    const { metrics } = await scrape(t.server.httpPort);
    const section = metricsSection();
    const rows = new Map<string, { type: string; labels: string[] }>();
    const listed: string[] = [];
    for (const line of section.split('\n')) {
      const row = /^\|\s*`(redlease_[a-z_]+)`\s*\|\s*([a-z]+)\s*\|([^|]*)\|/.exec(line);
      if (!row) continue;
      const labels = [...row[3]!.matchAll(/`([a-z_]+)`/g)].map((m) => m[1]!);
      listed.push(row[1]!);
      rows.set(row[1]!, { type: row[2]!, labels: labels.sort() });
    }
    const families = t.server.metrics.names().filter((n) => n.startsWith('redlease_'));
    expect(families.length).toBeGreaterThanOrEqual(20);
    // Each family once, and nothing the server does not export.
    expect(listed.sort()).toEqual([...families].sort());
    for (const name of families) {
      const metric = t.server.metrics.registry.getSingleMetric(name);
      // prom-client keeps the label names on the metric object; its typings do not declare them.
      const labelNames = [...((metric as unknown as { labelNames?: string[] }).labelNames ?? [])].sort();
      expect(rows.get(name), name).toEqual({ type: metrics.types.get(name), labels: labelNames });
    }
    // The example queries the section promises: acquisitions per second by result, hand-off p99, RPC p99 by
    // method, nodes down.
    const queries = section.split('\n').filter((line) => line.includes('redlease_') && !line.startsWith('|'));
    for (const wanted of [
      /^sum by \(result\) \(rate\(redlease_acquisitions_total\[/,
      /^histogram_quantile\(0\.99, sum by \(le\) \(rate\(redlease_handoff_seconds_bucket[[{]/,
      /^histogram_quantile\(0\.99, sum by \(le, method\) \(rate\(redlease_rpc_duration_seconds_bucket[[{]/,
      /^redlease_node_up == 0$/,
    ]) {
      expect(
        queries.some((q) => wanted.test(q)),
        String(wanted),
      ).toBe(true);
    }
  });

  it('Acquire, a held Acquire, a re-send with the same lock id, Extend and Release move their series', async () => {
    const t = await startTestServer();
    const resource = uniqueResource('metrics');
    const m0 = await metricsOf(t);

    const { lease } = await t.lock.acquire({ resource, ttlMs: 5_000 });
    const m1 = await metricsOf(t);
    expect(delta(m0, m1, 'redlease_acquisitions_total', { result: 'acquired' })).toBe(1);
    expect(m1.value('redlease_held_locks')).toBe(1);
    expect(delta(m0, m1, 'redlease_rpc_duration_seconds_count', grpcCall('Acquire', 'OK'))).toBe(1);
    expect(delta(m0, m1, 'redlease_rpc_duration_seconds_sum', grpcCall('Acquire', 'OK'))).toBeGreaterThan(0);

    // Another lock id finds it held: ABORTED, counted as held, not as acquired.
    const held = await grpcError(t.lock.acquire({ resource, ttlMs: 5_000 }));
    expect(held.code).toBe(Status.ABORTED);
    const m2 = await metricsOf(t);
    expect(delta(m1, m2, 'redlease_acquisitions_total', { result: 'held' })).toBe(1);
    expect(delta(m1, m2, 'redlease_acquisitions_total', { result: 'acquired' })).toBe(0);
    expect(delta(m1, m2, 'redlease_rpc_duration_seconds_count', grpcCall('Acquire', 'ABORTED'))).toBe(1);
    expect(delta(m1, m2, 'redlease_rpc_duration_seconds_count', grpcCall('Acquire', 'OK'))).toBe(0);
    expect(m2.value('redlease_held_locks')).toBe(1);

    // An idempotent re-send with the lock id that holds it gets the same lease back: reclaimed, not a new grant.
    const { lease: again } = await t.lock.acquire({ resource, ttlMs: 5_000, lockId: lease!.lockId });
    expect(again!.fencingToken).toBe(lease!.fencingToken);
    const m3 = await metricsOf(t);
    expect(delta(m2, m3, 'redlease_acquisitions_total', { result: 'reclaimed' })).toBe(1);
    expect(delta(m2, m3, 'redlease_acquisitions_total', { result: 'acquired' })).toBe(0);
    expect(delta(m2, m3, 'redlease_rpc_duration_seconds_count', grpcCall('Acquire', 'OK'))).toBe(1);
    expect(m3.value('redlease_held_locks')).toBe(1);

    await t.lock.extend({ resource, lockId: lease!.lockId, ttlMs: 5_000 });
    const wrongId = await grpcError(t.lock.extend({ resource, lockId: newLockId(), ttlMs: 5_000 }));
    expect(wrongId.code).toBe(Status.FAILED_PRECONDITION);
    const m4 = await metricsOf(t);
    expect(delta(m3, m4, 'redlease_extensions_total', { result: 'extended' })).toBe(1);
    expect(delta(m3, m4, 'redlease_extensions_total', { result: 'not_held' })).toBe(1);
    expect(delta(m3, m4, 'redlease_rpc_duration_seconds_count', grpcCall('Extend', 'OK'))).toBe(1);
    expect(
      delta(m3, m4, 'redlease_rpc_duration_seconds_count', grpcCall('Extend', 'FAILED_PRECONDITION')),
    ).toBe(1);
    expect(m4.value('redlease_held_locks')).toBe(1);

    await t.lock.release({ resource, lockId: lease!.lockId });
    const m5 = await metricsOf(t);
    expect(delta(m4, m5, 'redlease_releases_total', { result: 'released' })).toBe(1);
    expect(delta(m4, m5, 'redlease_rpc_duration_seconds_count', grpcCall('Release', 'OK'))).toBe(1);
    expect(m5.value('redlease_held_locks')).toBe(0);
    // Over the whole test: one grant, one held lock at most, two acquisitions that granted nothing new.
    expect(delta(m0, m5, 'redlease_acquisitions_total', { result: 'acquired' })).toBe(1);
  });

  it('a waiting Acquire is a waiter until the holder releases; then a hand-off and a wait are observed', async () => {
    const t = await startTestServer();
    const resource = uniqueResource('handoff');
    const { lease: holder } = await t.lock.acquire({ resource, ttlMs: 5_000 });
    const m0 = await metricsOf(t);
    expect(m0.value('redlease_waiters')).toBe(0);

    const waiting = t.lock.acquire({ resource, ttlMs: 5_000, waitTimeoutMs: 5_000 });
    waiting.catch(() => {}); // awaited below; a failure before that must not surface as an unhandled rejection
    const m1 = await scrapeUntil(t, 'redlease_waiters 1', (m) => m.value('redlease_waiters') === 1);
    expect(delta(m0, m1, 'redlease_wait_seconds_count', { outcome: 'acquired' })).toBe(0);
    expect(delta(m0, m1, 'redlease_handoff_seconds_count')).toBe(0);

    await t.lock.release({ resource, lockId: holder!.lockId });
    const { lease: next } = await waiting;
    expect(next!.fencingToken).toBeGreaterThan(holder!.fencingToken);
    const m2 = await metricsOf(t);
    expect(m2.value('redlease_waiters')).toBe(0);
    expect(m2.value('redlease_held_locks')).toBe(1);
    expect(delta(m1, m2, 'redlease_handoff_seconds_count')).toBe(1);
    const handoff = delta(m1, m2, 'redlease_handoff_seconds_sum');
    expect(handoff).toBeGreaterThan(0);
    expect(handoff).toBeLessThan(1);
    expect(delta(m1, m2, 'redlease_wait_seconds_count', { outcome: 'acquired' })).toBe(1);
    expect(delta(m1, m2, 'redlease_acquisitions_total', { result: 'acquired' })).toBe(1);
    // Histograms are consistent: the +Inf bucket is the count.
    expect(m2.value('redlease_handoff_seconds_bucket', { le: '+Inf' })).toBe(
      m2.value('redlease_handoff_seconds_count'),
    );

    // A wait that runs out is a wait with outcome "held" (ABORTED), and no hand-off.
    const ranOut = await grpcError(t.lock.acquire({ resource, ttlMs: 5_000, waitTimeoutMs: 150 }));
    expect(ranOut.code).toBe(Status.ABORTED);
    const m3 = await metricsOf(t);
    expect(delta(m2, m3, 'redlease_wait_seconds_count', { outcome: 'held' })).toBe(1);
    expect(delta(m2, m3, 'redlease_wait_seconds_sum', { outcome: 'held' })).toBeGreaterThanOrEqual(0.15);
    expect(delta(m2, m3, 'redlease_acquisitions_total', { result: 'held' })).toBe(1);
    expect(delta(m2, m3, 'redlease_handoff_seconds_count')).toBe(0);
    expect(m3.value('redlease_waiters')).toBe(0);
  });

  it('an open KeepAlive stream and its lease are gauged while open, and timed when the stream ends', async () => {
    const t = await startTestServer();
    const resource = uniqueResource('kept');
    const { lease } = await t.lock.acquire({ resource, ttlMs: 5_000 });
    const m0 = await metricsOf(t);
    const stream = openStream(t.lock);
    stream.send({ resource, lockId: lease!.lockId, ttlMs: 5_000 });
    expect((await stream.nth(1)).state).toBe(LeaseState.LEASE_STATE_HELD);
    const m1 = await metricsOf(t);
    expect(m1.value('redlease_keepalive_streams')).toBe(1);
    expect(m1.value('redlease_kept_alive_leases')).toBe(1);
    expect(delta(m0, m1, 'redlease_extensions_total', { result: 'extended' })).toBe(1);
    // A stream is timed when it ends (its lifetime), not before.
    expect(delta(m0, m1, 'redlease_rpc_duration_seconds_count', grpcCall('KeepAlive', 'OK'))).toBe(0);

    stream.halfClose();
    await stream.done;
    expect(stream.error).toBeUndefined();
    const m2 = await scrapeUntil(
      t,
      'the stream to be closed',
      (m) => m.value('redlease_keepalive_streams') === 0,
    );
    expect(m2.value('redlease_kept_alive_leases')).toBe(0);
    expect(delta(m1, m2, 'redlease_rpc_duration_seconds_count', grpcCall('KeepAlive', 'OK'))).toBe(1);
    // Ending a stream neither releases nor loses its leases.
    expect(m2.value('redlease_held_locks')).toBe(1);
    expect(m2.all('redlease_leases_lost_total')).toEqual([]);
    expect(delta(m1, m2, 'redlease_releases_total', { result: 'released' })).toBe(0);
  });

  it('a kept-alive lease whose holder stops renewing is counted lost as expired, and no longer held', async () => {
    const t = await startTestServer();
    const resource = uniqueResource('expiring');
    const ttlMs = 300;
    const { lease } = await t.lock.acquire({ resource, ttlMs });
    // Another lease, not kept alive: it leaves the held count when its validity runs out, before the kept one.
    await t.lock.acquire({ resource: uniqueResource('unkept'), ttlMs });
    const m0 = await metricsOf(t);
    expect(m0.value('redlease_held_locks')).toBe(2);
    const stream = openStream(t.lock);
    stream.send({ resource, lockId: lease!.lockId, ttlMs });
    expect((await stream.nth(1)).state).toBe(LeaseState.LEASE_STATE_HELD);
    expect((await metricsOf(t)).value('redlease_kept_alive_leases')).toBe(1);

    // No more renewals: LOST is pushed at the deadline.
    const lost = await stream.nth(2, 2_000);
    expect(lost.state).toBe(LeaseState.LEASE_STATE_LOST);
    const m1 = await metricsOf(t);
    expect(delta(m0, m1, 'redlease_leases_lost_total', { reason: 'expired' })).toBe(1);
    for (const reason of ['renewal_failed', 'not_held', 'taken_over']) {
      expect(delta(m0, m1, 'redlease_leases_lost_total', { reason }), reason).toBe(0);
    }
    expect(m1.value('redlease_kept_alive_leases')).toBe(0);
    expect(m1.value('redlease_keepalive_streams')).toBe(1);
    expect(m1.value('redlease_held_locks')).toBe(0);
  });

  it('kept-alive leases taken over or found gone are counted lost by reason; one released by a Release call is not', async () => {
    const t = await startTestServer();
    const [takenOver, released, vanished] = [
      uniqueResource('taken'),
      uniqueResource('released'),
      uniqueResource('vanished'),
    ];
    const leases = await Promise.all(
      [takenOver, released, vanished].map(async (resource) => {
        const { lease } = await t.lock.acquire({ resource, ttlMs: 8_000 });
        return lease!;
      }),
    );
    const stream = openStream(t.lock);
    for (const lease of leases) stream.send({ resource: lease.resource, lockId: lease.lockId, ttlMs: 8_000 });
    await stream.nth(3);
    const m0 = await metricsOf(t);
    expect(m0.value('redlease_kept_alive_leases')).toBe(3);
    expect(m0.value('redlease_held_locks')).toBe(3);

    // Taken over: the keys vanish behind the server's back (every node's clock jumped), another lease is granted.
    for (const node of t.nodes) await node.command('DEL', `lk:${takenOver}`, `lkh:${takenOver}`);
    await t.lock.acquire({ resource: takenOver, ttlMs: 8_000 });
    expect(await stream.nth(4)).toMatchObject({ resource: takenOver, state: LeaseState.LEASE_STATE_LOST });
    const m1 = await metricsOf(t);
    expect(delta(m0, m1, 'redlease_leases_lost_total', { reason: 'taken_over' })).toBe(1);
    expect(delta(m0, m1, 'redlease_acquisitions_total', { result: 'acquired' })).toBe(1);
    expect(m1.value('redlease_kept_alive_leases')).toBe(2);
    expect(m1.value('redlease_held_locks')).toBe(3);

    // Released by a unary Release call, not through the stream: the holder letting go, not a loss. The stream is
    // told RELEASED and nothing is counted lost.
    await t.lock.release({ resource: released, lockId: leases[1]!.lockId });
    expect(await stream.nth(5)).toMatchObject({ resource: released, state: LeaseState.LEASE_STATE_RELEASED });
    const m2 = await metricsOf(t);
    const lostTotal = (m: typeof m1) =>
      m.all('redlease_leases_lost_total').reduce((n, sample) => n + sample.value, 0);
    expect(lostTotal(m2) - lostTotal(m1), 'leases counted lost, any reason').toBe(0);
    expect(delta(m1, m2, 'redlease_releases_total', { result: 'released' })).toBe(1);
    expect(m2.value('redlease_kept_alive_leases')).toBe(1);
    expect(m2.value('redlease_held_locks')).toBe(2);

    // Gone with no new grant: the next renewal finds no node holding it.
    for (const node of t.nodes) await node.command('DEL', `lk:${vanished}`, `lkh:${vanished}`);
    stream.send({ resource: vanished, lockId: leases[2]!.lockId, ttlMs: 8_000 });
    expect(await stream.nth(6)).toMatchObject({ resource: vanished, state: LeaseState.LEASE_STATE_LOST });
    const m3 = await metricsOf(t);
    expect(delta(m2, m3, 'redlease_leases_lost_total', { reason: 'not_held' })).toBe(1);
    expect(delta(m2, m3, 'redlease_extensions_total', { result: 'not_held' })).toBe(1);
    expect(m3.value('redlease_kept_alive_leases')).toBe(0);
    expect(m3.value('redlease_held_locks')).toBe(1);
    expect(delta(m0, m3, 'redlease_leases_lost_total', { reason: 'expired' })).toBe(0);
  });

  it('a hold is timed from its grant to its end: released, lost (found gone), or expired unreleased', async () => {
    const t = await startTestServer();
    const hold = (m: Exposition, end: string) => ({
      count: m.value('redlease_hold_seconds_count', { end }) ?? 0,
      sum: m.value('redlease_hold_seconds_sum', { end }) ?? 0,
    });
    const m0 = await metricsOf(t);

    // Released by its holder, after an Extend (the same hold: timed from the grant, not the renewal).
    const released = uniqueResource('hold-released');
    const grantedAt = performance.now();
    const { lease } = await t.lock.acquire({ resource: released, ttlMs: 5_000 });
    await t.lock.extend({ resource: released, lockId: lease!.lockId, ttlMs: 5_000 });
    await t.lock.release({ resource: released, lockId: lease!.lockId });
    const heldMs = performance.now() - grantedAt;
    const m1 = await metricsOf(t);
    expect(hold(m1, 'released').count - hold(m0, 'released').count).toBe(1);
    const seconds = hold(m1, 'released').sum - hold(m0, 'released').sum;
    expect(seconds).toBeGreaterThan(0);
    expect(seconds).toBeLessThanOrEqual(heldMs / 1000);

    // Lost: the keys vanish behind the server's back, and an Extend finds no node holding it.
    const vanished = uniqueResource('hold-lost');
    const { lease: gone } = await t.lock.acquire({ resource: vanished, ttlMs: 5_000 });
    for (const node of t.nodes) await node.command('DEL', `lk:${vanished}`, `lkh:${vanished}`);
    expect((await grpcError(t.lock.extend({ resource: vanished, lockId: gone!.lockId }))).code).toBe(
      Status.FAILED_PRECONDITION,
    );
    const m2 = await metricsOf(t);
    expect(hold(m2, 'lost').count - hold(m1, 'lost').count).toBe(1);

    // Expired: never released, never renewed; it lasted its validity (under its 300 ms ttl, less drift).
    await t.lock.acquire({ resource: uniqueResource('hold-expired'), ttlMs: 300 });
    const m3 = await scrapeUntil(
      t,
      'the unreleased hold to be timed as expired',
      (m) => hold(m, 'expired').count > 0,
    );
    expect(hold(m3, 'expired').count - hold(m2, 'expired').count).toBe(1);
    const validity = hold(m3, 'expired').sum - hold(m2, 'expired').sum;
    expect(validity).toBeGreaterThan(0.2);
    expect(validity).toBeLessThanOrEqual(0.3);
    expect(hold(m3, 'released').count).toBe(hold(m1, 'released').count);
  });

  it('HTTP calls are timed with transport="http" under their route name and status code', async () => {
    const t = await startTestServer();
    const resource = uniqueResource('http');
    const m0 = await metricsOf(t);
    // The scrape itself is timed after its answer, so the next scrape shows it.
    const m1 = await metricsOf(t);
    expect(delta(m0, m1, 'redlease_rpc_duration_seconds_count', httpCall('Metrics', 'OK'))).toBe(1);

    expect((await http(t, 'GET', '/health')).status).toBe(200);
    const acquired = await http(t, 'POST', '/lock/acquire', { resource, ttl_ms: 5_000 });
    expect(acquired.status).toBe(200);
    expect((await http(t, 'POST', '/lock/acquire', { resource, ttl_ms: 5_000 })).status).toBe(409);
    expect((await http(t, 'GET', '/no-such-route')).status).toBe(404);
    const m2 = await metricsOf(t);
    expect(delta(m1, m2, 'redlease_rpc_duration_seconds_count', httpCall('Health', 'OK'))).toBe(1);
    expect(delta(m1, m2, 'redlease_rpc_duration_seconds_count', httpCall('Acquire', 'OK'))).toBe(1);
    expect(delta(m1, m2, 'redlease_rpc_duration_seconds_count', httpCall('Acquire', 'ABORTED'))).toBe(1);
    expect(delta(m1, m2, 'redlease_rpc_duration_seconds_count', httpCall('Unknown', 'NOT_FOUND'))).toBe(1);
    expect(delta(m1, m2, 'redlease_rpc_duration_seconds_count', grpcCall('Acquire', 'OK'))).toBe(0);
    // The HTTP edge reports to the same coordinator: the grant and the refusal are counted like gRPC ones.
    expect(delta(m1, m2, 'redlease_acquisitions_total', { result: 'acquired' })).toBe(1);
    expect(delta(m1, m2, 'redlease_acquisitions_total', { result: 'held' })).toBe(1);
    expect(m2.value('redlease_held_locks')).toBe(1);
  });

  it('POST /admin/mode?mode=single from loopback flips redlease_mode', async () => {
    const t = await startTestServer();
    const m0 = await metricsOf(t);
    expect(m0.value('redlease_mode', { mode: 'redlock' })).toBe(1);
    expect(m0.value('redlease_mode', { mode: 'single' })).toBe(0);

    const answer = await http(t, 'POST', '/admin/mode?mode=single');
    expect(answer.status).toBe(200);
    expect(await answer.json()).toMatchObject({ mode: 'single', previous_mode: 'redlock' });
    const m1 = await metricsOf(t);
    expect(m1.value('redlease_mode', { mode: 'single' })).toBe(1);
    expect(m1.value('redlease_mode', { mode: 'redlock' })).toBe(0);
    expect(m1.value('redlease_quorum')).toBe(1);
    expect(delta(m0, m1, 'redlease_rpc_duration_seconds_count', httpCall('SetMode', 'OK'))).toBe(1);

    expect((await http(t, 'POST', '/admin/mode?mode=redlock')).status).toBe(200);
    const m2 = await metricsOf(t);
    expect(m2.value('redlease_mode', { mode: 'redlock' })).toBe(1);
    expect(m2.value('redlease_mode', { mode: 'single' })).toBe(0);
    expect(m2.value('redlease_quorum')).toBe(2);
  });

  it('a node restarted without its data is counted as restarted, and is up but quarantined, not voting', async () => {
    const t = await startTestServer();
    const labels = { node: 'redis-3', address: t.nodes[2].address };
    // A lock the restarted node may have forgotten keeps it out of quorums (on an idle cluster the quarantine
    // would end within a few hundred ms, racing the scrape).
    await t.lock.acquire({ resource: uniqueResource('restart'), ttlMs: 8_000 });
    const m0 = await metricsOf(t);
    expect(m0.all('redlease_node_restarts_total')).toEqual([]);

    await t.nodes[2].restart({ keepData: false });
    const m1 = await scrapeUntil(
      t,
      'redis-3 seen restarted',
      (m) => m.value('redlease_node_restarts_total', { node: 'redis-3' }) === 1,
    );
    expect(m1.value('redlease_node_up', labels)).toBe(1);
    expect(m1.value('redlease_node_quarantined', labels)).toBe(1);
    expect(m1.value('redlease_node_voting', labels)).toBe(0);
    const remaining = m1.value('redlease_node_quarantine_remaining_seconds', labels);
    // Until the lock it may have forgotten expires; never more than --max-ttl-ms (10 s) + drift (1% + 2 ms).
    expect(remaining).toBeGreaterThan(1);
    expect(remaining).toBeLessThanOrEqual(10.102);
    expect(m1.value('redlease_node_restarts_total', { node: 'redis-1' })).toBeUndefined();
    // Two of three still vote: a quorum.
    expect(m1.value('redlease_quorum_available')).toBe(1);
    // The counter does not count the same restart again on the next scrape.
    const m2 = await metricsOf(t);
    expect(m2.value('redlease_node_restarts_total', { node: 'redis-3' })).toBe(1);
  });

  it('two stopped nodes show as down and not voting, the quorum as unavailable, and Acquire as unavailable', async () => {
    const t = await startTestServer();
    const resource = uniqueResource('down');
    const labelsOf = (i: number) => ({ node: `redis-${i + 1}`, address: t.nodes[i]!.address });
    const m0 = await metricsOf(t);
    expect(m0.value('redlease_quorum_available')).toBe(1);

    await t.nodes[1].stop();
    await t.nodes[2].stop();
    const m1 = await scrapeUntil(
      t,
      'redis-2 and redis-3 down',
      (m) => m.value('redlease_node_up', labelsOf(1)) === 0 && m.value('redlease_node_up', labelsOf(2)) === 0,
    );
    expect(m1.value('redlease_node_up', labelsOf(0))).toBe(1);
    expect(m1.value('redlease_node_voting', labelsOf(1))).toBe(0);
    expect(m1.value('redlease_node_voting', labelsOf(2))).toBe(0);
    expect(m1.value('redlease_quorum_available')).toBe(0);
    expect(m1.value('redlease_quorum')).toBe(2);

    const refused = await grpcError(t.lock.acquire({ resource, ttlMs: 5_000 }));
    expect(refused.code).toBe(Status.UNAVAILABLE);
    expect((await http(t, 'GET', '/health')).status).toBe(503);
    const m2 = await metricsOf(t);
    expect(delta(m1, m2, 'redlease_acquisitions_total', { result: 'unavailable' })).toBe(1);
    expect(delta(m1, m2, 'redlease_acquisitions_total', { result: 'acquired' })).toBe(0);
    expect(delta(m1, m2, 'redlease_rpc_duration_seconds_count', grpcCall('Acquire', 'UNAVAILABLE'))).toBe(1);
    expect(delta(m1, m2, 'redlease_rpc_duration_seconds_count', httpCall('Health', 'UNAVAILABLE'))).toBe(1);
    expect(m2.value('redlease_held_locks')).toBe(0);
  });
});

describe('the test exposition parser', () => {
  it('reads labels with escapes, special values and timestamps, and rejects malformed lines', () => {
    const m = parseExposition(
      [
        '# HELP x_total A counter.',
        '# TYPE x_total counter',
        'x_total{a="q\\"uote",b="back\\\\slash\\nline"} 3 1700000000000',
        'x_total{a="plain",} +Inf',
        'y NaN',
        'z Nan',
      ].join('\n'),
    );
    expect(m.types.get('x_total')).toBe('counter');
    expect(m.value('x_total', { a: 'q"uote', b: 'back\\slash\nline' })).toBe(3);
    expect(m.value('x_total', { a: 'plain' })).toBe(Number.POSITIVE_INFINITY);
    expect(m.value('x_total', { a: 'missing' })).toBeUndefined();
    expect(m.all('x_total')).toHaveLength(2);
    expect(m.value('y')).toBeNaN();
    expect(m.value('z')).toBeNaN();
    expect(() => parseExposition('x 1e')).toThrow(/bad value/);
    expect(() => parseExposition('x{a="unterminated} 1')).toThrow(/bad labels/);
    expect(() => parseExposition('x 1 2 3')).toThrow(/not a sample/);
  });
});
