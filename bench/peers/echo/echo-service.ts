import type { ServiceDefinition } from '@grpc/grpc-js';

/**
 * One unary method whose messages are raw bytes (no protobuf at all): the cheapest call grpc-js can make, so
 * calls/s through it are the ceiling for any grpc-js service on this machine.
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
};
