/**
 * The client SDK (client/src) against a real server on real Redis nodes: leases, auto-renewal, loss signals,
 * typed errors, withLock, `await using`, TLS and tokens, clean shutdown.
 */
import { readFileSync } from 'node:fs';
import { isAbortError } from 'abort-controller-x';
import { describe, expect, it, onTestFinished } from 'vitest';
import {
  AuthError,
  InvalidArgumentError,
  type Lease,
  LeaseLostError,
  LeaseReleasedError,
  LockClient,
  type LockClientOptions,
  LockHeldError,
  UnavailableError,
} from '../client/src/index.js';
import { rejection, startTestServer, uniqueResource, waitFor } from './support/server.js';

/** Every test runs on both transports: Session streams (the default) and unary calls. */
const TRANSPORTS = ['session', 'unary'] as const;

function sdkOn(transport: (typeof TRANSPORTS)[number]) {
  return (address: string, options: Partial<LockClientOptions> = {}): LockClient => {
    const client = new LockClient({ address, clientId: 'sdk-test', transport, ...options });
    onTestFinished(() => client.close());
    return client;
  };
}

/** Resolves with the reason once `lease.signal` aborts. */
function aborted(lease: Lease): Promise<unknown> {
  return new Promise((resolve) => {
    if (lease.signal.aborted) resolve(lease.signal.reason);
    lease.signal.addEventListener('abort', () => resolve(lease.signal.reason), { once: true });
  });
}

describe.each(TRANSPORTS)('LockClient (transport: %s)', (transport) => {
  const sdk = sdkOn(transport);

  /** A 1.5 s lease attached to the client's KeepAlive stream (its first renewal, after 500 ms), losses recorded. */
  async function attachedLease() {
    const { address, lock } = await startTestServer();
    const client = sdk(address);
    const resource = uniqueResource();
    const lost: LeaseLostError[] = [];
    client.on('lost', (_lease, error) => lost.push(error));
    const lease = await client.acquire(resource, { ttlMs: 1_500 });
    await new Promise((resolve) => client.once('renewed', resolve));
    return { client, lock, resource, lost, lease };
  }

  it('acquires a lease with a fencing token, describes it, and releases it once', async () => {
    const { address } = await startTestServer();
    const client = sdk(address);
    const resource = uniqueResource();

    const lease = await client.acquire(resource, { ttlMs: 5_000 });
    expect(lease.resource).toBe(resource);
    expect(lease.lockId).toMatch(/^[0-9a-f]{32}$/);
    expect(lease.fencingToken).toBeGreaterThan(0);
    expect(lease.nodes.length).toBeGreaterThanOrEqual(2);
    expect(lease.isHeld()).toBe(true);
    expect(lease.remainingMs).toBeGreaterThan(0);
    expect(lease.remainingMs).toBeLessThanOrEqual(5_000);
    expect(lease.validUntil.getTime()).toBeGreaterThan(Date.now());

    const described = await client.describe(resource);
    expect(described).toMatchObject({
      locked: true,
      holderClientId: 'sdk-test',
      fencingToken: lease.fencingToken,
    });

    const first = lease.release();
    expect(lease.release()).toBe(first); // idempotent
    expect(await first).toBe(true);
    expect(lease.isHeld()).toBe(false);
    expect(lease.signal.reason).toBeInstanceOf(LeaseReleasedError);
    expect((await client.describe(resource)).locked).toBe(false);
    expect(client.heldLeases).toBe(0);

    const next = await client.acquire(resource);
    expect(next.fencingToken).toBeGreaterThan(lease.fencingToken);
  });

  it('tryAcquire answers null when the resource is held; acquire rejects with LockHeldError (ABORTED, LOCK_HELD)', async () => {
    const { address } = await startTestServer();
    const client = sdk(address);
    const resource = uniqueResource();
    const lease = await client.acquire(resource);
    expect(await client.tryAcquire(resource)).toBeNull();
    const error = await rejection(client.acquire(resource), LockHeldError);
    expect(error).toMatchObject({ code: 'ABORTED', reason: 'LOCK_HELD', resource });
    expect(error.message).toMatch(/^ABORTED: /);
    await lease.release();
    expect(await client.tryAcquire(resource)).not.toBeNull();
  });

  it('`await using` releases the lease at the end of the block', async () => {
    const { address } = await startTestServer();
    const client = sdk(address);
    const resource = uniqueResource();
    let token = 0;
    {
      await using lease = await client.acquire(resource);
      token = lease.fencingToken;
      expect((await client.describe(resource)).locked).toBe(true);
    }
    expect(token).toBeGreaterThan(0);
    expect((await client.describe(resource)).locked).toBe(false);
  });

  it('a waiting acquire gets the lease when the holder releases it', async () => {
    const { address } = await startTestServer();
    const client = sdk(address);
    const resource = uniqueResource();
    const holder = await client.acquire(resource);
    const waiting = client.acquire(resource, { waitMs: 20_000, clientId: 'waiter' });
    await waitFor('the waiter to queue', async () => (await client.describe(resource)).waiters === 1);
    await holder.release();
    const lease = await waiting;
    expect(lease.fencingToken).toBeGreaterThan(holder.fencingToken);
    expect((await client.describe(resource)).holderClientId).toBe('waiter');
  });

  it('a wait longer than the ttl still yields a usable lease: the late grant is reclaimed, not discarded', async () => {
    const { address, lock, logs } = await startTestServer();
    const client = sdk(address);
    const resource = uniqueResource();
    // The holder's lock runs out after 1.5 s; the waiter asks for a 500 ms ttl, so its grant arrives after
    // more than its whole validity (counted from the send) has gone by.
    const { lease: holder } = await lock.acquire({ resource, ttlMs: 1_500 });
    const lease = await client.acquire(resource, { ttlMs: 500, waitMs: 10_000 });
    expect(lease.isHeld()).toBe(true);
    expect(lease.remainingMs).toBeGreaterThan(0);
    expect(lease.fencingToken).toBeGreaterThan(holder!.fencingToken);
    expect((await client.describe(resource)).fencingToken).toBe(lease.fencingToken);
    // One grant for the waiter: reclaiming renewed it instead of queueing again for a new token.
    const tokens = new Set(
      logs.filter((l) => l.resource === resource && l.event === 'acquired').map((l) => l.token),
    );
    expect(tokens).toEqual(new Set([holder!.fencingToken, lease.fencingToken]));
  });

  it('renews automatically: a 300 ms lease stays held across many renewals with the same token', async () => {
    const { address, logs } = await startTestServer();
    const client = sdk(address);
    const resource = uniqueResource();
    const renewals: number[] = [];
    client.on('renewed', (lease, validityMs) => lease.resource === resource && renewals.push(validityMs));
    const lease = await client.acquire(resource, { ttlMs: 300 });
    await waitFor('8 renewals (8 × 100 ms > 2 ttl)', () => renewals.length >= 8, 10_000);
    expect(lease.isHeld()).toBe(true);
    expect(lease.signal.aborted).toBe(false);
    for (const validity of renewals) expect(validity).toBeGreaterThan(0);
    expect((await client.describe(resource)).fencingToken).toBe(lease.fencingToken);
    const extended = logs.filter((l) => l.event === 'extended' && l.resource === resource);
    expect(extended.length).toBeGreaterThanOrEqual(8);
    expect(new Set(extended.map((l) => l.token))).toEqual(new Set([lease.fencingToken]));

    // Releasing an attached lease is not a loss, though the server also tells its stream about the release.
    const lost: unknown[] = [];
    client.on('lost', (_lease, error) => lost.push(error));
    expect(await lease.release()).toBe(true);
    expect(lease.signal.reason).toBeInstanceOf(LeaseReleasedError);
    await client.describe(resource); // one more round trip, for a LOST notice in flight to arrive
    expect(lost).toEqual([]);
  });

  it('a lease whose signal is never read still ends: untracked, "lost" emitted, and the signal read later is aborted with that reason', async () => {
    const { client, lock, resource, lost, lease } = await attachedLease();
    expect(client.heldLeases).toBe(1);
    await lock.release({ resource, lockId: lease.lockId });
    await waitFor('the loss to be heard', () => lost.length === 1);
    expect(client.heldLeases).toBe(0);
    expect(lease.isHeld()).toBe(false);
    expect(lease.signal.aborted).toBe(true);
    expect(lease.signal.reason).toBe(lost[0]);
    expect(() => lease.throwIfLost()).toThrow(lost[0]);

    // Released, signal unread: its reason is a LeaseReleasedError without stack frames (the normal end).
    const second = await client.acquire(uniqueResource());
    expect(await second.release()).toBe(true);
    expect(client.heldLeases).toBe(0);
    expect(second.signal.reason).toBeInstanceOf(LeaseReleasedError);
    expect(String(second.signal.reason.stack).split('\n')).toHaveLength(1);
    expect(lost).toHaveLength(1);
  });

  it('lock ids are 32 lowercase hex characters and never repeat, across refills of the random pool', async () => {
    // 300 acquires at once are 900 scripts in one burst: on a loaded machine they outrun the default 100 ms node
    // timeout, and timed-out nodes are reconnected. This test is about lock ids, not slow nodes.
    const { address } = await startTestServer(['--node-timeout-ms', '2000']);
    const client = sdk(address);
    const leases = await Promise.all(
      Array.from({ length: 300 }, () => client.acquire(uniqueResource(), { autoRenew: false })),
    );
    for (const lease of leases) expect(lease.lockId).toMatch(/^[0-9a-f]{32}$/);
    expect(new Set(leases.map((l) => l.lockId)).size).toBe(300);
    await Promise.all(leases.map((l) => l.release()));
  });

  it('a release behind the SDK’s back (its lock id, another call) aborts the signal at once with LeaseLostError; release then answers false', async () => {
    const { lock, resource, lost, lease } = await attachedLease();
    await lock.release({ resource, lockId: lease.lockId });
    const reason = await aborted(lease);
    expect(reason).toBeInstanceOf(LeaseLostError);
    expect(reason).toMatchObject({ kind: 'lost', fencingToken: lease.fencingToken });
    expect(lost).toHaveLength(1);
    expect(lease.isHeld()).toBe(false);
    expect(() => lease.throwIfLost()).toThrow(LeaseLostError);
    expect(await lease.release()).toBe(false);
  });

  it('extend renews on demand and can change the ttl; extending a released lease rejects with its reason', async () => {
    const { address } = await startTestServer();
    const client = sdk(address);
    const lease = await client.acquire(uniqueResource(), { ttlMs: 2_000, autoRenew: false });
    await lease.extend(8_000);
    expect(lease.ttlMs).toBe(8_000);
    expect(lease.remainingMs).toBeGreaterThan(2_000);
    await lease.release();
    await rejection(lease.extend(), LeaseReleasedError);
  });

  it('without auto-renewal a lease ends by its own deadline (expired), not later', async () => {
    const { address } = await startTestServer();
    const client = sdk(address);
    const lease = await client.acquire(uniqueResource(), { ttlMs: 300, autoRenew: false });
    const reason = await aborted(lease);
    expect(reason).toMatchObject({ kind: 'expired' });
    expect(lease.remainingMs).toBe(0);
  });

  it('withLock runs the function under the lease, passes its signal, and releases it afterwards', async () => {
    const { address } = await startTestServer();
    const client = sdk(address);
    const resource = uniqueResource();
    const result = await client.withLock(resource, async (signal, lease) => {
      expect(signal).toBe(lease.signal);
      expect((await client.describe(resource)).fencingToken).toBe(lease.fencingToken);
      return 42;
    });
    expect(result).toBe(42);
    expect((await client.describe(resource)).locked).toBe(false);

    const failure = new Error('work failed');
    expect(
      await rejection(
        client.withLock(resource, () => {
          throw failure;
        }),
        Error,
      ),
    ).toBe(failure);
    expect((await client.describe(resource)).locked).toBe(false);
  });

  it('withLock rejects with LeaseLostError when the lease is lost before the function finishes', async () => {
    const { address, lock } = await startTestServer();
    const client = sdk(address);
    const resource = uniqueResource();
    const error = await rejection(
      client.withLock(resource, async (signal, lease) => {
        await lock.release({ resource, lockId: lease.lockId }); // someone ends it (here: directly)
        await lease.extend().catch(() => undefined); // the next renewal finds out
        expect(signal.aborted).toBe(true);
        return 'done anyway';
      }),
      LeaseLostError,
    );
    expect(error.resource).toBe(resource);
  });

  it('bad input is an InvalidArgumentError naming the field; nothing is retried', async () => {
    const { address } = await startTestServer();
    const client = sdk(address);
    const badName = await rejection(client.acquire('has space'), InvalidArgumentError);
    expect(badName.message).toMatch(/^INVALID_ARGUMENT: resource/);
    expect(badName.reason).toMatch(/^RESOURCE_NAME_/);
    const badTtl = await rejection(client.acquire(uniqueResource(), { ttlMs: 99 }), InvalidArgumentError);
    expect(badTtl.message).toMatch(/ttl_ms/);
    const badWait = await rejection(
      client.acquire(uniqueResource(), { waitMs: 400_000 }),
      InvalidArgumentError,
    );
    expect(badWait.message).toMatch(/wait_timeout_ms/);
  });

  it('without a quorum, acquire retries and then rejects with UnavailableError (QUORUM_UNAVAILABLE)', async () => {
    const { address, nodes, logs } = await startTestServer();
    const client = sdk(address, { retry: { attempts: 3, initialDelayMs: 20, maxDelayMs: 40 } });
    await nodes[1].stop();
    await nodes[2].stop();
    const resource = uniqueResource();
    const error = await rejection(client.acquire(resource), UnavailableError);
    expect(error).toMatchObject({ code: 'UNAVAILABLE', reason: 'QUORUM_UNAVAILABLE' });
    expect(error.message).toMatch(/quorum/);
    expect(logs.filter((l) => l.event === 'acquired' && l.resource === resource)).toHaveLength(0);
  });

  it('a cancelled waiting acquire rejects with AbortError and leaves the queue', async () => {
    const { address } = await startTestServer();
    const client = sdk(address);
    const resource = uniqueResource();
    await client.acquire(resource);
    const controller = new AbortController();
    const waiting = client.acquire(resource, { waitMs: 20_000, signal: controller.signal });
    await waitFor('the waiter to queue', async () => (await client.describe(resource)).waiters === 1);
    controller.abort();
    const error = await waiting.catch((e: unknown) => e);
    expect(isAbortError(error)).toBe(true);
    await waitFor('the queue to empty', async () => (await client.describe(resource)).waiters === 0);
  });

  it('sends its bearer token and talks TLS; a wrong token is an AuthError (UNAUTHENTICATED)', async () => {
    const fixture = (name: string) => new URL(`./fixtures/tls/${name}`, import.meta.url).pathname;
    const { address } = await startTestServer(
      ['--tls-cert-file', fixture('server.pem'), '--tls-key-file', fixture('server-key.pem')],
      { env: { REDLEASE_CLIENT_TOKENS: 'sdk-token-0123456789' } },
    );
    const tls = { ca: readFileSync(fixture('ca.pem')) };
    const good = sdk(address, { tls, token: 'sdk-token-0123456789' });
    const lease = await good.acquire(uniqueResource());
    expect(await lease.release()).toBe(true);
    const bad = sdk(address, { tls, token: 'wrong-token-0123456789' });
    const error = await rejection(bad.acquire(uniqueResource()), AuthError);
    expect(error.code).toBe('UNAUTHENTICATED');
  });

  it('close() releases the leases still held, aborts their signals, and refuses further calls', async () => {
    const { address } = await startTestServer();
    const client = new LockClient({ address, transport });
    const resources = [uniqueResource(), uniqueResource()];
    const leases = await Promise.all(resources.map((r) => client.acquire(r)));
    await client.close();
    for (const lease of leases) expect(lease.signal.reason).toBeInstanceOf(LeaseReleasedError);
    const observer = sdk(address);
    for (const r of resources) expect((await observer.describe(r)).locked).toBe(false);
    await expect(client.acquire(resources[0]!)).rejects.toThrow(/closed/);
    await client.close(); // idempotent
  });
});
