/**
 * redlease through the SDK: `LockClient.acquire` (autoRenew off: a cycle takes a few ms, far less than a third of
 * the ttl, so no renewal would ever be sent, but attaching the lease to a KeepAlive stream would still cost) and
 * `lease.release()`, on unary calls (`transport: 'unary'`, named explicitly: the SDK's default is the Session
 * stream). `redlease-session` is the same with `transport: 'session'`: every Acquire and Release is an operation
 * on one Session stream per client.
 */
import { LockClient, LockHeldError } from '../../client/src/index.js';
import type { Held, Locker, LockSystem } from '../lock-system.js';
import { OWN_CONNECTION } from './redlease.js';

export class RedleaseSdkSystem implements LockSystem {
  readonly name: 'redlease-sdk' | 'redlease-session';

  constructor(
    private readonly address: string,
    private readonly ttlMs: number,
    private readonly transport: 'unary' | 'session' = 'unary',
  ) {
    this.name = transport === 'session' ? 'redlease-session' : 'redlease-sdk';
  }

  async connect(clientId: string): Promise<Locker> {
    const client = new LockClient({
      address: this.address,
      ttlMs: this.ttlMs,
      clientId,
      transport: this.transport,
      channelOptions: OWN_CONNECTION,
    });
    return {
      async acquire(resource, waitMs, signal): Promise<Held | null> {
        try {
          const lease = await client.acquire(resource, { waitMs, signal, autoRenew: false });
          return {
            async release() {
              await lease.release();
            },
          };
        } catch (error) {
          if (error instanceof LockHeldError) return null;
          throw error;
        }
      },
      close: () => client.close(),
    };
  }
}
