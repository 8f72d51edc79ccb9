/**
 * Parts of the wire contract (lock.proto, admin.proto, docs/server.md) that no other test exercised, each against
 * a real server on real Redis nodes: a split vote and the undo of its partial grant, admin access by peer address
 * on both edges, what a KeepAlive stream on one replica hears of a lease ended through another, the order of
 * answers to concurrent renewals of one lease, and a Session whose answers go unread.
 */
import { connect as connectHttp2 } from 'node:http2';
import { ClientError, type Metadata, Status } from 'nice-grpc';
import { describe, expect, it, onTestFinished } from 'vitest';
import { LeaseState, SessionRequest } from '../gen/redlease/v1/lock.js';
import { newLockId } from '../server/redlock/index.js';
import { openStream } from './support/keepalive-stream.js';
import { startTestHost } from './support/netns.js';
import { connect, rejection, startTestServer, uniqueResource, waitFor } from './support/server.js';

describe('a split vote', () => {
  it('is ABORTED with LOCK_CONTENDED, and the node that did grant is undone', async () => {
    const t = await startTestServer();
    const resource = uniqueResource('split');
    const key = `${t.server.engine.options.keyPrefix}${resource}`;
    // Two other Redlock clients each hold the key on one node: nobody has a majority, and neither do we.
    await t.nodes[0].command('SET', key, newLockId(), 'PX', '10000');
    await t.nodes[1].command('SET', key, newLockId(), 'PX', '10000');
    let reason: string | undefined;
    const error = await rejection(
      t.lock.acquire(
        { resource, ttlMs: 5_000 },
        { onTrailer: (m: Metadata) => (reason = m.get('redlease-reason')) },
      ),
      ClientError,
    );
    expect(error.code).toBe(Status.ABORTED);
    expect(reason).toBe('LOCK_CONTENDED');
    expect(error.details).toMatch(/contended: no client holds a quorum/);
    // Node 3 granted (its fence counter for the resource was created by the acquire script), and was undone.
    const third = t.nodes[2];
    expect(await third.command('EXISTS', `${t.server.engine.options.fencePrefix}${resource}`)).toBe(1);
    expect(await third.command('EXISTS', key)).toBe(0);
    expect(await third.command('EXISTS', `${t.server.engine.options.holderPrefix}${resource}`)).toBe(0);
    // The foreign holders were left alone.
    for (const node of [t.nodes[0], t.nodes[1]]) expect(await node.command('EXISTS', key)).toBe(1);
  });
});

describe('admin calls with no admin token configured', () => {
  async function httpAdmin(url: string): Promise<{ status: number; reason?: string }> {
    const response = await fetch(url);
    const body = (await response.json()) as { error?: { reason: string } };
    return { status: response.status, reason: body.error?.reason };
  }

  it('are answered from loopback on both edges, in its ::1 and ::ffff:127.0.0.1 forms too', async () => {
    // Dual-stack listeners: an IPv4 client shows up as ::ffff:127.0.0.1.
    const t = await startTestServer(['--grpc-listen', '[::]:0', '--http-listen', '[::]:0']);
    for (const host of ['127.0.0.1', '[::1]']) {
      expect(await httpAdmin(`http://${host}:${t.server.httpPort}/admin/mode`), host).toEqual({
        status: 200,
        reason: undefined,
      });
      const { admin } = connect(`${host}:${t.server.grpcPort}`);
      expect((await admin.getMode({})).mode, host).toBeGreaterThan(0);
    }
  });

  it('are refused from a non-loopback peer on both edges: PERMISSION_DENIED, HTTP 403', async () => {
    const host = await startTestHost();
    const t = await startTestServer([
      '--grpc-listen',
      `${host.hostAddress}:0`,
      '--http-listen',
      `${host.hostAddress}:0`,
    ]);
    const http = await host.run('curl', [
      '-s',
      '-w',
      '\n%{http_code}',
      `http://${host.hostAddress}:${t.server.httpPort}/admin/mode`,
    ]);
    const cut = http.lastIndexOf('\n');
    expect(Number(http.slice(cut + 1))).toBe(403);
    expect(JSON.parse(http.slice(0, cut))).toMatchObject({
      error: { code: 'PERMISSION_DENIED', reason: 'ADMIN_NETWORK_REFUSED' },
    });
    const grpc = await host.run(process.execPath, [
      '--import',
      'tsx',
      'test/fixtures/admin-call.ts',
      `${host.hostAddress}:${t.server.grpcPort}`,
    ]);
    expect(JSON.parse(grpc)).toMatchObject({
      code: Status.PERMISSION_DENIED,
      reason: 'ADMIN_NETWORK_REFUSED',
    });
    // Lock calls from there are served: only admin is limited to loopback.
    const lock = await host.run('curl', [
      '-s',
      '-o',
      '/dev/null',
      '-w',
      '%{http_code}',
      `http://${host.hostAddress}:${t.server.httpPort}/lock/status/anything`,
    ]);
    expect(lock).toBe('200');
  });
});

/** Two replicas on one cluster; a lease acquired through A and kept alive on a stream to A (one renewal answered). */
async function keptAliveOnA(tag: string) {
  const a = await startTestServer();
  const b = await startTestServer([], { cluster: a.cluster });
  const resource = uniqueResource(tag);
  const lease = (await a.lock.acquire({ resource, ttlMs: 8_000 })).lease!;
  const stream = openStream(a.lock);
  stream.send({ resource, lockId: lease.lockId, ttlMs: 8_000 });
  expect((await stream.nth(1)).state).toBe(LeaseState.LEASE_STATE_HELD);
  return { a, b, resource, lease, stream };
}

describe('a KeepAlive stream on one replica, its lease ended through another', () => {
  it('is pushed RELEASED when the lease is released through the other replica', async () => {
    const { a, b, resource, lease, stream } = await keptAliveOnA('across');
    await b.lock.release({ resource, lockId: lease.lockId });
    // Unasked: A hears it from the nodes' release announcements.
    expect(await stream.nth(2)).toMatchObject({
      resource,
      lockId: lease.lockId,
      state: LeaseState.LEASE_STATE_RELEASED,
      fencingToken: lease.fencingToken,
    });
    expect((await stream.nth(2)).reason).toMatch(/released through another server/);
    expect(a.logs.filter((l) => l.event === 'lost')).toEqual([]);
  });

  it('answers the next renewal LOST when another replica granted the resource to someone else', async () => {
    const { a, b, resource, lease, stream } = await keptAliveOnA('taken');
    // The lease vanishes behind both servers' backs (every node's clock jumped), and B grants the resource.
    for (const node of a.nodes) {
      await node.command('DEL', `lk:${resource}`, `lkh:${resource}`);
    }
    const { lease: other } = await b.lock.acquire({ resource, ttlMs: 8_000 });
    expect(other!.fencingToken).toBeGreaterThan(lease.fencingToken);
    stream.send({ resource, lockId: lease.lockId, ttlMs: 8_000 });
    const answer = await stream.nth(2);
    expect(answer).toMatchObject({
      resource,
      state: LeaseState.LEASE_STATE_LOST,
      fencingToken: lease.fencingToken,
    });
    expect(answer.reason).toMatch(/does not hold|not held|no longer holds/);
    expect(a.logs.filter((l) => l.event === 'lost').map((l) => l.resource)).toEqual([resource]);
  });
});

describe('concurrent renewals of one lease on one KeepAlive stream', () => {
  it('are answered in the order they were sent (the SDK pairs answers with send times by that order)', async () => {
    const t = await startTestServer();
    const resource = uniqueResource('order');
    const { lease } = await t.lock.acquire({ resource, ttlMs: 5_000 });
    const stream = openStream(t.lock);
    // 36 renewals sent back to back, each with its own ttl. A validity is at most its ttl and loses only the
    // renewal's time and the drift allowance (≤ 102 ms here), so each answer falls in its request's window and
    // two swapped answers would fall in each other's (the windows are 500 ms apart and 400 ms wide).
    const ttls = Array.from({ length: 36 }, (_, i) => 1_000 + 500 * (i % 18));
    for (const ttlMs of ttls) stream.send({ resource, lockId: lease!.lockId, ttlMs });
    await waitFor('every renewal answered', () => stream.received.length === ttls.length, 10_000);
    const answers = stream.received.map((r, i) => ({
      i,
      state: r.state,
      reason: r.reason,
      validityMs: r.validityMs,
    }));
    for (const [i, ttlMs] of ttls.entries()) {
      expect(answers[i], `answer ${i}`).toMatchObject({ state: LeaseState.LEASE_STATE_HELD, reason: '' });
      expect(answers[i]!.validityMs, `answer ${i} (ttl ${ttlMs})`).toBeLessThanOrEqual(ttlMs);
      expect(answers[i]!.validityMs, `answer ${i} (ttl ${ttlMs})`).toBeGreaterThan(ttlMs - 400);
    }
  });
});

describe('a Session stream whose answers go unread', () => {
  it('reaches its limit of unread answers and ends with RESOURCE_EXHAUSTED', async () => {
    const t = await startTestServer();
    // Plain HTTP/2, speaking gRPC's framing: a paused stream stops reading, so HTTP/2 flow control holds the
    // server's answers back (a gRPC client library keeps reading into its own buffer).
    const session = connectHttp2(`http://${t.address}`);
    onTestFinished(() => session.close());
    const stream = session.request({
      ':method': 'POST',
      ':path': '/redlease.v1.LockService/Session',
      'content-type': 'application/grpc',
      te: 'trailers',
    });
    // The server's shutdown at the end of the test resets the connection: not this test's concern.
    session.on('error', () => undefined);
    stream.on('error', () => undefined);
    stream.pause();
    const trailers = new Promise<Record<string, unknown>>((resolve) => stream.on('trailers', resolve));
    // Each operation is answered at once without Redis (a malformed lock id): the answers pile up unread. Past
    // the limit the server ends the stream and stops reading, so a write may never drain: bounded waits.
    let sent = 0;
    while (sent < 8_000) {
      const message = SessionRequest.encode({
        id: ++sent,
        op: { $case: 'extend', value: { resource: 'r', lockId: 'x', ttlMs: 0 } },
        traceContext: {},
      }).finish();
      const frame = Buffer.alloc(5 + message.length);
      frame.writeUInt32BE(message.length, 1);
      frame.set(message, 5);
      if (!stream.write(frame)) {
        const drained = await Promise.race([
          new Promise<boolean>((resolve) => stream.once('drain', () => resolve(true))),
          new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 2_000)),
        ]);
        if (!drained) break;
      }
    }
    stream.resume(); // read (and drop) what was answered, to reach the trailers
    const status = await trailers;
    expect(Number(status['grpc-status'])).toBe(Status.RESOURCE_EXHAUSTED);
    expect(decodeURIComponent(String(status['grpc-message']))).toMatch(
      /answers on this Session stream are unread \(limit 4000\)/,
    );
    expect(sent).toBeGreaterThan(4_000);
  });
});
