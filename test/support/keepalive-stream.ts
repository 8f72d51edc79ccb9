import type { KeepAliveRequest, KeepAliveResponse } from '../../gen/redlease/v1/lock.js';
import { waitFor } from '../../scripts/lib/wait.js';
import { openDuplex } from './duplex.js';
import type { LockClient } from './server.js';

/** A KeepAlive stream driven by the test: `send` requests, read answers and pushes in arrival order. */
export function openStream(lock: LockClient) {
  const stream = openDuplex<KeepAliveRequest, KeepAliveResponse>((requests, options) =>
    lock.keepAlive(requests, options),
  );
  return Object.assign(stream, {
    send(request: Partial<KeepAliveRequest> & { resource: string; lockId: string }) {
      stream.push({ ttlMs: 0, release: false, ...request });
    },
    /** The n-th message (1-based) received, waiting for it. */
    async nth(n: number, timeoutMs = 5_000) {
      return waitFor(`KeepAlive message ${n}`, () => stream.received[n - 1], timeoutMs);
    },
  });
}
