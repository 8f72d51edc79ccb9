import type { SpanContext } from '@opentelemetry/api';

/** One Acquire waiting in a resource's queue. */
export interface Waiter {
  readonly joinedAt: number;
  /** Wakes this waiter's current sleep, if any. */
  notify(): void;
  /** Ends this waiter's current and every later sleep with `error`. */
  fail(error: Error): void;
}

/**
 * A per-resource FIFO of waiting Acquires. Only the head tries to take the lock; the others sleep until they
 * become the head. `version` counts wake-ups (releases seen), so the head can tell whether one arrived while its
 * attempt was in flight and retry at once instead of sleeping through it.
 */
export class WaitQueue {
  private readonly waiters: WaiterImpl[] = [];
  /** Bumped by every wake(): a release was seen for this resource. */
  version = 0;
  /** When the last wake() came (monotonic ms): the start of a hand-off. */
  releasedAt: number | undefined;
  /** The span of the Release that made the last wake(), when it went through this server and was traced: what a
   *  hand-off links to. */
  releasedBy: SpanContext | undefined;
  /**
   * Until when (monotonic ms) release announcements for this resource are this server's own (Infinity while
   * its release is in flight): its head waiter was woken already, so they must not wake the next one for
   * nothing.
   */
  ownReleaseUntil = 0;

  get size(): number {
    return this.waiters.length;
  }

  join(): Waiter {
    const waiter = new WaiterImpl();
    this.waiters.push(waiter);
    return waiter;
  }

  leave(waiter: Waiter): void {
    const i = this.waiters.indexOf(waiter as WaiterImpl);
    if (i < 0) return;
    this.waiters.splice(i, 1);
    if (i === 0) this.waiters[0]?.notify();
  }

  /** The waiter whose turn it is, if any. */
  get head(): Waiter | undefined {
    return this.waiters[0];
  }

  isHead(waiter: Waiter): boolean {
    return this.waiters[0] === waiter;
  }

  /** Position in the queue, 0 for the head. */
  position(waiter: Waiter): number {
    return this.waiters.indexOf(waiter as WaiterImpl);
  }

  /** The resource may be free now (a release was seen, by the span `by` if known): the head retries. */
  wake(by?: SpanContext): void {
    this.version++;
    this.releasedAt = performance.now();
    this.releasedBy = by;
    this.waiters[0]?.notify();
  }

  failAll(error: Error): void {
    for (const w of this.waiters) w.fail(error);
  }

  /**
   * Sleeps until the waiter is notified, `ms` pass, or `signal` aborts (rejects with its reason), or the waiter
   * is failed (rejects with that error). Resolves 'notified' or 'timer'.
   */
  sleep(waiter: Waiter, ms: number, signal: AbortSignal): Promise<'notified' | 'timer'> {
    return (waiter as WaiterImpl).sleep(ms, signal);
  }
}

class WaiterImpl implements Waiter {
  readonly joinedAt = performance.now();
  private failed: Error | undefined;
  private wakeUp: ((how: 'notified' | 'timer') => void) | undefined;
  private reject: ((error: unknown) => void) | undefined;

  notify(): void {
    this.wakeUp?.('notified');
  }

  fail(error: Error): void {
    this.failed ??= error;
    this.reject?.(error);
  }

  sleep(ms: number, signal: AbortSignal): Promise<'notified' | 'timer'> {
    if (this.failed) return Promise.reject(this.failed);
    if (signal.aborted) return Promise.reject(signal.reason);
    return new Promise((resolve, reject) => {
      const done = (): void => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        this.wakeUp = undefined;
        this.reject = undefined;
      };
      const onAbort = (): void => {
        done();
        reject(signal.reason);
      };
      const timer = setTimeout(
        () => {
          done();
          resolve('timer');
        },
        Math.max(0, ms),
      );
      signal.addEventListener('abort', onAbort, { once: true });
      this.wakeUp = (how) => {
        done();
        resolve(how);
      };
      this.reject = (error) => {
        done();
        reject(error);
      };
    });
  }
}
