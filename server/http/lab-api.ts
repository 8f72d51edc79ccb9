import type { IncomingMessage } from 'node:http';
import {
  type Coordinator,
  type Grant,
  InvalidArgumentError,
  type Lease,
  type Mode,
} from '../coordinator/index.js';
import type { AuthTarget } from '../edge/auth.js';
import { describeToProto, leaseToProto, nodeToProto, snakeKeys } from '../edge/convert.js';
import { readJsonBody } from './json-body.js';

/** What a handler gets: the request, its parsed URL, the path parameter, and a signal that aborts when the client goes away. */
export interface LabRequest {
  request: IncomingMessage;
  url: URL;
  /** The route's `:param`, percent-decoded. */
  param: string;
  signal: AbortSignal;
}

export interface LabResponse {
  status: number;
  body: unknown;
}

/** One endpoint of the lab JSON API. */
export interface LabRoute {
  method: 'GET' | 'POST';
  /** A fixed path, or one ending in `/:param`. */
  path: string;
  /** The RPC it mirrors, as named in metrics and logs. */
  name: string;
  auth: AuthTarget;
  handle(call: LabRequest): Promise<LabResponse>;
}

/**
 * The lab JSON API (DESIGN, "The lab JSON API"): thin glue like the gRPC services — decode JSON, call the
 * coordinator, encode with the proto's field names (snake_case). Values are passed as JSON typed them: the
 * engine and coordinator validate type and range for both edges, so the errors are the same. As in the proto's
 * JSON mapping, `ttl_ms` 0 or absent means the server default and `wait_timeout_ms` 0 or absent means try once.
 */
export function labRoutes(coordinator: Coordinator, maxBodyBytes: number): LabRoute[] {
  const body = (call: LabRequest, fields: readonly string[], optional = false) =>
    readJsonBody(call.request, { maxBytes: maxBodyBytes, fields, optional });
  const ttl = (value: unknown) => (value === 0 || value === undefined ? undefined : (value as number));

  return [
    {
      method: 'POST',
      path: '/lock/acquire',
      name: 'Acquire',
      auth: 'lock',
      async handle(call) {
        const b = await body(call, [
          'resource',
          'ttl_ms',
          'client_id',
          'wait_timeout_ms',
          'lock_id',
          'max_hold_ms',
        ]);
        const lease = await coordinator.acquire(
          {
            resource: b.resource as string,
            ttlMs: ttl(b.ttl_ms),
            clientId: b.client_id as string | undefined,
            waitTimeoutMs: b.wait_timeout_ms as number | undefined,
            lockId: b.lock_id === '' ? undefined : (b.lock_id as string | undefined),
            maxHoldMs: b.max_hold_ms as number | undefined,
          },
          call.signal,
        );
        return { status: 200, body: { acquired: true, ...leaseJson(lease) } };
      },
    },
    {
      method: 'POST',
      path: '/lock/release',
      name: 'Release',
      auth: 'lock',
      async handle(call) {
        const b = await body(call, ['resource', 'lock_id']);
        const result = await coordinator.release(b.resource as string, b.lock_id as string);
        return {
          status: 200,
          body: { released: result.released, resource: b.resource, nodes: result.nodes },
        };
      },
    },
    {
      method: 'POST',
      path: '/lock/extend',
      name: 'Extend',
      auth: 'lock',
      async handle(call) {
        const b = await body(call, ['resource', 'lock_id', 'ttl_ms']);
        const lease = await coordinator.extend(b.resource as string, b.lock_id as string, ttl(b.ttl_ms));
        return { status: 200, body: { extended: true, ...leaseJson(lease) } };
      },
    },
    {
      method: 'GET',
      path: '/lock/status/:resource',
      name: 'Describe',
      auth: 'lock',
      async handle(call) {
        return { status: 200, body: snakeKeys(describeToProto(await coordinator.describe(call.param))) };
      },
    },
    {
      method: 'GET',
      path: '/health',
      name: 'Health',
      auth: 'open',
      async handle() {
        // Per-node state and the quorum only: no addresses, lock names or ids (the endpoint is open).
        const status = coordinator.status();
        const serving = status.quorumAvailable && !coordinator.shuttingDown;
        return {
          status: serving ? 200 : 503,
          body: {
            status: serving ? 'SERVING' : 'NOT_SERVING',
            mode: status.mode,
            quorum: status.quorum,
            quorum_available: status.quorumAvailable,
            voting_nodes: status.nodes.filter((n) => n.voting && n.up).length,
            nodes: status.nodes.map((n) => ({
              name: n.name,
              up: n.up,
              voting: n.voting,
              quarantined: n.quarantined,
              latency_ms: n.latencyMs,
            })),
          },
        };
      },
    },
    {
      method: 'GET',
      path: '/admin/mode',
      name: 'GetMode',
      auth: 'admin',
      async handle(call) {
        if (call.url.searchParams.has('mode')) {
          throw new InvalidArgumentError(
            'mode',
            'MODE_CHANGE_NEEDS_POST',
            'GET reads the mode; change it with POST /admin/mode?mode=single|redlock',
          );
        }
        return { status: 200, body: { mode: coordinator.getMode() } };
      },
    },
    {
      method: 'POST',
      path: '/admin/mode',
      name: 'SetMode',
      auth: 'admin',
      async handle(call) {
        const b = await body(call, ['mode', 'force'], true);
        const query = call.url.searchParams.get('mode');
        if (query !== null && b.mode !== undefined && query !== b.mode) {
          throw new InvalidArgumentError(
            'mode',
            'MODE_INVALID',
            `the query says mode=${query} and the body says "${String(b.mode)}": give one`,
          );
        }
        const previous = coordinator.getMode();
        const switched = await coordinator.setMode(modeFrom(query ?? b.mode), forceFrom(call, b.force));
        return {
          status: 200,
          body: { mode: switched.mode, previous_mode: previous, leases_ended: switched.leasesEnded },
        };
      },
    },
    {
      method: 'GET',
      path: '/admin/redis/status',
      name: 'ListNodes',
      auth: 'admin',
      async handle() {
        const status = coordinator.status();
        return {
          status: 200,
          body: {
            nodes: status.nodes.map((node) => snakeKeys(nodeToProto(node))),
            quorum: status.quorum,
            quorum_available: status.quorumAvailable,
            mode: status.mode,
          },
        };
      },
    },
  ];
}

/** `force` from the query (`force=true|false|1|0`) or the body (a JSON boolean); absent: false. */
function forceFrom(call: LabRequest, value: unknown): boolean {
  const query = call.url.searchParams.get('force');
  const given =
    query === null
      ? value
      : query === 'true' || query === '1'
        ? true
        : query === 'false' || query === '0'
          ? false
          : query;
  if (given === undefined) return false;
  if (typeof given !== 'boolean') {
    throw new InvalidArgumentError(
      'force',
      'FORCE_INVALID',
      `force must be true or false, got ${JSON.stringify(given)}`,
    );
  }
  return given;
}

function modeFrom(value: unknown): Mode {
  if (value === 'redlock' || value === 'single') return value;
  throw new InvalidArgumentError(
    'mode',
    'MODE_INVALID',
    value === undefined
      ? 'say which mode: POST /admin/mode?mode=single or ?mode=redlock'
      : `mode must be "redlock" or "single", got ${JSON.stringify(value)}`,
  );
}

/** A lease with the proto's field names, plus the lab's `nodes_acquired` (how many nodes granted), `ttl_ms`, `mode`
 *  and `client_id`. */
function leaseJson(lease: Lease | Grant) {
  return {
    ...snakeKeys(leaseToProto(lease)),
    ttl_ms: lease.ttlMs,
    nodes_acquired: lease.nodes.length,
    mode: lease.mode,
    client_id: lease.clientId,
  };
}
