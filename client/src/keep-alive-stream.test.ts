/**
 * KeepAliveStream's timing rules, driven through its narrow `open` interface by a scripted stream (the server's
 * side of these rules is tested end to end in test/keepalive.test.ts and test/sdk*.test.ts).
 */
import { type Pushable, pushable } from 'it-pushable';
import { describe, expect, it, onTestFinished } from 'vitest';
import {
  type KeepAliveRequest,
  type KeepAliveResponse,
  LeaseState,
  LossReason,
} from '../../gen/redlease/v1/lock.js';
import { waitFor } from '../../scripts/lib/wait.js';
import { KeepAliveStream } from './keep-alive-stream.js';
import { Lease } from './lease.js';

/** A scripted KeepAlive peer: records every request; `answer` decides the reply (undefined: stay silent). */
class ScriptedPeer {
  opened = 0;
  readonly requests: { stream: number; request: KeepAliveRequest }[] = [];
  answer: (request: KeepAliveRequest, stream: number) => Partial<KeepAliveResponse> | undefined = () => ({
    state: LeaseState.LEASE_STATE_HELD,
    validityMs: 290,
  });
  private out: Pushable<KeepAliveResponse | Error> | undefined;

  open = (
    requests: AsyncIterable<KeepAliveRequest>,
    signal: AbortSignal,
  ): AsyncIterable<KeepAliveResponse> => {
    const stream = ++this.opened;
    const out = pushable<KeepAliveResponse | Error>({ objectMode: true });
    this.out = out;
    signal.addEventListener('abort', () => out.end(), { once: true });
    void (async () => {
      for await (const request of requests) {
        this.requests.push({ stream, request });
        const reply = this.answer(request, stream);
        if (reply) out.push(response(request, reply));
      }
    })();
    return (async function* () {
      for await (const item of out) {
        if (item instanceof Error) throw item;
        yield item;
      }
    })();
  };

  /** Pushes an unsolicited message, or breaks the current stream with an error. */
  send(item: KeepAliveResponse | Error): void {
    this.out?.push(item);
  }
}

function response(
  lease: { resource: string; lockId: string },
  fields: Partial<KeepAliveResponse>,
): KeepAliveResponse {
  return {
    resource: lease.resource,
    lockId: lease.lockId,
    state: LeaseState.LEASE_STATE_HELD,
    validityMs: 0,
    validUntilMs: 0,
    fencingToken: 7,
    reason: '',
    lossReason: LossReason.LOSS_REASON_UNSPECIFIED,
    ...fields,
  };
}

function setUp() {
  const peer = new ScriptedPeer();
  const events: string[] = [];
  const stream = new KeepAliveStream({
    open: peer.open,
    renewed: (lease) => events.push(`renewed ${lease.resource}`),
    renewalFailed: (lease, reason) => events.push(`failed ${lease.resource}: ${reason}`),
    streamError: (error) => events.push(`stream error: ${(error as Error).message}`),
  });
  onTestFinished(() => stream.close());
  return { peer, events, stream };
}

let next = 0;
/** A lease of `ttlMs` granted now with validity `validityMs`; renewals every ttl/3. */
function lease(ttlMs = 300, validityMs = 290): Lease {
  const owner = { extend: async () => 0, release: async () => true, ended: () => undefined };
  const id = (++next).toString(16).padStart(32, '0');
  const grant = { resource: `r${next}`, lockId: id, fencingToken: 7, ttlMs, clientId: 't', nodes: [] };
  const result = new Lease({ ...grant, queuedMs: 0, sentAt: performance.now(), validityMs }, owner);
  onTestFinished(() => result.markReleased());
  return result;
}

describe('KeepAliveStream', () => {
  it('renews every third of the ttl and moves the deadline with each answer', async () => {
    const { peer, events, stream } = setUp();
    const held = lease(300, 290);
    stream.attach(held);
    await waitFor('4 renewals', () => events.filter((e) => e.startsWith('renewed')).length >= 4, 5_000);
    expect(held.isHeld()).toBe(true); // 4 × 100 ms > the first validity of 290 ms
    expect(peer.opened).toBe(1);
    expect(peer.requests.every(({ request }) => request.ttlMs === 300 && !request.release)).toBe(true);
  });

  it('a HELD with a reason is a failed renewal: the deadline stays put, it is retried, and the lease expires', async () => {
    const { peer, events, stream } = setUp();
    peer.answer = () => ({ state: LeaseState.LEASE_STATE_HELD, validityMs: 100_000, reason: 'no quorum' });
    const held = lease(600, 500);
    stream.attach(held);
    await waitFor(
      'two failed renewals',
      () => events.filter((e) => e.startsWith('failed')).length >= 2,
      5_000,
    );
    // A renewal counted as successful would have moved the deadline 100 s ahead.
    expect(held.remainingMs).toBeLessThan(500);
    expect(events[0]).toBe(`failed ${held.resource}: no quorum`);
    const reason = await new Promise((resolve) =>
      held.signal.addEventListener('abort', () => resolve(held.signal.reason), { once: true }),
    );
    expect(reason).toMatchObject({ kind: 'expired' });
  });

  it('a pushed LOST ends the lease at once, and it is no longer renewed', async () => {
    const { peer, stream } = setUp();
    const held = lease(3_000, 2_900);
    stream.attach(held);
    await waitFor('the first renewal', () => peer.requests.length >= 1, 5_000);
    peer.send(response(held, { state: LeaseState.LEASE_STATE_LOST, reason: 'taken over' }));
    await waitFor('the loss', () => held.signal.aborted, 5_000);
    expect(held.signal.reason).toMatchObject({ kind: 'lost', message: expect.stringMatching(/taken over/) });
    expect(stream.size).toBe(0);
  });

  it('a broken stream is reopened and every lease renewed on the new one', async () => {
    const { peer, events, stream } = setUp();
    const a = lease(300, 290);
    const b = lease(300, 290);
    stream.attach(a);
    stream.attach(b);
    await waitFor(
      'both renewed once',
      () => events.filter((e) => e.startsWith('renewed')).length >= 2,
      5_000,
    );
    peer.send(new Error('connection reset'));
    await waitFor(
      'both renewed on the second stream',
      () => [a, b].every((l) => peer.requests.some((r) => r.stream === 2 && r.request.lockId === l.lockId)),
      5_000,
    );
    expect(events).toContain('stream error: connection reset');
    expect(a.isHeld() && b.isHeld()).toBe(true);
  });

  it('a renewal left unanswered for a whole interval restarts the stream instead of waiting for keepalive pings', async () => {
    const { peer, events, stream } = setUp();
    // The first stream swallows every request (a half-open connection); the second one answers.
    peer.answer = (request, streamNo) =>
      streamNo === 1 ? undefined : { state: LeaseState.LEASE_STATE_HELD, validityMs: request.ttlMs - 100 };
    const held = lease(3_000, 2_900); // renewals every 1 s: unanswered at 1 s, restart at 2 s, deadline 2.9 s
    stream.attach(held);
    await waitFor('a renewal on a second stream', () => events.includes(`renewed ${held.resource}`), 10_000);
    expect(peer.opened).toBe(2);
    expect(events.some((e) => /no KeepAlive answer for \d+ ms/.test(e))).toBe(true);
    expect(held.isHeld()).toBe(true);
  });
});
