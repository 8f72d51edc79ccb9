import type { SystemName } from './options.js';

/** A lock held by a Locker; `release()` resolves once the system confirmed the release. */
export interface Held {
  release(): Promise<void>;
}

/** One client of a lock system: its own connection(s) to the system. */
export interface Locker {
  /**
   * Takes `resource`, waiting up to `waitMs` while another client holds it (0: try once). Resolves null when it
   * is still held after that (a normal outcome, not an error); rejects on failures. `signal` abandons a wait.
   */
  acquire(resource: string, waitMs: number, signal: AbortSignal): Promise<Held | null>;
  close(): Promise<void>;
}

/** A system under test: redlease (raw gRPC or the SDK), node-redlock, etcd, or the grpc-js echo ceiling. */
export interface LockSystem {
  readonly name: SystemName;
  /** A new client with connections of its own (as a separate process would have). */
  connect(clientId: string): Promise<Locker>;
}
