import { isAbortError } from 'abort-controller-x';
import { ServerError, type ServerMiddleware, Status } from 'nice-grpc';
import type { Logger } from 'pino';
import { LimitError, ShuttingDownError } from '../coordinator/errors.js';
import { LockError, type LockErrorCode } from '../redlock/index.js';
import { AuthError } from './auth.js';

/**
 * The one table from domain outcomes to gRPC status codes (DESIGN, "Status codes"). The HTTP edge maps these
 * gRPC codes to HTTP statuses in its own single table.
 */
const STATUS_OF: Record<
  LockErrorCode | LimitError['code'] | ShuttingDownError['code'] | AuthError['code'],
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
  // No credentials or wrong ones; right credentials, not allowed here.
  UNAUTHENTICATED: Status.UNAUTHENTICATED,
  PERMISSION_DENIED: Status.PERMISSION_DENIED,
};

/** Trailer carrying the stable machine-readable reason (e.g. LOCK_HELD, TTL_OUT_OF_RANGE); messages are prose. */
export const REASON_TRAILER = 'redlease-reason';

/** Converts a domain error into the ServerError sent to the caller; undefined when it is not one of ours. */
export function toServerError(
  error: unknown,
): { status: Status; message: string; reason: string } | undefined {
  if (
    error instanceof LockError ||
    error instanceof LimitError ||
    error instanceof ShuttingDownError ||
    error instanceof AuthError
  ) {
    return { status: STATUS_OF[error.code], message: error.message, reason: error.reason };
  }
  return undefined;
}

/**
 * Every service method's errors pass here: domain errors become their status with the reason in a trailer; an
 * abort (cancelled call, passed deadline) and ServerErrors pass through; anything else is a bug, logged once
 * with its stack and sent as INTERNAL without internals.
 */
export function errorMapping(log: Logger): ServerMiddleware {
  return async function* mapErrors(call, context) {
    try {
      return yield* call.next(call.request, context);
    } catch (error) {
      if (error instanceof ServerError || (isAbortError(error) && context.signal.aborted)) throw error;
      const mapped = toServerError(error);
      if (mapped) {
        context.trailer.set(REASON_TRAILER, mapped.reason);
        throw new ServerError(mapped.status, mapped.message);
      }
      log.error({ err: error, method: call.method.path }, 'internal error');
      throw new ServerError(Status.INTERNAL, 'internal error; the server logged the details');
    }
  };
}
