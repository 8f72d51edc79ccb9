/**
 * redlease client SDK: leases on named resources from a redlease server, renewed automatically, with fencing
 * tokens and a fenced store. See client/README.md.
 */

export type { DescribeResponse as LockDescription, NodeLockState } from '../../gen/redlease/v1/lock.js';
export {
  AuthError,
  InvalidArgumentError,
  LeaseExpiringError,
  LeaseLostError,
  LeaseReleasedError,
  LimitExceededError,
  LockError,
  LockHeldError,
  LockNotHeldError,
  LockTimeoutError,
  type LossReason,
  UnavailableError,
} from './errors.js';
export { FencedStore, type FencedStoreOptions, StaleTokenError } from './fenced-store.js';
export { Lease, type LeaseEvents } from './lease.js';
export {
  type AcquireOptions,
  LockClient,
  type LockClientEvents,
  type LockClientOptions,
} from './lock-client.js';
