import type { Lease } from '../redlock/index.js';

interface Held {
  lockId: string;
  fencingToken: number;
  /** End of validity on this process's monotonic clock. */
  deadline: number;
}

/** Entries kept before the first sweep of expired ones; later sweeps run when the map doubles. */
const FIRST_SWEEP = 1_024;

/**
 * The leases this server granted or extended and still believes valid, one per resource: the count behind
 * `redlease_held_locks`, and how a grant with a new fencing token is told from an idempotent re-send that got its
 * lease back. Nothing here decides safety (Redis does); a lease lost elsewhere stays counted until its deadline.
 * Memory is bounded by the live leases: expired entries are swept whenever the map has doubled since the last
 * sweep, and on every count.
 */
export class HeldLeases {
  private readonly byResource = new Map<string, Held>();
  private sweepAt = FIRST_SWEEP;

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

  /** The lease `lockId` on `resource` is gone (released or known lost). */
  ended(resource: string, lockId: string): void {
    if (this.byResource.get(resource)?.lockId === lockId) this.byResource.delete(resource);
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
    this.byResource.set(lease.resource, {
      lockId: lease.lockId,
      fencingToken: lease.fencingToken,
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
      if (held.deadline <= now) this.byResource.delete(resource);
    }
  }
}
