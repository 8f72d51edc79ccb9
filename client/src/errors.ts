import { ClientError, Status } from 'nice-grpc-common';

/**
 * Base class of every error the SDK raises for a call the server answered (or could not be reached for).
 * `code` is the gRPC status name, `reason` the server's stable machine-readable reason (the `redlease-reason`
 * trailer, e.g. `LOCK_HELD`, `TTL_OUT_OF_RANGE`; empty when the server sent none, e.g. a transport failure).
 * Decide on the class, `code` or `reason`; the message is prose for people. The underlying gRPC error is kept
 * as `cause`.
 */
export class LockError extends Error {
  override name = 'LockError';
  constructor(
    message: string,
    readonly code: keyof typeof Status,
    readonly reason: string,
    readonly resource: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** The resource is held by another lease (and the wait, if any, ran out): a normal outcome, try again later. */
export class LockHeldError extends LockError {
  override name = 'LockHeldError';
}

/**
 * Too few Redis nodes could vote, the server is shutting down, or it could not be reached: an incident, not
 * contention. The SDK has already retried with backoff before raising it.
 */
export class UnavailableError extends LockError {
  override name = 'UnavailableError';
}

/** The lock id no longer holds the resource (expired, released, taken over): the lease is gone. */
export class LockNotHeldError extends LockError {
  override name = 'LockNotHeldError';
}

/** A request field is malformed or out of range; the message starts with the field name. Do not retry. */
export class InvalidArgumentError extends LockError {
  override name = 'InvalidArgumentError';
}

/** A server limit was hit (waiters per resource, streams, leases per stream…); the message names it. */
export class LimitExceededError extends LockError {
  override name = 'LimitExceededError';
}

/** The server refused the credentials (UNAUTHENTICATED) or the call (PERMISSION_DENIED). */
export class AuthError extends LockError {
  override name = 'AuthError';
}

/** The call's deadline passed before the server answered: the outcome is unknown (see the proto). */
export class LockTimeoutError extends LockError {
  override name = 'LockTimeoutError';
}

/**
 * Why a lease was lost, machine-readable: the wire's LossReason (lock.proto) without its `LOSS_REASON_` prefix.
 * - `EXPIRED`: no renewal succeeded in time (renewals stopped or did not arrive; also a renewal that found the lock
 *   gone from the nodes).
 * - `RENEWAL_FAILED`: renewals were failing for want of a quorum of Redis nodes when the validity ran out.
 * - `TAKEN_OVER`: another lease was granted the resource.
 * - `REVOKED`: an administrator ended the lease.
 * - `MODE_SWITCH`: the server's locking mode was switched with `force`, ending every live lease.
 * - `HOLD_CAP`: the lease reached its hold cap (`maxHoldMs`, or the server's `--max-hold-ms`).
 * - `UNSPECIFIED`: none of these is known (e.g. the client was closed without releasing, or a newer server sent a
 *   reason this SDK does not know).
 */
export type LossReason =
  | 'EXPIRED'
  | 'RENEWAL_FAILED'
  | 'TAKEN_OVER'
  | 'REVOKED'
  | 'MODE_SWITCH'
  | 'HOLD_CAP'
  | 'UNSPECIFIED';

/**
 * Why a lease's `signal` aborted when the lease was lost. `reason` says why (see LossReason); `kind` says who
 * noticed: `expired` (its validity ran out on this process's monotonic clock without a renewal, e.g. the server
 * was unreachable or this process stalled), or `lost` (the server said this lock id no longer holds the
 * resource). Either way the holder must stop relying on the lock.
 */
export class LeaseLostError extends Error {
  override name = 'LeaseLostError';
  constructor(
    readonly resource: string,
    readonly fencingToken: number,
    readonly kind: 'expired' | 'lost',
    detail: string,
    readonly reason: LossReason = kind === 'expired' ? 'EXPIRED' : 'UNSPECIFIED',
  ) {
    super(
      `lease on "${resource}" (token ${fencingToken}) ${kind === 'expired' ? 'expired' : 'lost'}: ${detail} (reason ${reason})`,
    );
  }
}

/**
 * Thrown by `lease.assertValidFor(ms)` when the lease is held but will not stay valid for `neededMs`: do not start
 * the write. (When the lease has already ended, its LeaseLostError / LeaseReleasedError is thrown instead.)
 */
export class LeaseExpiringError extends Error {
  override name = 'LeaseExpiringError';
  constructor(
    readonly resource: string,
    readonly fencingToken: number,
    readonly remainingMs: number,
    readonly neededMs: number,
  ) {
    super(
      `lease on "${resource}" (token ${fencingToken}) has ${Math.floor(remainingMs)} ms left, less than the ${neededMs} ms asked for`,
    );
  }
}

/** Why a lease's `signal` aborted when its holder released it (or closed the client). */
export class LeaseReleasedError extends Error {
  override name = 'LeaseReleasedError';
  constructor(
    readonly resource: string,
    readonly fencingToken: number,
  ) {
    super(`lease on "${resource}" (token ${fencingToken}) was released`);
  }
}

type LockErrorClass = new (...args: ConstructorParameters<typeof LockError>) => LockError;

/**
 * The one table from gRPC status to SDK error class (the server's side is server/grpc/status.ts). Codes not
 * listed (INTERNAL, UNKNOWN, UNIMPLEMENTED…) are server bugs or a wrong address and stay plain LockErrors.
 */
const CLASS_OF: Partial<Record<Status, LockErrorClass>> = {
  [Status.ABORTED]: LockHeldError,
  [Status.UNAVAILABLE]: UnavailableError,
  [Status.FAILED_PRECONDITION]: LockNotHeldError,
  [Status.INVALID_ARGUMENT]: InvalidArgumentError,
  [Status.RESOURCE_EXHAUSTED]: LimitExceededError,
  [Status.UNAUTHENTICATED]: AuthError,
  [Status.PERMISSION_DENIED]: AuthError,
  [Status.DEADLINE_EXCEEDED]: LockTimeoutError,
};

/**
 * grpc-js's wording when a call ends with its HTTP/2 stream reset and no gRPC status: the connection broke under
 * it (the server closed the session on bytes it could not parse, or the client's own session failed). grpc-js
 * says INTERNAL for these but UNAVAILABLE when the socket was reset; it is no answer from the server either way,
 * so it is treated as UNAVAILABLE: retried with backoff on a new connection, its outcome unknown. (The server's own
 * INTERNAL answers come with a gRPC status, never as a stream reset.)
 */
const STREAM_RESET = /^Received RST_STREAM with code \d+/;

/** Turns a failed call into a typed error; anything that is not a ClientError (an abort…) is returned as is. */
export function toLockError(error: unknown, resource: string, reason: string): unknown {
  if (!(error instanceof ClientError)) return error;
  if (error.code === Status.INTERNAL && reason === '' && STREAM_RESET.test(error.details)) {
    return new UnavailableError(
      `UNAVAILABLE: the connection to the server broke (${error.details})`,
      'UNAVAILABLE',
      '',
      resource,
      { cause: error },
    );
  }
  const Class = CLASS_OF[error.code] ?? LockError;
  const code = Status[error.code] as keyof typeof Status;
  return new Class(`${code}: ${error.details}`, code, reason, resource, { cause: error });
}

/** True for errors worth retrying with the same lock id: no quorum, shutting down, or the server unreachable. */
export function isRetryable(error: unknown): boolean {
  return error instanceof UnavailableError;
}
