import type { ChannelOptions } from 'nice-grpc';

export interface GrpcLimits {
  /** Largest request message accepted, bytes. */
  maxMessageBytes: number;
  /** HTTP/2 streams (calls) open at once per client connection. */
  maxConcurrentStreams: number;
}

/** grpc-js server options (names from @grpc/grpc-js channel-options.ts); each number says why. */
export function grpcServerOptions(limits: GrpcLimits): ChannelOptions {
  return {
    // Every request is a few hundred bytes at most (a 256-byte name, a lock id, a few numbers); 16 KiB leaves
    // room and stops a 1 MB message before it is parsed (RESOURCE_EXHAUSTED from the library).
    'grpc.max_receive_message_length': limits.maxMessageBytes,
    // Responses are small too, except reflection's file descriptors (tens of KiB with comments).
    'grpc.max_send_message_length': 4 * 1024 * 1024,
    // One SDK connection multiplexes its unary calls and its KeepAlive stream; enough for a busy worker pool,
    // bounded so one connection cannot open unlimited streams.
    'grpc.max_concurrent_streams': limits.maxConcurrentStreams,
    // Ping idle connections every 30 s and drop a peer that does not answer within 10 s, so the streams of a
    // vanished client (power loss, partition) end and stop being watched.
    'grpc.keepalive_time_ms': 30_000,
    'grpc.keepalive_timeout_ms': 10_000,
    // Clients may ping at most every 10 s (also without calls in flight); faster pingers get GOAWAY
    // too_many_pings (grpc doc/keepalive.md).
    'grpc.http2.min_ping_interval_without_data_ms': 10_000,
    'grpc.keepalive_permit_without_calls': 1,
  };
}
