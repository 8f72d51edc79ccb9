/**
 * redlease through raw unary gRPC calls: the generated nice-grpc client on a channel of its own, no SDK. This is
 * what a ghz run or a client in another language costs: one Acquire and one Release per cycle.
 */
import { ChannelCredentials, ClientError, createChannel, createClient, Status } from 'nice-grpc';
import { LockServiceDefinition } from '../../gen/redlease/v1/lock.js';
import type { Held, Locker, LockSystem } from '../lock-system.js';

/**
 * grpc-js shares one connection between channels to the same address unless told otherwise; each bench client
 * gets its own, as separate processes would.
 */
export const OWN_CONNECTION = { 'grpc.use_local_subchannel_pool': 1 } as const;

export class RedleaseSystem implements LockSystem {
  readonly name = 'redlease';

  constructor(
    private readonly address: string,
    private readonly ttlMs: number,
  ) {}

  async connect(clientId: string): Promise<Locker> {
    const channel = createChannel(this.address, ChannelCredentials.createInsecure(), OWN_CONNECTION);
    const client = createClient(LockServiceDefinition, channel);
    const { ttlMs } = this;
    return {
      async acquire(resource, waitMs, signal): Promise<Held | null> {
        try {
          const { lease } = await client.acquire(
            { resource, ttlMs, clientId, waitTimeoutMs: waitMs },
            { signal },
          );
          const lockId = lease?.lockId ?? '';
          return {
            async release() {
              await client.release({ resource, lockId });
            },
          };
        } catch (error) {
          // ABORTED: held by another client (after the wait, if any) — the normal outcome of contention.
          if (error instanceof ClientError && error.code === Status.ABORTED) return null;
          throw error;
        }
      },
      async close() {
        channel.close();
      },
    };
  }
}
