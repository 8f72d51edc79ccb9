import { performance } from 'node:perf_hooks';
import { type Pushable, pushable } from 'it-pushable';
import {
  type KeepAliveRequest,
  type KeepAliveResponse,
  LeaseState,
  LossReason as WireLossReason,
} from '../../gen/redlease/v1/lock.js';
import { backoffMs } from './backoff.js';
import type { LossReason } from './errors.js';
import type { Lease } from './lease.js';

/** What the stream needs from the client: a way to open the call, and where to report what happens. */
export interface KeepAliveHooks {
  open(requests: AsyncIterable<KeepAliveRequest>, signal: AbortSignal): AsyncIterable<KeepAliveResponse>;
  renewed(lease: Lease, validityMs: number): void;
  /** A renewal did not go through (no quorum…); the lease is still held until its deadline; retried soon. */
  renewalFailed(lease: Lease, reason: string): void;
  /** The stream broke; it is reopened with backoff and every lease re-attached. */
  streamError(error: unknown): void;
  /** A renewal went unanswered: the connection under the stream is presumed dead (see LockClient). */
  unanswered?(): void;
}

interface Entry {
  lease: Lease;
  timer: NodeJS.Timeout | undefined;
  /** performance.now() of each renewal sent and not answered yet, oldest first (answers come in order). */
  sent: number[];
}

interface Call {
  requests: Pushable<KeepAliveRequest>;
  abort: AbortController;
}

/** Reconnect backoff: 50 ms doubling to 1 s, so a restarted server is found again well within a typical ttl. */
const RECONNECT_INITIAL_MS = 50;
const RECONNECT_MAX_MS = 1_000;
/** A stream with no lease left is closed after this long, so acquire/release loops do not reopen it each time. */
const IDLE_CLOSE_MS = 5_000;
/** After a failed renewal, retry after a third of the interval (at least 50 ms) instead of a whole interval. */
const RETRY_FRACTION = 3;
const RETRY_MIN_MS = 50;

/**
 * One KeepAlive stream renewing any number of leases (LockClient keeps one per 1 000 leases). Each lease is
 * renewed every third of its ttl: that leaves two more chances before the lock expires if one renewal is lost
 * or slow. A renewal moves the lease's deadline to its *send* time + the validity answered. A pushed LOST ends
 * the lease at once; a HELD with a reason is a failed renewal, retried sooner, and the deadline stays put. A
 * broken stream is reopened with backoff and every lease re-attached by renewing it on the new stream; a lease
 * whose deadline passes meanwhile ends by its own timer (Lease), never later.
 */
export class KeepAliveStream {
  private readonly entries = new Map<string, Entry>();
  private call: Call | undefined;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private idleTimer: NodeJS.Timeout | undefined;
  private failures = 0;
  private closed = false;

  constructor(private readonly hooks: KeepAliveHooks) {}

  /** Leases attached. */
  get size(): number {
    return this.entries.size;
  }

  /** Starts renewing `lease` (first renewal a third of its ttl from now). */
  attach(lease: Lease): void {
    if (this.closed) return;
    clearTimeout(this.idleTimer);
    const entry: Entry = { lease, timer: undefined, sent: [] };
    this.entries.set(lease.lockId, entry);
    this.schedule(entry, lease.renewIntervalMs);
  }

  /** Stops renewing `lease`; closes the stream a while after the last lease left. */
  detach(lease: Lease): void {
    const entry = this.entries.get(lease.lockId);
    if (!entry) return;
    clearTimeout(entry.timer);
    this.entries.delete(lease.lockId);
    if (this.entries.size === 0) {
      clearTimeout(this.idleTimer);
      this.idleTimer = setTimeout(() => this.entries.size === 0 && this.hangUp(), IDLE_CLOSE_MS).unref();
    }
  }

  /** Stops every renewal and cancels the stream. Nothing is released: that is the client's job. */
  close(): void {
    this.closed = true;
    for (const entry of this.entries.values()) clearTimeout(entry.timer);
    this.entries.clear();
    clearTimeout(this.reconnectTimer);
    clearTimeout(this.idleTimer);
    this.hangUp();
  }

  private schedule(entry: Entry, ms: number): void {
    clearTimeout(entry.timer);
    entry.timer = setTimeout(() => this.renew(entry), ms);
  }

  private renew(entry: Entry): void {
    if (!entry.lease.isHeld()) return; // the lease ended; the client detaches it
    const oldest = entry.sent[0];
    if (oldest !== undefined && performance.now() - oldest >= entry.lease.renewIntervalMs / 2) {
      // The renewal sent one interval ago is still unanswered: presume the connection dead (half-open,
      // blackholed) rather than wait for gRPC keepalive pings, which take tens of seconds; reconnecting re-sends
      // every renewal. (Half an interval, not a whole one: timers may fire a little early.)
      this.hooks.unanswered?.();
      this.broken(
        this.call,
        new Error(`no KeepAlive answer for ${Math.round(performance.now() - oldest)} ms`),
      );
      return;
    }
    this.send(entry);
    this.schedule(entry, entry.lease.renewIntervalMs);
  }

  private send(entry: Entry): void {
    const call = this.call ?? (this.reconnectTimer ? undefined : this.open());
    if (!call) return; // a reconnect is pending; it renews every lease
    entry.sent.push(performance.now());
    const { resource, lockId, ttlMs } = entry.lease;
    call.requests.push({ resource, lockId, ttlMs, release: false });
  }

  private open(): Call {
    const call: Call = { requests: pushable({ objectMode: true }), abort: new AbortController() };
    this.call = call;
    void this.consume(call);
    return call;
  }

  private async consume(call: Call): Promise<void> {
    try {
      for await (const response of this.hooks.open(call.requests, call.abort.signal)) {
        if (this.call !== call) return; // replaced: its pending answers no longer match what was sent
        this.failures = 0;
        this.answer(response);
      }
      this.broken(call, undefined);
    } catch (error) {
      this.broken(call, error);
    }
  }

  private answer(response: KeepAliveResponse): void {
    const entry = this.entries.get(response.lockId);
    if (!entry) return; // detached meanwhile
    const { lease } = entry;
    switch (response.state) {
      case LeaseState.LEASE_STATE_HELD: {
        const sentAt = entry.sent.shift();
        if (response.reason === '' && sentAt !== undefined) {
          lease.renewed(sentAt, response.validityMs);
          this.hooks.renewed(lease, response.validityMs);
        } else {
          lease.renewalFailed();
          this.hooks.renewalFailed(lease, response.reason || 'renewal not confirmed');
          this.schedule(entry, Math.max(RETRY_MIN_MS, lease.renewIntervalMs / RETRY_FRACTION));
        }
        return;
      }
      case LeaseState.LEASE_STATE_LOST:
        this.detach(lease);
        lease.lose(
          'lost',
          response.reason || 'the server no longer holds it',
          lossReasonOf(response.lossReason),
        );
        return;
      case LeaseState.LEASE_STATE_RELEASED:
        // Never asked for (the SDK releases with a unary call, after detaching the lease): someone else used this
        // lease's lock id to release it. For this holder the lease is gone.
        this.detach(lease);
        lease.lose('lost', response.reason || 'released by another call with this lease’s lock id');
        return;
      default:
        return;
    }
  }

  /** The stream `call` ended (error, or the server closed it): reopen with backoff while leases remain. */
  private broken(call: Call | undefined, error: unknown): void {
    if (!call || this.call !== call) return; // an older stream, already replaced
    this.call = undefined;
    call.abort.abort();
    call.requests.end();
    for (const entry of this.entries.values()) entry.sent = [];
    if (this.closed || this.entries.size === 0) return;
    this.hooks.streamError(error ?? new Error('the server ended the KeepAlive stream'));
    this.failures++;
    this.reconnectTimer = setTimeout(
      () => {
        this.reconnectTimer = undefined;
        for (const entry of this.entries.values()) this.renew(entry);
      },
      backoffMs(this.failures, RECONNECT_INITIAL_MS, RECONNECT_MAX_MS),
    );
  }

  private hangUp(): void {
    const call = this.call;
    this.call = undefined;
    call?.abort.abort();
    call?.requests.end();
  }
}

const LOSS_REASONS: Partial<Record<WireLossReason, LossReason>> = {
  [WireLossReason.LOSS_REASON_EXPIRED]: 'EXPIRED',
  [WireLossReason.LOSS_REASON_RENEWAL_FAILED]: 'RENEWAL_FAILED',
  [WireLossReason.LOSS_REASON_TAKEN_OVER]: 'TAKEN_OVER',
  [WireLossReason.LOSS_REASON_REVOKED]: 'REVOKED',
  [WireLossReason.LOSS_REASON_MODE_SWITCH]: 'MODE_SWITCH',
  [WireLossReason.LOSS_REASON_HOLD_CAP]: 'HOLD_CAP',
};

/** The wire's LossReason as the SDK's; a value this SDK does not know (a newer server) is UNSPECIFIED. */
export function lossReasonOf(reason: WireLossReason): LossReason {
  return LOSS_REASONS[reason] ?? 'UNSPECIFIED';
}
