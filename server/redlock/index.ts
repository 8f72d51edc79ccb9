export {
  HeldByAnotherError,
  InvalidArgumentError,
  LockError,
  type LockErrorCode,
  type NodeVote,
  NoQuorumError,
  NotHolderError,
} from './errors.js';
export { LOCK_ID_PATTERN, newLockId } from './lock-id.js';
export { DEFAULTS, driftMs, type NodeConfig, type RedlockOptions } from './options.js';
export { quorumOf } from './quorum.js';
export { type AcquireOptions, Redlock } from './redlock.js';
export type {
  ClusterStatus,
  Lease,
  LockState,
  Mode,
  NodeLockState,
  NodeStatus,
  ReleaseResult,
} from './types.js';
