import { BinaryWriter, WireType } from '@bufbuild/protobuf/wire';
import { ClientError, createClient, Metadata, Status } from 'nice-grpc';
import { describe, expect, it } from 'vitest';
import { Mode } from '../gen/redlease/v1/admin.js';
import { newLockId } from '../server/redlock/index.js';
import { connect, rejection, startTestServer, uniqueResource, waitFor } from './support/server.js';

/** The status a call failed with, its message, and the redlease-reason trailer. */
async function failure(call: (options: { onTrailer: (t: Metadata) => void }) => Promise<unknown>) {
  let reason: string | undefined;
  const error = await rejection(call({ onTrailer: (t) => (reason = t.get('redlease-reason')) }), ClientError);
  return { code: error.code, message: error.details, reason };
}

describe('LockService success paths (real server, real Redis nodes, real gRPC client)', () => {
  it('Acquire, Describe, Extend, Release, Describe again', async () => {
    const { lock } = await startTestServer();
    const resource = uniqueResource('orders');
    const before = Date.now();
    const { lease } = await lock.acquire({ resource, ttlMs: 4_000, clientId: 'worker-1' });
    expect(lease).toMatchObject({ resource, quorum: 2, attempts: 1 });
    expect(lease?.lockId).toMatch(/^[0-9a-f]{32}$/);
    expect(lease?.fencingToken).toBeGreaterThan(0);
    expect(lease?.validityMs).toBeGreaterThan(3_000);
    expect(lease?.validityMs).toBeLessThanOrEqual(4_000 - 42);
    expect(lease?.validUntilMs).toBeGreaterThanOrEqual(before + 3_000);
    expect(lease?.nodes).toEqual(['redis-1', 'redis-2', 'redis-3']);

    const described = await lock.describe({ resource });
    expect(described).toMatchObject({
      resource,
      locked: true,
      holderClientId: 'worker-1',
      fencingToken: lease?.fencingToken,
      waiters: 0,
    });
    expect(described.validityMs).toBeGreaterThan(3_000);
    expect(described.nodes.map((n) => [n.node, n.reachable, n.held])).toEqual([
      ['redis-1', true, true],
      ['redis-2', true, true],
      ['redis-3', true, true],
    ]);
    expect(JSON.stringify(described)).not.toContain(lease?.lockId);

    const extended = await lock.extend({ resource, lockId: lease!.lockId, ttlMs: 8_000 });
    expect(extended.lease).toMatchObject({
      resource,
      lockId: lease?.lockId,
      fencingToken: lease?.fencingToken,
    });
    expect(extended.lease?.validityMs).toBeGreaterThan(7_000);

    expect(await lock.release({ resource, lockId: lease!.lockId })).toEqual({
      released: true,
      nodes: ['redis-1', 'redis-2', 'redis-3'],
    });
    expect(await lock.describe({ resource })).toMatchObject({
      locked: false,
      fencingToken: 0,
      validityMs: 0,
    });
  });

  it('ttl_ms 0 means the server default; a re-sent Acquire with the same lock_id returns the same lease', async () => {
    const { lock } = await startTestServer(['--default-ttl-ms', '3000']);
    const resource = uniqueResource();
    const lockId = newLockId();
    const first = await lock.acquire({ resource, lockId });
    expect(first.lease?.validityMs).toBeGreaterThan(2_000);
    expect(first.lease?.validityMs).toBeLessThanOrEqual(3_000 - 32);
    const again = await lock.acquire({ resource, lockId, ttlMs: 6_000 });
    expect(again.lease?.lockId).toBe(lockId);
    expect(again.lease?.fencingToken).toBe(first.lease?.fencingToken);
    expect(again.lease?.validityMs).toBeGreaterThan(5_000);
  });

  it('AdminService: GetMode, SetMode (SINGLE grants on node 1 alone), ListNodes', async () => {
    const { lock, admin } = await startTestServer();
    expect(await admin.getMode({})).toEqual({ mode: Mode.MODE_REDLOCK, leasesEnded: 0 });
    expect(await admin.setMode({ mode: Mode.MODE_SINGLE })).toEqual({
      mode: Mode.MODE_SINGLE,
      leasesEnded: 0,
    });
    const { lease } = await lock.acquire({ resource: uniqueResource() });
    expect(lease).toMatchObject({ quorum: 1, nodes: ['redis-1'] });
    const listed = await admin.listNodes({});
    expect(listed).toMatchObject({ quorum: 1, quorumAvailable: true, mode: Mode.MODE_SINGLE });
    // The SINGLE lease is live: only a forced switch goes through, and it ends the lease.
    expect(await admin.setMode({ mode: Mode.MODE_REDLOCK, force: true })).toEqual({
      mode: Mode.MODE_REDLOCK,
      leasesEnded: 1,
    });
    const nodes = (await admin.listNodes({})).nodes;
    expect(nodes.map((n) => [n.name, n.up, n.voting, n.quarantined])).toEqual([
      ['redis-1', true, true, false],
      ['redis-2', true, true, false],
      ['redis-3', true, true, false],
    ]);
    for (const n of nodes) {
      expect(n.address).toMatch(/^127\.0\.0\.1:\d+$/);
      expect(n.runId).toMatch(/^[0-9a-f]{40}$/);
      expect(n.error).toBe('');
    }
  });

  it('logs one line per lock event with resource, client_id, token and duration, never the lock_id', async () => {
    const { lock, logs } = await startTestServer();
    const resource = uniqueResource();
    const { lease } = await lock.acquire({ resource, clientId: 'logger-test' });
    await lock.extend({ resource, lockId: lease!.lockId, ttlMs: 3_000 });
    await lock.release({ resource, lockId: lease!.lockId });
    const events = logs.filter((l) => l.resource === resource);
    expect(events.map((l) => l.event)).toEqual(['acquired', 'extended', 'released']);
    for (const line of events) {
      expect(line).toMatchObject({ client_id: 'logger-test', token: lease?.fencingToken });
      expect(line.duration_ms).toEqual(expect.any(Number));
    }
    expect(JSON.stringify(logs)).not.toContain(lease!.lockId);
  });
});

describe('status codes, each with a message that says what to fix', () => {
  it('ABORTED when held by another lease, with the reason in a trailer and no lock_id', async () => {
    const { lock } = await startTestServer();
    const resource = uniqueResource();
    const { lease } = await lock.acquire({ resource, ttlMs: 5_000 });
    const f = await failure((o) => lock.acquire({ resource }, o));
    expect(f.code).toBe(Status.ABORTED);
    expect(f.reason).toBe('LOCK_HELD');
    expect(f.message).toMatch(/resource ".+" is held by another client on 3\/3 nodes, for up to \d+ ms more/);
    expect(f.message).not.toContain(lease?.lockId);
  });

  it('FAILED_PRECONDITION for Release/Extend with a lock_id that does not hold the lock', async () => {
    const { lock } = await startTestServer();
    const resource = uniqueResource();
    const { lease } = await lock.acquire({ resource });
    await lock.release({ resource, lockId: lease!.lockId });
    for (const call of [
      (o: object) => lock.release({ resource, lockId: lease!.lockId }, o),
      (o: object) => lock.extend({ resource, lockId: lease!.lockId, ttlMs: 1_000 }, o),
      (o: object) => lock.release({ resource, lockId: newLockId() }, o),
    ]) {
      const f = await failure(call);
      expect(f.code).toBe(Status.FAILED_PRECONDITION);
      expect(f.reason).toBe('LOCK_NOT_HELD');
      expect(f.message).toMatch(/this lock_id does not hold ".+".*acquire the lock again/);
    }
  });

  it('UNAVAILABLE, fast, when two of three nodes are down; service resumes when they return', async () => {
    // Nodes restarted empty sit out max-ttl (+ drift) before voting again: keep it short.
    const { lock, nodes, server } = await startTestServer([
      '--max-ttl-ms',
      '2000',
      '--default-ttl-ms',
      '1500',
    ]);
    const resource = uniqueResource();
    const { lease } = await lock.acquire({ resource, ttlMs: 1_500 });
    await nodes[1].stop();
    await nodes[2].stop();
    await waitFor('quorum to be lost', () => !server.engine.status().quorumAvailable);
    const started = performance.now();
    const f = await failure((o) => lock.acquire({ resource: uniqueResource() }, o));
    expect(performance.now() - started).toBeLessThan(1_000);
    expect(f).toMatchObject({ code: Status.UNAVAILABLE, reason: 'QUORUM_UNAVAILABLE' });
    expect(f.message).toMatch(/quorum unavailable: 1\/3 Redis nodes voting, 2 needed/);
    const e = await failure((o) => lock.extend({ resource, lockId: lease!.lockId, ttlMs: 1_500 }, o));
    expect(e.code).toBe(Status.UNAVAILABLE);
    await nodes[1].startAgain();
    await nodes[2].startAgain();
    await waitFor('quorum to return', () => server.engine.status().quorumAvailable, 15_000);
    expect((await lock.acquire({ resource: uniqueResource() })).lease?.quorum).toBe(2);
  });

  it('RESOURCE_EXHAUSTED for a message over the size limit; the server stays healthy', async () => {
    const { lock } = await startTestServer();
    const f = await failure((o) => lock.acquire({ resource: 'x'.repeat(20_000) }, o));
    expect(f.code).toBe(Status.RESOURCE_EXHAUSTED);
    expect(f.message).toMatch(/larger than|max/i);
    expect((await lock.acquire({ resource: uniqueResource() })).lease?.fencingToken).toBeGreaterThan(0);
  });

  it('UNAUTHENTICATED without the admin token once one is configured; OK with it', async () => {
    const { admin, address } = await startTestServer([], { env: { REDLEASE_ADMIN_TOKEN: 's3cret-admin' } });
    const f = await failure((o) => admin.getMode({}, o));
    expect(f.code).toBe(Status.UNAUTHENTICATED);
    expect(f.message).toContain('authorization: Bearer');
    const wrong = new Metadata({ authorization: 'Bearer nope' });
    expect((await failure((o) => admin.getMode({}, { ...o, metadata: wrong }))).code).toBe(
      Status.UNAUTHENTICATED,
    );
    const right = new Metadata({ authorization: 'Bearer s3cret-admin' });
    expect(await admin.getMode({}, { metadata: right })).toEqual({ mode: Mode.MODE_REDLOCK, leasesEnded: 0 });
    expect(address).toMatch(/^127\.0\.0\.1:/);
  });

  it('PERMISSION_DENIED for an admin call made with a valid client token', async () => {
    const { admin, lock } = await startTestServer([], {
      env: {
        REDLEASE_ADMIN_TOKEN: 'admin-token-0123456789',
        REDLEASE_CLIENT_TOKENS: 'client-token-0123456789',
      },
    });
    const client = new Metadata({ authorization: 'Bearer client-token-0123456789' });
    const f = await failure((o) => admin.setMode({ mode: Mode.MODE_SINGLE }, { ...o, metadata: client }));
    expect(f.code).toBe(Status.PERMISSION_DENIED);
    expect(f.message).toBe('this is a client token: admin calls need the admin token');
    // The same token is good for locks, and the mode did not change.
    expect((await lock.acquire({ resource: uniqueResource() }, { metadata: client })).lease?.quorum).toBe(2);
  });

  it('UNAUTHENTICATED for LockService without a client token once client tokens are configured', async () => {
    const { lock } = await startTestServer([], { env: { REDLEASE_CLIENT_TOKENS: 'tok-a,tok-b' } });
    const resource = uniqueResource();
    const f = await failure((o) => lock.acquire({ resource }, o));
    expect(f.code).toBe(Status.UNAUTHENTICATED);
    expect(f.message).toContain('client token');
    const ok = await lock.acquire(
      { resource },
      { metadata: new Metadata({ authorization: 'Bearer tok-b' }) },
    );
    expect(ok.lease?.resource).toBe(resource);
  });
});

describe('garbage inputs: INVALID_ARGUMENT naming the field, nothing reaches Redis, the server carries on', () => {
  const cases: [string, Record<string, unknown>, RegExp][] = [
    ['empty name', { resource: '' }, /^resource is required/],
    ['257-byte name', { resource: 'a'.repeat(257) }, /^resource is 257 characters long; the limit is 256/],
    ['newline in name', { resource: 'a\nb' }, /^resource may contain only visible ASCII.*U\+000A/],
    ['NUL in name', { resource: 'a\u0000b' }, /^resource may contain only visible ASCII.*U\+0000/],
    ['space in name', { resource: 'a b' }, /^resource may contain only visible ASCII.*U\+0020/],
    ['non-ASCII name', { resource: 'caf\u00e9' }, /^resource may contain only visible ASCII.*U\+00E9/],
    ['ttl below the minimum', { ttlMs: 99 }, /^ttl_ms must be in \[100, 10000\] ms, got 99/],
    ['huge ttl', { ttlMs: 4_000_000_000 }, /^ttl_ms must be in \[100, 10000\] ms, got 4000000000/],
    ['wait over 5 minutes', { waitTimeoutMs: 300_001 }, /^wait_timeout_ms .* got 300001/],
    ['malformed lock_id', { lockId: 'XYZ' }, /^lock_id must be 32 lowercase hex characters/],
    ['client_id over 128 bytes', { clientId: 'c'.repeat(129) }, /^client_id is longer than 128 bytes/],
    [
      'control character in client_id',
      { clientId: 'a\u0007' },
      /^client_id may not contain control characters/,
    ],
  ];
  it.each(cases)('Acquire with %s', async (_, fields, message) => {
    const { lock, cluster } = await startTestServer();
    const f = await failure((o) => lock.acquire({ resource: uniqueResource(), ...fields }, o));
    expect(f.code).toBe(Status.INVALID_ARGUMENT);
    expect(f.message).toMatch(message);
    expect(f.reason).toMatch(/^[A-Z_]+$/);
    for (const node of cluster.nodes) expect(await node.command('DBSIZE')).toBeLessThanOrEqual(1); // the run-id marker
    expect((await lock.acquire({ resource: uniqueResource() })).lease?.fencingToken).toBeGreaterThan(0);
  });

  it('Acquire with a negative wait, as an int32 client puts it on the wire (decoded as 4294967295)', async () => {
    const { address } = await startTestServer();
    const rawAcquire = {
      acquire: {
        path: '/redlease.v1.LockService/Acquire',
        requestStream: false,
        responseStream: false,
        requestSerialize: (bytes: Uint8Array) => bytes,
        requestDeserialize: (bytes: Uint8Array) => bytes,
        responseSerialize: (bytes: Uint8Array) => bytes,
        responseDeserialize: (bytes: Uint8Array) => bytes,
        options: {},
      },
    } as const;
    const client = createClient(rawAcquire, connect(address).channel);
    // resource = "r" (field 1), wait_timeout_ms = -1 written as a 10-byte int32 varint (field 4).
    const bytes = new BinaryWriter()
      .tag(1, WireType.LengthDelimited)
      .string('r')
      .tag(4, WireType.Varint)
      .int32(-1)
      .finish();
    const error = await rejection(client.acquire(bytes), ClientError);
    expect(error.code).toBe(Status.INVALID_ARGUMENT);
    expect(error.details).toBe(
      'wait_timeout_ms must be a whole number of milliseconds in [0, 300000], got 4294967295',
    );
  });

  it('Release, Extend and Describe validate too; SetMode rejects unknown and unspecified modes', async () => {
    const { lock, admin } = await startTestServer();
    const checks: [Promise<unknown>, RegExp][] = [
      [lock.release({ resource: 'ok', lockId: '' }), /^lock_id must be 32 lowercase hex/],
      [lock.extend({ resource: 'ok', lockId: newLockId(), ttlMs: 50 }), /^ttl_ms must be in/],
      [lock.extend({ resource: '', lockId: newLockId() }), /^resource is required/],
      [lock.describe({ resource: 'bad name' }), /^resource may contain only visible ASCII/],
      [admin.setMode({ mode: 99 as Mode }), /^mode must be MODE_REDLOCK \(1\) or MODE_SINGLE \(2\), got 99/],
      [admin.setMode({ mode: Mode.MODE_UNSPECIFIED }), /^mode must be .* got MODE_UNSPECIFIED/],
    ];
    for (const [call, message] of checks) {
      const error = await rejection(call, ClientError);
      expect(error.code).toBe(Status.INVALID_ARGUMENT);
      expect(error.details).toMatch(message);
    }
    expect(await admin.getMode({})).toEqual({ mode: Mode.MODE_REDLOCK, leasesEnded: 0 });
  });
});
