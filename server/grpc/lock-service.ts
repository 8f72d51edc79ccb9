import type { CallContext } from 'nice-grpc';
import type { Logger } from 'pino';
import type {
  KeepAliveRequest,
  KeepAliveResponse,
  LockServiceImplementation,
} from '../../gen/redlease/v1/lock.js';
import { type Coordinator, LimitError } from '../coordinator/index.js';
import { answerToProto, describeToProto, leaseToProto } from '../edge/convert.js';
import { AsyncChannel } from './async-channel.js';
import { optional, ttlFromProto } from './convert.js';
import { type SessionOperations, session } from './session.js';

/** Acquire, Release and Extend, as unary calls and as Session operations alike. */
function operations(coordinator: Coordinator): SessionOperations {
  return {
    async acquire(request, signal) {
      const lease = await coordinator.acquire(
        {
          resource: request.resource,
          ttlMs: ttlFromProto(request.ttlMs),
          clientId: request.clientId,
          waitTimeoutMs: request.waitTimeoutMs,
          lockId: optional(request.lockId),
          maxHoldMs: request.maxHoldMs,
        },
        signal,
      );
      return { lease: leaseToProto(lease) };
    },

    async release(request) {
      const result = await coordinator.release(request.resource, request.lockId);
      return { released: result.released, nodes: result.nodes };
    },

    async extend(request) {
      const lease = await coordinator.extend(request.resource, request.lockId, ttlFromProto(request.ttlMs));
      return { lease: leaseToProto(lease) };
    },
  };
}

/**
 * LockService: decode, call the coordinator, encode. Errors of unary calls are mapped by the errorMapping
 * middleware; a Session maps its operations' errors itself and logs unexpected ones to `log`.
 */
export function lockService(
  coordinator: Coordinator,
  log: Logger,
  /** Tracing is on: each Session operation gets a span of its own. */
  traced = false,
): LockServiceImplementation {
  const ops = operations(coordinator);
  return {
    acquire: (request, context) => ops.acquire(request, context.signal),
    release: (request) => ops.release(request),
    extend: (request) => ops.extend(request),

    async describe(request) {
      return describeToProto(await coordinator.describe(request.resource));
    },

    keepAlive: (requests, context) => keepAlive(coordinator, requests, context),
    session: (requests, context) => session(ops, coordinator, requests, context, log, traced),
  };
}

/**
 * Reads requests into the coordinator's KeepAliveStream while its answers and unasked LOST notices flow out through one
 * channel. The stream ends when the client half-closes and every answer is out, or with a status for a
 * stream-wide problem; either way the coordinator stops watching its leases without releasing them.
 */
async function* keepAlive(
  coordinator: Coordinator,
  requests: AsyncIterable<KeepAliveRequest>,
  context: CallContext,
): AsyncGenerator<KeepAliveResponse> {
  const channel = new AsyncChannel<KeepAliveResponse>();
  const stream = coordinator.openKeepAlive({
    send: (answer) => channel.push(answerToProto(answer)),
    fail: (error) => channel.fail(error),
    end: () => channel.end(),
  });
  const onAbort = (): void => channel.fail(context.signal.reason);
  context.signal.addEventListener('abort', onAbort, { once: true });
  void (async () => {
    // Answers the client has not read yet are bounded like requests in flight: a client that keeps sending
    // but never reads would otherwise grow this queue without end.
    const maxBacklog = 4 * coordinator.limits.maxLeasesPerStream;
    for await (const request of requests) {
      if (channel.size > maxBacklog) {
        stream.fail(
          new LimitError(
            'KEEPALIVE_FLOOD',
            `${channel.size} answers on this KeepAlive stream are unread (limit ${maxBacklog}); read answers before sending more requests`,
          ),
        );
        return;
      }
      stream.submit({
        resource: request.resource,
        lockId: request.lockId,
        ttlMs: ttlFromProto(request.ttlMs),
        release: request.release,
      });
    }
    await stream.drained();
    channel.end();
  })().catch((error: unknown) => channel.fail(error instanceof Error ? error : new Error(String(error))));
  try {
    yield* channel;
  } finally {
    context.signal.removeEventListener('abort', onAbort);
    stream.close();
  }
}
