import { spawn } from 'node:child_process';
import { ClientError, Status } from 'nice-grpc';
import { describe, expect, it, onTestFinished } from 'vitest';
import { type KeepAliveResponse, LeaseState } from '../gen/redlease/v1/lock.js';
import { newLockId } from '../server/redlock/index.js';
import { openStream } from './support/keepalive-stream.js';
import { startTestServer, uniqueResource, waitFor } from './support/server.js';

/** Freezes nodes 2 and 3 (SIGSTOP) until the test ends: no quorum, and every call waits out the node timeout. */
async function pauseTwo(nodes: Awaited<ReturnType<typeof startTestServer>>['nodes']): Promise<void> {
  await nodes[1].pause();
  await nodes[2].pause();
  onTestFinished(async () => {
    await nodes[1].resume();
    await nodes[2].resume();
  });
}

describe('KeepAlive lease streams', () => {
  it('keeps a lock alive well past its ttl; when renewals stop, LOST is pushed and the lock expires', async () => {
    const { lock, server } = await startTestServer();
    const resource = uniqueResource('kept');
    const ttlMs = 600;
    const { lease } = await lock.acquire({ resource, ttlMs });
    const stream = openStream(lock);
    // Renew every 200 ms for 2.4 s: four ttls.
    for (let i = 1; i <= 12; i++) {
      stream.send({ resource, lockId: lease!.lockId, ttlMs });
      const answer = await stream.nth(i);
      expect(answer).toMatchObject({
        resource,
        lockId: lease!.lockId,
        state: LeaseState.LEASE_STATE_HELD,
        fencingToken: lease!.fencingToken,
        reason: '',
      });
      expect(answer.validityMs).toBeGreaterThan(0);
      expect(answer.validityMs).toBeLessThanOrEqual(ttlMs);
      // The client's renewal interval: renewing every 200 ms across four ttls is the behaviour under test.
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(await lock.describe({ resource })).toMatchObject({
      locked: true,
      fencingToken: lease!.fencingToken,
    });
    // Stop renewing (the stream stays open): the server pushes LOST unasked at the deadline.
    const lost = await stream.nth(13, 3_000);
    expect(lost).toMatchObject({
      resource,
      state: LeaseState.LEASE_STATE_LOST,
      fencingToken: lease!.fencingToken,
    });
    expect(lost.reason).toMatch(/validity ran out/);
    await waitFor('the lock to expire', async () => !(await lock.describe({ resource })).locked, 3_000);
    expect(server.coordinator.status().quorumAvailable).toBe(true);
  });

  it('a lease taken over after expiry is pushed as LOST on the old holder’s stream', async () => {
    const { lock } = await startTestServer();
    const resource = uniqueResource();
    const { lease: old } = await lock.acquire({ resource, ttlMs: 500 });
    const stream = openStream(lock);
    stream.send({ resource, lockId: old!.lockId, ttlMs: 500 });
    expect((await stream.nth(1)).state).toBe(LeaseState.LEASE_STATE_HELD);
    const { lease: next } = await lock.acquire({ resource, ttlMs: 5_000, waitTimeoutMs: 5_000 });
    expect(next!.fencingToken).toBeGreaterThan(old!.fencingToken);
    const pushed = await stream.nth(2);
    expect(pushed).toMatchObject({ lockId: old!.lockId, state: LeaseState.LEASE_STATE_LOST });
    // A late renewal of the old lease is answered LOST too, and the stream stays usable.
    stream.send({ resource, lockId: old!.lockId, ttlMs: 500 });
    expect(await stream.nth(3)).toMatchObject({ state: LeaseState.LEASE_STATE_LOST });
    expect((await stream.nth(3)).reason).toMatch(/does not hold/);
  });

  it('a takeover before the old deadline (keys lost behind the server’s back) is pushed at once', async () => {
    const { lock, cluster } = await startTestServer();
    const resource = uniqueResource();
    const { lease: old } = await lock.acquire({ resource, ttlMs: 8_000 });
    const stream = openStream(lock);
    stream.send({ resource, lockId: old!.lockId, ttlMs: 8_000 });
    expect((await stream.nth(1)).state).toBe(LeaseState.LEASE_STATE_HELD);
    // As if every node's clock had jumped past the expiry (as one node's does in chaos scenario F14).
    for (const node of cluster.nodes) await node.command('DEL', `lk:${resource}`, `lkh:${resource}`);
    const { lease: next } = await lock.acquire({ resource, ttlMs: 8_000 });
    const pushed = await stream.nth(2);
    expect(pushed).toMatchObject({ state: LeaseState.LEASE_STATE_LOST, fencingToken: old!.fencingToken });
    expect(pushed.reason).toBe(
      `taken over: another lease was granted this resource with fencing token ${next!.fencingToken}`,
    );
  });

  it('carries several leases; release: true answers RELEASED; an unknown lease is LOST and the stream goes on', async () => {
    const { lock } = await startTestServer();
    const resources = [uniqueResource('a'), uniqueResource('b'), uniqueResource('c')];
    const leases = await Promise.all(resources.map((resource) => lock.acquire({ resource, ttlMs: 3_000 })));
    const stream = openStream(lock);
    for (const { lease } of leases)
      stream.send({ resource: lease!.resource, lockId: lease!.lockId, ttlMs: 3_000 });
    await stream.nth(3);
    expect(stream.received.map((r) => r.state)).toEqual(Array(3).fill(LeaseState.LEASE_STATE_HELD));
    expect(new Set(stream.received.map((r) => r.resource))).toEqual(new Set(resources));

    const first = leases[0]!.lease!;
    stream.send({ resource: first.resource, lockId: first.lockId, release: true });
    expect(await stream.nth(4)).toMatchObject({
      resource: first.resource,
      state: LeaseState.LEASE_STATE_RELEASED,
      fencingToken: first.fencingToken,
    });
    expect((await lock.describe({ resource: first.resource })).locked).toBe(false);
    stream.send({ resource: first.resource, lockId: first.lockId, release: true });
    expect(await stream.nth(5)).toMatchObject({ state: LeaseState.LEASE_STATE_LOST });

    stream.send({ resource: uniqueResource(), lockId: newLockId() });
    const unknown = await stream.nth(6);
    expect(unknown).toMatchObject({ state: LeaseState.LEASE_STATE_LOST, fencingToken: 0 });
    expect(unknown.reason).toMatch(/does not hold/);
    const second = leases[1]!.lease!;
    stream.send({ resource: second.resource, lockId: second.lockId });
    expect(await stream.nth(7)).toMatchObject({
      resource: second.resource,
      state: LeaseState.LEASE_STATE_HELD,
    });
    stream.halfClose();
    await stream.done;
    expect(stream.error).toBeUndefined();
    // Ending the stream released nothing.
    expect((await lock.describe({ resource: second.resource })).locked).toBe(true);
  });

  it('a renewal that cannot reach a quorum answers HELD with what is left of the validity, then LOST at the deadline', async () => {
    const { lock, nodes, server } = await startTestServer();
    const resource = uniqueResource();
    const { lease } = await lock.acquire({ resource, ttlMs: 1_500 });
    const stream = openStream(lock);
    stream.send({ resource, lockId: lease!.lockId, ttlMs: 1_500 });
    const renewed = await stream.nth(1);
    await nodes[1].pause();
    await nodes[2].pause();
    onTestFinished(async () => {
      await nodes[1].resume();
      await nodes[2].resume();
    });
    stream.send({ resource, lockId: lease!.lockId, ttlMs: 1_500 });
    const degraded = await stream.nth(2);
    expect(degraded.state).toBe(LeaseState.LEASE_STATE_HELD);
    expect(degraded.reason).toMatch(/^renewal failed, retry: extend: quorum unavailable/);
    expect(degraded.validityMs).toBeGreaterThan(0);
    expect(degraded.validityMs).toBeLessThan(renewed.validityMs);
    // On a stream that never renewed it, the server knows no earlier validity: HELD, 0, with the reason.
    const fresh = openStream(lock);
    fresh.send({ resource, lockId: lease!.lockId, ttlMs: 1_500 });
    expect(await fresh.nth(1)).toMatchObject({
      state: LeaseState.LEASE_STATE_HELD,
      validityMs: 0,
      validUntilMs: 0,
    });
    expect((await fresh.nth(1)).reason).toMatch(/^renewal failed, retry: extend: quorum unavailable/);
    const lost = await stream.nth(3, 3_000);
    expect(lost.state).toBe(LeaseState.LEASE_STATE_LOST);
    expect(server.coordinator.status().quorumAvailable).toBe(false);
  });

  it('a renewal failed for want of a quorum never reports validity beyond the last successful renewal', async () => {
    // Regression: what was left was counted from the failed attempt's start, so the answer added its ~100 ms.
    const { lock, nodes } = await startTestServer();
    const resource = uniqueResource();
    const { lease } = await lock.acquire({ resource, ttlMs: 2_000 });
    const stream = openStream(lock);
    stream.send({ resource, lockId: lease!.lockId, ttlMs: 2_000 });
    const renewed = await stream.nth(1);
    await pauseTwo(nodes); // each renewal now waits out the node timeout (100 ms) on two nodes
    stream.send({ resource, lockId: lease!.lockId, ttlMs: 2_000 });
    const degraded = await stream.nth(2);
    expect(degraded.state).toBe(LeaseState.LEASE_STATE_HELD);
    expect(degraded.validUntilMs).toBeLessThanOrEqual(renewed.validUntilMs);
  });

  it('a lease whose last renewal failed across its deadline is still pushed LOST once the holder stops', async () => {
    // Regression: the deadline timer defers to a renewal in flight, and a HELD-but-failed answer did not re-arm
    // it, so a holder that stopped renewing then was never told.
    const { lock, nodes } = await startTestServer();
    const resource = uniqueResource();
    const ttlMs = 600;
    const { lease } = await lock.acquire({ resource, ttlMs });
    const stream = openStream(lock);
    stream.send({ resource, lockId: lease!.lockId, ttlMs });
    const renewed = await stream.nth(1);
    await pauseTwo(nodes);
    // Renew back to back until an answer comes after the last good deadline (or LOST); then stop renewing.
    for (let n = 2; ; n++) {
      stream.send({ resource, lockId: lease!.lockId, ttlMs });
      const answer = await stream.nth(n);
      if (answer.state !== LeaseState.LEASE_STATE_HELD || Date.now() > renewed.validUntilMs) break;
    }
    await waitFor(
      'LOST on the stream',
      () => stream.received.some((r) => r.state === LeaseState.LEASE_STATE_LOST),
      1_500,
    );
  });

  it('a malformed request ends the stream with INVALID_ARGUMENT naming the field', async () => {
    const { lock } = await startTestServer();
    const stream = openStream(lock);
    stream.send({ resource: 'fine', lockId: 'not-a-lock-id' });
    await stream.done;
    expect(stream.error).toBeInstanceOf(ClientError);
    expect((stream.error as ClientError).code).toBe(Status.INVALID_ARGUMENT);
    expect((stream.error as ClientError).details).toMatch(/^lock_id must be 32 lowercase hex characters/);
  });

  it('RESOURCE_EXHAUSTED past the leases-per-stream and the streams limits', async () => {
    const { lock } = await startTestServer(['--max-leases-per-stream', '2', '--max-streams', '1']);
    const leases = await Promise.all(
      [1, 2, 3].map(() => lock.acquire({ resource: uniqueResource(), ttlMs: 3_000 })),
    );
    const stream = openStream(lock);
    stream.send({ resource: leases[0]!.lease!.resource, lockId: leases[0]!.lease!.lockId });
    await stream.nth(1);
    const second = openStream(lock);
    await second.done;
    expect((second.error as ClientError).code).toBe(Status.RESOURCE_EXHAUSTED);
    expect((second.error as ClientError).details).toMatch(/too many KeepAlive streams: .* limit of 1/);
    for (const { lease } of leases.slice(1))
      stream.send({ resource: lease!.resource, lockId: lease!.lockId });
    await stream.done;
    expect((stream.error as ClientError).code).toBe(Status.RESOURCE_EXHAUSTED);
    expect((stream.error as ClientError).details).toMatch(
      /too many leases on one KeepAlive stream: the limit is 2/,
    );
  });

  it('a flood of requests ends that stream with RESOURCE_EXHAUSTED; other streams carry on', async () => {
    const { lock } = await startTestServer(['--max-leases-per-stream', '2']);
    const resource = uniqueResource();
    const { lease } = await lock.acquire({ resource, ttlMs: 3_000 });
    const flood = openStream(lock);
    // At most 4 requests per lease the stream may carry (8 here) may be in flight; send 100 at once.
    for (let i = 0; i < 100; i++) flood.send({ resource, lockId: lease!.lockId, ttlMs: 3_000 });
    await flood.done;
    expect((flood.error as ClientError).code).toBe(Status.RESOURCE_EXHAUSTED);
    expect((flood.error as ClientError).details).toMatch(
      /too many KeepAlive requests in flight on this stream \(limit 8\)/,
    );
    const calm = openStream(lock);
    calm.send({ resource, lockId: lease!.lockId, ttlMs: 3_000 });
    expect(await calm.nth(1)).toMatchObject({
      state: LeaseState.LEASE_STATE_HELD,
      fencingToken: lease!.fencingToken,
    });
  });

  it('a stream with no lease attached and no request ends after the idle timeout; one carrying a lease does not', async () => {
    const { lock, server } = await startTestServer(['--stream-idle-ms', '300']);
    const idle = openStream(lock);
    await idle.done;
    expect(idle.error).toBeUndefined();
    expect(idle.received).toEqual([]);
    const resource = uniqueResource();
    const { lease } = await lock.acquire({ resource, ttlMs: 2_000 });
    const busy = openStream(lock);
    busy.send({ resource, lockId: lease!.lockId, ttlMs: 2_000 });
    await busy.nth(1);
    // Past the idle timeout with the lease attached: still open. A stream opened now, with nothing attached, ends
    // by its idle timer; an idle timer of the busy stream would have started earlier (at its open or its answer),
    // would have fired first, and its end would have come first on the same connection.
    const later = openStream(lock);
    await later.done;
    expect(later.error).toBeUndefined();
    expect(busy.ended).toBe(false);
    // Then release it: idle again, so it ends.
    busy.send({ resource, lockId: lease!.lockId, release: true });
    await busy.done;
    expect(busy.error).toBeUndefined();
    expect(busy.received.map((r) => r.state)).toEqual([
      LeaseState.LEASE_STATE_HELD,
      LeaseState.LEASE_STATE_RELEASED,
    ]);
    expect(server.coordinator.keepAliveStreamCount).toBe(0);
  });

  it('killing the client process mid-stream does not release the lock early: it runs out its validity', async () => {
    const { lock, server, address } = await startTestServer();
    const resource = uniqueResource('killed');
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', 'test/fixtures/keepalive-client.ts', address, resource, '1500'],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    onTestFinished(() => {
      child.kill('SIGKILL');
    });
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    const lines = () =>
      output
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as KeepAliveResponse);
    await waitFor('two renewals from the client process', () => lines().length >= 2, 15_000);
    const token = lines()[0]!.fencingToken;
    child.kill('SIGKILL');
    await waitFor(
      'the server to see the stream end',
      () => server.coordinator.keepAliveStreamCount === 0,
      5_000,
    );
    const after = await lock.describe({ resource });
    expect(after).toMatchObject({ locked: true, fencingToken: token });
    await waitFor(
      'the lock to run out its validity',
      async () => !(await lock.describe({ resource })).locked,
      5_000,
    );
  });
});
