import { Status } from 'nice-grpc';
import {
  LimitError,
  LiveLeasesError,
  LockError,
  type LockErrorCode,
  ShuttingDownError,
} from '../coordinator/index.js';
import { AuthError } from './auth.js';

/**
 * The one table from domain outcomes to gRPC status codes (DESIGN, "Status codes"), for both edges: the gRPC edge
 * sends these codes, and the HTTP edge turns them into HTTP statuses through its one table (http-status.ts).
 */
const STATUS_OF: Record<
  | LockErrorCode
  | LimitError['code']
  | ShuttingDownError['code']
  | LiveLeasesError['code']
  | AuthError['code'],
  Status
> = {
  // The request can never succeed as sent.
  INVALID_ARGUMENT: Status.INVALID_ARGUMENT,
  // Someone else holds the resource (and the wait, if any, ran out): a normal outcome, retry later.
  HELD: Status.ABORTED,
  // This lock id no longer holds the resource: the lease is gone, acquire a new one.
  NOT_HOLDER: Status.FAILED_PRECONDITION,
  // Too few Redis nodes could vote: an incident, retry with backoff.
  NO_QUORUM: Status.UNAVAILABLE,
  // A server limit: retry later.
  LIMIT: Status.RESOURCE_EXHAUSTED,
  // Retry on another replica or after the restart.
  SHUTTING_DOWN: Status.UNAVAILABLE,
  // SetMode while leases are live, without force: nothing changed.
  LIVE_LEASES: Status.FAILED_PRECONDITION,
  // No credentials or wrong ones; right credentials, not allowed here.
  UNAUTHENTICATED: Status.UNAUTHENTICATED,
  PERMISSION_DENIED: Status.PERMISSION_DENIED,
};

/** Trailer (gRPC) and error field (HTTP) carrying the stable machine-readable reason, e.g. LOCK_HELD. */
export const REASON_TRAILER = 'redlease-reason';

export interface ErrorStatus {
  status: Status;
  /** Prose that says what to fix. */
  message: string;
  /** Stable and machine-readable (LOCK_HELD, TTL_OUT_OF_RANGE…). */
  reason: string;
  /** The request field at fault, when there is one. */
  field?: string;
}

/** The status a domain or auth error is answered with; undefined when it is not one of ours (a bug). */
export function errorStatus(error: unknown): ErrorStatus | undefined {
  if (
    error instanceof LockError ||
    error instanceof LimitError ||
    error instanceof ShuttingDownError ||
    error instanceof LiveLeasesError ||
    error instanceof AuthError
  ) {
    const field = (error as { field?: string }).field;
    return {
      status: STATUS_OF[error.code],
      message: error.message,
      reason: error.reason,
      ...(field === undefined ? {} : { field }),
    };
  }
  return undefined;
}
