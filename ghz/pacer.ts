// ghz's constant load schedule (load.ConstantPacer): with --rps, requests are spread evenly over each second of
// the run, over all workers together (the k-th request is released at k/rps s, sooner when the run is behind);
// and the run ends after `max` requests (-n). Times are nanoseconds since the run began.

export class ConstantPacer {
  /** `rps` 0 = no rate limit; `max` 0 = no limit on the number of requests. */
  constructor(
    private readonly rps: number,
    private readonly max: number,
  ) {}

  /** How long to wait before request number `hits` (0-based) may start, or whether the run is over. */
  pace(elapsedNs: number, hits: number): { waitNs: number; stop: boolean } {
    if (this.max > 0 && hits >= this.max) return { waitNs: 0, stop: true };
    if (this.rps === 0) return { waitNs: 0, stop: false };
    const expectedHits = this.rps * Math.trunc(elapsedNs / 1e9);
    if (hits < expectedHits) return { waitNs: 0, stop: false }; // running behind: go now
    const intervalNs = Math.trunc(1e9 / this.rps);
    return { waitNs: (hits + 1) * intervalNs - elapsedNs, stop: false };
  }
}
