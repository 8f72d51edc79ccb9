/** A node command that got no reply within the node timeout (the wording ioredis uses for its own timeouts). */
export class NodeTimeoutError extends Error {
  constructor() {
    super('Command timed out');
  }

  override get name(): string {
    return 'NodeTimeoutError';
  }
}

/** True for a node command's timeout (withinNodeTimeout's: the engine sets no other). */
export function isNodeTimeout(error: unknown): boolean {
  return error instanceof NodeTimeoutError;
}

/**
 * Rejects with NodeTimeoutError when `reply` has not settled `ms` after the call — counted in time this process
 * could have read it (chaos fault F24). A timer that fires late because the event loop was busy (a GC pause, a
 * burst of work, a starved CPU) says nothing about the node: the wait is extended once, by a full `ms` from then.
 * And the verdict waits for the loop to read its sockets once more (setImmediate runs after the poll phase), so
 * a reply that sat in the socket while the timer fired still counts. A node that really is slow or gone is
 * still found out: within `ms`, or within `2 × ms` plus the stall when this process stalled.
 */
export function withinNodeTimeout<T>(reply: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    const due = performance.now() + ms;
    let extended = false;
    const expire = (): void => {
      if (!extended && performance.now() - due > ms / 2) {
        extended = true;
        timer = setTimeout(expire, ms);
        return;
      }
      setImmediate(() => {
        if (settled) return;
        settled = true;
        reject(new NodeTimeoutError());
      });
    };
    let timer = setTimeout(expire, ms);
    const settle =
      <A>(then: (arg: A) => void) =>
      (arg: A): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        then(arg);
      };
    reply.then(settle(resolve), settle(reject));
  });
}
