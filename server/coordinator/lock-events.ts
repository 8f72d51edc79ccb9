import { isAbortError } from 'abort-controller-x';
import { HeldByAnotherError, InvalidArgumentError, NoQuorumError, NotHolderError } from '../redlock/index.js';
import { LimitError, ShuttingDownError } from './errors.js';

/**
 * How a lock operation ended, as one low-cardinality label (metrics, logs). `acquired` is a grant with a new
 * fencing token; `reclaimed` hands back the lease a lock id already held (an idempotent re-send): counting it as
 * an acquisition would count one grant twice.
 */
export type Outcome =
  | 'acquired'
  | 'reclaimed'
  | 'released'
  | 'extended'
  | 'held'
  | 'not_held'
  | 'unavailable'
  | 'invalid'
  | 'limited'
  | 'cancelled'
  | 'shutdown'
  | 'error';

/**
 * Why a kept-alive lease was lost (the label of `redlease_leases_lost_total`): its validity ran out with no
 * renewal; it ran out while renewals failed (no quorum); a renewal found another lock id (or none) holding it;
 * another lease was granted the resource; it reached its hold cap; a forced mode switch ended it. A Release of the lease's own lock id, through
 * this server or another one, is the holder letting go, not a loss: its streams are told RELEASED.
 */
export type LossKind = 'expired' | 'renewal_failed' | 'not_held' | 'taken_over' | 'hold_cap' | 'mode_switch';

/**
 * How a hold that this server granted ended (the label of `redlease_hold_seconds`): its holder released it; it was
 * lost while kept alive, or an Extend found it gone; or its validity ran out with no word from the holder.
 */
export type HoldEnd = 'released' | 'lost' | 'expired';

/** What the coordinator reports as it works; the metrics implement it. Every method must be cheap and never throw. */
export interface LockEvents {
  acquire(outcome: Outcome): void;
  release(outcome: Outcome): void;
  /** Extend calls and KeepAlive renewals. */
  extend(outcome: Outcome): void;
  /** A queued Acquire left the queue after `waitedMs`. */
  waited(outcome: Outcome, waitedMs: number): void;
  /** A waiter was granted the resource `ms` after a release woke its queue. */
  handoff(ms: number): void;
  lost(kind: LossKind): void;
  /** A lease granted through this server was held for `ms`, from its grant to its end. */
  held(ms: number, end: HoldEnd): void;
}

export const NO_EVENTS: LockEvents = {
  acquire() {},
  release() {},
  extend() {},
  waited() {},
  handoff() {},
  lost() {},
  held() {},
};

/** The outcome label of a failed operation. */
export function failureOutcome(error: unknown, signal?: AbortSignal): Outcome {
  if (error instanceof HeldByAnotherError) return 'held';
  if (error instanceof NotHolderError) return 'not_held';
  if (error instanceof NoQuorumError) return 'unavailable';
  if (error instanceof InvalidArgumentError) return 'invalid';
  if (error instanceof LimitError) return 'limited';
  if (error instanceof ShuttingDownError) return 'shutdown';
  if (signal?.aborted || isAbortError(error)) return 'cancelled';
  return 'error';
}
