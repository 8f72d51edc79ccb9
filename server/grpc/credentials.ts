import { ServerCredentials } from '@grpc/grpc-js';
import type { TlsConfig } from '../config.js';

/** Plaintext without TLS config; TLS with it, and mTLS when client certificates are required. */
export function serverCredentials(tls: TlsConfig | undefined): ServerCredentials {
  if (!tls) return ServerCredentials.createInsecure();
  return ServerCredentials.createSsl(
    tls.ca ?? null,
    [{ cert_chain: tls.cert, private_key: tls.key }],
    tls.requireClientCert,
  );
}
