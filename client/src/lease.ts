import { EventEmitter } from 'node:events';
import { performance } from 'node:perf_hooks';
import { LeaseExpiringError, LeaseLostError, LeaseReleasedError, type LossReason } from './errors.js';

/** What a Lease needs from the client that granted it. */
export interface LeaseOwner {
  /** Extends the lease on the server; resolves with the validity answered. */
  extend(lease: Lease, ttlMs: number): Promise<number>;
  release(lease: Lease): Promise<boolean>;
  /** The lease ended (lost: the reason; released: undefined), before its signal aborts: stop tracking it. */
  ended(lease: Lease, lost: LeaseLostError | undefined): void;
  /** The lease entered jeopardy (see LeaseEvents), after its own listeners heard of it. */
  jeopardy?(lease: Lease, remainingMs: number): void;
}

/** Events a Lease emits. None is needed for safety: `signal`, `isHeld()` and `assertValidFor()` decide. */
export interface LeaseEvents {
  /**
   * Less than a third of the ttl is left and no renewal has succeeded since the deadline last moved (renewals
   * are failing or going unanswered): the lease may be lost soon. Emitted at most once per deadline; a
   * successful renewal re-arms it. `remainingMs` is the time left until the deadline.
   */
  jeopardy: [remainingMs: number];
}

export interface LeaseGrant {
  resource: string;
  lockId: string;
  fencingToken: number;
  ttlMs: number;
  clientId: string;
  /** Nodes that granted the lock. */
  nodes: readonly string[];
  /** performance.now() when the request that was granted was sent. */
  sentAt: number;
  /** How long the server held the request before the attempt that granted it began (Lease.queued_ms). */
  queuedMs: number;
  validityMs: number;
  /** The hold cap in force (Lease.max_hold_ms), ms from the grant; 0 or absent: none. */
  maxHoldMs?: number;
}

/**
 * A lease on a resource: the right to act on it until `signal` aborts. Obtained from LockClient.acquire; renewed
 * automatically over the client's KeepAlive stream (about every third of the ttl) until released.
 *
 * The lease's deadline is kept on this process's monotonic clock as `send time of the granting request + time
 * the server held it before the granting attempt (queued_ms) + validity`, never from when the answer arrived,
 * and moves only with successful renewals. The server's attempt began no earlier than that send time + queued_ms,
 * and validity counts from the attempt's start, so the deadline is never later than the lock's.
 * `signal` aborts with a LeaseLostError the moment the server says the lease is lost or the deadline passes
 * without a renewal, and with a LeaseReleasedError when it is released (also when the deadline passes while its
 * release is in flight: the holder had let go already). `isHeld()` checks the clock itself, so
 * it is exact even when timers run late (an event loop stalled past the deadline).
 *
 * Send `fencingToken` with every write to the protected resource (see FencedStore): it is what stops a holder
 * that lost its lease without noticing.
 */
export class Lease extends EventEmitter<LeaseEvents> implements AsyncDisposable {
  readonly resource: string;
  readonly lockId: string;
  readonly fencingToken: number;
  readonly clientId: string;
  /** Nodes that granted the lock when it was acquired. */
  readonly nodes: readonly string[];
  private ttl: number;
  /** The ttl the server applies: the one asked for, or (ttl 0: server default) about the first validity. */
  private effectiveTtl: number;
  private deadline: number;
  /**
   * Why the lease ended; undefined while it has not. A release, the normal end of every lease, is only marked
   * here: its LeaseReleasedError is made when someone asks (`signal`, `throwIfLost`), since most never do.
   */
  private endReason: LeaseLostError | LeaseReleasedError | 'released' | undefined;
  /** Made on the first read of `signal` (many leases are never asked for it), aborted when the lease ends. */
  private controller: AbortController | undefined;
  private timer: NodeJS.Timeout | undefined;
  private released: Promise<boolean> | undefined;
  /** release() was called: renewal stopped on purpose, so running out of validity now is no loss. */
  private releasing = false;
  /** The latest renewal failed (no quorum…): running out of validity now is RENEWAL_FAILED, not EXPIRED. */
  private renewalFailing = false;
  /** `jeopardy` was emitted for the current deadline (a successful renewal that moves it re-arms it). */
  private inJeopardy = false;
  /** End of the hold cap on the monotonic clock (never later than the server's); undefined: no cap. */
  private readonly capEnd: number | undefined;

  /** Leases come from LockClient.acquire; there is no need to construct one. */
  constructor(
    grant: LeaseGrant,
    private readonly owner: LeaseOwner,
  ) {
    super();
    this.resource = grant.resource;
    this.lockId = grant.lockId;
    this.fencingToken = grant.fencingToken;
    this.clientId = grant.clientId;
    this.nodes = grant.nodes;
    this.ttl = grant.ttlMs;
    this.effectiveTtl = grant.ttlMs || grant.validityMs;
    this.deadline = grant.sentAt + grant.queuedMs + grant.validityMs;
    this.capEnd = grant.maxHoldMs ? grant.sentAt + grant.queuedMs + grant.maxHoldMs : undefined;
    this.armDeadline();
  }

  /** Aborts when the lease is lost (reason: LeaseLostError) or released (reason: LeaseReleasedError). */
  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.endReason) this.controller.abort(this.reason());
    }
    return this.controller.signal;
  }

  /** The ttl renewals ask for, in ms (the acquire's, or the last extend's); 0 = the server's default. */
  get ttlMs(): number {
    return this.ttl;
  }

  /**
   * How often auto-renewal renews, in ms: a third of the ttl, which leaves two more chances before the lock
   * expires if one renewal is lost or slow.
   */
  get renewIntervalMs(): number {
    return this.effectiveTtl / 3;
  }

  /** Milliseconds until the deadline on the monotonic clock; 0 once it has passed or the lease ended. */
  get remainingMs(): number {
    return this.isHeld() ? Math.max(0, this.deadline - performance.now()) : 0;
  }

  /** The deadline as a wall-clock time, for display and logs (decide with `isHeld()` or `signal`). */
  get validUntil(): Date {
    return new Date(Date.now() + (this.deadline - performance.now()));
  }

  /** True while the lease is held: not lost, not released, deadline not reached (checked on the clock now). */
  isHeld(): boolean {
    if (this.endReason) return false;
    if (performance.now() < this.deadline) return true;
    // While its own release is in flight the holder has let go already: the lease ends (the signal aborts, as at
    // any deadline), as released, not lost — a slow release is not a lost lease to alert on.
    if (this.releasing) this.markReleased();
    else if (this.capEnd !== undefined && this.deadline > this.capEnd - this.effectiveTtl / 3) {
      // Renewed every third of the ttl, a lease runs out this close to its cap only because the cap stopped them.
      this.lose('expired', 'it reached its hold cap and was not renewed again', 'HOLD_CAP');
    } else if (this.renewalFailing) {
      this.lose('expired', 'its validity ran out while renewals failed', 'RENEWAL_FAILED');
    } else this.lose('expired', 'its validity ran out before a renewal arrived', 'EXPIRED');
    return false;
  }

  /**
   * Throws unless the lease will stay held for at least `ms` more milliseconds on this process's monotonic
   * clock: call it before starting a write that must finish under the lock. Throws the lease's LeaseLostError /
   * LeaseReleasedError when it has ended, or a LeaseExpiringError when it is held but its deadline is nearer than
   * `ms` (renew first, or do less). Passing is no promise that the lease is not lost meanwhile: keep sending the
   * fencing token with the write.
   */
  assertValidFor(ms: number): void {
    this.throwIfLost();
    const remaining = this.deadline - performance.now();
    if (remaining < ms) throw new LeaseExpiringError(this.resource, this.fencingToken, remaining, ms);
  }

  /** Throws the reason (LeaseLostError / LeaseReleasedError) unless the lease is held right now. */
  throwIfLost(): void {
    if (!this.isHeld()) throw this.reason();
  }

  /**
   * Renews the lease now with an Extend call (auto-renewal does this by itself; use it to change the ttl). The
   * deadline moves to the send time + the new validity. Rejects with the loss reason when the lease already
   * ended, or with LockNotHeldError (and aborts `signal`) when the server says it is gone.
   */
  async extend(ttlMs: number = this.ttl): Promise<void> {
    this.throwIfLost();
    const validityMs = await this.owner.extend(this, ttlMs);
    this.ttl = ttlMs;
    this.effectiveTtl = ttlMs || validityMs;
  }

  /**
   * Stops renewal and releases the lock on the nodes. Resolves true when it was released, false when the lease
   * was already gone (expired or taken over: not an error). Rejects only when the server could not be reached
   * or had no quorum after retries; the lock then runs out its ttl. Calling it again returns the same promise.
   */
  release(): Promise<boolean> {
    this.releasing = true;
    this.released ??= this.owner.release(this);
    return this.released;
  }

  /** `await using lease = await client.acquire(...)` releases the lease at the end of the block. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.release();
  }

  /** @internal A renewal sent at `sentAt` (performance.now()) succeeded with `validityMs`; moves the deadline. */
  renewed(sentAt: number, validityMs: number): void {
    if (this.endReason) return;
    this.renewalFailing = false;
    const deadline = Math.max(this.deadline, sentAt + validityMs);
    if (deadline > this.deadline) this.inJeopardy = false;
    this.deadline = deadline;
    this.armDeadline();
  }

  /** @internal A renewal was answered without renewing (no quorum…): a loss at the deadline is RENEWAL_FAILED. */
  renewalFailed(): void {
    this.renewalFailing = true;
  }

  /** @internal Ends the lease as lost (idempotent): aborts `signal` with a LeaseLostError. */
  lose(kind: 'expired' | 'lost', detail: string, reason?: LossReason): void {
    if (this.endReason) return;
    this.end(new LeaseLostError(this.resource, this.fencingToken, kind, detail, reason));
  }

  /** @internal Ends the lease as released (idempotent). */
  markReleased(): void {
    if (this.endReason) return;
    this.end('released');
  }

  /** The owner hears of the end first (as the first 'abort' listener would), then `signal` aborts. */
  private end(reason: LeaseLostError | 'released'): void {
    this.endReason = reason;
    clearTimeout(this.timer);
    this.owner.ended(this, reason === 'released' ? undefined : reason);
    if (this.controller) this.controller.abort(this.reason());
  }

  /** The end's reason as an error (made on first use for a release); only called once the lease has ended. */
  private reason(): LeaseLostError | LeaseReleasedError {
    if (this.endReason === 'released' || this.endReason === undefined) {
      // No stack trace: it would point here, not at whoever released, and capturing one is most of the cost.
      const limit = Error.stackTraceLimit;
      Error.stackTraceLimit = 0;
      try {
        this.endReason = new LeaseReleasedError(this.resource, this.fencingToken);
      } finally {
        Error.stackTraceLimit = limit;
      }
    }
    return this.endReason;
  }

  /**
   * One timer per lease: first at the jeopardy point (a third of the ttl before the deadline) unless jeopardy was
   * emitted for this deadline, then at the deadline; a renewal that arrived meanwhile re-arms it. Unref'd: it
   * never keeps a process up.
   */
  private armDeadline(): void {
    clearTimeout(this.timer);
    const now = performance.now();
    const wait = this.deadline - now;
    if (wait <= 0) {
      this.isHeld();
      return;
    }
    const threshold = this.effectiveTtl / 3;
    if (!this.inJeopardy && wait < threshold) {
      this.enterJeopardy(wait);
      if (this.endReason) return;
    }
    const jeopardyIn = wait - threshold;
    if (!this.inJeopardy && jeopardyIn > 0) {
      this.timer = setTimeout(() => this.isHeld() && this.armDeadline(), jeopardyIn + 1);
    } else {
      this.timer = setTimeout(() => this.isHeld() && this.armDeadline(), wait + 1);
    }
    this.timer.unref();
  }

  private enterJeopardy(remainingMs: number): void {
    this.inJeopardy = true;
    if (this.releasing) return; // letting go already: nothing to warn about
    this.emit('jeopardy', remainingMs);
    this.owner.jeopardy?.(this, remainingMs);
  }
}
