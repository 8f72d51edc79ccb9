// The data ghz's call templates see for one request (runner/calldata.go's newCallData), from the method's
// descriptor, the worker and the request number.
import { randomUUID } from 'node:crypto';
import type { DescMethod } from '@bufbuild/protobuf';
import { formatRfc3339 } from './rfc3339.js';
import type { CallData } from './template.js';

/** Fresh CallData (timestamps and UUID of now) for request `requestNumber` made by `workerId`. */
export function newCallData(method: DescMethod, workerId: string, requestNumber: number): CallData {
  const now = new Date();
  const ms = now.getTime();
  return {
    WorkerID: workerId,
    RequestNumber: requestNumber,
    FullyQualifiedName: `${method.parent.typeName}.${method.name}`,
    MethodName: method.name,
    ServiceName: method.parent.name,
    InputName: method.input.name,
    OutputName: method.output.name,
    IsClientStreaming: method.methodKind === 'client_streaming' || method.methodKind === 'bidi_streaming',
    IsServerStreaming: method.methodKind === 'server_streaming' || method.methodKind === 'bidi_streaming',
    Timestamp: formatRfc3339(now),
    TimestampUnix: Math.floor(ms / 1000),
    TimestampUnixMilli: ms,
    // Date has millisecond resolution; the sub-millisecond digits come from the monotonic clock.
    TimestampUnixNano: BigInt(ms) * 1_000_000n + (process.hrtime.bigint() % 1_000_000n),
    UUID: randomUUID(),
  };
}
