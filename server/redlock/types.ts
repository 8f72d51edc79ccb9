/** SINGLE uses node 1 alone: the lab's unsafe comparison. REDLOCK needs a majority of all nodes. */
export type Mode = 'redlock' | 'single';

/** A granted lock as the engine reports it. */
export interface Lease {
  resource: string;
  /** The secret ownership value: whoever has it can release or extend. Never log it. */
  lockId: string;
  /** Strictly greater than every token issued earlier for this resource; below 2^53. */
  fencingToken: number;
  clientId: string;
  ttlMs: number;
  /** ttl − elapsed − drift, measured from the start of the attempt that succeeded. Always > 0. */
  validityMs: number;
  /** Wall-clock estimate of the end of validity (unix ms), for display. Decisions use `deadline`. */
  validUntilMs: number;
  /** End of validity on this process's monotonic clock (`performance.now()` ms). */
  deadline: number;
  /** When the attempt that granted (or extended) it began, on the same clock: validity counts from here. */
  startedAt: number;
  /** Nodes that hold the lock with a fence counter at the token (the granting quorum). */
  nodes: string[];
  /** Votes needed. */
  quorum: number;
  /** Attempts made, 1 when the first one succeeded. */
  attempts: number;
  mode: Mode;
}

export interface ReleaseResult {
  released: boolean;
  /** Nodes where the lock was deleted. */
  nodes: string[];
  /** The released lease's token and client id, as the deleting nodes recorded them. */
  fencingToken: number;
  clientId: string;
}

export interface NodeLockState {
  node: string;
  reachable: boolean;
  /** Some lock id holds the lock key on this node. */
  held: boolean;
  /** Remaining expiry on this node in ms; -1 for a key without expiry (foreign client); 0 when not held. */
  ttlMs: number;
}

export interface LockState {
  resource: string;
  /** One lock id holds it on a quorum of voting nodes. */
  locked: boolean;
  holderClientId: string;
  fencingToken: number;
  /** How long the holder keeps a quorum if it does not extend (ms); 0 when not locked. */
  validityMs: number;
  nodes: NodeLockState[];
}

export interface NodeStatus {
  name: string;
  address: string;
  /** Connected, identity checked, and answering health checks. */
  up: boolean;
  /** Counted toward quorums now: up, not quarantined, not refused. */
  voting: boolean;
  latencyMs: number;
  runId: string;
  quarantined: boolean;
  quarantineRemainingMs: number;
  /** Why the node does not vote (quarantine or refusal), '' when it does. */
  quarantineReason: string;
  /** Last error seen on this node, '' when the last check passed. */
  error: string;
  /** Restarts (run_id changes) observed since the engine started. */
  restarts: number;
  maxmemoryPolicy: string;
  aofEnabled: boolean;
}

export interface ClusterStatus {
  nodes: NodeStatus[];
  mode: Mode;
  quorum: number;
  quorumAvailable: boolean;
}
