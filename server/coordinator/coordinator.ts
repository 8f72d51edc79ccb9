import type { Logger } from 'pino';
import {
  type ClusterStatus,
  type Lease,
  type LockState,
  type Mode,
  NotHolderError,
  type Redlock,
  type ReleaseResult,
} from '../redlock/index.js';
import { ShuttingDownError } from './errors.js';
import type { KeepAliveStream, StreamOutput } from './keep-alive-stream.js';
import { LeaseRegistry, type StreamLimits } from './lease-registry.js';
import { type LockEvents, NO_EVENTS } from './lock-events.js';
import { LockLog } from './lock-log.js';
import { ReleaseListener } from './release-listener.js';
import { annotate } from './tracing.js';
import { WaitingRoom, type WaitLimits } from './waiting-room.js';

export type CoordinatorLimits = WaitLimits & StreamLimits;

export interface AcquireRequest {
  resource: string;
  /** Undefined: the server default. */
  ttlMs?: number;
  clientId?: string;
  /** 0 or undefined: try once. */
  waitTimeoutMs?: number;
  /** Client-chosen lock id (idempotent retry); undefined: a fresh random one. */
  lockId?: string;
}

/** A lease as granted to an Acquire call. */
export interface Grant extends Lease {
  /**
   * Whole ms from the call's arrival to the start of the attempt that granted it (time in the queue, earlier
   * attempts): the holder's deadline is its send time + queuedMs + validityMs.
   */
  queuedMs: number;
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

  constructor(
    private readonly engine: Redlock,
    readonly limits: CoordinatorLimits,
    private readonly log: Logger,
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
    try {
      lease = await this.waitingRoom.take({ ...request, signal });
    } catch (error) {
      this.lockLog.acquireFailed(error, signal);
      throw error;
    }
    this.lockLog.granted(lease, request.waitTimeoutMs ?? 0, performance.now() - started);
    this.registry.granted(lease);
    return { ...lease, queuedMs: Math.max(0, Math.floor(lease.startedAt - started)) };
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
    this.lockLog.released(resource, lockId, result, performance.now() - started);
    return result;
  }

  /** `quiet`: a KeepAlive renewal, logged at debug (they come every third of a ttl per lease). */
  async extend(resource: string, lockId: string, ttlMs: number | undefined, quiet = false): Promise<Lease> {
    const started = performance.now();
    annotate(() => ({ 'redlease.resource': resource }));
    let lease: Lease;
    try {
      lease = await this.engine.extend(resource, lockId, ttlMs);
    } catch (error) {
      this.lockLog.extendFailed(error, resource, lockId, error instanceof NotHolderError);
      throw error;
    }
    this.lockLog.extended(lease, performance.now() - started, quiet);
    return lease;
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

  setMode(mode: Mode): Mode {
    const kept = this.registry.resourceCount;
    if (mode !== this.engine.getMode() && kept > 0) {
      this.log.warn(
        { from: this.engine.getMode(), to: mode, resources_kept_alive: kept },
        'mode changes while leases are kept alive: their next renewal runs under the new mode and may lose them',
      );
    }
    this.engine.setMode(mode);
    return this.engine.getMode();
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
