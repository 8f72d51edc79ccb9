import { createHash, timingSafeEqual } from 'node:crypto';

export interface AuthOptions {
  /** Bearer token for AdminService; undefined: admin calls only from loopback peers. */
  adminToken?: string;
  /** Bearer tokens accepted for LockService; empty: no client authentication. */
  clientTokens: readonly string[];
}

/** What a call reaches: admin operations, lock operations, or open endpoints (health, reflection, metrics). */
export type AuthTarget = 'admin' | 'lock' | 'open';

/** A call refused by authentication: UNAUTHENTICATED (no or a wrong token) or PERMISSION_DENIED. */
export class AuthError extends Error {
  constructor(
    readonly code: 'UNAUTHENTICATED' | 'PERMISSION_DENIED',
    /** Stable, machine-readable: TOKEN_REQUIRED, ADMIN_TOKEN_REQUIRED, CLIENT_TOKEN_ON_ADMIN, ADMIN_LOOPBACK_ONLY. */
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }

  override get name(): string {
    return 'AuthError';
  }
}

/**
 * The access rules of both edges (gRPC metadata, HTTP headers), by bearer token. Admin: the admin token when one
 * is configured, otherwise loopback peers only. Lock operations: one of the client tokens when any are configured
 * (the admin token is accepted too); a client token on an admin call is PERMISSION_DENIED. Open endpoints stay
 * open, as probes and tools expect. Tokens are compared in constant time and never logged.
 */
export class Authenticator {
  private readonly admin: Buffer | undefined;
  private readonly clientOnly: Buffer[];
  private readonly clients: Buffer[];

  constructor(private readonly options: AuthOptions) {
    this.admin = options.adminToken === undefined ? undefined : digest(options.adminToken);
    this.clientOnly = options.clientTokens.map(digest);
    this.clients = this.admin ? [...this.clientOnly, this.admin] : this.clientOnly;
  }

  /**
   * Throws AuthError unless a caller presenting `authorization` (the header's value) may reach `target`. Both are
   * asked only when the rule needs them (every call passes here): `loopbackPeer` for admin calls without an admin
   * token, `authorization` when a token is required.
   */
  check(target: AuthTarget, authorization: () => string | undefined, loopbackPeer: () => boolean): void {
    if (target === 'admin') {
      if (this.admin === undefined) {
        if (!loopbackPeer()) {
          throw new AuthError(
            'PERMISSION_DENIED',
            'ADMIN_LOOPBACK_ONLY',
            'admin calls are accepted only from loopback unless the server has an admin token configured',
          );
        }
        return;
      }
      const presented = bearer(authorization());
      const hash = presented === undefined ? undefined : digest(presented);
      if (hash !== undefined && matches(hash, [this.admin])) return;
      if (hash !== undefined && matches(hash, this.clientOnly)) {
        throw new AuthError(
          'PERMISSION_DENIED',
          'CLIENT_TOKEN_ON_ADMIN',
          'this is a client token: admin calls need the admin token',
        );
      }
      throw new AuthError(
        'UNAUTHENTICATED',
        'ADMIN_TOKEN_REQUIRED',
        'admin calls need the admin token: send the header "authorization: Bearer <token>"',
      );
    }
    if (target === 'lock' && this.options.clientTokens.length > 0) {
      const presented = bearer(authorization());
      if (presented === undefined || !matches(digest(presented), this.clients)) {
        throw new AuthError(
          'UNAUTHENTICATED',
          'TOKEN_REQUIRED',
          'this server needs a client token: send the header "authorization: Bearer <token>"',
        );
      }
    }
  }
}

function bearer(header: string | undefined): string | undefined {
  const match = header === undefined ? null : /^Bearer (.+)$/i.exec(header.trim());
  return match?.[1];
}

/** Equal-length digests, so the comparison time does not depend on the token's length or content. */
function digest(token: string): Buffer {
  return createHash('sha256').update(token).digest();
}

function matches(presented: Buffer, accepted: readonly Buffer[]): boolean {
  let ok = false;
  for (const a of accepted) ok = timingSafeEqual(presented, a) || ok;
  return ok;
}

/**
 * grpc-js peers look like `127.0.0.1:5000`, `::1:5000` and `::ffff:127.0.0.1:5000` (what a dual-stack listener
 * reports: an IPv6 address without brackets, then the port), `[::1]:5000`, `ipv4:…`, `ipv6:[…]:…` or `unix:…`.
 */
export function isLoopbackPeer(peer: string): boolean {
  let host = peer.replace(/^(ipv4|ipv6):/, '');
  if (host.startsWith('unix:')) return true;
  const bracket = /^\[([^\]]+)\](?::\d+)?$/.exec(host);
  if (bracket) host = bracket[1]!;
  else if (/:\d+$/.test(host)) host = host.slice(0, host.lastIndexOf(':')); // a peer always has a port
  return isLoopbackAddress(host);
}

/**
 * An IP address without a port, as Node's `socket.remoteAddress` gives it: `127.x.x.x`, `::1`, or an IPv4
 * loopback address mapped into IPv6 (`::ffff:127.0.0.1`, what a dual-stack listener sees for an IPv4 client).
 */
export function isLoopbackAddress(address: string): boolean {
  const host = address.replace(/^::ffff:/i, '');
  return host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}
