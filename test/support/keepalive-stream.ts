import { onTestFinished } from 'vitest';
import type { KeepAliveRequest, KeepAliveResponse } from '../../client/src/gen/redlease/v1/lock.js';
import { waitFor } from '../../scripts/lib/wait.js';
import type { LockClient } from './server.js';

/** A KeepAlive stream driven by the test: `send` requests, read answers and pushes in arrival order. */
export function openStream(lock: LockClient) {
  const outgoing: KeepAliveRequest[] = [];
  let wake: (() => void) | undefined;
  let closed = false;
  async function* requests(): AsyncGenerator<KeepAliveRequest> {
    for (;;) {
      while (outgoing.length > 0) yield outgoing.shift()!;
      if (closed) return;
      await new Promise<void>((r) => (wake = r));
    }
  }
  const abort = new AbortController();
  onTestFinished(() => abort.abort());
  const received: KeepAliveResponse[] = [];
  let error: unknown;
  let ended = false;
  const done = (async () => {
    try {
      for await (const r of lock.keepAlive(requests(), { signal: abort.signal })) received.push(r);
    } catch (e) {
      error = e;
    } finally {
      ended = true;
    }
  })();
  return {
    received,
    send(request: Partial<KeepAliveRequest> & { resource: string; lockId: string }) {
      outgoing.push({ ttlMs: 0, release: false, ...request });
      wake?.();
    },
    /** The n-th message (1-based) received, waiting for it. */
    async nth(n: number, timeoutMs = 5_000) {
      return waitFor(`KeepAlive message ${n}`, () => received[n - 1], timeoutMs);
    },
    halfClose() {
      closed = true;
      wake?.();
    },
    cancel: () => abort.abort(),
    get error() {
      return error;
    },
    get ended() {
      return ended;
    },
    done,
  };
}
