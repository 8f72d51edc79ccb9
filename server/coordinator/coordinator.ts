import type { Logger } from 'pino';
import {
  type ClusterStatus,
  InvalidArgumentError,
  type Lease,
  type LockState,
  type Mode,
  NotHolderError,
  type Redlock,
  type ReleaseResult,
} from '../redlock/index.js';
import { HOLD_CAP_REACHED, LiveLeasesError, ShuttingDownError } from './errors.js';
import { type KeepAliveStream, leaseKey, type StreamOutput } from './keep-alive-stream.js';
import { LeaseRegistry, type StreamLimits } from './lease-registry.js';
import { type LockEvents, NO_EVENTS } from './lock-events.js';
import { LockLog } from './lock-log.js';
import { ReleaseListener } from './release-listener.js';
import { annotate } from './tracing.js';
import { WaitingRoom, type WaitLimits } from './waiting-room.js';

export type CoordinatorLimits = WaitLimits &
  StreamLimits & {
    /** Longest any lease may be held from its grant (--max-hold-ms); 0 or undefined: no server cap. */
    maxHoldMs?: number;
  };

/** Hold caps remembered past this count are swept of those already over. */
const SWEEP_HOLD_CAPS_AT = 10_000;

export interface AcquireRequest {
  resource: string;
  /** Undefined: the server default. */
  ttlMs?: number;
  clientId?: string;
  /** 0 or undefined: try once. */
  waitTimeoutMs?: number;
  /** Client-chosen lock id (idempotent retry); undefined: a fresh random one. */
  lockId?: string;
  /** Longest the lease may be held from its grant; 0 or undefined: the server's cap alone (if any). */
  maxHoldMs?: number;
}

/** A lease as granted to an Acquire call. */
export interface Grant extends Lease {
  /**
   * Whole ms from the call's arrival to the start of the attempt that granted it (time in the queue, earlier
   * attempts): the holder's deadline is its send time + queuedMs + validityMs.
   */
  queuedMs: number;
  /** The hold cap in force, ms from the grant; 0: none. */
  maxHoldMs: number;
}

export interface ResourceState extends LockState {
  /** Acquires waiting in this server's queue for the resource. */
  waiters: number;
}

/**
 * The lock service's domain, and the one thing the edges (gRPC, HTTP) call. A thin facade over three owners:
 * - the waiting room (waiting-room.ts): queues, and who gets the lock next;
 * - the lease registry (lease-registry.ts): leases kept alive on KeepAlive streams, and how they end;
 * - the lock log (lock-log.ts): one log line and one metric event per lock event.
 * It holds no state that matters for safety: locks, tokens and expiries live in Redis.
 */
export class Coordinator {
  private readonly lockLog: LockLog;
  private readonly waitingRoom: WaitingRoom;
  private readonly registry: LeaseRegistry;
  private readonly releases: ReleaseListener;
  private closing = false;
  private readonly shutdownListeners = new Set<() => void>();
  /**
   * Hold caps of the leases granted through this server, by `resource\nlockId`: when each cap ends, on the
   * monotonic clock. Kept in memory only (lock.proto, AcquireRequest.max_hold_ms, says what that means).
   */
  private readonly holdCaps = new Map<string, { until: number; capMs: number }>();

  constructor(
    private readonly engine: Redlock,
    readonly limits: CoordinatorLimits,
    log: Logger,
    /** Told of every outcome (the metrics). */
    events: LockEvents = NO_EVENTS,
  ) {
    this.lockLog = new LockLog(log, events);
    this.waitingRoom = new WaitingRoom(engine, limits, this.lockLog);
    this.registry = new LeaseRegistry(
      engine,
      {
        extend: (resource, lockId, ttlMs, quiet) => this.extend(resource, lockId, ttlMs, quiet),
        release: (resource, lockId, from) => this.release(resource, lockId, from),
        capReached: (resource, lockId) => this.capReached(resource, lockId),
      },
      limits,
      this.lockLog,
    );
    this.releases = new ReleaseListener(
      engine.options.nodes,
      engine.releaseChannel,
      (resource) => {
        this.waitingRoom.announced(resource);
        this.registry.announced(resource);
      },
      log,
      engine.options.connectTimeoutMs,
    );
  }

  /** Resolves when release announcements are subscribed on every reachable node (bounded by `timeoutMs`), so
   *  a server that reports itself ready also hears releases made through other replicas. */
  ready(timeoutMs: number): Promise<void> {
    return this.releases.ready(timeoutMs);
  }

  get shuttingDown(): boolean {
    return this.closing;
  }

  /** KeepAlive streams open now. */
  get keepAliveStreamCount(): number {
    return this.registry.streamCount;
  }

  /** Acquire calls waiting in this server's queues. */
  get waiterCount(): number {
    return this.waitingRoom.count;
  }

  /** Leases attached to KeepAlive streams. */
  get attachedCount(): number {
    return this.registry.attachedCount;
  }

  /** Leases granted or extended through this server that are still within their validity, as far as it knows. */
  get heldCount(): number {
    return this.lockLog.heldCount;
  }

  async acquire(request: AcquireRequest, signal: AbortSignal): Promise<Grant> {
    const started = performance.now();
    annotate(() => ({ 'redlease.resource': request.resource, 'redlease.client_id': request.clientId ?? '' }));
    let lease: Lease;
    let capMs = 0;
    try {
      capMs = this.holdCapOf(request.maxHoldMs);
      const capped = this.capTtl(request.resource, request.lockId, request.ttlMs, capMs);
      lease = await this.waitingRoom.take({ ...request, ttlMs: capped, signal });
    } catch (error) {
      this.lockLog.acquireFailed(error, signal);
      throw error;
    }
    const key = leaseKey(lease.resource, lease.lockId);
    if (capMs > 0 && !this.holdCaps.has(key)) this.rememberCap(key, lease.startedAt + capMs, capMs);
    this.lockLog.granted(lease, request.waitTimeoutMs ?? 0, performance.now() - started);
    this.registry.granted(lease);
    return {
      ...lease,
      queuedMs: Math.max(0, Math.floor(lease.startedAt - started)),
      maxHoldMs: this.holdCaps.get(key)?.capMs ?? 0,
    };
  }

  /** `from`: the KeepAlive stream that asked (it detached the lease itself). */
  async release(resource: string, lockId: string, from?: KeepAliveStream): Promise<ReleaseResult> {
    const started = performance.now();
    annotate(() => ({ 'redlease.resource': resource }));
    // The release scripts are on their way once release() returns its promise.
    const releasing = this.engine.release(resource, lockId);
    this.waitingRoom.releasing(resource, releasing);
    this.registry.releasing(resource, lockId, releasing, from);
    let result: ReleaseResult;
    try {
      result = await releasing;
    } catch (error) {
      this.lockLog.releaseFailed(error);
      throw error;
    }
    this.holdCaps.delete(leaseKey(resource, lockId));
    this.lockLog.released(resource, lockId, result, performance.now() - started);
    return result;
  }

  /** `quiet`: a KeepAlive renewal, logged at debug (they come every third of a ttl per lease). */
  async extend(
    resource: string,
    lockId: string,
    ttlMs: number | undefined,
    quiet = false,
  ): Promise<Lease & { maxHoldMs: number }> {
    const started = performance.now();
    annotate(() => ({ 'redlease.resource': resource }));
    let lease: Lease;
    try {
      const capped = this.capTtl(resource, lockId, ttlMs, 0);
      lease = await this.engine.extend(resource, lockId, capped);
    } catch (error) {
      this.lockLog.extendFailed(error, resource, lockId, error instanceof NotHolderError);
      throw error;
    }
    this.lockLog.extended(lease, performance.now() - started, quiet);
    return { ...lease, maxHoldMs: this.holdCaps.get(leaseKey(resource, lockId))?.capMs ?? 0 };
  }

  /**
   * The effective hold cap of a new lease: the smaller of the server's and the request's, 0 for none. Throws
   * InvalidArgumentError for a request cap below the smallest ttl. A server cap below it counts as the smallest
   * ttl (config.ts warns).
   */
  private holdCapOf(requested: number | undefined): number {
    const minTtl = this.engine.options.minTtlMs;
    if (
      requested !== undefined &&
      requested !== 0 &&
      (!Number.isInteger(requested) || requested < minTtl || requested > 0xffff_ffff)
    ) {
      throw new InvalidArgumentError(
        'max_hold_ms',
        'MAX_HOLD_OUT_OF_RANGE',
        `max_hold_ms: must be 0 (no cap) or an integer from ${minTtl} to 4294967295, got ${JSON.stringify(requested)}`,
      );
    }
    const server = this.limits.maxHoldMs ? Math.max(this.limits.maxHoldMs, minTtl) : 0;
    if (!requested) return server;
    return server ? Math.min(server, requested) : requested;
  }

  /**
   * The ttl to ask the nodes for, so that a capped lease never outlives its cap: `ttlMs` (undefined: the
   * default) shortened to what is left of the cap. `capMs` is the cap of a lease not granted yet. Throws
   * NotHolderError(HOLD_CAP_REACHED) when less than the smallest ttl is left: the lease is not renewed again.
   */
  private capTtl(
    resource: string,
    lockId: string | undefined,
    ttlMs: number | undefined,
    capMs: number,
  ): number | undefined {
    const until = lockId === undefined ? undefined : this.holdCaps.get(leaseKey(resource, lockId))?.until;
    if (until === undefined && capMs === 0) return ttlMs;
    const left = until === undefined ? capMs : Math.floor(until - performance.now());
    if (left < this.engine.options.minTtlMs) {
      throw new NotHolderError(
        HOLD_CAP_REACHED,
        'the lease reached its hold cap (max_hold_ms or the server’s --max-hold-ms) and is not renewed again',
      );
    }
    return Math.min(ttlMs ?? this.engine.options.defaultTtlMs, left);
  }

  /** Whether the lease of `lockId` is at its hold cap: a renewal now would be refused. */
  private capReached(resource: string, lockId: string): boolean {
    const until = this.holdCaps.get(leaseKey(resource, lockId))?.until;
    return until !== undefined && until - performance.now() < this.engine.options.minTtlMs;
  }

  private rememberCap(key: string, until: number, capMs: number): void {
    if (this.holdCaps.size >= SWEEP_HOLD_CAPS_AT) {
      const now = performance.now();
      for (const [k, cap] of this.holdCaps) if (cap.until < now) this.holdCaps.delete(k);
    }
    this.holdCaps.set(key, { until, capMs });
  }

  async describe(resource: string): Promise<ResourceState> {
    const state = await this.engine.inspect(resource);
    return { ...state, waiters: this.waitingRoom.waitersFor(resource) };
  }

  /** A KeepAlive call's stream. Throws LimitError when the server already carries its maximum of streams. */
  openKeepAlive(output: StreamOutput): KeepAliveStream {
    if (this.closing) throw new ShuttingDownError();
    return this.registry.open(output);
  }

  /** The nodes, their votes and quarantines, the quorum and the mode. */
  status(): ClusterStatus {
    return this.engine.status();
  }

  getMode(): Mode {
    return this.engine.getMode();
  }

  /**
   * Switches the mode (admin.proto, SetMode). Refused with LiveLeasesError while this server knows of live leases,
   * unless `force`: then their KeepAlive streams are pushed LOST{MODE_SWITCH} first, the mode is switched (every
   * grant from then on is under it), and their locks are deleted on every node holding their lock ids, waking
   * waiters. Resolves with the mode in force and how many leases were ended.
   */
  async setMode(mode: Mode, force = false): Promise<{ mode: Mode; leasesEnded: number }> {
    const from = this.engine.getMode();
    if (mode === from) return { mode, leasesEnded: 0 };
    const live = this.lockLog.liveLeases();
    if (live.length > 0 && !force) throw new LiveLeasesError(live.length, from, mode);
    const reason = `the server's mode was switched from ${from} to ${mode} with force`;
    if (live.length > 0) this.lockLog.modeSwitchForced(from, mode, live.length);
    for (const lease of live) {
      if (!this.registry.end(lease.resource, lease.lockId, 'mode_switch', reason)) {
        this.lockLog.lost({ ...lease, clientId: '' }, 'mode_switch', reason);
      }
    }
    this.engine.setMode(mode);
    await Promise.all(
      live.map(async ({ resource, lockId }) => {
        const releasing = this.engine.release(resource, lockId);
        this.waitingRoom.releasing(resource, releasing);
        this.holdCaps.delete(leaseKey(resource, lockId));
        // Gone already (expired meanwhile) or no node reachable: either way its lock ends at its ttl at the latest.
        await releasing.catch(() => undefined);
      }),
    );
    return { mode: this.engine.getMode(), leasesEnded: live.length };
  }

  /**
   * Graceful shutdown: refuse new calls, fail every waiter and every KeepAlive stream with UNAVAILABLE (their
   * leases are not released: they run out their validity), stop listening for release announcements. The engine
   * stays open for calls already under way; its owner closes it.
   */
  shutdown(): void {
    if (this.closing) return;
    this.closing = true;
    const error = new ShuttingDownError();
    this.waitingRoom.close(error);
    this.registry.failAll(error);
    for (const listener of [...this.shutdownListeners]) listener();
    this.releases.close();
  }

  /** Calls `listener` once when shutdown() begins (at once if it has); returns the unsubscribe. */
  onShutdown(listener: () => void): () => void {
    if (this.closing) {
      listener();
      return () => undefined;
    }
    this.shutdownListeners.add(listener);
    return () => this.shutdownListeners.delete(listener);
  }
}
