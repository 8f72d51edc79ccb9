/**
 * The statistics the bench reports. Pure functions of plain numbers, so bench/stats.test.ts checks them exactly.
 */

/** Median, smallest and largest of the values of one metric over the runs. */
export interface Spread {
  median: number;
  min: number;
  max: number;
}

/**
 * The `p`-th percentile (0–100) of `sorted` (ascending), by linear interpolation between the two nearest ranks
 * (numpy's default, and what ghz reports): p50 of [1, 2, 3, 4] is 2.5. NaN for no values.
 */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  const n = sorted.length;
  if (n === 0) return Number.NaN;
  if (!(p >= 0 && p <= 100)) throw new RangeError(`percentile must be in [0, 100], got ${p}`);
  const rank = (p / 100) * (n - 1);
  const below = Math.floor(rank);
  const above = Math.min(below + 1, n - 1);
  const low = sorted[below]!;
  return low + (sorted[above]! - low) * (rank - below);
}

/** Median, min and max of `values` (NaN values are ignored: a run where a metric did not apply). */
export function spread(values: readonly number[]): Spread {
  const sorted = values.filter((v) => !Number.isNaN(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return { median: Number.NaN, min: Number.NaN, max: Number.NaN };
  return { median: percentile(sorted, 50), min: sorted[0]!, max: sorted[sorted.length - 1]! };
}

/**
 * Jain's fairness index of per-client allocations: (Σx)² / (n·Σx²). 1 when every client got the same share,
 * 1/n when one client got everything. NaN for no clients; 1 when nobody got anything (nobody was favoured).
 */
export function jainIndex(allocations: readonly number[]): number {
  const n = allocations.length;
  if (n === 0) return Number.NaN;
  let sum = 0;
  let squares = 0;
  for (const x of allocations) {
    sum += x;
    squares += x * x;
  }
  return squares === 0 ? 1 : (sum * sum) / (n * squares);
}
