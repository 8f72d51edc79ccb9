import type { Logger } from 'pino';
import {
  HeldByAnotherError,
  InvalidArgumentError,
  type Lease,
  type LockState,
  type Mode,
  NotHolderError,
  newLockId,
  type Redlock,
  type ReleaseResult,
} from '../redlock/index.js';
import { LimitError, ShuttingDownError } from './errors.js';
import { HeldLeases } from './held-leases.js';
import { type AttachedLease, LeaseSession, type SessionOutput } from './lease-session.js';
import { failureOutcome, type LockEvents, type LossKind, NO_EVENTS, type Outcome } from './lock-events.js';
import { ReleaseListener } from './release-listener.js';
import { type Waiter, WaitQueue } from './wait-queue.js';

export interface CoordinatorLimits {
  /** Largest wait_timeout_ms accepted. */
  maxWaitMs: number;
  maxWaitersPerResource: number;
  /** Waiting Acquires across all resources. */
  maxWaiters: number;
  /** KeepAlive streams open at once. */
  maxStreams: number;
  maxLeasesPerStream: number;
  /**
   * Even when every release announcement is lost (a subscriber reconnecting, an ACL without the channel), the
   * head waiter looks again this often: it bounds the hand-off delay of a missed wake-up, at the cost of one
   * script call per node per waited-on resource per period. Default 1000 ms.
   */
  waitFallbackMs: number;
  /** A KeepAlive stream with no lease attached and no request in flight is ended after this long. */
  streamIdleMs: number;
}

/** How long after a release through this server its nodes' announcements of it are still expected. */
const OWN_ANNOUNCEMENTS_MS = 50;

export interface AcquireRequest {
  resource: string;
  /** Undefined: the server default. */
  ttlMs?: number;
  clientId?: string;
  /** 0 or undefined: try once. */
  waitTimeoutMs?: number;
  /** Client-chosen lock id (idempotent retry); undefined: a fresh random one. */
  lockId?: string;
}

export interface ResourceState extends LockState {
  /** Acquires waiting in this server's queue for the resource. */
  waiters: number;
}

/**
 * The lock service's domain, between the edges (gRPC, HTTP) and the engine: FIFO wait queues with hand-off,
 * KeepAlive sessions that learn of lost leases, limits, shutdown, and one log line per lock event. Holds no state
 * that matters for safety: locks, tokens and expiries live in Redis.
 */
export class Coordinator {
  private readonly queues = new Map<string, WaitQueue>();
  private waiting = 0;
  /** Leases attached to KeepAlive sessions, by resource, so takeovers and releases reach their streams. */
  private readonly attached = new Map<string, Set<AttachedLease>>();
  private readonly sessions = new Set<LeaseSession>();
  /** Resources whose announced release is being checked against attached leases; true = check again after. */
  private readonly checking = new Map<string, boolean>();
  private readonly releases: ReleaseListener;
  private readonly held = new HeldLeases();
  private closing = false;
  private readonly shutdownListeners = new Set<() => void>();

  constructor(
    readonly engine: Redlock,
    readonly limits: CoordinatorLimits,
    private readonly log: Logger,
    /** Told of every outcome (the metrics). */
    private readonly events: LockEvents = NO_EVENTS,
  ) {
    this.releases = new ReleaseListener(
      engine.options.nodes,
      engine.releaseChannel,
      (resource) => this.onReleaseAnnounced(resource),
      log,
      engine.options.connectTimeoutMs,
    );
  }

  /** Resolves when release announcements are subscribed on every reachable node (bounded by `timeoutMs`), so
   *  a server that reports itself ready also hears releases made through other replicas. */
  ready(timeoutMs: number): Promise<void> {
    return this.releases.ready(timeoutMs);
  }

  /** KeepAlive streams open now. */
  get sessionCount(): number {
    return this.sessions.size;
  }

  get shuttingDown(): boolean {
    return this.closing;
  }

  /** Acquire calls waiting in this server's queues. */
  get waiterCount(): number {
    return this.waiting;
  }

  /** Leases attached to KeepAlive streams. */
  get attachedCount(): number {
    let n = 0;
    for (const set of this.attached.values()) n += set.size;
    return n;
  }

  /** Leases granted or extended through this server that are still within their validity, as far as it knows. */
  get heldCount(): number {
    return this.held.count;
  }

  async acquire(request: AcquireRequest, signal: AbortSignal): Promise<Lease> {
    const started = performance.now();
    try {
      const lease = await this.acquireLease(request, signal);
      this.events.acquire(this.granted(lease, request, performance.now() - started));
      return lease;
    } catch (error) {
      this.events.acquire(failureOutcome(error, signal));
      throw error;
    }
  }

  private async acquireLease(request: AcquireRequest, signal: AbortSignal): Promise<Lease> {
    if (this.closing) throw new ShuttingDownError();
    const { resource } = request;
    const waitMs = this.validateWait(request.waitTimeoutMs);
    // One lock id for every attempt of this call, so an attempt whose answer was lost is the same lease.
    const options = {
      ttlMs: request.ttlMs,
      clientId: request.clientId,
      lockId: request.lockId ?? newLockId(),
      signal,
    };
    if (waitMs === 0) {
      const queued = this.queues.get(resource)?.size ?? 0;
      // Try-once callers do not jump the queue. One with a lock_id may still reclaim the lease that lock_id holds
      // (an idempotent re-send, or an SDK refreshing a grant that arrived late): that renews, it grants nothing.
      return queued === 0
        ? await this.engine.acquire(resource, options)
        : await this.reclaim(resource, { ttlMs: request.ttlMs, lockId: request.lockId }, queued);
    }
    // Validated before queueing; a try-once call is validated by the engine itself.
    this.engine.validateAcquire(resource, options);
    return await this.acquireWaiting(resource, options, waitMs);
  }

  /** While others wait for `resource`: renew the lease `lockId` already holds, or refuse as held. */
  private async reclaim(
    resource: string,
    options: { ttlMs?: number; lockId?: string },
    queued: number,
  ): Promise<Lease> {
    const held = () =>
      new HeldByAnotherError(
        'LOCK_HELD',
        `resource "${resource}" is held: ${queued} Acquire call(s) are already waiting for it on this server; set wait_timeout_ms to join the queue`,
        [],
      );
    if (options.lockId === undefined) throw held();
    try {
      return await this.engine.extend(resource, options.lockId, options.ttlMs);
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

  private async acquireWaiting(
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
          const release = queue.releasedAt;
          if (release !== undefined && release >= triedSince)
            this.events.handoff(performance.now() - release);
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
      const waitedMs = performance.now() - waiter.joinedAt;
      this.events.waited(outcome, waitedMs);
      this.log.info(
        {
          event: 'waited',
          resource,
          client_id: options.clientId ?? '',
          waited_ms: Math.round(waitedMs),
          outcome: outcome === 'held' ? 'timed-out' : outcome,
        },
        'lock waited',
      );
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

  async release(resource: string, lockId: string, from?: LeaseSession): Promise<ReleaseResult> {
    const started = performance.now();
    let result: ReleaseResult;
    try {
      // The release scripts are on their way once release() returns its promise. Waking the head waiter now
      // puts its acquire right behind them on every node's connection (one connection per node runs commands
      // in order, and auto-pipelining sends both in one write), so the hand-off costs no round trip of its
      // own. Should this release fail, the waiter's attempt finds the lock held and it sleeps again.
      const releasing = this.engine.release(resource, lockId);
      const queue = this.queues.get(resource);
      const woken = queue?.head;
      if (queue) {
        queue.wake();
        queue.ownReleaseUntil = Number.POSITIVE_INFINITY;
        void releasing
          .finally(() => {
            // Its announcements travel on other connections and arrive about when its replies do.
            queue.ownReleaseUntil = performance.now() + OWN_ANNOUNCEMENTS_MS;
            // Still waiting: its attempt is in flight, or it did not follow the release on some node (a node
            // that had to load the release script first, a reconnect): wake it again, so it looks now and not
            // when the old holder's lock would have run out. Nobody else is woken for nothing.
            if (woken && queue.isHead(woken)) queue.wake();
          })
          .catch(() => undefined);
      }
      result = await releasing;
    } catch (error) {
      this.events.release(failureOutcome(error));
      throw error;
    }
    this.events.release(result.released ? 'released' : 'not_held');
    this.held.ended(resource, lockId);
    this.log.info(
      {
        event: 'released',
        resource,
        client_id: result.clientId,
        token: result.fencingToken,
        nodes: result.nodes,
        duration_ms: round(performance.now() - started),
      },
      'lock released',
    );
    // Only the holder knows its lock id, so this is the holder letting go, not a loss: streams that still keep
    // the lease alive are told RELEASED.
    for (const lease of this.attachedTo(resource)) {
      if (lease.lockId === lockId && lease.session !== from) lease.session.released(lease);
    }
    return result;
  }

  /** `quiet`: a KeepAlive renewal, logged at debug (they come every third of a ttl per lease). */
  async extend(resource: string, lockId: string, ttlMs: number | undefined, quiet = false): Promise<Lease> {
    const started = performance.now();
    let lease: Lease;
    try {
      lease = await this.engine.extend(resource, lockId, ttlMs);
    } catch (error) {
      this.events.extend(failureOutcome(error));
      if (error instanceof NotHolderError) this.held.ended(resource, lockId);
      throw error;
    }
    this.events.extend('extended');
    this.held.extended(lease);
    this.log[quiet ? 'debug' : 'info'](
      {
        event: 'extended',
        resource,
        client_id: lease.clientId,
        token: lease.fencingToken,
        ttl_ms: lease.ttlMs,
        validity_ms: lease.validityMs,
        duration_ms: round(performance.now() - started),
      },
      'lock extended',
    );
    return lease;
  }

  async describe(resource: string): Promise<ResourceState> {
    const state = await this.engine.inspect(resource);
    return { ...state, waiters: this.queues.get(resource)?.size ?? 0 };
  }

  /** A KeepAlive stream's session. Throws LimitError when the server already carries its maximum of streams. */
  openSession(output: SessionOutput): LeaseSession {
    if (this.closing) throw new ShuttingDownError();
    if (this.sessions.size >= this.limits.maxStreams) {
      throw new LimitError(
        'STREAMS_LIMIT',
        `too many KeepAlive streams: this server carries its limit of ${this.limits.maxStreams}; put more leases on one stream, or retry later`,
      );
    }
    const session = new LeaseSession(this, output, this.limits.maxLeasesPerStream, this.limits.streamIdleMs);
    this.sessions.add(session);
    return session;
  }

  /** Called by sessions. */
  sessionClosed(session: LeaseSession): void {
    this.sessions.delete(session);
  }

  attach(lease: AttachedLease): void {
    let set = this.attached.get(lease.resource);
    if (!set) {
      set = new Set();
      this.attached.set(lease.resource, set);
    }
    set.add(lease);
  }

  detach(lease: AttachedLease): void {
    const set = this.attached.get(lease.resource);
    if (!set) return;
    set.delete(lease);
    if (set.size === 0) this.attached.delete(lease.resource);
  }

  /** Reported once per lost lease by its session. */
  lost(lease: AttachedLease, kind: LossKind, reason: string): void {
    this.events.lost(kind);
    this.held.ended(lease.resource, lease.lockId);
    this.log.warn(
      {
        event: 'lost',
        resource: lease.resource,
        client_id: lease.clientId,
        token: lease.fencingToken,
        reason,
      },
      'lock lost',
    );
  }

  getMode(): Mode {
    return this.engine.getMode();
  }

  setMode(mode: Mode): Mode {
    if (mode !== this.engine.getMode() && this.attached.size > 0) {
      this.log.warn(
        { from: this.engine.getMode(), to: mode, resources_kept_alive: this.attached.size },
        'mode changes while leases are kept alive: their next renewal runs under the new mode and may lose them',
      );
    }
    this.engine.setMode(mode);
    return this.engine.getMode();
  }

  /**
   * Graceful shutdown: refuse new calls, fail every waiter and every KeepAlive stream with UNAVAILABLE (their
   * leases are not released: they run out their validity), stop listening for release announcements. The engine
   * stays open for calls already under way; its owner closes it.
   */
  shutdown(): void {
    if (this.closing) return;
    this.closing = true;
    const error = new ShuttingDownError();
    for (const queue of this.queues.values()) queue.failAll(error);
    for (const session of [...this.sessions]) session.fail(error);
    for (const listener of [...this.shutdownListeners]) listener();
    this.releases.close();
  }

  /** Calls `listener` once when shutdown() begins (at once if it has); returns the unsubscribe. */
  onShutdown(listener: () => void): () => void {
    if (this.closing) {
      listener();
      return () => undefined;
    }
    this.shutdownListeners.add(listener);
    return () => this.shutdownListeners.delete(listener);
  }

  /**
   * Logs a grant and tells KeepAlive streams whose lease it took over. A re-send that got back the lease its lock id
   * already held (same token) is `reclaimed`: logged and counted apart, so one grant is never counted twice.
   */
  private granted(lease: Lease, request: AcquireRequest, durationMs: number): Outcome {
    const outcome = this.held.granted(lease) ? 'acquired' : 'reclaimed';
    this.log.info(
      {
        event: outcome,
        resource: lease.resource,
        client_id: lease.clientId,
        token: lease.fencingToken,
        ttl_ms: lease.ttlMs,
        validity_ms: lease.validityMs,
        attempts: lease.attempts,
        nodes: lease.nodes,
        mode: lease.mode,
        wait_timeout_ms: request.waitTimeoutMs ?? 0,
        duration_ms: round(durationMs),
      },
      `lock ${outcome}`,
    );
    for (const other of this.attachedTo(lease.resource)) {
      if (other.lockId !== lease.lockId) {
        other.session.lose(
          other,
          'taken_over',
          `taken over: another lease was granted this resource with fencing token ${lease.fencingToken}`,
        );
      }
    }
    return outcome;
  }

  private attachedTo(resource: string): AttachedLease[] {
    const set = this.attached.get(resource);
    return set ? [...set] : [];
  }

  /** A node announced a release of `resource` (possibly through another replica): wake its head waiter, and
   *  tell KeepAlive streams whose lease on it is gone. */
  private onReleaseAnnounced(resource: string): void {
    const queue = this.queues.get(resource);
    // A release made through this server already woke its head waiter (see release). Another replica's release
    // of the same resource in that short window is seen by the head waiter's fallback timer instead.
    if (queue && performance.now() >= queue.ownReleaseUntil) queue.wake();
    if (!this.attached.has(resource)) return;
    if (this.checking.has(resource)) {
      this.checking.set(resource, true);
      return;
    }
    this.checking.set(resource, false);
    void this.checkAttached(resource);
  }

  private async checkAttached(resource: string): Promise<void> {
    try {
      do {
        this.checking.set(resource, false);
        for (const lease of this.attachedTo(resource)) {
          if (lease.renewing > 0) continue;
          const held = await this.engine.holds(resource, lease.lockId);
          if (held === 'not-held')
            lease.session.lose(lease, 'released', 'released (announced by a Redis node)');
        }
      } while (this.checking.get(resource));
    } catch (error) {
      this.log.warn({ resource, err: String(error) }, 'checking kept-alive leases after a release failed');
    } finally {
      this.checking.delete(resource);
    }
  }
}

function waitRanOut(error: HeldByAnotherError, resource: string, waitMs: number): HeldByAnotherError {
  return new HeldByAnotherError(
    error.reason as 'LOCK_HELD' | 'LOCK_CONTENDED',
    `resource "${resource}" is still held after waiting ${waitMs} ms (wait_timeout_ms): ${error.message}`,
    error.votes,
    error.holderTtlMs,
  );
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}
