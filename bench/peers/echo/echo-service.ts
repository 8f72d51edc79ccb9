import type { ServiceDefinition } from '@grpc/grpc-js';

/**
 * Raw bytes both ways (no protobuf at all). `echo`: one unary method, the cheapest call grpc-js can make, so
 * calls/s through it are the ceiling for any grpc-js service made of unary calls on this machine. `stream`: one
 * bidirectional stream on which every message is answered by the same bytes, in order: the ceiling for requests
 * sent as messages on a stream that stays open (as KeepAlive renewals are), which skip the per-call costs
 * (a new HTTP/2 stream, headers, trailers, grpc-js's call stack) that dominate a unary call.
 */
export const ECHO_SERVICE: ServiceDefinition = {
  echo: {
    path: '/bench.Echo/Echo',
    requestStream: false,
    responseStream: false,
    requestSerialize: (value: Buffer) => value,
    requestDeserialize: (bytes: Buffer) => bytes,
    responseSerialize: (value: Buffer) => value,
    responseDeserialize: (bytes: Buffer) => bytes,
  },
  stream: {
    path: '/bench.Echo/Stream',
    requestStream: true,
    responseStream: true,
    requestSerialize: (value: Buffer) => value,
    requestDeserialize: (bytes: Buffer) => bytes,
    responseSerialize: (value: Buffer) => value,
    responseDeserialize: (bytes: Buffer) => bytes,
  },
};
