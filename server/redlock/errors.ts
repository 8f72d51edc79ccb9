/**
 * The engine's outcomes other than success. Two kinds must never be confused (node-redlock's lesson):
 * "someone else holds it" is a normal answer, "no quorum" is an incident. Each error carries the per-node
 * votes that led to it and a stable machine-readable `reason`; none ever carries a lock id.
 */

/** What one node said during an operation. */
export interface NodeVote {
  /** Node name, e.g. `redis-1`. */
  node: string;
  /** granted / extended / released: yes. held: another lock id holds it. not-held: this lock id does not.
   *  error: no usable answer (down, timeout, OOM…). not-voting: answered but is quarantined or refused. */
  vote: 'granted' | 'held' | 'not-held' | 'extended' | 'released' | 'error' | 'not-voting';
  /** Why the vote is `error` or `not-voting`. */
  detail?: string;
}

export type LockErrorCode = 'HELD' | 'NO_QUORUM' | 'NOT_HOLDER' | 'INVALID_ARGUMENT';

export abstract class LockError extends Error {
  abstract readonly code: LockErrorCode;
  /** Stable, machine-readable cause, e.g. LOCK_HELD, QUORUM_UNAVAILABLE, TTL_OUT_OF_RANGE. */
  readonly reason: string;
  readonly votes: readonly NodeVote[];

  constructor(reason: string, message: string, votes: readonly NodeVote[] = [], options?: ErrorOptions) {
    super(message, options);
    this.reason = reason;
    this.votes = votes;
  }

  override get name(): string {
    return this.constructor.name;
  }
}

/** The resource is held by another lock id (on a quorum, or contended with no winner after the retries). */
export class HeldByAnotherError extends LockError {
  readonly code = 'HELD' as const;
  /** How long the current holder's lock has left on a quorum of nodes, when one holder has a quorum. */
  readonly holderTtlMs: number | undefined;

  constructor(
    reason: 'LOCK_HELD' | 'LOCK_CONTENDED',
    message: string,
    votes: readonly NodeVote[],
    holderTtlMs?: number,
  ) {
    super(reason, message, votes);
    this.holderTtlMs = holderTtlMs;
  }
}

/** Not enough voting nodes answered in time (down, paused, quarantined, refused), or they answered too slowly
 *  for any validity to remain. Nothing was granted; partial locks were removed. */
export class NoQuorumError extends LockError {
  readonly code = 'NO_QUORUM' as const;
}

/** Release or extend with a lock id that does not hold the lock (expired, released, or never held). */
export class NotHolderError extends LockError {
  readonly code = 'NOT_HOLDER' as const;
}

/** A request field is malformed or out of range; nothing was sent to Redis. */
export class InvalidArgumentError extends LockError {
  readonly code = 'INVALID_ARGUMENT' as const;
  /** The request field at fault, as named on the wire (snake_case). */
  readonly field: string;

  constructor(field: string, reason: string, message: string) {
    super(reason, message);
    this.field = field;
  }
}
