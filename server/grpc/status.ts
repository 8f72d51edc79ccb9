import { isAbortError } from 'abort-controller-x';
import { ServerError, type ServerMiddleware, Status } from 'nice-grpc';
import type { Logger } from 'pino';
import { errorStatus, REASON_TRAILER } from '../edge/status.js';

/**
 * Every service method's errors pass here: domain errors become their status (edge/status.ts has the one table)
 * with the reason in a trailer; an abort (cancelled call, passed deadline) and ServerErrors pass through; anything
 * else is a bug, logged once with its stack and sent as INTERNAL without internals.
 */
export function errorMapping(log: Logger): ServerMiddleware {
  return async function* mapErrors(call, context) {
    try {
      return yield* call.next(call.request, context);
    } catch (error) {
      if (error instanceof ServerError || (isAbortError(error) && context.signal.aborted)) throw error;
      const mapped = errorStatus(error);
      if (mapped) {
        context.trailer.set(REASON_TRAILER, mapped.reason);
        throw new ServerError(mapped.status, mapped.message);
      }
      log.error({ err: error, method: call.method.path }, 'internal error');
      throw new ServerError(Status.INTERNAL, 'internal error; the server logged the details');
    }
  };
}
