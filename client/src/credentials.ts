import { ChannelCredentials } from 'nice-grpc';

/** How a client connects: plaintext, TLS with the system's CAs, or TLS with a given CA and an optional mTLS pair. */
export type TlsOption =
  | boolean
  | { ca?: string | Buffer; cert?: string | Buffer; key?: string | Buffer; serverName?: string };

/** The grpc-js credentials for `tls` (LockClientOptions.tls); the serverName is a channel option, not here. */
export function credentials(tls: TlsOption | undefined): ChannelCredentials {
  if (!tls) return ChannelCredentials.createInsecure();
  if (tls === true) return ChannelCredentials.createSsl();
  const pem = (value: string | Buffer | undefined) => (value === undefined ? null : Buffer.from(value));
  return ChannelCredentials.createSsl(pem(tls.ca), pem(tls.key), pem(tls.cert));
}
