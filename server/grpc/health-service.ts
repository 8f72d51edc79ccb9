// grpc.health.v1.Health (doc/health-checking.md in grpc/grpc): the standard probe that load balancers,
// Kubernetes (grpc probes), grpc_health_probe and grpcurl use, so they need no redlease-specific client.
//
// Check and Watch are nice-grpc-server-health's. This file is the thin part the library cannot express:
// - List: the library serves the older Health definition (Check and Watch only), so it neither implements List
//   nor tells which services it knows; ServerHealth remembers the names it set and lists them.
// - Shutdown: the library's Watch runs until its call's signal aborts (its README pairs it with a terminator
//   middleware for that). shutdown() reports everything NOT_SERVING, ignores later updates and ends every Watch
//   with OK, so a graceful grpc-js shutdown, which waits for open calls, can complete.
// - Its state is an EventEmitter with one `change` listener per open Watch: the default limit of 10 listeners
//   would print a MaxListenersExceededWarning from the 11th concurrent Watch on, so the limit is lifted (and
//   on the shutdown signal, which every Watch listens to as well).
// The library's Watch re-reads the status on each change event, so changes that come faster than they are sent
// collapse into the latest and a status is never sent twice in a row. One difference from the hand-written Watch
// it replaces: a change made while a message waits for a client that stopped reading (write backpressure) is
// sent with the next change, not when the client reads again. Status changes follow quorum changes, far too
// rare to fill a stream's buffers, so this is accepted rather than worked around.
import { setMaxListeners } from 'node:events';
import { isAbortError } from 'abort-controller-x';
import { type CallContext, ServerError, type ServiceImplementation, Status } from 'nice-grpc';
import { HealthServiceImpl, HealthState, type HealthStatus } from 'nice-grpc-server-health';
import {
  type HealthCheckRequest,
  type HealthCheckResponse,
  type HealthDefinition,
  type HealthListResponse,
  HealthCheckResponse_ServingStatus as ServingStatus,
} from '../../gen/grpc/health/v1/health.js';

/** The spec caps List at 100 services; beyond that it must fail rather than truncate silently. */
const LIST_LIMIT = 100;

/** What the server sets for a service (the library's 'unknown' means a name never set). */
export type Serving = Exclude<HealthStatus, 'unknown'>;

const SERVING_STATUS: Record<HealthStatus, ServingStatus> = {
  healthy: ServingStatus.SERVING,
  unhealthy: ServingStatus.NOT_SERVING,
  unknown: ServingStatus.SERVICE_UNKNOWN,
};

/**
 * Serving status per service name, as the health service reports it. The empty name "" is the server as a
 * whole (the spec's convention for a probe that names no service), SERVING until set otherwise (the library's
 * default). Any other name never set is unknown: Check answers NOT_FOUND and Watch SERVICE_UNKNOWN.
 */
export class ServerHealth {
  readonly #state = HealthState();
  /** Every name set, for List; "" is known from the start. */
  readonly #services = new Set<string>(['']);
  readonly #shutDown = new AbortController();

  constructor() {
    // Each open Watch listens to both.
    this.#state.setMaxListeners(0);
    setMaxListeners(0, this.#shutDown.signal);
  }

  /** Sets a service's status (Watch sends only changes). Ignored after shutdown(). */
  set(service: string, status: Serving): void {
    if (this.#shutDown.signal.aborted) return;
    this.#services.add(service);
    this.#state.setStatus(status, service);
  }

  /** A snapshot of every known service and its status. */
  list(): ReadonlyMap<string, Serving> {
    return new Map(
      [...this.#services].map((service) => [service, this.#state.getStatus(service) as Serving]),
    );
  }

  /**
   * For a graceful stop: reports every known service NOT_SERVING, then ends every Watch stream (its last
   * message is that NOT_SERVING). Later set() calls are ignored and later Watch calls end after their first
   * message.
   */
  shutdown(): void {
    for (const service of this.#services) this.set(service, 'unhealthy');
    this.#shutDown.abort();
  }

  /** How many Watch calls are waiting for a change; lets tests prove that ended Watch calls leak none. */
  get watcherCount(): number {
    return this.#state.listenerCount('change');
  }

  /** The grpc.health.v1.Health implementation: the library's Check and Watch, and List. */
  service(): ServiceImplementation<typeof HealthDefinition> {
    const library = HealthServiceImpl(this.#state);
    return {
      check: async (request: HealthCheckRequest, context: CallContext): Promise<HealthCheckResponse> =>
        // The library's generated enum is another TypeScript type with the same values as ours.
        ({ status: (await library.check(request, context)).status as number as ServingStatus }),

      list: async (): Promise<HealthListResponse> => {
        const statuses = this.list();
        if (statuses.size > LIST_LIMIT) {
          throw new ServerError(
            Status.RESOURCE_EXHAUSTED,
            `${statuses.size} services have a health status, more than the ${LIST_LIMIT} List may return`,
          );
        }
        return {
          statuses: Object.fromEntries(
            [...statuses].map(([service, status]) => [service, { status: SERVING_STATUS[status] }]),
          ),
        };
      },

      watch: (request: HealthCheckRequest, context: CallContext) => this.#watch(library, request, context),
    };
  }

  /** The library's Watch on a signal that also aborts at shutdown, which then ends the stream with OK. */
  async *#watch(
    library: HealthServiceImpl,
    request: HealthCheckRequest,
    context: CallContext,
  ): AsyncGenerator<HealthCheckResponse> {
    const call = new AbortController();
    const abort = () => call.abort();
    const signals = [context.signal, this.#shutDown.signal];
    for (const signal of signals) signal.addEventListener('abort', abort);
    if (signals.some((signal) => signal.aborted)) abort();
    try {
      for await (const { status } of library.watch(request, { ...context, signal: call.signal })) {
        yield { status: status as number as ServingStatus };
      }
    } catch (error) {
      // Cancelled by the client or ended by shutdown: the stream is over, not failed.
      if (!(isAbortError(error) && call.signal.aborted)) throw error;
    } finally {
      for (const signal of signals) signal.removeEventListener('abort', abort);
    }
  }
}
