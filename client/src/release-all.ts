/**
 * Releases `leases` with at most `concurrency` releases in flight, and stops sending more after the first one
 * that fails (a timeout, an unreachable server, no quorum): the rest would most likely fail the same way, each
 * after its own deadline, and their locks expire at their ttl anyway. A lease that was no longer held is not a
 * failure (its release resolves false). Resolves with how many releases were attempted.
 */
export async function releaseAll(
  leases: readonly { release(): Promise<unknown> }[],
  concurrency: number,
): Promise<number> {
  let next = 0;
  let failed = false;
  const worker = async (): Promise<void> => {
    while (!failed && next < leases.length) {
      const lease = leases[next++]!;
      try {
        await lease.release();
      } catch {
        failed = true;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, leases.length) }, worker));
  return next;
}
