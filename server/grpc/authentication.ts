import type { ServerMiddleware } from 'nice-grpc';
import { AdminServiceDefinition } from '../../gen/redlease/v1/admin.js';
import { LockServiceDefinition } from '../../gen/redlease/v1/lock.js';
import { type Authenticator, peerAddress } from '../edge/auth.js';

const ADMIN_PREFIX = `/${AdminServiceDefinition.fullName}/`;
const LOCK_PREFIX = `/${LockServiceDefinition.fullName}/`;

/** The gRPC edge of the Authenticator: by method path and the `authorization` metadata. */
export function authentication(authenticator: Authenticator): ServerMiddleware {
  return async function* authenticate(call, context) {
    const path = call.method.path;
    const target = path.startsWith(ADMIN_PREFIX) ? 'admin' : path.startsWith(LOCK_PREFIX) ? 'lock' : 'open';
    authenticator.check(
      target,
      () => context.metadata.get('authorization'),
      () => peerAddress(context.peer),
    );
    return yield* call.next(call.request, context);
  };
}
