/**
 * What the edges (gRPC, HTTP) may use of the domain: the Coordinator, the shapes it answers with, and the errors
 * it throws. The edges import this file and never the engine, so the engine can change behind the Coordinator.
 */

export type {
  ClusterStatus,
  Lease,
  Mode,
  NodeStatus,
  ReleaseResult,
} from '../redlock/index.js';
export {
  InvalidArgumentError,
  LockError,
  type LockErrorCode,
} from '../redlock/index.js';
export {
  type AcquireRequest,
  Coordinator,
  type CoordinatorLimits,
  type Grant,
  type ResourceState,
} from './coordinator.js';
export { LimitError, LiveLeasesError, ShuttingDownError } from './errors.js';
export type {
  KeepAliveAnswer,
  KeepAliveRequest,
  KeepAliveStream,
  StreamOutput,
} from './keep-alive-stream.js';
export type { HoldEnd, LockEvents, LossKind, Outcome } from './lock-events.js';
