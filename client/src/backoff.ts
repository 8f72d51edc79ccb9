/**
 * Delay before retry number `attempt` (1-based): exponential from `initialMs`, capped at `maxMs`, with full
 * jitter (a random point in the upper half) so clients that failed together do not retry together.
 */
export function backoffMs(attempt: number, initialMs: number, maxMs: number): number {
  const ceiling = Math.min(maxMs, initialMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
}
