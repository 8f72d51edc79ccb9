/** Keeps this process's event loop busy for `ms`: a GC pause, a burst of work, a starved CPU (fault F24). */
export function stall(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // busy
  }
}
