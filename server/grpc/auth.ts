import { createHash, timingSafeEqual } from 'node:crypto';
import { ServerError, type ServerMiddleware, Status } from 'nice-grpc';
import { AdminServiceDefinition } from '../../client/src/gen/redlease/v1/admin.js';
import { LockServiceDefinition } from '../../client/src/gen/redlease/v1/lock.js';

export interface AuthOptions {
  /** Bearer token for AdminService; undefined: admin calls only from loopback peers. */
  adminToken?: string;
  /** Bearer tokens accepted for LockService; empty: no client authentication. */
  clientTokens: readonly string[];
}

const ADMIN_PREFIX = `/${AdminServiceDefinition.fullName}/`;
const LOCK_PREFIX = `/${LockServiceDefinition.fullName}/`;

/**
 * Authentication by bearer token in the `authorization` metadata. AdminService: the admin token when one is
 * configured, otherwise loopback peers only. LockService: one of the client tokens when any are configured
 * (the admin token is accepted too); a client token on an admin call is PERMISSION_DENIED. Health and reflection stay open, as probes and tools expect. Tokens are
 * compared in constant time and never logged.
 */
export function authentication(options: AuthOptions): ServerMiddleware {
  const admin = options.adminToken === undefined ? undefined : digest(options.adminToken);
  const clientOnly = options.clientTokens.map(digest);
  const clients = admin ? [...clientOnly, admin] : clientOnly;
  return async function* authenticate(call, context) {
    const path = call.method.path;
    if (path.startsWith(ADMIN_PREFIX)) {
      if (admin === undefined) {
        if (!isLoopbackPeer(context.peer)) {
          throw new ServerError(
            Status.PERMISSION_DENIED,
            'admin calls are accepted only from loopback unless the server has an admin token configured',
          );
        }
      } else {
        const presented = bearer(context.metadata.get('authorization'));
        const hash = presented === undefined ? undefined : digest(presented);
        if (hash === undefined || !matches(hash, [admin])) {
          if (hash !== undefined && matches(hash, clientOnly)) {
            throw new ServerError(
              Status.PERMISSION_DENIED,
              'this is a client token: admin calls need the admin token',
            );
          }
          throw new ServerError(
            Status.UNAUTHENTICATED,
            'admin calls need the admin token: send metadata "authorization: Bearer <token>"',
          );
        }
      }
    } else if (path.startsWith(LOCK_PREFIX) && options.clientTokens.length > 0) {
      const presented = bearer(context.metadata.get('authorization'));
      if (presented === undefined || !matches(digest(presented), clients)) {
        throw new ServerError(
          Status.UNAUTHENTICATED,
          'this server needs a client token: send metadata "authorization: Bearer <token>"',
        );
      }
    }
    return yield* call.next(call.request, context);
  };
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

/** grpc-js peers look like `127.0.0.1:5000`, `[::1]:5000`, `ipv4:…`, `ipv6:[…]:…` or `unix:…`. */
export function isLoopbackPeer(peer: string): boolean {
  let host = peer.replace(/^(ipv4|ipv6):/, '');
  if (host.startsWith('unix:')) return true;
  const bracket = /^\[([^\]]+)\](?::\d+)?$/.exec(host);
  if (bracket) host = bracket[1]!;
  else if (/^[\d.]+:\d+$/.test(host)) host = host.slice(0, host.lastIndexOf(':'));
  host = host.replace(/^::ffff:/i, '');
  return host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}
