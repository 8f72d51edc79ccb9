// grpc.health.v1.Health (doc/health-checking.md in grpc/grpc): the standard probe that load balancers,
// Kubernetes (grpc probes), grpc_health_probe and grpcurl use, so they need no redlease-specific client.
import { type CallContext, ServerError, type ServiceImplementation, Status } from 'nice-grpc';
import {
  type HealthCheckRequest,
  type HealthCheckResponse,
  type HealthDefinition,
  type HealthListResponse,
  HealthCheckResponse_ServingStatus as ServingStatus,
} from '../../gen/grpc/health/v1/health.js';

/** The spec caps List at 100 services; beyond that it must fail rather than truncate silently. */
const LIST_LIMIT = 100;

/** Told about one service's status changes, and when the state shuts down. */
export interface HealthWatcher {
  changed(status: ServingStatus): void;
  ended(): void;
}

/**
 * Serving status per service name, as the health service reports it. The empty name "" is the server as a
 * whole (the spec's convention for a probe that names no service); the server wiring sets it like any other.
 * A name never set is unknown: Check answers NOT_FOUND and Watch SERVICE_UNKNOWN.
 */
export class HealthState {
  readonly #statuses = new Map<string, ServingStatus>();
  /** Watchers by service name; an entry is deleted with its last watcher so names watched once do not pile up. */
  readonly #watchers = new Map<string, Set<HealthWatcher>>();
  #shutDown = false;

  /**
   * Sets a service's status and tells its watchers when the status actually changed. Ignored after
   * shutdown(), so a late update cannot report SERVING from a server that is going away (as grpc-go does).
   */
  set(service: string, status: ServingStatus): void {
    if (status === ServingStatus.SERVICE_UNKNOWN || status === ServingStatus.UNRECOGNIZED) {
      // SERVICE_UNKNOWN is Watch's answer for a name never set; storing it would make the name "known".
      throw new RangeError(`health status ${ServingStatus[status]} cannot be set`);
    }
    if (this.#shutDown || this.#statuses.get(service) === status) return;
    this.#statuses.set(service, status);
    for (const watcher of [...(this.#watchers.get(service) ?? [])]) watcher.changed(status);
  }

  /** The service's status, or undefined when it was never set. */
  get(service: string): ServingStatus | undefined {
    return this.#statuses.get(service);
  }

  /** A snapshot of every known service and its status. */
  list(): ReadonlyMap<string, ServingStatus> {
    return new Map(this.#statuses);
  }

  /**
   * For a graceful stop: reports every known service NOT_SERVING, then ends every Watch stream (grpc-js waits
   * for open calls before its graceful shutdown completes, and a Watch otherwise never ends). Later set() calls
   * are ignored and later Watch calls end right after their first message.
   */
  shutdown(): void {
    for (const service of this.#statuses.keys()) this.set(service, ServingStatus.NOT_SERVING);
    this.#shutDown = true;
    const watchers = [...this.#watchers.values()].flatMap((set) => [...set]);
    this.#watchers.clear();
    for (const watcher of watchers) watcher.ended();
  }

  /** Registers a watcher of one service; returns the function that removes it (safe to call twice). */
  watch(service: string, watcher: HealthWatcher): () => void {
    if (this.#shutDown) {
      watcher.ended();
      return () => {};
    }
    let watchers = this.#watchers.get(service);
    if (watchers === undefined) {
      watchers = new Set();
      this.#watchers.set(service, watchers);
    }
    watchers.add(watcher);
    return () => {
      const current = this.#watchers.get(service);
      if (current?.delete(watcher) && current.size === 0) this.#watchers.delete(service);
    };
  }

  /** How many watchers are registered, over all services; lets tests prove that ended Watch calls leak none. */
  get watcherCount(): number {
    let count = 0;
    for (const watchers of this.#watchers.values()) count += watchers.size;
    return count;
  }
}

/** The grpc.health.v1.Health implementation over `state`. */
export function healthService(state: HealthState): ServiceImplementation<typeof HealthDefinition> {
  return {
    async check({ service }: HealthCheckRequest): Promise<HealthCheckResponse> {
      const status = state.get(service);
      if (status === undefined) throw new ServerError(Status.NOT_FOUND, `unknown service "${service}"`);
      return { status };
    },

    async list(): Promise<HealthListResponse> {
      const statuses = state.list();
      if (statuses.size > LIST_LIMIT) {
        throw new ServerError(
          Status.RESOURCE_EXHAUSTED,
          `${statuses.size} services have a health status, more than the ${LIST_LIMIT} List may return`,
        );
      }
      return {
        statuses: Object.fromEntries([...statuses].map(([service, status]) => [service, { status }])),
      };
    },

    watch: (request: HealthCheckRequest, context: CallContext) =>
      watch(state, request.service, context.signal),
  };
}

/**
 * Sends the current status at once, then each change, until the call is cancelled or the state shuts down.
 * Changes that arrive faster than they are sent collapse into the latest one, and a status equal to the last
 * one sent is never repeated: a watcher needs the current status, not the history.
 */
async function* watch(
  state: HealthState,
  service: string,
  signal: AbortSignal,
): AsyncGenerator<HealthCheckResponse> {
  let latest = state.get(service) ?? ServingStatus.SERVICE_UNKNOWN;
  let ended = false;
  let wake = () => {};
  const end = () => {
    ended = true;
    wake();
  };
  const unwatch = state.watch(service, {
    changed: (status) => {
      latest = status;
      wake();
    },
    ended: end,
  });
  signal.addEventListener('abort', end);
  try {
    let sent: ServingStatus | undefined;
    while (!signal.aborted) {
      if (latest !== sent) {
        sent = latest;
        yield { status: sent };
      } else if (ended) {
        return;
      } else {
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
      }
    }
  } finally {
    unwatch();
    signal.removeEventListener('abort', end);
  }
}
