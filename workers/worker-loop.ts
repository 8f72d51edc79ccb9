/**
 * The worker's rounds. One round: acquire the lease (waiting in the server's queue), fenced-read the counter,
 * work while the lease renews, check the lease, (in --stall mode freeze the event loop), fenced-write the counter
 * plus one, release. Every outcome is one log line with an `event` field; `counts` sums them up for the `done` line.
 */
import { performance } from 'node:perf_hooks';
import { context, type Span, SpanStatusCode, trace } from '@opentelemetry/api';
import { delay, isAbortError } from 'abort-controller-x';
import type { Logger } from 'pino';
import {
  type FencedStore,
  type Lease,
  LeaseLostError,
  LeaseReleasedError,
  type LockClient,
  LockHeldError,
  LockTimeoutError,
  StaleTokenError,
  UnavailableError,
} from '../client/src/index.js';
import type { WorkerOptions } from './options.js';

export type LoopOptions = Pick<
  WorkerOptions,
  'resource' | 'ttlMs' | 'workMs' | 'waitMs' | 'pauseMs' | 'rounds' | 'durationMs' | 'stall' | 'stallMs'
>;

export interface WorkerCounts {
  /** Rounds started (acquire attempts). */
  rounds: number;
  /** Leases won. */
  wins: number;
  /** Counter writes the store accepted. */
  writes: number;
  /** Fenced reads or writes the store refused as stale. */
  refused: number;
  /** Leases lost (not released) while held. */
  lost: number;
  /** Acquires whose wait ran out with the resource still held. */
  timed_out: number;
}

/**
 * After the server was unavailable (the SDK has already retried with backoff for about 1.5 s), or the store
 * failed, wait this long before the next round: long enough not to spin on an outage, short enough that a
 * restarted server is back in use within a second.
 */
const FAILURE_BACKOFF_MS = 1_000;

/** The worker's own spans: a round, and its simulated work. The SDK's spans (acquire, fenced read and write,
 *  release) nest inside the round's. */
const tracer = trace.getTracer('redlease.worker');

export class WorkerLoop {
  readonly counts: WorkerCounts = { rounds: 0, wins: 0, writes: 0, refused: 0, lost: 0, timed_out: 0 };
  private readonly counterKey: string;
  /** The server or the store failed this round: back off before the next one (never while holding a lease). */
  private failed = false;
  /** The span of the round under way, when traced. */
  private span: Span | undefined;

  constructor(
    private readonly client: LockClient,
    private readonly store: FencedStore,
    private readonly log: Logger,
    private readonly options: LoopOptions,
    /** Aborts on SIGTERM / SIGINT: the current step ends early where it waits, and no round starts. */
    private readonly stop: AbortSignal,
  ) {
    this.counterKey = `counter:${options.resource}`;
  }

  /** Runs rounds until --rounds, --duration-ms or `stop`. Rejects only on errors a retry cannot fix. */
  async run(): Promise<void> {
    const onLost = (lease: Lease, error: LeaseLostError): void => {
      this.counts.lost++;
      this.log.warn(
        {
          event: 'lease lost',
          resource: lease.resource,
          token: lease.fencingToken,
          kind: error.kind,
          reason: error.message,
        },
        'lease lost',
      );
    };
    const onRenewalFailed = (lease: Lease, reason: string): void => {
      this.log.warn({ event: 'renewal failed', token: lease.fencingToken, reason }, 'renewal failed');
    };
    const onStreamError = (error: unknown): void => {
      this.log.warn({ event: 'keepalive stream error', reason: message(error) }, 'keepalive stream error');
    };
    this.client.on('lost', onLost);
    this.client.on('renewalFailed', onRenewalFailed);
    this.client.on('streamError', onStreamError);
    const deadline = performance.now() + this.options.durationMs; // Infinity when unlimited
    try {
      while (!this.stop.aborted && this.counts.rounds < this.options.rounds && performance.now() < deadline) {
        const pauseMs = Math.max(this.options.pauseMs, this.failed ? FAILURE_BACKOFF_MS : 0);
        this.failed = false;
        if (this.counts.rounds > 0 && pauseMs > 0) {
          if (!(await this.sleep(pauseMs))) break;
          if (performance.now() >= deadline) break;
        }
        this.counts.rounds++;
        await this.tracedRound(deadline);
      }
    } finally {
      this.client.off('lost', onLost);
      this.client.off('renewalFailed', onRenewalFailed);
      this.client.off('streamError', onStreamError);
    }
  }

  /**
   * One round as one trace (a root span `round`): waiting and winning (the SDK's acquire, with the server's spans
   * and each node's vote under it), the fenced read, the work, the fenced write, the release.
   */
  private async tracedRound(deadline: number): Promise<void> {
    const span = tracer.startSpan('round', { root: true });
    if (span.isRecording()) {
      span.setAttributes({
        'redlease.worker': this.log.bindings().worker ?? '',
        'redlease.resource': this.options.resource,
        'redlease.round': this.counts.rounds,
      });
    }
    this.span = span;
    try {
      await context.with(trace.setSpan(context.active(), span), () => this.round(deadline));
    } catch (error) {
      span.recordException(error as Error);
      span.setStatus({ code: SpanStatusCode.ERROR, message: message(error) });
      throw error;
    } finally {
      this.span = undefined;
      span.end();
    }
  }

  /** Records what happened in the round on its span (`outcome`, and an event). */
  private mark(outcome: string, attributes: Record<string, string | number> = {}): void {
    const span = this.span;
    if (!span?.isRecording()) return;
    span.setAttribute('redlease.outcome', outcome);
    span.addEvent(outcome, attributes);
  }

  private async round(deadline: number): Promise<void> {
    const { resource, ttlMs, waitMs } = this.options;
    const started = performance.now();
    // A wait never outlasts --duration-ms; 0 stays 0 (try once).
    const waitLeft = waitMs === 0 ? 0 : Math.max(1, Math.min(waitMs, Math.ceil(deadline - started)));
    let lease: Lease;
    try {
      lease = await this.client.acquire(resource, { ttlMs, waitMs: waitLeft, signal: this.stop });
    } catch (error) {
      const waitedMs = Math.round(performance.now() - started);
      if (error instanceof LockHeldError) {
        this.counts.timed_out++;
        this.mark('wait timed out', { waited_ms: waitedMs });
        this.log.info({ event: 'wait timed out', resource, waited_ms: waitedMs }, 'wait timed out');
        return;
      }
      // No quorum, server down or restarting, or no answer in time (the outcome is unknown; the SDK releases a
      // lease granted meanwhile): an incident, not contention.
      if (error instanceof UnavailableError || error instanceof LockTimeoutError) {
        this.mark('unavailable', { reason: error.message });
        this.log.warn({ event: 'unavailable', resource, reason: error.message }, 'server unavailable');
        this.failed = true;
        return;
      }
      if (isAbortError(error) && this.stop.aborted) return;
      throw error;
    }
    this.counts.wins++;
    const token = lease.fencingToken;
    const waitedMs = Math.round(performance.now() - started);
    this.mark('won', { token, waited_ms: waitedMs });
    this.log.info({ event: 'won', resource, token, waited_ms: waitedMs, ttl_ms: ttlMs }, 'won');
    try {
      await this.hold(lease);
    } finally {
      await this.release(lease);
    }
  }

  /** Everything done under the lease: fenced read, work, last check, (stall), fenced write. */
  private async hold(lease: Lease): Promise<void> {
    const token = lease.fencingToken;
    // The fenced read registers our token with the store, so a holder older than us is refused from here on,
    // even before we write: nobody can slip a write in between this read and our write.
    const read = await this.storeCall(lease, 'read', () => this.store.read(this.counterKey, token));
    if (read === undefined) return;
    const value = counterValue(this.counterKey, read.value);

    const work = tracer.startSpan('work');
    try {
      try {
        await delay(AbortSignal.any([lease.signal, this.stop]), this.options.workMs);
      } finally {
        work.end();
      }
      // The deadline may have passed with its timer not run yet (a busy event loop): isHeld() reads the clock.
      lease.throwIfLost();
    } catch (error) {
      if (!isAbortError(error) && !(error instanceof LeaseLostError || error instanceof LeaseReleasedError)) {
        throw error;
      }
      const reason = lease.signal.aborted ? message(lease.signal.reason) : 'stopping';
      this.mark('round abandoned', { reason });
      this.log.warn({ event: 'round abandoned', token, reason }, 'round abandoned without writing');
      return;
    }

    if (this.options.stall) {
      // The lease was checked a moment ago and is valid; now this process "pauses" (a GC pause, a swapped-out
      // page, a SIGSTOP) past the lease's validity and then writes anyway, unaware: the write must be fenced off.
      this.log.warn({ event: 'stalling', token, stall_ms: this.options.stallMs }, 'stalling the event loop');
      freezeEventLoop(this.options.stallMs);
    }

    const next = String(value + 1);
    const wrote = await this.storeCall(lease, 'write', () => this.store.write(this.counterKey, next, token));
    if (wrote === undefined) return;
    this.counts.writes++;
    this.mark('wrote', { token, value: value + 1 });
    this.log.info({ event: 'wrote', token, value: value + 1 }, 'wrote');
  }

  /**
   * One fenced store call. A refusal (a newer token was seen) is a normal outcome: logged, counted, undefined.
   * A Redis failure is logged, undefined too, and the next round waits FAILURE_BACKOFF_MS; a failed write's
   * outcome is unknown.
   */
  private async storeCall<T>(
    lease: Lease,
    operation: 'read' | 'write',
    call: () => Promise<T>,
  ): Promise<T | undefined> {
    const token = lease.fencingToken;
    try {
      return await call();
    } catch (error) {
      if (error instanceof StaleTokenError) {
        this.counts.refused++;
        this.mark(`stale ${operation} refused`, { token, highest_token: error.highestToken });
        // Read in this order: `lease_signal_aborted` is what the timers had told this process by now;
        // isHeld() then checks the clock itself (and ends the lease if its deadline passed).
        const leaseSignalAborted = lease.signal.aborted;
        this.log.warn(
          {
            event: `stale ${operation} refused`,
            token,
            highest_token: error.highestToken,
            lease_signal_aborted: leaseSignalAborted,
            lease_held: lease.isHeld(),
          },
          `stale ${operation} refused`,
        );
        return undefined;
      }
      this.log.error({ event: 'store failed', operation, token, reason: message(error) }, 'store failed');
      this.failed = true;
      return undefined;
    }
  }

  private async release(lease: Lease): Promise<void> {
    try {
      // false: the lease was already gone (lost, and logged as such); not an error.
      const released = await lease.release();
      this.log.debug({ event: 'released', token: lease.fencingToken, released }, 'released');
    } catch (error) {
      // The server could not be reached: the lock runs out its ttl on the nodes.
      this.log.warn(
        { event: 'release failed', token: lease.fencingToken, reason: message(error) },
        'release failed',
      );
    }
  }

  /** Waits `ms` unless stopped; resolves false when stopped. */
  private async sleep(ms: number): Promise<boolean> {
    try {
      await delay(this.stop, ms);
      return true;
    } catch (error) {
      if (isAbortError(error)) return false;
      throw error;
    }
  }
}

/**
 * Blocks this thread for `ms` without returning to the event loop: no timer, socket read or lease renewal runs
 * meanwhile, exactly as during a long GC pause. Atomics.wait on a fresh buffer nobody will notify just times out.
 */
function freezeEventLoop(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** The counter's stored value (none yet: 0). Anything but a whole number means the key is not ours. */
function counterValue(key: string, stored: string | null): number {
  if (stored === null) return 0;
  const value = /^\d+$/.test(stored) ? Number(stored) : Number.NaN;
  if (!Number.isSafeInteger(value)) {
    throw new Error(`the store's ${JSON.stringify(key)} holds ${JSON.stringify(stored)}, not a counter`);
  }
  return value;
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
