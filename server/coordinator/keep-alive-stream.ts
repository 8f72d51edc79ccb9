import { context, type Span } from '@opentelemetry/api';
import { type Lease, NoQuorumError, NotHolderError, type ReleaseResult } from '../redlock/index.js';
import { HOLD_CAP_REACHED, LimitError } from './errors.js';
import type { LossKind } from './lock-events.js';
import { recordingSpan, untraced } from './tracing.js';

export interface KeepAliveRequest {
  resource: string;
  lockId: string;
  /** Undefined: the server default. */
  ttlMs?: number;
  release: boolean;
}

export interface KeepAliveAnswer {
  resource: string;
  lockId: string;
  state: 'held' | 'lost' | 'released';
  validityMs: number;
  validUntilMs: number;
  fencingToken: number;
  reason: string;
  /** For `lost`: why, as the edges report it (LossReason); undefined for `held` and `released`. */
  loss?: LossKind;
}

/** Where a stream's answers and unasked notices go, and how it ends the call. */
export interface StreamOutput {
  send(answer: KeepAliveAnswer): void;
  /** Ends the call with a status for a stream-wide problem. */
  fail(error: Error): void;
  /** Ends the call normally (idle: nothing attached, nothing asked). */
  end(): void;
}

/** A lease attached to a KeepAlive stream: what the server knows of it between renewals. */
export interface AttachedLease {
  readonly stream: KeepAliveStream;
  readonly resource: string;
  readonly lockId: string;
  fencingToken: number;
  clientId: string;
  /** End of validity from the last successful renewal, on this process's monotonic clock. */
  deadline: number;
  /** The same as a wall-clock estimate (unix ms), as answered then. */
  validUntilMs: number;
  /** Renewals in flight: while one is, the deadline timer and release announcements defer to its outcome. */
  renewing: number;
  /** The latest renewal failed for want of a quorum: running out of validity now is `renewal_failed`. */
  renewalFailing: boolean;
  timer: NodeJS.Timeout | undefined;
}

/**
 * What a stream needs from the rest of the coordinator (the lease registry implements it): the lock operations,
 * and the bookkeeping that lets grants, releases and announcements elsewhere reach the stream's leases.
 */
export interface StreamHost {
  /** Throws InvalidArgumentError for a malformed resource, lock id or ttl. */
  validate(resource: string, lockId: string, ttlMs: number | undefined): void;
  renew(resource: string, lockId: string, ttlMs: number | undefined): Promise<Lease>;
  release(resource: string, lockId: string, from: KeepAliveStream): Promise<ReleaseResult>;
  /** Whether the lease is at its hold cap: it is not renewed again, and running out now is `hold_cap`. */
  capReached(resource: string, lockId: string): boolean;
  /**
   * Whether a Release call on this server released `lockId` on `resource`: resolves true once such a release
   * succeeded, false when there was none, or it failed. `since` (monotonic ms) ignores releases that began
   * earlier.
   */
  releasedByHolder(resource: string, lockId: string, since?: number): Promise<boolean>;
  attach(lease: AttachedLease): void;
  detach(lease: AttachedLease): void;
  lost(lease: AttachedLease, kind: LossKind, reason: string): void;
  closed(stream: KeepAliveStream): void;
}

/** Requests waiting or running per stream, beyond which a client is flooding: 4 per lease it may carry. */
const PENDING_PER_LEASE = 4;

/**
 * The server side of one KeepAlive call. The server renews only when asked; between requests it watches each
 * attached lease and pushes LOST, unasked, when it learns the lease is gone: its validity ran out with no renewal,
 * or another lease took the resource. A Release of the lease's own lock id (through this server, or announced by
 * a node after a release through another) is its holder letting go: RELEASED, never LOST. Requests for one lease are handled in
 * order; different leases run concurrently. Closing the stream never releases anything: the locks run out their
 * validity (a broken stream does not prove that its client stopped).
 *
 * Traced, the stream is the one span of its call: each renewal, failed renewal, RELEASED and LOST (with its
 * reason) is an event of it, and renewals make no spans of their own.
 */
export class KeepAliveStream {
  private readonly leases = new Map<string, AttachedLease>();
  private readonly chains = new Map<string, Promise<void>>();
  private pending = 0;
  private closed = false;
  private idle: Promise<void> = Promise.resolve();
  private resolveIdle: (() => void) | undefined;
  private idleTimer: NodeJS.Timeout | undefined;
  /** The span of the KeepAlive call, when traced: where renewals and losses are recorded as events. */
  private readonly span: Span | undefined = recordingSpan();

  constructor(
    private readonly host: StreamHost,
    private readonly output: StreamOutput,
    private readonly maxLeases: number,
    /** A stream with no lease attached and no request in flight is ended after this long. */
    private readonly idleMs: number,
  ) {
    this.armIdleTimer();
  }

  /** (Re)starts the idle timer when nothing is attached and nothing is asked; stops it otherwise. */
  private armIdleTimer(): void {
    clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    if (this.closed || this.leases.size > 0 || this.pending > 0) return;
    this.idleTimer = setTimeout(() => {
      if (this.closed || this.leases.size > 0 || this.pending > 0) return;
      this.close();
      this.output.end();
    }, this.idleMs);
  }

  /**
   * Takes one request. A malformed request or a flood fails the whole stream (output.fail); per-lease outcomes
   * are answers.
   */
  submit(request: KeepAliveRequest): void {
    if (this.closed) return;
    try {
      this.host.validate(request.resource, request.lockId, request.release ? undefined : request.ttlMs);
    } catch (error) {
      this.fail(error as Error);
      return;
    }
    const limit = Math.max(this.maxLeases, 1) * PENDING_PER_LEASE;
    if (this.pending >= limit) {
      this.fail(
        new LimitError(
          'KEEPALIVE_FLOOD',
          `too many KeepAlive requests in flight on this stream (limit ${limit}); wait for answers before renewing again`,
        ),
      );
      return;
    }
    const key = keyOf(request);
    if (!request.release && !this.leases.has(key) && this.leases.size >= this.maxLeases) {
      this.fail(this.tooManyLeases());
      return;
    }
    if (this.pending === 0) this.idle = new Promise((resolve) => (this.resolveIdle = resolve));
    this.pending++;
    this.armIdleTimer();
    const previous = this.chains.get(key) ?? Promise.resolve();
    const next = previous
      .then(() => (request.release ? this.release(key, request) : this.renew(key, request)))
      .then(
        (answer) => {
          if (answer && !this.closed) this.output.send(answer);
        },
        (error: unknown) => this.fail(error instanceof Error ? error : new Error(String(error))),
      )
      .finally(() => {
        if (this.chains.get(key) === next) this.chains.delete(key);
        if (--this.pending === 0) {
          this.resolveIdle?.();
          this.armIdleTimer();
        }
      });
    this.chains.set(key, next);
  }

  /** Resolves when every submitted request has been answered. */
  drained(): Promise<void> {
    return this.idle;
  }

  private async release(key: string, request: KeepAliveRequest): Promise<KeepAliveAnswer | undefined> {
    if (this.closed) return undefined;
    const lease = this.leases.get(key);
    if (lease) this.detach(lease);
    try {
      const result = await this.host.release(request.resource, request.lockId, this);
      return ended(request, 'released', result.fencingToken || lease?.fencingToken || 0, '');
    } catch (error) {
      if (error instanceof NotHolderError || error instanceof NoQuorumError) {
        const kind: LossKind = error instanceof NotHolderError ? 'not_held' : 'renewal_failed';
        return ended(request, 'lost', lease?.fencingToken ?? 0, error.message, kind);
      }
      throw error;
    }
  }

  private async renew(key: string, request: KeepAliveRequest): Promise<KeepAliveAnswer | undefined> {
    if (this.closed) return undefined;
    const { resource, lockId } = request;
    const lease = this.leases.get(key);
    if (lease) lease.renewing++;
    const started = performance.now();
    try {
      const renewed = this.span
        ? await context.with(untraced(), () => this.host.renew(resource, lockId, request.ttlMs))
        : await this.host.renew(resource, lockId, request.ttlMs);
      // A Release of this lock id that began meanwhile ran after the renewal on the nodes: the holder let go.
      if (await this.host.releasedByHolder(resource, lockId, started)) {
        return this.releasedMeanwhile(request, lease, renewed.fencingToken);
      }
      if (this.closed) return undefined;
      let current = this.leases.get(key);
      if (!current) {
        // Checked again here: first requests for several new leases may have passed submit() together.
        if (this.leases.size >= this.maxLeases) throw this.tooManyLeases();
        current = this.attach(key, request);
      }
      current.fencingToken = renewed.fencingToken;
      current.clientId = renewed.clientId;
      current.deadline = renewed.deadline;
      current.validUntilMs = renewed.validUntilMs;
      current.renewalFailing = false;
      this.schedule(current);
      this.span?.addEvent('renewed', {
        'redlease.resource': resource,
        'redlease.fencing_token': renewed.fencingToken,
        'redlease.validity_ms': renewed.validityMs,
      });
      return {
        resource,
        lockId,
        state: 'held',
        validityMs: renewed.validityMs,
        validUntilMs: renewed.validUntilMs,
        fencingToken: renewed.fencingToken,
        reason: '',
      };
    } catch (error) {
      if (error instanceof NotHolderError) {
        // Released by its holder through another call, before or while this renewal ran: not a loss.
        if (await this.host.releasedByHolder(resource, lockId)) {
          return this.releasedMeanwhile(request, lease, lease?.fencingToken ?? 0);
        }
        const kind: LossKind = error.reason === HOLD_CAP_REACHED ? 'hold_cap' : 'not_held';
        if (lease) this.forget(lease, kind, error.message);
        return ended(request, 'lost', lease?.fencingToken ?? 0, error.message, kind);
      }
      if (error instanceof NoQuorumError) {
        // Not renewed, not known to be lost: what is left of the previous validity, counted now (the failed
        // attempt took time), still stands, and the deadline timer watches it again (it defers to renewals).
        const left = lease ? Math.floor(lease.deadline - performance.now()) : 0;
        if (lease && left <= 0) {
          const reason = `validity ran out while renewal failed: ${error.message}`;
          this.forget(lease, 'renewal_failed', reason);
          return ended(request, 'lost', lease.fencingToken, reason, 'renewal_failed');
        }
        if (lease) lease.renewalFailing = true;
        if (lease && this.leases.get(key) === lease) this.schedule(lease);
        this.span?.addEvent('renewal failed', {
          'redlease.resource': resource,
          'redlease.reason': error.reason,
          'redlease.validity_ms': left,
        });
        return {
          resource,
          lockId,
          state: 'held',
          validityMs: left,
          validUntilMs: lease ? lease.validUntilMs : 0,
          fencingToken: lease?.fencingToken ?? 0,
          reason: `renewal failed, retry: ${error.message}`,
        };
      }
      throw error;
    } finally {
      if (lease) lease.renewing--;
    }
  }

  /** The answer to a renewal that a Release of the same lock id overtook: detached (if it was), RELEASED. */
  private releasedMeanwhile(
    request: KeepAliveRequest,
    lease: AttachedLease | undefined,
    fencingToken: number,
  ): KeepAliveAnswer | undefined {
    if (lease && this.leases.get(keyOf(lease)) === lease) this.detach(lease);
    if (this.closed) return undefined;
    return ended(request, 'released', fencingToken, 'released by a Release call');
  }

  private tooManyLeases(): LimitError {
    return new LimitError(
      'LEASES_PER_STREAM_LIMIT',
      `too many leases on one KeepAlive stream: the limit is ${this.maxLeases}; open another stream`,
    );
  }

  private attach(key: string, request: KeepAliveRequest): AttachedLease {
    const lease: AttachedLease = {
      stream: this,
      resource: request.resource,
      lockId: request.lockId,
      fencingToken: 0,
      clientId: '',
      deadline: 0,
      validUntilMs: 0,
      renewing: 0,
      renewalFailing: false,
      timer: undefined,
    };
    this.leases.set(key, lease);
    this.host.attach(lease);
    return lease;
  }

  /** LOST at the deadline unless a renewal succeeds first (a renewal in flight decides for itself). */
  private schedule(lease: AttachedLease): void {
    clearTimeout(lease.timer);
    lease.timer = setTimeout(
      () => {
        lease.timer = undefined;
        if (lease.renewing > 0 || performance.now() < lease.deadline) {
          if (lease.renewing === 0) this.schedule(lease);
          return;
        }
        if (this.host.capReached(lease.resource, lease.lockId)) {
          this.lose(lease, 'hold_cap', 'the lease reached its hold cap and is not renewed again');
        } else if (lease.renewalFailing) {
          this.lose(lease, 'renewal_failed', 'validity ran out while renewals failed (no quorum)');
        } else {
          this.lose(lease, 'expired', 'validity ran out: no renewal succeeded before the lease’s deadline');
        }
      },
      Math.max(0, lease.deadline - performance.now()),
    );
  }

  /** Pushes LOST, unasked, and stops watching the lease. */
  lose(lease: AttachedLease, kind: LossKind, reason: string): void {
    if (this.closed || !this.forget(lease, kind, reason)) return;
    this.output.send(ended(lease, 'lost', lease.fencingToken, reason, kind));
  }

  /** The lease's lock id released it through a Release call: stop watching it and say RELEASED, unasked. */
  released(lease: AttachedLease, reason = 'released by a Release call'): void {
    if (this.closed || this.leases.get(keyOf(lease)) !== lease) return;
    this.detach(lease);
    this.span?.addEvent('released', { 'redlease.resource': lease.resource, 'redlease.reason': reason });
    this.output.send(ended(lease, 'released', lease.fencingToken, reason));
  }

  /** Stops watching a lost lease and reports the loss, once: false when it was no longer attached. */
  private forget(lease: AttachedLease, kind: LossKind, reason: string): boolean {
    if (this.leases.get(keyOf(lease)) !== lease) return false;
    this.detach(lease);
    this.host.lost(lease, kind, reason);
    this.span?.addEvent('lost', {
      'redlease.resource': lease.resource,
      'redlease.fencing_token': lease.fencingToken,
      'redlease.loss': kind,
      'redlease.reason': reason,
    });
    return true;
  }

  private detach(lease: AttachedLease): void {
    clearTimeout(lease.timer);
    lease.timer = undefined;
    this.leases.delete(keyOf(lease));
    this.host.detach(lease);
    this.armIdleTimer();
  }

  /** Ends the stream with `error`; leases are detached, not released. */
  fail(error: Error): void {
    if (this.closed) return;
    this.close();
    this.output.fail(error);
  }

  /** The call ended: stop watching; never release (the locks run out their validity). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.idleTimer);
    for (const lease of [...this.leases.values()]) this.detach(lease);
    this.host.closed(this);
    this.resolveIdle?.();
  }
}

/** One lease's key in the coordinator's maps: its resource and lock id. */
export function leaseKey(resource: string, lockId: string): string {
  return `${resource}\n${lockId}`;
}

function keyOf(lease: { resource: string; lockId: string }): string {
  return leaseKey(lease.resource, lease.lockId);
}

function ended(
  lease: { resource: string; lockId: string },
  state: 'lost' | 'released',
  fencingToken: number,
  reason: string,
  loss?: LossKind,
): KeepAliveAnswer {
  return {
    resource: lease.resource,
    lockId: lease.lockId,
    state,
    validityMs: 0,
    validUntilMs: 0,
    fencingToken,
    reason,
    ...(loss ? { loss } : {}),
  };
}
