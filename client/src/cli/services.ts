/**
 * The calls the SDK's LockClient does not make: AdminService, grpc.health.v1 and Release by lock id. One channel
 * with the same credentials, bearer token and call timeout as the LockClient, and the SDK's error classes and
 * retries: UNAVAILABLE is retried with the same backoff and attempts as LockClient's calls.
 */
import { delay } from 'abort-controller-x';
import { type Channel, type Client, createChannel, createClientFactory, Metadata } from 'nice-grpc';
import { type DeadlineOptions, deadlineMiddleware } from 'nice-grpc-client-middleware-deadline';
import { HealthDefinition } from '../../../gen/grpc/health/v1/health.js';
import { AdminServiceDefinition } from '../../../gen/redlease/v1/admin.js';
import { LockServiceDefinition } from '../../../gen/redlease/v1/lock.js';
import { backoffMs } from '../backoff.js';
import { credentials } from '../credentials.js';
import { isRetryable, toLockError } from '../errors.js';
import type { Connection } from './options.js';

/** LockClient's defaults: 4 attempts in all, 50 ms doubling to 1 s. */
const ATTEMPTS = 4;
const INITIAL_DELAY_MS = 50;
const MAX_DELAY_MS = 1_000;
const REASON_TRAILER = 'redlease-reason';
const NEVER = new AbortController().signal;

type CallOptions = DeadlineOptions & { onTrailer: (trailer: Metadata) => void };

export class Services {
  private readonly channel: Channel;
  readonly admin: Client<typeof AdminServiceDefinition, DeadlineOptions>;
  readonly health: Client<typeof HealthDefinition, DeadlineOptions>;
  readonly lock: Client<typeof LockServiceDefinition, DeadlineOptions>;

  constructor(private readonly connection: Connection) {
    const tls = connection.tls;
    this.channel = createChannel(connection.address, credentials(tls), {
      ...(typeof tls === 'object' && tls.serverName && { 'grpc.ssl_target_name_override': tls.serverName }),
    });
    const metadata = connection.token ? Metadata({ authorization: `Bearer ${connection.token}` }) : undefined;
    const factory = createClientFactory().use(deadlineMiddleware);
    const defaults = metadata ? { '*': { metadata } } : undefined;
    this.admin = factory.create(AdminServiceDefinition, this.channel, defaults);
    this.health = factory.create(HealthDefinition, this.channel, defaults);
    this.lock = factory.create(LockServiceDefinition, this.channel, defaults);
  }

  /**
   * One call with the call timeout, UNAVAILABLE retried with backoff, and failures as the SDK's typed errors
   * (UnavailableError, AuthError, LockNotHeldError…) carrying the server's reason. `resource` names what the
   * call is about in those errors ('' for none).
   */
  async call<T>(resource: string, send: (options: CallOptions) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      let reason = '';
      try {
        return await send({
          deadline: this.connection.callTimeoutMs ?? 5_000,
          onTrailer: (trailer) => (reason = trailer.get(REASON_TRAILER) ?? ''),
        });
      } catch (error) {
        const mapped = toLockError(error, resource, reason);
        if (!isRetryable(mapped) || attempt >= ATTEMPTS) throw mapped;
        await delay(NEVER, backoffMs(attempt, INITIAL_DELAY_MS, MAX_DELAY_MS));
      }
    }
  }

  close(): void {
    this.channel.close();
  }
}
