import type { Logger } from 'pino';
import type { Lease, ReleaseResult } from '../redlock/index.js';
import { HeldLeases } from './held-leases.js';
import { failureOutcome, type LockEvents, type LossKind, NO_EVENTS, type Outcome } from './lock-events.js';
import { annotate } from './tracing.js';

/** Who a lost lease belonged to, for the log line. */
export interface LostLease {
  resource: string;
  lockId: string;
  clientId: string;
  fencingToken: number;
}

/**
 * The lock event log: one log line per lock event, the same event to the metrics (`LockEvents`) and as attributes
 * of the span of the call that asked (`redlease.outcome` and who: tracing.ts), and the leases
 * this server believes held (the `redlease_held_locks` gauge, and how a new grant is told from an idempotent
 * re-send). Every other part of the coordinator reports here and nowhere else, so what a lock did is read in one
 * place.
 */
export class LockLog {
  private readonly held: HeldLeases;

  constructor(
    private readonly log: Logger,
    /** Told of every outcome (the metrics). */
    private readonly events: LockEvents = NO_EVENTS,
  ) {
    this.held = new HeldLeases((ms, end) => events.held(ms, end));
  }

  /** Leases granted or extended through this server that are still within their validity, as far as it knows. */
  get heldCount(): number {
    return this.held.count;
  }

  /** Those leases, by resource, lock id and token. */
  liveLeases(): { resource: string; lockId: string; fencingToken: number }[] {
    return this.held.live();
  }

  /** A mode switch (SetMode with force) is ending `count` live leases: logged at WARN. */
  modeSwitchForced(from: string, to: string, count: number): void {
    this.log.warn({ event: 'mode-switch-forced', from, to, leases_ended: count }, 'mode switched with force');
  }

  /**
   * A grant. A re-send that got back the lease its lock id already held (same token) is `reclaimed`: logged and
   * counted apart, so one grant is never counted twice.
   */
  granted(lease: Lease, waitTimeoutMs: number, durationMs: number): Outcome {
    const outcome = this.held.granted(lease) ? 'acquired' : 'reclaimed';
    this.events.acquire(outcome);
    annotate(() => ({
      'redlease.outcome': outcome,
      'redlease.resource': lease.resource,
      'redlease.client_id': lease.clientId,
      'redlease.fencing_token': lease.fencingToken,
      'redlease.attempts': lease.attempts,
      'redlease.nodes': lease.nodes,
      'redlease.validity_ms': lease.validityMs,
    }));
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
        wait_timeout_ms: waitTimeoutMs,
        duration_ms: round(durationMs),
      },
      `lock ${outcome}`,
    );
    return outcome;
  }

  acquireFailed(error: unknown, signal: AbortSignal): void {
    const outcome = failureOutcome(error, signal);
    this.events.acquire(outcome);
    annotate(() => ({ 'redlease.outcome': outcome }));
  }

  /** A queued Acquire left its queue after `waitedMs`. */
  waited(outcome: Outcome, resource: string, clientId: string, waitedMs: number): void {
    this.events.waited(outcome, waitedMs);
    this.log.info(
      {
        event: 'waited',
        resource,
        client_id: clientId,
        waited_ms: Math.round(waitedMs),
        outcome: outcome === 'held' ? 'timed-out' : outcome,
      },
      'lock waited',
    );
  }

  /** A waiter was granted the resource `ms` after a release woke its queue. */
  handoff(ms: number): void {
    this.events.handoff(ms);
  }

  released(resource: string, lockId: string, result: ReleaseResult, durationMs: number): void {
    const outcome = result.released ? 'released' : 'not_held';
    this.events.release(outcome);
    annotate(() => ({
      'redlease.outcome': outcome,
      'redlease.client_id': result.clientId,
      'redlease.fencing_token': result.fencingToken,
      'redlease.nodes': result.nodes,
    }));
    this.held.ended(resource, lockId, result.released ? 'released' : 'lost');
    this.log.info(
      {
        event: 'released',
        resource,
        client_id: result.clientId,
        token: result.fencingToken,
        nodes: result.nodes,
        duration_ms: round(durationMs),
      },
      'lock released',
    );
  }

  releaseFailed(error: unknown): void {
    const outcome = failureOutcome(error);
    this.events.release(outcome);
    annotate(() => ({ 'redlease.outcome': outcome }));
  }

  /** `quiet`: a KeepAlive renewal, logged at debug (they come every third of a ttl per lease). */
  extended(lease: Lease, durationMs: number, quiet: boolean): void {
    this.events.extend('extended');
    annotate(() => ({
      'redlease.outcome': 'extended',
      'redlease.client_id': lease.clientId,
      'redlease.fencing_token': lease.fencingToken,
      'redlease.validity_ms': lease.validityMs,
    }));
    this.held.extended(lease);
    this.log[quiet ? 'debug' : 'info'](
      {
        event: 'extended',
        resource: lease.resource,
        client_id: lease.clientId,
        token: lease.fencingToken,
        ttl_ms: lease.ttlMs,
        validity_ms: lease.validityMs,
        duration_ms: round(durationMs),
      },
      'lock extended',
    );
  }

  /** `gone`: the engine said this lock id no longer holds the resource. */
  extendFailed(error: unknown, resource: string, lockId: string, gone: boolean): void {
    const outcome = failureOutcome(error);
    this.events.extend(outcome);
    annotate(() => ({ 'redlease.outcome': outcome }));
    if (gone) this.held.ended(resource, lockId, 'lost');
  }

  /** Something went wrong beside a lock operation (no lock event): logged at WARN. */
  warning(message: string, fields: Record<string, unknown>): void {
    this.log.warn(fields, message);
  }

  /** A lease kept alive on a stream was lost: reported once per lease, at WARN. */
  lost(lease: LostLease, kind: LossKind, reason: string): void {
    this.events.lost(kind);
    this.held.ended(lease.resource, lease.lockId, 'lost');
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
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}
