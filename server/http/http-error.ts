import { Status } from 'nice-grpc';

/**
 * A request the HTTP edge refuses before it reaches the domain: a body that is not JSON, too large or of the
 * wrong type, an unknown path or method. Carries its own HTTP status (413, 415, 404, 405…) and, like every
 * error of the API, a gRPC code name and a stable reason for the JSON error body.
 */
export class HttpError extends Error {
  constructor(
    readonly httpStatus: number,
    readonly code: Status,
    /** Stable, machine-readable, e.g. MALFORMED_JSON. */
    readonly reason: string,
    message: string,
    /** The request field at fault, when there is one. */
    readonly field?: string,
    /** Extra response headers (Allow for 405). */
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(message);
  }

  override get name(): string {
    return 'HttpError';
  }
}

export function invalid(reason: string, message: string, field?: string): HttpError {
  return new HttpError(400, Status.INVALID_ARGUMENT, reason, message, field);
}
