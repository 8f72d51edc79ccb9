/**
 * etcd's v3lock service over gRPC (grpc-js + @grpc/proto-loader on the minimal protos beside this file): each
 * client grants one lease, then `Lock({name, lease})` — which blocks until the lock is granted, FIFO by creation
 * revision — and `Unlock({key})`. The lease's ttl covers the whole run (it is revoked when the client closes,
 * which deletes any lock left behind), so no keep-alive stream is needed: a clientv3 session would add one small
 * message per ttl/3, nothing the measured cycles would notice.
 */
import { fileURLToPath } from 'node:url';
import {
  type Client,
  type ClientUnaryCall,
  credentials,
  loadPackageDefinition,
  type ServiceClientConstructor,
  type ServiceError,
  status,
} from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import type { Held, Locker, LockSystem } from '../../lock-system.js';
import { OWN_CONNECTION } from '../redlease.js';

const PROTO_DIR = fileURLToPath(new URL('.', import.meta.url));

/** int64 as strings (lease IDs use all 64 bits); field names as in the .proto. */
const definition = loadSync('v3lock.proto', { includeDirs: [PROTO_DIR], keepCase: true, longs: String });
const packages = loadPackageDefinition(definition) as unknown as {
  v3lockpb: { Lock: ServiceClientConstructor };
  etcdserverpb: { Lease: ServiceClientConstructor };
};

type Callback = (error: ServiceError | null, response?: unknown) => void;
type UnaryMethod = (request: object, callback: Callback) => ClientUnaryCall;

/** One unary call as a promise; `signal` cancels it (CANCELLED). */
export function unary<T>(client: Client, method: string, request: object, signal?: AbortSignal): Promise<T> {
  const send = (client as unknown as Record<string, UnaryMethod>)[method];
  if (send === undefined) throw new Error(`etcd client has no method ${method}`);
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => call.cancel();
    const call = send.call(client, request, (error, response) => {
      signal?.removeEventListener('abort', onAbort);
      if (error) reject(error);
      else resolve(response as T);
    });
    if (signal?.aborted) call.cancel();
    else signal?.addEventListener('abort', onAbort, { once: true });
  });
}

export class EtcdSystem implements LockSystem {
  readonly name = 'etcd';

  constructor(
    /** host:port of etcd's client URL. */
    private readonly address: string,
    /** Lease ttl in whole seconds: longer than the client lives. */
    private readonly leaseTtlSeconds: number,
  ) {}

  async connect(): Promise<Locker> {
    const insecure = credentials.createInsecure();
    const locks = new packages.v3lockpb.Lock(this.address, insecure, OWN_CONNECTION);
    // On the Lock client's channel: one connection per bench client, as for the other systems.
    const leases = new packages.etcdserverpb.Lease(this.address, insecure, {
      channelOverride: locks.getChannel(),
    });
    const grant = await unary<{ ID: string; error: string }>(leases, 'LeaseGrant', {
      TTL: this.leaseTtlSeconds,
      ID: 0,
    });
    if (grant.error) throw new Error(`etcd LeaseGrant: ${grant.error}`);
    const lease = grant.ID;
    return {
      async acquire(resource, waitMs, signal): Promise<Held | null> {
        // Lock blocks until granted; a deadline bounds the wait like the others' wait timeouts. Uncontended
        // (waitMs 0) it is never held, so no deadline.
        const deadline = waitMs > 0 ? AbortSignal.any([signal, AbortSignal.timeout(waitMs)]) : signal;
        let key: Buffer;
        try {
          ({ key } = await unary<{ key: Buffer }>(
            locks,
            'Lock',
            { name: Buffer.from(`bench/${resource}`), lease },
            deadline,
          ));
        } catch (error) {
          if (waitMs > 0 && !signal.aborted && (error as ServiceError).code === status.CANCELLED) return null;
          throw error;
        }
        return {
          async release() {
            await unary(locks, 'Unlock', { key });
          },
        };
      },
      async close() {
        await unary(leases, 'LeaseRevoke', { ID: lease }).catch(() => undefined);
        locks.close();
      },
    };
  }
}
