import { context, type Span, SpanStatusCode, trace } from '@opentelemetry/api';
import {
  HeldByAnotherError,
  InvalidArgumentError,
  type Lease,
  NotHolderError,
  newLockId,
  type Redlock,
} from '../redlock/index.js';
import { LimitError, ShuttingDownError } from './errors.js';
import { failureOutcome, type Outcome } from './lock-events.js';
import type { LockLog } from './lock-log.js';
import { tracer } from './tracing.js';
import { type Waiter, WaitQueue } from './wait-queue.js';

export interface WaitLimits {
  /** Largest wait_timeout_ms accepted. */
  maxWaitMs: number;
  maxWaitersPerResource: number;
  /** Waiting Acquires across all resources. */
  maxWaiters: number;
  /**
   * Even when every release announcement is lost (a subscriber reconnecting, an ACL without the channel), the
   * head waiter looks again this often: it bounds the hand-off delay of a missed wake-up, at the cost of one
   * script call per node per waited-on resource per period. Default 1000 ms.
   */
  waitFallbackMs: number;
}

/** How long after a release through this server its nodes' announcements of it are still expected. */
const OWN_ANNOUNCEMENTS_MS = 50;

export interface TakeRequest {
  resource: string;
  ttlMs?: number;
  clientId?: string;
  /** 0 or undefined: try once. */
  waitTimeoutMs?: number;
  /** Client-chosen lock id (idempotent retry); undefined: a fresh random one. */
  lockId?: string;
  signal: AbortSignal;
}

/**
 * Who gets the lock next. Each resource waited on has a FIFO queue on this server; only its head asks the nodes,
 * and it asks again when the lock may be free: at once after a release through this server (its acquire follows
 * the release on every node's connection), when a node announces a release made through another replica, when the
 * holder's remaining ttl runs out, or after a fallback period. A try-once Acquire never jumps a queue. Waiting is
 * bounded per resource and in all, and a cancelled call leaves its queue at once.
 */
export class WaitingRoom {
  private readonly queues = new Map<string, WaitQueue>();
  private waiting = 0;
  private closing = false;

  constructor(
    private readonly engine: Redlock,
    readonly limits: WaitLimits,
    private readonly log: LockLog,
  ) {}

  /** Acquire calls waiting now, on all resources. */
  get count(): number {
    return this.waiting;
  }

  /** Acquire calls waiting now for `resource`. */
  waitersFor(resource: string): number {
    return this.queues.get(resource)?.size ?? 0;
  }

  /** Takes the lock for `request`: at once (try-once), or in turn within its wait. */
  async take(request: TakeRequest): Promise<Lease> {
    if (this.closing) throw new ShuttingDownError();
    const { resource, signal } = request;
    const waitMs = this.validateWait(request.waitTimeoutMs);
    // One lock id for every attempt of this call, so an attempt whose answer was lost is the same lease.
    const options = {
      ttlMs: request.ttlMs,
      clientId: request.clientId,
      lockId: request.lockId ?? newLockId(),
      signal,
    };
    if (waitMs === 0) {
      const queued = this.waitersFor(resource);
      // Try-once callers do not jump the queue. One with a lock_id may still reclaim the lease that lock_id holds
      // (an idempotent re-send, or an SDK refreshing a grant that arrived late): that renews, it grants nothing.
      return queued === 0
        ? await this.engine.acquire(resource, options)
        : await this.reclaim(resource, request, queued);
    }
    // Validated before queueing; a try-once call is validated by the engine itself.
    this.engine.validateAcquire(resource, options);
    return await this.inTurn(resource, options, waitMs);
  }

  /**
   * A release of `resource` through this server is on its way (`releasing`): wake its head waiter now, so its
   * acquire goes right behind the release scripts on every node's connection and the hand-off costs no round trip
   * of its own. Should the release fail, the waiter finds the lock held and sleeps again.
   */
  releasing(resource: string, releasing: Promise<unknown>): void {
    const queue = this.queues.get(resource);
    if (!queue) return;
    const woken = queue.head;
    // The Release's span, if traced: the waiter it wakes links its grant to it.
    const release = trace.getSpanContext(context.active());
    queue.wake(release);
    queue.ownReleaseUntil = Number.POSITIVE_INFINITY;
    void releasing
      .finally(() => {
        // Its announcements travel on other connections and arrive about when its replies do.
        queue.ownReleaseUntil = performance.now() + OWN_ANNOUNCEMENTS_MS;
        // Still waiting: its attempt is in flight, or it did not follow the release on some node (a node that had
        // to load the release script first, a reconnect): wake it again, so it looks now and not when the old
        // holder's lock would have run out. Nobody else is woken for nothing.
        if (woken && queue.isHead(woken)) queue.wake(release);
      })
      .catch(() => undefined);
  }

  /** A node announced a release of `resource` (possibly through another replica): its head waiter looks now. */
  announced(resource: string): void {
    const queue = this.queues.get(resource);
    // A release made through this server already woke its head waiter (see releasing). Another replica's release
    // of the same resource in that short window is seen by the head waiter's fallback timer instead.
    if (queue && performance.now() >= queue.ownReleaseUntil) queue.wake();
  }

  /** Fails every waiter with `error` and refuses new ones (shutdown). */
  close(error: ShuttingDownError): void {
    this.closing = true;
    for (const queue of this.queues.values()) queue.failAll(error);
  }

  /** While others wait for `resource`: renew the lease `lockId` already holds, or refuse as held. */
  private async reclaim(
    resource: string,
    request: { ttlMs?: number; lockId?: string },
    queued: number,
  ): Promise<Lease> {
    const held = () =>
      new HeldByAnotherError(
        'LOCK_HELD',
        `resource "${resource}" is held: ${queued} Acquire call(s) are already waiting for it on this server; set wait_timeout_ms to join the queue`,
        [],
      );
    if (request.lockId === undefined) throw held();
    try {
      return await this.engine.extend(resource, request.lockId, request.ttlMs);
    } catch (error) {
      throw error instanceof NotHolderError ? held() : error;
    }
  }

  private validateWait(waitMs: number | undefined): number {
    const max = this.limits.maxWaitMs;
    if (waitMs === undefined) return 0;
    if (!Number.isInteger(waitMs) || waitMs < 0 || waitMs > max) {
      throw new InvalidArgumentError(
        'wait_timeout_ms',
        'WAIT_OUT_OF_RANGE',
        `wait_timeout_ms must be a whole number of milliseconds in [0, ${max}], got ${waitMs}`,
      );
    }
    return waitMs;
  }

  /** Joins the resource's queue and takes the lock when it is this call's turn and the lock is free. */
  private async inTurn(
    resource: string,
    options: { ttlMs?: number; clientId?: string; lockId: string; signal: AbortSignal },
    waitMs: number,
  ): Promise<Lease> {
    const { signal } = options;
    let queue = this.queues.get(resource);
    if ((queue?.size ?? 0) >= this.limits.maxWaitersPerResource) {
      throw new LimitError(
        'WAITERS_PER_RESOURCE_LIMIT',
        `too many waiters: ${queue?.size} Acquire calls are already waiting for "${resource}" on this server (limit ${this.limits.maxWaitersPerResource}); retry later`,
      );
    }
    if (this.waiting >= this.limits.maxWaiters) {
      throw new LimitError(
        'WAITERS_LIMIT',
        `too many waiters: ${this.waiting} Acquire calls are waiting on this server (limit ${this.limits.maxWaiters}); retry later`,
      );
    }
    if (!queue) {
      queue = new WaitQueue();
      this.queues.set(resource, queue);
    }
    const waiter = queue.join();
    this.waiting++;
    const waitEnds = waiter.joinedAt + waitMs;
    // The time in the queue, from joining to the start of the attempt that took the lock (or to leaving).
    const span = tracer.startSpan('wait', { startTime: waiter.joinedAt });
    if (span.isRecording()) {
      span.setAttributes({
        'redlease.resource': resource,
        'redlease.queue.position': queue.size - 1,
        'redlease.wait_timeout_ms': waitMs,
      });
    }
    let granted: Lease | undefined;
    let outcome: Outcome = 'acquired';
    try {
      await this.waitTurn(queue, waiter, resource, waitMs, waitEnds, signal);
      const { retryDelayMs, retryJitterMs } = this.engine.options;
      // A release before this moment was already tried for and lost: it is not what hands the lock over.
      let triedSince = waiter.joinedAt;
      for (;;) {
        const seen = queue.version;
        const attemptStarted = performance.now();
        try {
          const lease = await this.engine.acquire(resource, { ...options, retryCount: 0 });
          granted = lease;
          const release = queue.releasedAt;
          if (release !== undefined && release >= triedSince) {
            const handoffMs = performance.now() - release;
            this.log.handoff(handoffMs);
            if (queue.releasedBy && span.isRecording()) {
              span.addLink({ context: queue.releasedBy, attributes: { 'redlease.link': 'hand-off' } });
              span.setAttribute('redlease.handoff_ms', Math.round(handoffMs * 100) / 100);
            }
          }
          return lease;
        } catch (error) {
          if (!(error instanceof HeldByAnotherError)) throw error;
          triedSince = attemptStarted;
          if (this.closing) throw new ShuttingDownError();
          if (queue.version !== seen) continue; // released while we asked: ask again now
          const remaining = waitEnds - performance.now();
          if (remaining <= 0) throw waitRanOut(error, resource, waitMs);
          // Held: look again when the holder's lock runs out (PTTL seen + 1 ms). Contended: after a random
          // pause, so contenders that split the vote do not collide again.
          const pause =
            error.holderTtlMs !== undefined
              ? error.holderTtlMs + 1
              : retryDelayMs + Math.random() * retryJitterMs;
          await queue.sleep(waiter, Math.min(pause, this.limits.waitFallbackMs, remaining), signal);
        }
      }
    } catch (error) {
      outcome = failureOutcome(error, signal);
      throw error;
    } finally {
      queue.leave(waiter);
      this.waiting--;
      if (queue.size === 0) this.queues.delete(resource);
      this.log.waited(outcome, resource, options.clientId ?? '', performance.now() - waiter.joinedAt);
      endWait(span, outcome, waiter.joinedAt, granted);
    }
  }

  /** Until the waiter is at the head of the queue. */
  private async waitTurn(
    queue: WaitQueue,
    waiter: Waiter,
    resource: string,
    waitMs: number,
    waitEnds: number,
    signal: AbortSignal,
  ): Promise<void> {
    while (!queue.isHead(waiter)) {
      const remaining = waitEnds - performance.now();
      if (remaining <= 0) {
        throw new HeldByAnotherError(
          'LOCK_HELD',
          `resource "${resource}" is still held after waiting ${waitMs} ms (wait_timeout_ms); ${queue.position(waiter)} Acquire call(s) were ahead in the queue`,
          [],
        );
      }
      await queue.sleep(waiter, remaining, signal);
    }
  }
}

/** Ends a `wait` span: at the start of the granting attempt when granted (its length is the time queued). */
function endWait(span: Span, outcome: Outcome, joinedAt: number, granted: Lease | undefined): void {
  if (!span.isRecording()) {
    span.end();
    return;
  }
  const end = granted ? granted.startedAt : performance.now();
  span.setAttributes({
    'redlease.outcome': outcome === 'held' ? 'timed-out' : outcome,
    'redlease.queued_ms': Math.max(0, Math.round(end - joinedAt)),
  });
  if (outcome !== 'acquired' && outcome !== 'held' && outcome !== 'cancelled') {
    span.setStatus({ code: SpanStatusCode.ERROR, message: outcome });
  }
  span.end(end);
}

function waitRanOut(error: HeldByAnotherError, resource: string, waitMs: number): HeldByAnotherError {
  return new HeldByAnotherError(
    error.reason as 'LOCK_HELD' | 'LOCK_CONTENDED',
    `resource "${resource}" is still held after waiting ${waitMs} ms (wait_timeout_ms): ${error.message}`,
    error.votes,
    error.holderTtlMs,
  );
}
