/**
 * redlease client SDK: leases on named resources from a redlease server, renewed automatically, with fencing
 * tokens and a fenced store. See client/README.md.
 */

export type { DescribeResponse as LockDescription, NodeLockState } from '../../gen/redlease/v1/lock.js';
export {
  AuthError,
  InvalidArgumentError,
  LeaseLostError,
  LeaseReleasedError,
  LimitExceededError,
  LockError,
  LockHeldError,
  LockNotHeldError,
  LockTimeoutError,
  UnavailableError,
} from './errors.js';
export { FencedStore, type FencedStoreOptions, StaleTokenError } from './fenced-store.js';
export { Lease } from './lease.js';
export {
  type AcquireOptions,
  LockClient,
  type LockClientEvents,
  type LockClientOptions,
} from './lock-client.js';
