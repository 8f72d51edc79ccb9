/**
 * redlease through the SDK: `LockClient.acquire` (autoRenew off: a cycle takes a few ms, far less than a third of
 * the ttl, so no renewal would ever be sent, but attaching the lease to a KeepAlive stream would still cost) and
 * `lease.release()`, on unary calls (`transport: 'unary'`, named explicitly: the SDK's default is the Session
 * stream). `redlease-session` is the same with `transport: 'session'`: every Acquire and Release is an operation
 * on one Session stream per client. `redlease-traced` is `redlease-session` with a tracer provider: every acquire
 * and release is a CLIENT span, exported, and its traceparent travels to a server that traces too.
 */
import type { TracerProvider } from '@opentelemetry/api';
import { LockClient, LockHeldError } from '../../client/src/index.js';
import type { Held, Locker, LockSystem } from '../lock-system.js';
import { OWN_CONNECTION } from './redlease.js';

export class RedleaseSdkSystem implements LockSystem {
  readonly name: 'redlease-sdk' | 'redlease-session' | 'redlease-traced';

  constructor(
    private readonly address: string,
    private readonly ttlMs: number,
    private readonly transport: 'unary' | 'session' = 'unary',
    private readonly tracerProvider?: TracerProvider,
  ) {
    this.name = tracerProvider
      ? 'redlease-traced'
      : transport === 'session'
        ? 'redlease-session'
        : 'redlease-sdk';
  }

  async connect(clientId: string): Promise<Locker> {
    const client = new LockClient({
      address: this.address,
      ttlMs: this.ttlMs,
      clientId,
      transport: this.transport,
      channelOptions: OWN_CONNECTION,
      ...(this.tracerProvider && { tracerProvider: this.tracerProvider }),
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
