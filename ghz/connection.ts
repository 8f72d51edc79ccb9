// How the built-in runner connects, from ghz's connection settings: plaintext with --insecure, else TLS (system
// roots, or --cacert; --cert/--key for mTLS; --cname to check another name; --skipTLS to skip verification),
// plus :authority, keepalive, gzip and unlimited message sizes (ghz raises both limits to math.MaxInt32).
import { readFileSync } from 'node:fs';
import { type ChannelCredentials, type ChannelOptions, credentials } from '@grpc/grpc-js';
import { ConfigError } from './config.js';
import type { RunOptions } from './options.js';

export interface ConnectionSettings {
  credentials: ChannelCredentials;
  options: ChannelOptions;
}

/** Credentials and channel options for `options`; throws ConfigError for unreadable certificate files. */
export function connectionSettings(options: RunOptions): ConnectionSettings {
  const channelOptions: ChannelOptions = {
    'grpc.max_receive_message_length': -1,
    'grpc.max_send_message_length': -1,
    ...(options.authority && { 'grpc.default_authority': options.authority }),
    ...(options.cname && { 'grpc.ssl_target_name_override': options.cname }),
    ...(options.keepaliveNs > 0 && {
      'grpc.keepalive_time_ms': Math.ceil(options.keepaliveNs / 1e6),
      'grpc.keepalive_timeout_ms': Math.ceil(options.keepaliveNs / 1e6),
    }),
    // gzip (grpc-js's compression algorithm 2).
    ...(options.enableCompression && { 'grpc.default_compression_algorithm': 2 }),
  };
  if (options.insecure) return { credentials: credentials.createInsecure(), options: channelOptions };
  const read = (path: string | undefined, what: string) => {
    if (path === undefined) return null;
    try {
      return readFileSync(path);
    } catch (error) {
      throw new ConfigError(`could not read ${what}: ${(error as Error).message}`);
    }
  };
  const rootCerts = options.skipTLS ? null : read(options.cacert, 'ca certificate');
  const privateKey = read(options.key, 'client key pair');
  const certChain = read(options.cert, 'client key pair');
  if ((privateKey === null) !== (certChain === null)) {
    throw new ConfigError('could not load client key pair: --cert and --key go together');
  }
  return {
    credentials: credentials.createSsl(rootCerts, privateKey, certChain, {
      ...(options.skipTLS && { rejectUnauthorized: false }),
    }),
    options: channelOptions,
  };
}
