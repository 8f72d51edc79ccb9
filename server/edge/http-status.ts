import { Status } from 'nice-grpc';

/**
 * The one table from gRPC status codes to HTTP statuses, for every error the lab JSON API sends (the domain's
 * errors reach it as gRPC codes through status.ts beside it). It follows the gRPC–HTTP mapping of Google's APIs
 * (google.rpc.Code), as grpc-gateway and connect-es do.
 */
export const HTTP_STATUS_OF: Readonly<Record<Status, number>> = {
  [Status.OK]: 200,
  // The client went away; nobody reads the answer (nginx's convention).
  [Status.CANCELLED]: 499,
  [Status.UNKNOWN]: 500,
  // A field is malformed or out of range: fix the request.
  [Status.INVALID_ARGUMENT]: 400,
  [Status.DEADLINE_EXCEEDED]: 504,
  [Status.NOT_FOUND]: 404,
  [Status.ALREADY_EXISTS]: 409,
  [Status.PERMISSION_DENIED]: 403,
  // A limit was hit (waiters, streams): retry later. Bodies that are too large are 413, decided at the edge.
  [Status.RESOURCE_EXHAUSTED]: 429,
  // This lock id does not hold the lock (released, expired, taken over): a conflict with the resource's state.
  [Status.FAILED_PRECONDITION]: 409,
  // Held by another client (after the wait, if any): a conflict, retry later.
  [Status.ABORTED]: 409,
  [Status.OUT_OF_RANGE]: 400,
  [Status.UNIMPLEMENTED]: 501,
  [Status.INTERNAL]: 500,
  // No quorum, or the server is shutting down: sent with Retry-After.
  [Status.UNAVAILABLE]: 503,
  [Status.DATA_LOSS]: 500,
  [Status.UNAUTHENTICATED]: 401,
};
