/**
 * Leases under control (issue 24): every LossReason produced for real on a real server over real Redis nodes, as a
 * plain gRPC client sees it (KeepAliveResponse.loss_reason) and as the SDK surfaces it (LeaseLostError.reason);
 * the SDK's jeopardy event and lease.assertValidFor().
 */
import { ClientError, Status } from 'nice-grpc';
import { describe, expect, it, onTestFinished } from 'vitest';
import {
  type Lease,
  LeaseExpiringError,
  LeaseLostError,
  LeaseReleasedError,
  LockClient,
  type LockClientOptions,
} from '../client/src/index.js';
import { Mode } from '../gen/redlease/v1/admin.js';
import { LeaseState, LossReason } from '../gen/redlease/v1/lock.js';
import { openStream } from './support/keepalive-stream.js';
import { startTestServer, type TestServer, uniqueResource, waitFor } from './support/server.js';

/** Freezes nodes 2 and 3 (SIGSTOP) until the test ends: no quorum, and every call waits out the node timeout. */
async function pauseTwo(nodes: TestServer['nodes']): Promise<void> {
  await nodes[1].pause();
  await nodes[2].pause();
  onTestFinished(async () => {
    await nodes[1].resume();
    await nodes[2].resume();
  });
}

function sdk(address: string, options: Partial<LockClientOptions> = {}): LockClient {
  const client = new LockClient({ address, clientId: 'lease-control', ...options });
  onTestFinished(() => client.close({ release: false }));
  return client;
}

/** Resolves with the LeaseLostError once the lease's signal aborts with one (bounded). */
async function lostError(lease: Lease, timeoutMs = 5_000): Promise<LeaseLostError> {
  const reason = await waitFor(
    'the lease to end',
    () => (lease.signal.aborted ? { error: lease.signal.reason as unknown } : undefined),
    timeoutMs,
  );
  expect(reason.error).toBeInstanceOf(LeaseLostError);
  return reason.error as LeaseLostError;
}

describe('loss reasons on the wire (plain gRPC KeepAlive)', () => {
  it('stop renewing: LOST carries LOSS_REASON_EXPIRED', async () => {
    const { lock } = await startTestServer();
    const resource = uniqueResource('expire');
    const { lease } = await lock.acquire({ resource, ttlMs: 500 });
    const stream = openStream(lock);
    stream.send({ resource, lockId: lease!.lockId, ttlMs: 500 });
    expect(await stream.nth(1)).toMatchObject({
      state: LeaseState.LEASE_STATE_HELD,
      lossReason: LossReason.LOSS_REASON_UNSPECIFIED,
    });
    const lost = await stream.nth(2, 3_000);
    expect(lost).toMatchObject({
      state: LeaseState.LEASE_STATE_LOST,
      lossReason: LossReason.LOSS_REASON_EXPIRED,
      fencingToken: lease!.fencingToken,
    });
    expect(lost.reason).toMatch(/validity ran out/);
  });

  it('two nodes stopped during renewals: LOST carries LOSS_REASON_RENEWAL_FAILED', async () => {
    const { lock, nodes } = await startTestServer();
    const resource = uniqueResource('renewfail');
    const ttlMs = 600;
    const { lease } = await lock.acquire({ resource, ttlMs });
    const stream = openStream(lock);
    stream.send({ resource, lockId: lease!.lockId, ttlMs });
    expect((await stream.nth(1)).state).toBe(LeaseState.LEASE_STATE_HELD);
    await pauseTwo(nodes);
    // Keep renewing (each waits out the node timeout and fails) until LOST arrives, answered or pushed.
    for (let n = 2; ; n++) {
      stream.send({ resource, lockId: lease!.lockId, ttlMs });
      const answer = await stream.nth(n, 3_000);
      if (answer.state !== LeaseState.LEASE_STATE_HELD) break;
      expect(answer.reason).toMatch(/renewal failed/);
      if (n > 50) throw new Error('no LOST after 50 failed renewals');
    }
    const lost = stream.received.find((r) => r.state === LeaseState.LEASE_STATE_LOST)!;
    expect(lost.lossReason).toBe(LossReason.LOSS_REASON_RENEWAL_FAILED);
  });

  it('a renewal failed for want of a quorum, then none: the LOST pushed at the deadline is RENEWAL_FAILED', async () => {
    const { lock, nodes } = await startTestServer();
    const resource = uniqueResource('renewfail-push');
    const ttlMs = 800;
    const { lease } = await lock.acquire({ resource, ttlMs });
    const stream = openStream(lock);
    stream.send({ resource, lockId: lease!.lockId, ttlMs });
    expect((await stream.nth(1)).state).toBe(LeaseState.LEASE_STATE_HELD);
    await pauseTwo(nodes);
    stream.send({ resource, lockId: lease!.lockId, ttlMs });
    const failed = await stream.nth(2);
    expect(failed).toMatchObject({ state: LeaseState.LEASE_STATE_HELD });
    expect(failed.reason).toMatch(/renewal failed/);
    // No more renewals: the server's deadline timer pushes LOST unasked.
    expect(await stream.nth(3, 3_000)).toMatchObject({
      state: LeaseState.LEASE_STATE_LOST,
      lossReason: LossReason.LOSS_REASON_RENEWAL_FAILED,
    });
  });

  it('a grant to another lock id: LOST carries LOSS_REASON_TAKEN_OVER; a late renewal finding it gone is EXPIRED', async () => {
    const { lock, cluster } = await startTestServer();
    const resource = uniqueResource('takeover');
    const { lease: old } = await lock.acquire({ resource, ttlMs: 8_000 });
    const stream = openStream(lock);
    stream.send({ resource, lockId: old!.lockId, ttlMs: 8_000 });
    expect((await stream.nth(1)).state).toBe(LeaseState.LEASE_STATE_HELD);
    // As if every node's clock had jumped past the expiry: the keys vanish behind the server's back.
    for (const node of cluster.nodes) await node.command('DEL', `lk:${resource}`, `lkh:${resource}`);
    await lock.acquire({ resource, ttlMs: 8_000 });
    expect(await stream.nth(2)).toMatchObject({
      state: LeaseState.LEASE_STATE_LOST,
      lossReason: LossReason.LOSS_REASON_TAKEN_OVER,
    });
    stream.send({ resource, lockId: old!.lockId, ttlMs: 8_000 });
    expect(await stream.nth(3)).toMatchObject({
      state: LeaseState.LEASE_STATE_LOST,
      lossReason: LossReason.LOSS_REASON_EXPIRED,
    });
  });
});

describe('loss reasons, jeopardy and assertValidFor in the SDK', () => {
  it('a lease not renewed is lost with reason EXPIRED', async () => {
    const { address } = await startTestServer();
    const client = sdk(address);
    const lease = await client.acquire(uniqueResource('sdk-expire'), { ttlMs: 400, autoRenew: false });
    const error = await lostError(lease);
    expect(error.reason).toBe('EXPIRED');
  });

  it('renewals failing for want of a quorum: jeopardy fires before the loss, which is RENEWAL_FAILED', async () => {
    const { address, nodes } = await startTestServer();
    const client = sdk(address);
    const ttlMs = 900;
    const lease = await client.acquire(uniqueResource('sdk-renewfail'), { ttlMs });
    const events: string[] = [];
    lease.on('jeopardy', (remainingMs) => {
      events.push('jeopardy');
      expect(remainingMs).toBeGreaterThan(0);
      expect(remainingMs).toBeLessThan(ttlMs / 3 + 1);
      expect(lease.isHeld()).toBe(true);
    });
    client.on('lost', (lost) => lost === lease && events.push('lost'));
    await pauseTwo(nodes);
    const error = await lostError(lease, 5_000);
    expect(error.reason).toBe('RENEWAL_FAILED');
    expect(events).toEqual(['jeopardy', 'lost']);
  });

  it('a lease renewed in time never enters jeopardy', async () => {
    const { address } = await startTestServer();
    const client = sdk(address);
    const ttlMs = 600;
    const lease = await client.acquire(uniqueResource('sdk-healthy'), { ttlMs });
    let jeopardy = 0;
    lease.on('jeopardy', () => jeopardy++);
    let renewals = 0;
    client.on('renewed', (renewed) => renewed === lease && renewals++);
    // Three ttls of renewals: the remaining validity never drops below a third of the ttl.
    await waitFor('six renewals', () => renewals >= 6, 5_000);
    expect(jeopardy).toBe(0);
    expect(lease.isHeld()).toBe(true);
    await lease.release();
  });

  it('a lease taken over is lost with reason TAKEN_OVER', async () => {
    const { address, cluster } = await startTestServer();
    const client = sdk(address);
    const resource = uniqueResource('sdk-takeover');
    let renewed = false;
    client.on('renewed', () => (renewed = true));
    const lease = await client.acquire(resource, { ttlMs: 1_500 });
    // Wait for the lease to be on the KeepAlive stream (its first renewal), so the server can push to it.
    await waitFor('a renewal', () => renewed, 5_000);
    for (const node of cluster.nodes) await node.command('DEL', `lk:${resource}`, `lkh:${resource}`);
    const other = sdk(address);
    const next = await other.acquire(resource, { ttlMs: 8_000 });
    const error = await lostError(lease);
    expect(error.reason).toBe('TAKEN_OVER');
    expect(next.fencingToken).toBeGreaterThan(lease.fencingToken);
  });

  it('assertValidFor passes with time to spare, throws LeaseExpiringError without, and the end reason after', async () => {
    const { address } = await startTestServer();
    const client = sdk(address);
    const lease = await client.acquire(uniqueResource('sdk-assert'), { ttlMs: 2_000 });
    expect(() => lease.assertValidFor(100)).not.toThrow();
    let thrown: unknown;
    try {
      lease.assertValidFor(5_000);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(LeaseExpiringError);
    expect(thrown).toMatchObject({ neededMs: 5_000, fencingToken: lease.fencingToken });
    expect((thrown as LeaseExpiringError).remainingMs).toBeLessThan(2_000);
    await lease.release();
    expect(() => lease.assertValidFor(1)).toThrow(LeaseReleasedError);
  });
});

describe('hold cap', () => {
  it('a kept-alive lease is not renewed past max_hold_ms: LOST with LOSS_REASON_HOLD_CAP, lock gone by the cap', async () => {
    const { lock } = await startTestServer();
    const resource = uniqueResource('cap');
    const ttlMs = 600;
    const maxHoldMs = 1_000;
    const sent = performance.now();
    const { lease } = await lock.acquire({ resource, ttlMs, maxHoldMs });
    const stream = openStream(lock);
    // Renew back to back (each answer before the next request) until LOST.
    for (let n = 1; ; n++) {
      stream.send({ resource, lockId: lease!.lockId, ttlMs });
      const answer = await stream.nth(n, 3_000);
      if (answer.state !== LeaseState.LEASE_STATE_HELD) break;
      expect(answer.reason).toBe('');
      // Never renewed past the cap: the deadline a renewal grants stays within it.
      expect(performance.now() - sent - answer.validityMs).toBeLessThan(maxHoldMs);
      if (n > 500) throw new Error('no LOST after 500 renewals');
    }
    const lost = stream.received.at(-1)!;
    expect(lost).toMatchObject({
      state: LeaseState.LEASE_STATE_LOST,
      lossReason: LossReason.LOSS_REASON_HOLD_CAP,
    });
    expect(performance.now() - sent).toBeGreaterThanOrEqual(maxHoldMs - ttlMs);
    // The nodes forget it by the cap (plus the clock-drift allowance): nobody renewed it past it.
    await waitFor('the lock to expire', async () => !(await lock.describe({ resource })).locked, 2_000);
    expect(performance.now() - sent).toBeLessThan(maxHoldMs + 1_000);
  });

  it('a lease not renewed after its last capped renewal is pushed LOST{HOLD_CAP} at its deadline', async () => {
    const { lock } = await startTestServer();
    const resource = uniqueResource('cap-push');
    const { lease } = await lock.acquire({ resource, ttlMs: 2_000, maxHoldMs: 700 });
    expect(lease!.validityMs).toBeLessThanOrEqual(700); // the ttl was shortened to the cap
    const stream = openStream(lock);
    stream.send({ resource, lockId: lease!.lockId, ttlMs: 2_000 });
    const held = await stream.nth(1);
    expect(held.state).toBe(LeaseState.LEASE_STATE_HELD);
    expect(held.validityMs).toBeLessThan(700);
    expect(await stream.nth(2, 3_000)).toMatchObject({
      state: LeaseState.LEASE_STATE_LOST,
      lossReason: LossReason.LOSS_REASON_HOLD_CAP,
    });
  });

  it('the smaller of --max-hold-ms and max_hold_ms wins; Extend at the cap is FAILED_PRECONDITION', async () => {
    const { lock } = await startTestServer(['--max-hold-ms', '800']);
    const serverCapped = await lock.acquire({
      resource: uniqueResource('srv'),
      ttlMs: 5_000,
      maxHoldMs: 4_000,
    });
    expect(serverCapped.lease!.validityMs).toBeLessThanOrEqual(800);
    const requestCapped = await lock.acquire({
      resource: uniqueResource('req'),
      ttlMs: 5_000,
      maxHoldMs: 300,
    });
    expect(requestCapped.lease!.validityMs).toBeLessThanOrEqual(300);
    const uncapped = await lock.acquire({ resource: uniqueResource('none'), ttlMs: 5_000 });
    expect(uncapped.lease!.validityMs).toBeLessThanOrEqual(800);
    expect([serverCapped, requestCapped, uncapped].map((a) => a.lease!.maxHoldMs)).toEqual([800, 300, 800]);
    const { resource, lockId } = requestCapped.lease!;
    // Less than the smallest ttl (100 ms) of the cap is left once the first validity has run out.
    await waitFor('the cap to be reached', async () => {
      try {
        await lock.extend({ resource, lockId, ttlMs: 5_000 });
        return false;
      } catch (error) {
        expect(error).toBeInstanceOf(ClientError);
        expect((error as ClientError).code).toBe(Status.FAILED_PRECONDITION);
        expect((error as ClientError).details).toMatch(/hold cap/);
        return true;
      }
    });
  });

  it('max_hold_ms below the smallest ttl is INVALID_ARGUMENT naming the field', async () => {
    const { lock } = await startTestServer();
    const error = await lock
      .acquire({ resource: uniqueResource('bad'), maxHoldMs: 50 })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ClientError);
    expect((error as ClientError).code).toBe(Status.INVALID_ARGUMENT);
    expect((error as ClientError).details).toMatch(/^max_hold_ms: /);
  });

  it('the SDK surfaces the cap as reason HOLD_CAP', async () => {
    const { address } = await startTestServer();
    const client = sdk(address);
    const started = performance.now();
    const lease = await client.acquire(uniqueResource('sdk-cap'), { ttlMs: 450, maxHoldMs: 1_200 });
    const error = await lostError(lease, 5_000);
    expect(error.reason).toBe('HOLD_CAP');
    expect(performance.now() - started).toBeLessThan(1_200 + 500);
  });
});

describe('a safe mode switch', () => {
  it('SetMode without force while leases are live is refused, naming how many, and nothing changes', async () => {
    const { lock, admin } = await startTestServer();
    const resources = [uniqueResource('live-a'), uniqueResource('live-b')];
    const leases = await Promise.all(resources.map((resource) => lock.acquire({ resource, ttlMs: 5_000 })));
    const stream = openStream(lock);
    const first = leases[0]!.lease!;
    stream.send({ resource: first.resource, lockId: first.lockId, ttlMs: 5_000 });
    expect((await stream.nth(1)).state).toBe(LeaseState.LEASE_STATE_HELD);

    const error = await admin.setMode({ mode: Mode.MODE_SINGLE }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ClientError);
    expect((error as ClientError).code).toBe(Status.FAILED_PRECONDITION);
    expect((error as ClientError).details).toMatch(/^2 leases are live/);

    expect((await admin.getMode({})).mode).toBe(Mode.MODE_REDLOCK);
    for (const { lease } of leases) {
      expect(await lock.describe({ resource: lease!.resource })).toMatchObject({
        locked: true,
        fencingToken: lease!.fencingToken,
      });
    }
    stream.send({ resource: first.resource, lockId: first.lockId, ttlMs: 5_000 });
    expect(await stream.nth(2)).toMatchObject({ state: LeaseState.LEASE_STATE_HELD, reason: '' });
    expect(stream.received).toHaveLength(2); // no LOST was pushed
  });

  it('SetMode with force pushes LOST{MODE_SWITCH}, deletes the locks, switches, and a waiter is granted', async () => {
    const { lock, admin } = await startTestServer();
    const resource = uniqueResource('forced');
    const { lease } = await lock.acquire({ resource, ttlMs: 5_000 });
    const stream = openStream(lock);
    stream.send({ resource, lockId: lease!.lockId, ttlMs: 5_000 });
    expect((await stream.nth(1)).state).toBe(LeaseState.LEASE_STATE_HELD);
    const waiter = lock.acquire({ resource, ttlMs: 5_000, waitTimeoutMs: 8_000 });

    expect(await admin.setMode({ mode: Mode.MODE_SINGLE, force: true })).toEqual({
      mode: Mode.MODE_SINGLE,
      leasesEnded: 1,
    });
    expect(await stream.nth(2)).toMatchObject({
      state: LeaseState.LEASE_STATE_LOST,
      lossReason: LossReason.LOSS_REASON_MODE_SWITCH,
      fencingToken: lease!.fencingToken,
    });
    // The waiter is granted under the new mode, by node 1 alone.
    const granted = (await waiter).lease!;
    expect(granted).toMatchObject({ quorum: 1, nodes: ['redis-1'] });
    expect(granted.fencingToken).toBeGreaterThan(lease!.fencingToken);
    // The old lease is gone: its renewal is LOST.
    stream.send({ resource, lockId: lease!.lockId, ttlMs: 5_000 });
    expect((await stream.nth(3)).state).toBe(LeaseState.LEASE_STATE_LOST);
  });

  it('the SDK surfaces a forced mode switch as reason MODE_SWITCH', async () => {
    const { address, admin } = await startTestServer();
    const client = sdk(address);
    let renewed = false;
    client.on('renewed', () => (renewed = true));
    const lease = await client.acquire(uniqueResource('sdk-mode'), { ttlMs: 1_500 });
    await waitFor('a renewal', () => renewed, 5_000); // on the KeepAlive stream now
    await admin.setMode({ mode: Mode.MODE_SINGLE, force: true });
    const error = await lostError(lease, 2_000);
    expect(error.reason).toBe('MODE_SWITCH');
  });
});
