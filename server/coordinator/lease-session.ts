import { type InvalidArgumentError, NoQuorumError, NotHolderError } from '../redlock/index.js';
import type { Coordinator } from './coordinator.js';
import { LimitError } from './errors.js';
import type { LossKind } from './lock-events.js';

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
}

/** Where a session's answers and unasked LOST notices go, and how it ends the stream. */
export interface SessionOutput {
  send(answer: KeepAliveAnswer): void;
  /** Ends the stream with a status for a stream-wide problem. */
  fail(error: Error): void;
  /** Ends the stream normally (idle: nothing attached, nothing asked). */
  end(): void;
}

/** A lease attached to a KeepAlive session: what the server knows of it between renewals. */
export interface AttachedLease {
  readonly session: LeaseSession;
  readonly resource: string;
  readonly lockId: string;
  fencingToken: number;
  clientId: string;
  /** End of validity from the last successful renewal, on this process's monotonic clock. */
  deadline: number;
  /** The same as a wall-clock estimate (unix ms), as answered then. */
  validUntilMs: number;
  /** Renewals in flight: while one is, the deadline timer defers to its outcome. */
  renewing: number;
  timer: NodeJS.Timeout | undefined;
}

/** Requests waiting or running per stream, beyond which a client is flooding: 4 per lease it may carry. */
const PENDING_PER_LEASE = 4;

/**
 * The server side of one KeepAlive stream. The server renews only when asked; between requests it watches each
 * attached lease and pushes LOST, unasked, when it learns the lease is gone: its validity ran out with no
 * renewal, another lease took the resource, or it was released elsewhere. Requests for one lease are handled in
 * order; different leases run concurrently. Closing the session never releases anything: the locks run out
 * their validity (a broken stream does not prove that its client stopped).
 */
export class LeaseSession {
  private readonly leases = new Map<string, AttachedLease>();
  private readonly chains = new Map<string, Promise<void>>();
  private pending = 0;
  private closed = false;
  private idle: Promise<void> = Promise.resolve();
  private resolveIdle: (() => void) | undefined;
  private idleTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly coordinator: Coordinator,
    private readonly output: SessionOutput,
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
      this.coordinator.engine.validateLease(
        request.resource,
        request.lockId,
        request.release ? undefined : request.ttlMs,
      );
    } catch (error) {
      this.fail(error as InvalidArgumentError);
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
    const key = `${request.resource}\n${request.lockId}`;
    if (!request.release && !this.leases.has(key) && this.leases.size >= this.maxLeases) {
      this.fail(this.tooManyLeases());
      return;
    }
    if (this.pending === 0) this.idle = new Promise((resolve) => (this.resolveIdle = resolve));
    this.pending++;
    this.armIdleTimer();
    const previous = this.chains.get(key) ?? Promise.resolve();
    const next = previous
      .then(() => this.handle(key, request))
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

  private async handle(key: string, request: KeepAliveRequest): Promise<KeepAliveAnswer | undefined> {
    if (this.closed) return undefined;
    const { resource, lockId } = request;
    const lease = this.leases.get(key);
    if (request.release) {
      if (lease) this.detach(lease);
      try {
        const result = await this.coordinator.release(resource, lockId, this);
        return answer(request, 'released', result.fencingToken || lease?.fencingToken || 0, '');
      } catch (error) {
        if (error instanceof NotHolderError || error instanceof NoQuorumError) {
          return answer(request, 'lost', lease?.fencingToken ?? 0, error.message);
        }
        throw error;
      }
    }
    if (lease) lease.renewing++;
    try {
      const renewed = await this.coordinator.extend(resource, lockId, request.ttlMs, true);
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
      this.schedule(current);
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
        if (lease) this.forget(lease, 'not_held', error.message);
        return answer(request, 'lost', lease?.fencingToken ?? 0, error.message);
      }
      if (error instanceof NoQuorumError) {
        // Not renewed, not known to be lost: what is left of the previous validity, counted now (the failed
        // attempt took time), still stands, and the deadline timer watches it again (it defers to renewals).
        const left = lease ? Math.floor(lease.deadline - performance.now()) : 0;
        if (lease && left <= 0) {
          const reason = `validity ran out while renewal failed: ${error.message}`;
          this.forget(lease, 'renewal_failed', reason);
          return answer(request, 'lost', lease.fencingToken, reason);
        }
        if (lease && this.leases.get(key) === lease) this.schedule(lease);
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

  private tooManyLeases(): LimitError {
    return new LimitError(
      'LEASES_PER_STREAM_LIMIT',
      `too many leases on one KeepAlive stream: the limit is ${this.maxLeases}; open another stream`,
    );
  }

  private attach(key: string, request: KeepAliveRequest): AttachedLease {
    const lease: AttachedLease = {
      session: this,
      resource: request.resource,
      lockId: request.lockId,
      fencingToken: 0,
      clientId: '',
      deadline: 0,
      validUntilMs: 0,
      renewing: 0,
      timer: undefined,
    };
    this.leases.set(key, lease);
    this.coordinator.attach(lease);
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
        this.lose(lease, 'expired', 'validity ran out: no renewal succeeded before the lease’s deadline');
      },
      Math.max(0, lease.deadline - performance.now()),
    );
  }

  /** Pushes LOST, unasked, and stops watching the lease. */
  lose(lease: AttachedLease, kind: LossKind, reason: string): void {
    if (this.closed || !this.forget(lease, kind, reason)) return;
    this.output.send(answer(lease, 'lost', lease.fencingToken, reason));
  }

  /** The lease's lock id released it through a Release call: stop watching it and say RELEASED, unasked. */
  released(lease: AttachedLease): void {
    if (this.closed || this.leases.get(`${lease.resource}\n${lease.lockId}`) !== lease) return;
    this.detach(lease);
    this.output.send(answer(lease, 'released', lease.fencingToken, 'released by a Release call'));
  }

  /** Stops watching a lost lease and logs the loss, once: false when it was no longer attached. */
  private forget(lease: AttachedLease, kind: LossKind, reason: string): boolean {
    if (this.leases.get(`${lease.resource}\n${lease.lockId}`) !== lease) return false;
    this.detach(lease);
    this.coordinator.lost(lease, kind, reason);
    return true;
  }

  private detach(lease: AttachedLease): void {
    clearTimeout(lease.timer);
    lease.timer = undefined;
    this.leases.delete(`${lease.resource}\n${lease.lockId}`);
    this.coordinator.detach(lease);
    this.armIdleTimer();
  }

  /** Ends the stream with `error`; leases are detached, not released. */
  fail(error: Error): void {
    if (this.closed) return;
    this.close();
    this.output.fail(error);
  }

  /** The stream ended: stop watching; never release (the locks run out their validity). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.idleTimer);
    for (const lease of [...this.leases.values()]) this.detach(lease);
    this.coordinator.sessionClosed(this);
    this.resolveIdle?.();
  }
}

function answer(
  lease: { resource: string; lockId: string },
  state: 'lost' | 'released',
  fencingToken: number,
  reason: string,
): KeepAliveAnswer {
  return {
    resource: lease.resource,
    lockId: lease.lockId,
    state,
    validityMs: 0,
    validUntilMs: 0,
    fencingToken,
    reason,
  };
}
