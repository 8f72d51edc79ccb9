import { createHash, timingSafeEqual } from 'node:crypto';
import { BlockList, isIP, isIPv4 } from 'node:net';

export interface AuthOptions {
  /** Bearer token for AdminService; undefined: admin calls only from `adminNetworks`. */
  adminToken?: string;
  /** Networks whose peers may make admin calls without the admin token. */
  adminNetworks: AdminNetworks;
  /** Bearer tokens accepted for LockService; empty: no client authentication. */
  clientTokens: readonly string[];
}

/** How messages name the server option behind `adminNetworks` (server/config.ts). */
const NETWORKS_OPTION = '--admin-networks (REDLEASE_ADMIN_NETWORKS)';

/** What a call reaches: admin operations, lock operations, or open endpoints (health, reflection, metrics). */
export type AuthTarget = 'admin' | 'lock' | 'open';

/** A call refused by authentication: UNAUTHENTICATED (no or a wrong token) or PERMISSION_DENIED. */
export class AuthError extends Error {
  constructor(
    readonly code: 'UNAUTHENTICATED' | 'PERMISSION_DENIED',
    /** Stable, machine-readable: TOKEN_REQUIRED, ADMIN_TOKEN_REQUIRED, CLIENT_TOKEN_ON_ADMIN, ADMIN_NETWORK_REFUSED. */
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
 * The access rules of both edges (gRPC metadata, HTTP headers), by peer address and bearer token. Admin: a peer
 * within the admin networks, or the admin token when one is configured; without a token, any other peer is
 * PERMISSION_DENIED. Lock operations: one of the client tokens when any are configured (the admin token is
 * accepted too); a client token on an admin call is PERMISSION_DENIED. Open endpoints stay open, as probes and
 * tools expect. Tokens are compared in constant time and never logged.
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
   * Throws AuthError unless a caller presenting `authorization` (the header's value) from `peer` (its IP address,
   * or undefined for a unix socket) may reach `target`. Both are asked only when the rule needs them (every call
   * passes here).
   */
  check(target: AuthTarget, authorization: () => string | undefined, peer: () => string | undefined): void {
    if (target === 'admin') {
      const from = peer();
      if (this.options.adminNetworks.allows(from)) return;
      if (this.admin === undefined) {
        throw new AuthError(
          'PERMISSION_DENIED',
          'ADMIN_NETWORK_REFUSED',
          `admin calls are not accepted from ${from ?? 'this peer'}: add its network to ${NETWORKS_OPTION}, or configure an admin token`,
        );
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
        `admin calls need the admin token: send the header "authorization: Bearer <token>" (or call from a network in ${NETWORKS_OPTION})`,
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

/** Loopback, the default admin networks: 127.0.0.0/8 and ::1 (and 127.x.x.x mapped into IPv6). */
export const LOOPBACK_NETWORKS: readonly string[] = ['127.0.0.0/8', '::1/128'];

/**
 * A CIDR allow-list (node:net's BlockList), for the peers that may make admin calls without a token. Addresses
 * are checked as Node reports them: IPv4 (`172.16.37.1`), IPv6 (`fd00::5`), or IPv4 mapped into IPv6
 * (`::ffff:172.16.37.1`, what a dual-stack listener reports for an IPv4 client), which an IPv4 network matches.
 */
export class AdminNetworks {
  private readonly list = new BlockList();

  /** `networks`: CIDRs as parseNetworks() returns them. */
  constructor(readonly networks: readonly string[]) {
    for (const network of networks) {
      const { address, prefix, family } = splitNetwork(network);
      this.list.addSubnet(address, prefix, family);
    }
  }

  /** Whether `address` (an IP address; undefined for a unix socket peer) lies in one of the networks. A unix
   *  socket peer is on this machine: it is admitted when loopback is. */
  allows(address: string | undefined): boolean {
    if (address === undefined) return this.list.check('127.0.0.1', 'ipv4');
    const host = address.replace(/%.*$/, ''); // an IPv6 zone (fe80::1%eth0) is not part of the address
    const family = isIP(host);
    if (family === 0) return false;
    return this.list.check(host, family === 4 ? 'ipv4' : 'ipv6');
  }
}

/**
 * Reads a comma-separated list of networks: `address/prefix` (`172.16.37.0/24`, `fd00::/8`) or a single address
 * (`10.0.0.5`: /32, `::1`: /128). Returns them written out as `address/prefix`; throws an Error saying which
 * entry is wrong and why (the caller names the option).
 */
export function parseNetworks(text: string): string[] {
  const entries = text.split(',').map((entry) => entry.trim());
  if (entries.every((entry) => entry === '')) return [];
  return entries.map((entry, i) => {
    if (entry === '') throw new Error(`entry ${i + 1} of ${JSON.stringify(text)} is empty (a stray comma?)`);
    const { address, prefix, family } = splitNetwork(entry);
    try {
      new BlockList().addSubnet(address, prefix, family);
    } catch {
      throw new Error(
        `${JSON.stringify(entry)} is not a network: write address/prefix, as 172.16.37.0/24 or fd00::/8`,
      );
    }
    return `${address}/${prefix}`;
  });
}

function splitNetwork(text: string): { address: string; prefix: number; family: 'ipv4' | 'ipv6' } {
  const slash = text.indexOf('/');
  const address = slash < 0 ? text : text.slice(0, slash);
  const family = isIPv4(address) ? 'ipv4' : 'ipv6';
  const bits = family === 'ipv4' ? 32 : 128;
  const prefixText = slash < 0 ? String(bits) : text.slice(slash + 1);
  const prefix = /^\d{1,3}$/.test(prefixText) ? Number(prefixText) : Number.NaN;
  if (isIP(address) === 0 || !(prefix >= 0 && prefix <= bits)) {
    throw new Error(
      `${JSON.stringify(text)} is not a network: write address/prefix, as 172.16.37.0/24 or fd00::/8`,
    );
  }
  return { address, prefix, family };
}

/**
 * The IP address of a grpc-js peer, or undefined for a unix socket. Peers look like `127.0.0.1:5000`, `::1:5000`
 * and `::ffff:127.0.0.1:5000` (what a dual-stack listener reports: an IPv6 address without brackets, then the
 * port), `[::1]:5000`, `ipv4:…`, `ipv6:[…]:…` or `unix:…`. Anything else comes back as it is, and matches no
 * network.
 */
export function peerAddress(peer: string): string | undefined {
  const host = peer.replace(/^(ipv4|ipv6):/, '');
  if (host.startsWith('unix:')) return undefined;
  const bracket = /^\[([^\]]+)\](?::\d+)?$/.exec(host);
  if (bracket) return bracket[1]!;
  if (/:\d+$/.test(host)) return host.slice(0, host.lastIndexOf(':')); // a peer always has a port
  return host;
}
