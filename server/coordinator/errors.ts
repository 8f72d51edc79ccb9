/**
 * Outcomes the coordinator adds to the engine's (held, no quorum, not holder, invalid argument): a server limit
 * was hit, or the server is shutting down. Like the engine's errors they carry a stable `reason` and never a
 * lock id; the gRPC and HTTP edges map them through their one status table.
 */

/** A server limit was hit (waiters per resource, KeepAlive streams, leases per stream…). Retry later. */
export class LimitError extends Error {
  readonly code = 'LIMIT' as const;
  constructor(
    /** Stable, machine-readable: which limit, e.g. WAITERS_PER_RESOURCE_LIMIT. */
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }

  override get name(): string {
    return 'LimitError';
  }
}

/**
 * The stable reason of an Extend, renewal or re-sent Acquire refused (a NotHolderError: FAILED_PRECONDITION)
 * because the lease reached its hold cap: it is not renewed again.
 */
export const HOLD_CAP_REACHED = 'HOLD_CAP_REACHED';

/** SetMode without force while leases are live: FAILED_PRECONDITION. Nothing changed. */
export class LiveLeasesError extends Error {
  readonly code = 'LIVE_LEASES' as const;
  readonly reason = 'LEASES_LIVE';
  constructor(
    /** Live leases this server knows of. */
    readonly count: number,
    from: string,
    to: string,
  ) {
    super(
      `${count} lease${count === 1 ? ' is' : 's are'} live; switching from ${from} to ${to} now would break exclusion. Wait for them to end, or switch with force to end them`,
    );
  }

  override get name(): string {
    return 'LiveLeasesError';
  }
}

/** The server is shutting down: waiting Acquires and KeepAlive streams end with this. Retry on another server. */
export class ShuttingDownError extends Error {
  readonly code = 'SHUTTING_DOWN' as const;
  readonly reason = 'SHUTTING_DOWN';
  constructor() {
    super('the server is shutting down; retry against another server or after it restarts');
  }

  override get name(): string {
    return 'ShuttingDownError';
  }
}
