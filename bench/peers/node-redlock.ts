/**
 * node-redlock 5.0.0-beta.2, in this process: `redlock.acquire([key], ttl)` + `lock.release()` on the same three
 * Redis nodes as redlease, under its own key prefix. It has no server and no RPC hop — each cycle is one script
 * call per node straight from the client — so on uncontended latency it is the bar no RPC service can reach.
 *
 * Waiting is node-redlock's own: it polls (retryCount × retryDelay ± retryJitter) and, on a split vote, keeps
 * its minority keys until the retry window ends, which is where its stalls come from.
 */
import { Redis } from 'ioredis';
import Redlock, { ExecutionError } from 'redlock';
import type { Held, Locker, LockSystem } from '../lock-system.js';

/** Lock keys of this peer: apart from redlease's `lk:` keys, on the same nodes. */
const KEY_PREFIX = 'bench:node-redlock:';

export interface NodeRedlockOptions {
  nodes: readonly { host: string; port: number }[];
  ttlMs: number;
  /** Polling period while the lock is held. */
  retryDelayMs: number;
  retryJitterMs: number;
}

export class NodeRedlockSystem implements LockSystem {
  readonly name = 'node-redlock';

  constructor(private readonly options: NodeRedlockOptions) {}

  async connect(): Promise<Locker> {
    const { nodes, ttlMs, retryDelayMs, retryJitterMs } = this.options;
    // ioredis defaults (no auto-pipelining): how node-redlock's README sets it up.
    const clients = nodes.map((node) => new Redis({ host: node.host, port: node.port, lazyConnect: true }));
    await Promise.all(clients.map((client) => client.connect()));
    // retryCount 0: try once; waiting acquires pass their own retry window below.
    const redlock = new Redlock(clients, {
      retryCount: 0,
      retryDelay: retryDelayMs,
      retryJitter: retryJitterMs,
    });
    redlock.on('error', () => undefined); // votes against are expected under contention; errors surface below
    return {
      async acquire(resource, waitMs): Promise<Held | null> {
        // The retry window covers waitMs: as many polls as fit, so it waits about as long as the others do.
        const retryCount = waitMs > 0 ? Math.ceil(waitMs / retryDelayMs) : 0;
        try {
          const lock = await redlock.acquire([KEY_PREFIX + resource], ttlMs, { retryCount });
          return {
            async release() {
              await lock.release();
            },
          };
        } catch (error) {
          // No quorum within the retry window: the key is held (or the vote split) — contention, not failure.
          if (error instanceof ExecutionError) return null;
          throw error;
        }
      },
      async close() {
        await Promise.all(clients.map((client) => client.quit().catch(() => client.disconnect())));
      },
    };
  }
}
