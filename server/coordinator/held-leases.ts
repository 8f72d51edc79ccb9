import type { Lease } from '../redlock/index.js';
import type { HoldEnd } from './lock-events.js';

interface Held {
  lockId: string;
  fencingToken: number;
  /** When it was granted, on this process's monotonic clock. */
  since: number;
  /** End of validity on the same clock. */
  deadline: number;
}

/** Entries kept before the first sweep of expired ones; later sweeps run when the map doubles. */
const FIRST_SWEEP = 1_024;

/**
 * The leases this server granted or extended and still believes valid, one per resource: the count behind
 * `redlease_held_locks`, and how a grant with a new fencing token is told from an idempotent re-send that got its
 * lease back. Nothing here decides safety (Redis does); a lease lost elsewhere stays counted until its deadline.
 * Memory is bounded by the live leases: expired entries are swept whenever the map has doubled since the last
 * sweep, and on every count. Each hold that ends is reported to `onEnded` with how long it lasted: a release or a
 * known loss when it happens, an expiry (lasting until the deadline) when a sweep or a new grant finds it.
 */
export class HeldLeases {
  private readonly byResource = new Map<string, Held>();
  private sweepAt = FIRST_SWEEP;

  constructor(private readonly onEnded: (ms: number, end: HoldEnd) => void = () => {}) {}

  /** Records a grant; false when it is the lease already recorded (same lock id and token): nothing new. */
  granted(lease: Lease): boolean {
    const known = this.byResource.get(lease.resource);
    const isNew = !(known?.lockId === lease.lockId && known.fencingToken === lease.fencingToken);
    this.record(lease);
    return isNew;
  }

  /** An extension or renewal succeeded: the lease holds until its new deadline. */
  extended(lease: Lease): void {
    this.record(lease);
  }

  /** The lease `lockId` on `resource` is gone: released, or known lost. */
  ended(resource: string, lockId: string, end: Exclude<HoldEnd, 'expired'>): void {
    const held = this.byResource.get(resource);
    if (held?.lockId !== lockId) return;
    this.byResource.delete(resource);
    // Past its deadline it had run out already, whatever ended it later.
    if (held.deadline <= performance.now()) this.expired(held);
    else this.onEnded(performance.now() - held.since, end);
  }

  get count(): number {
    this.sweep();
    return this.byResource.size;
  }

  /** The leases still within their validity. */
  live(): { resource: string; lockId: string; fencingToken: number }[] {
    this.sweep();
    return [...this.byResource].map(([resource, held]) => ({
      resource,
      lockId: held.lockId,
      fencingToken: held.fencingToken,
    }));
  }

  private record(lease: Lease): void {
    const known = this.byResource.get(lease.resource);
    const same = known?.lockId === lease.lockId && known.fencingToken === lease.fencingToken;
    // A new lease on a resource: the last one ran out before anyone swept it, or else it was lost (a quorum granted
    // the resource again, so the old lease no longer held one).
    if (known && !same) {
      if (known.deadline <= performance.now()) this.expired(known);
      else this.onEnded(performance.now() - known.since, 'lost');
    }
    this.byResource.set(lease.resource, {
      lockId: lease.lockId,
      fencingToken: lease.fencingToken,
      since: same ? known.since : performance.now(),
      deadline: lease.deadline,
    });
    if (this.byResource.size >= this.sweepAt) {
      this.sweep();
      this.sweepAt = Math.max(FIRST_SWEEP, 2 * this.byResource.size);
    }
  }

  private sweep(): void {
    const now = performance.now();
    for (const [resource, held] of this.byResource) {
      if (held.deadline > now) continue;
      this.byResource.delete(resource);
      this.expired(held);
    }
  }

  private expired(held: Held): void {
    this.onEnded(held.deadline - held.since, 'expired');
  }
}
