import { isAbortError } from 'abort-controller-x';
import { ServerError, type ServerMiddleware, Status } from 'nice-grpc';
import type { Metrics } from '../metrics.js';

/**
 * Outermost middleware: times every call into `redlease_rpc_duration_seconds{transport="grpc"}` by method name
 * (the last path segment, e.g. Acquire) and final status code name. Runs outside the error mapping, so it sees
 * the status the caller gets. A KeepAlive stream's duration is its lifetime.
 */
export function callMetrics(metrics: Metrics): ServerMiddleware {
  return async function* timeCall(call, context) {
    const started = performance.now();
    const method = call.method.path.slice(call.method.path.lastIndexOf('/') + 1);
    let code = Status.OK;
    try {
      return yield* call.next(call.request, context);
    } catch (error) {
      code =
        error instanceof ServerError
          ? error.code
          : isAbortError(error) && context.signal.aborted
            ? Status.CANCELLED
            : Status.UNKNOWN;
      throw error;
    } finally {
      metrics.rpc('grpc', method, Status[code], (performance.now() - started) / 1000);
    }
  };
}
