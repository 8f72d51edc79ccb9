import type { Lease, Redlock } from '../redlock/index.js';
import { LimitError, type ShuttingDownError } from './errors.js';
import {
  type AttachedLease,
  KeepAliveStream,
  leaseKey,
  type StreamHost,
  type StreamOutput,
} from './keep-alive-stream.js';
import type { LossKind } from './lock-events.js';
import type { LockLog } from './lock-log.js';

/** What the registry needs of the coordinator: its lock operations, with their logging and metrics. */
export interface LeaseOperations {
  extend(resource: string, lockId: string, ttlMs: number | undefined, quiet: boolean): Promise<Lease>;
  release(resource: string, lockId: string, from?: KeepAliveStream): ReturnType<Redlock['release']>;
  /** Whether the lease is at its hold cap (a renewal now would be refused). */
  capReached(resource: string, lockId: string): boolean;
}

export interface StreamLimits {
  /** KeepAlive streams open at once. */
  maxStreams: number;
  maxLeasesPerStream: number;
  /** A KeepAlive stream with no lease attached and no request in flight is ended after this long. */
  streamIdleMs: number;
}

/** A Release of a lock id through this server: when it began, and whether it released the lease. */
interface HolderRelease {
  startedAt: number;
  released: Promise<boolean>;
}

/**
 * Releases remembered, so a renewal that a Release overtook is answered RELEASED instead of LOST. Lock ids are
 * 128 random bits, so an old entry never matches a new lease by chance; the oldest are dropped past this count.
 */
const REMEMBERED_RELEASES = 10_000;

/**
 * The leases kept alive on KeepAlive streams, and how they end. It opens the streams, keeps the attached leases by
 * resource, and tells a stream when one of its leases ended elsewhere:
 * - a grant of the resource to another lock id: the lease was taken over (LOST);
 * - a Release of the lease's own lock id through this server: its holder let go (RELEASED, never a loss, also
 *   when the Release overtakes a renewal in flight);
 * - a node's release announcement (a release through another replica) after which the lease no longer holds:
 *   its own lock id released it there (RELEASED), or, past its deadline, it had expired (LOST).
 * Losses are reported to the lock log, once per lease.
 */
export class LeaseRegistry implements StreamHost {
  private readonly streams = new Set<KeepAliveStream>();
  /** Attached leases by resource. */
  private readonly attached = new Map<string, Set<AttachedLease>>();
  /** Resources whose announced release is being checked against attached leases; true = check again after. */
  private readonly checking = new Map<string, boolean>();
  /** Releases through this server by `resource\nlockId`, oldest first. */
  private readonly releases = new Map<string, HolderRelease>();

  constructor(
    private readonly engine: Redlock,
    private readonly operations: LeaseOperations,
    private readonly limits: StreamLimits,
    private readonly log: LockLog,
  ) {}

  /** KeepAlive streams open now. */
  get streamCount(): number {
    return this.streams.size;
  }

  /** Leases attached to KeepAlive streams. */
  get attachedCount(): number {
    let n = 0;
    for (const set of this.attached.values()) n += set.size;
    return n;
  }

  /** Resources with at least one lease kept alive. */
  get resourceCount(): number {
    return this.attached.size;
  }

  /** A KeepAlive call's stream. Throws LimitError when the server already carries its maximum of streams. */
  open(output: StreamOutput): KeepAliveStream {
    if (this.streams.size >= this.limits.maxStreams) {
      throw new LimitError(
        'STREAMS_LIMIT',
        `too many KeepAlive streams: this server carries its limit of ${this.limits.maxStreams}; put more leases on one stream, or retry later`,
      );
    }
    const stream = new KeepAliveStream(
      this,
      output,
      this.limits.maxLeasesPerStream,
      this.limits.streamIdleMs,
    );
    this.streams.add(stream);
    return stream;
  }

  /** Fails every stream (shutdown); their leases are detached, not released. */
  failAll(error: ShuttingDownError): void {
    for (const stream of [...this.streams]) stream.fail(error);
  }

  /** A lease was granted: streams keeping another lease of the resource alive lost theirs to it. */
  granted(lease: Lease): void {
    this.releases.delete(keyOf(lease));
    for (const other of this.attachedTo(lease.resource)) {
      if (other.lockId !== lease.lockId) {
        other.stream.lose(
          other,
          'taken_over',
          `taken over: another lease was granted this resource with fencing token ${lease.fencingToken}`,
        );
      }
    }
  }

  /**
   * Ends the kept-alive lease `lockId` on `resource` on every stream carrying it: LOST with `kind`, pushed.
   * Returns whether any stream carried it (each reported the loss to the lock log).
   */
  end(resource: string, lockId: string, kind: LossKind, reason: string): boolean {
    let found = false;
    for (const lease of this.attachedTo(resource)) {
      if (lease.lockId !== lockId) continue;
      found = true;
      lease.stream.lose(lease, kind, reason);
    }
    return found;
  }

  /**
   * A Release of `lockId` through this server began; `result` settles with its outcome. Streams keeping that
   * lease alive (other than `from`, which detached it itself) are told RELEASED once it succeeded.
   */
  releasing(
    resource: string,
    lockId: string,
    result: Promise<{ released: boolean }>,
    from: KeepAliveStream | undefined,
  ): void {
    const key = leaseKey(resource, lockId);
    const entry: HolderRelease = {
      startedAt: performance.now(),
      released: result.then(
        (r) => r.released,
        () => false,
      ),
    };
    this.releases.delete(key); // re-inserted last: the map stays in order of release
    this.releases.set(key, entry);
    if (this.releases.size > REMEMBERED_RELEASES) {
      this.releases.delete(this.releases.keys().next().value as string);
    }
    void entry.released.then((released) => {
      if (!released) {
        if (this.releases.get(key) === entry) this.releases.delete(key);
        return;
      }
      for (const lease of this.attachedTo(resource)) {
        if (lease.lockId === lockId && lease.stream !== from) lease.stream.released(lease);
      }
    });
  }

  // StreamHost: what the streams call.

  validate(resource: string, lockId: string, ttlMs: number | undefined): void {
    this.engine.validateLease(resource, lockId, ttlMs);
  }

  renew(resource: string, lockId: string, ttlMs: number | undefined): Promise<Lease> {
    return this.operations.extend(resource, lockId, ttlMs, true);
  }

  release(resource: string, lockId: string, from: KeepAliveStream): ReturnType<Redlock['release']> {
    return this.operations.release(resource, lockId, from);
  }

  capReached(resource: string, lockId: string): boolean {
    return this.operations.capReached(resource, lockId);
  }

  async releasedByHolder(resource: string, lockId: string, since = 0): Promise<boolean> {
    const entry = this.releases.get(leaseKey(resource, lockId));
    if (!entry || entry.startedAt < since) return false;
    return await entry.released;
  }

  attach(lease: AttachedLease): void {
    let set = this.attached.get(lease.resource);
    if (!set) {
      set = new Set();
      this.attached.set(lease.resource, set);
    }
    set.add(lease);
  }

  detach(lease: AttachedLease): void {
    const set = this.attached.get(lease.resource);
    if (!set) return;
    set.delete(lease);
    if (set.size === 0) this.attached.delete(lease.resource);
  }

  lost(lease: AttachedLease, kind: Parameters<LockLog['lost']>[1], reason: string): void {
    this.log.lost(lease, kind, reason);
  }

  closed(stream: KeepAliveStream): void {
    this.streams.delete(stream);
  }

  /**
   * A node announced a release of `resource` (possibly through another replica): streams whose lease on it no
   * longer holds are told so. Leases with a renewal in flight, or whose own Release through this server is
   * under way or done, are left to those.
   */
  announced(resource: string): void {
    if (!this.attached.has(resource)) return;
    if (this.checking.has(resource)) {
      this.checking.set(resource, true);
      return;
    }
    this.checking.set(resource, false);
    void this.checkAttached(resource);
  }

  private async checkAttached(resource: string): Promise<void> {
    try {
      do {
        this.checking.set(resource, false);
        for (const lease of this.attachedTo(resource)) {
          if (lease.renewing > 0 || this.releases.has(keyOf(lease))) continue;
          const held = await this.engine.holds(resource, lease.lockId);
          if (held !== 'not-held' || this.releases.has(keyOf(lease))) continue;
          // Only the lease's own lock id can release it (compare-and-delete): its holder let go through another
          // server. Unless its validity ran out first: then it was lost, and someone else took and released it.
          if (performance.now() < lease.deadline) {
            lease.stream.released(lease, 'released through another server (announced by a Redis node)');
          } else {
            lease.stream.lose(
              lease,
              'expired',
              'validity ran out: no renewal succeeded before the lease’s deadline',
            );
          }
        }
      } while (this.checking.get(resource));
    } catch (error) {
      this.log.warning('checking kept-alive leases after a release failed', { resource, err: String(error) });
    } finally {
      this.checking.delete(resource);
    }
  }

  private attachedTo(resource: string): AttachedLease[] {
    const set = this.attached.get(resource);
    return set ? [...set] : [];
  }
}

function keyOf(lease: { resource: string; lockId: string }): string {
  return leaseKey(lease.resource, lease.lockId);
}
