/**
 * An SDK client whose every operation is recorded in a history (chaos/history.ts), for scripted scenarios
 * run inside the harness process (F4, F14, F25…). Worker processes record the same way (chaos/worker.ts).
 */
import { type Lease, LeaseLostError, LockClient, LockError } from '../client/src/index.js';
import { type EventError, type EventType, HistoryWriter } from './history.js';

/**
 * ok / fail / info for a failed call: `fail` only when the operation certainly took no effect; `info`
 * (unknown) for timeouts, cancellations, broken connections and anything unexpected.
 */
export function completionOf(error: unknown): {
  type: Exclude<EventType, 'invoke' | 'ok'>;
  error: EventError;
} {
  if (error instanceof LockError) {
    const e: EventError = { code: error.code, reason: error.reason, msg: error.message.slice(0, 300) };
    const definite =
      ['INVALID_ARGUMENT', 'ABORTED', 'FAILED_PRECONDITION', 'PERMISSION_DENIED', 'UNAUTHENTICATED'].includes(
        error.code,
      ) ||
      // The server's own quorum failure (it carries a reason, and has already undone its partial votes on
      // every node). Without a reason the connection broke after the send: unknown.
      (error.code === 'UNAVAILABLE' && error.reason !== '') ||
      (error.code === 'RESOURCE_EXHAUSTED' && error.reason !== '');
    return { type: definite ? 'fail' : 'info', error: e };
  }
  return {
    type: 'info',
    error: { code: 'UNKNOWN', msg: String(error instanceof Error ? error.message : error).slice(0, 300) },
  };
}

export class RecordedClient {
  readonly client: LockClient;
  readonly history: HistoryWriter;
  private n = 0;

  constructor(
    dir: string,
    readonly name: string,
    address: string,
    options: { ttlMs?: number; callTimeoutMs?: number; attempts?: number } = {},
  ) {
    this.history = new HistoryWriter(dir, name);
    this.client = new LockClient({
      address,
      clientId: name,
      ttlMs: options.ttlMs ?? 1_000,
      callTimeoutMs: options.callTimeoutMs ?? 2_000,
      retry: { attempts: options.attempts ?? 1 },
    });
    this.client.on('renewed', (lease) => {
      this.history.record({
        type: 'ok',
        f: 'keepalive',
        resource: lease.resource,
        lock: lease.lockId,
        token: String(lease.fencingToken),
        validity_ms: lease.remainingMs,
      });
    });
    this.client.on('lost', (lease, error) => {
      this.history.record({
        type: 'info',
        f: 'lost',
        resource: lease.resource,
        lock: lease.lockId,
        token: String(lease.fencingToken),
        error: {
          code: error instanceof LeaseLostError ? error.kind : 'lost',
          msg: error.message.slice(0, 300),
        },
      });
    });
  }

  private req(): string {
    return `${this.name}-${this.n++}`;
  }

  /** Acquire; undefined when refused or unknown (recorded either way). */
  async acquire(
    resource: string,
    options: { ttlMs?: number; waitMs?: number; autoRenew?: boolean } = {},
  ): Promise<Lease | undefined> {
    const req = this.req();
    const ttl = options.ttlMs ?? 1_000;
    const invoked = this.history.record({ type: 'invoke', f: 'acquire', req, resource, ttl_ms: ttl });
    try {
      const lease = await this.client.acquire(resource, {
        ttlMs: ttl,
        waitMs: options.waitMs ?? 0,
        autoRenew: options.autoRenew ?? true,
      });
      const okAt = process.hrtime.bigint();
      this.history.record(
        {
          type: 'ok',
          f: 'acquire',
          req,
          resource,
          lock: lease.lockId,
          token: String(lease.fencingToken),
          // From the invoke, so that the checker's D = inv + validity is the SDK's own deadline.
          validity_ms: lease.remainingMs + Number(okAt - BigInt(invoked.t)) / 1e6,
        },
        okAt,
      );
      return lease;
    } catch (error) {
      this.fail(req, 'acquire', resource, error);
      return undefined;
    }
  }

  async extend(lease: Lease, ttlMs = 1_000): Promise<boolean> {
    const req = this.req();
    const common = { req, resource: lease.resource, lock: lease.lockId, token: String(lease.fencingToken) };
    const invoked = this.history.record({ type: 'invoke', f: 'extend', ...common, ttl_ms: ttlMs });
    try {
      await lease.extend(ttlMs);
      const okAt = process.hrtime.bigint();
      this.history.record(
        {
          type: 'ok',
          f: 'extend',
          ...common,
          validity_ms: lease.remainingMs + Number(okAt - BigInt(invoked.t)) / 1e6,
        },
        okAt,
      );
      return true;
    } catch (error) {
      this.fail(req, 'extend', lease.resource, error, lease);
      return false;
    }
  }

  async release(lease: Lease): Promise<boolean | undefined> {
    const req = this.req();
    const common = { req, resource: lease.resource, lock: lease.lockId, token: String(lease.fencingToken) };
    this.history.record({ type: 'invoke', f: 'release', ...common });
    try {
      const released = await lease.release();
      this.history.record({ type: released ? 'ok' : 'fail', f: 'release', ...common });
      return released;
    } catch (error) {
      this.fail(req, 'release', lease.resource, error, lease);
      return undefined;
    }
  }

  /** A write of `value` to the harness store (fenced or not) with this lease's token; true when accepted. */
  async storeAdd(
    storeUrl: string,
    store: 'fenced' | 'unfenced',
    lease: Lease,
    value: number,
  ): Promise<boolean | undefined> {
    const req = this.req();
    const common = {
      req,
      store,
      resource: lease.resource,
      lock: lease.lockId,
      token: String(lease.fencingToken),
    };
    this.history.record({ type: 'invoke', f: 'store_write', ...common, value });
    const stale = (): false => {
      this.history.record({
        type: 'fail',
        f: 'store_write',
        ...common,
        value,
        error: { code: 'STALE_TOKEN' },
      });
      return false;
    };
    try {
      const body = { resource: lease.resource, token: lease.fencingToken, lock: lease.lockId };
      const read = await post(`${storeUrl}/${store}/read`, body);
      if (read.status === 409) return stale();
      if (read.status !== 200) throw new Error(`store read: HTTP ${read.status}`);
      const set = new Set((read.body as { value: number[] }).value);
      set.add(value);
      const write = await post(`${storeUrl}/${store}/write`, { ...body, value: [...set] });
      if (write.status === 409) return stale();
      if (write.status !== 200) throw new Error(`store write: HTTP ${write.status}`);
      this.history.record({ type: 'ok', f: 'store_write', ...common, value });
      return true;
    } catch (error) {
      this.history.record({
        type: 'info',
        f: 'store_write',
        ...common,
        value,
        error: { code: 'UNKNOWN', msg: String(error) },
      });
      this.history.retire();
      return undefined;
    }
  }

  private fail(
    req: string,
    f: 'acquire' | 'extend' | 'release',
    resource: string,
    error: unknown,
    lease?: Lease,
  ) {
    const { type, error: e } = completionOf(error);
    this.history.record({
      type,
      f,
      req,
      resource,
      ...(lease && { lock: lease.lockId, token: String(lease.fencingToken) }),
      error: e,
    });
    if (type === 'info') this.history.retire();
  }

  async close(): Promise<void> {
    await this.client.close({ release: true });
    this.history.close();
  }
}

async function post(url: string, body: unknown): Promise<{ status: number; body: unknown }> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(2_000),
  });
  return { status: response.status, body: await response.json().catch(() => undefined) };
}
