/** S1, mutual exclusion: no two belief windows of one resource overlap. */
import { describeGrant, type Grant, grantEvidence, type Model } from './model.js';
import { Findings, minBig, msOfNs, round3 } from './support.js';
import type { CheckResult } from './types.js';

/** S1 looks at this many active windows per new one: enough to find the worst overlap, and keeps n × k. */
const S1_SCAN_LIMIT = 64;

class MinHeap<T> {
  readonly items: T[] = [];
  constructor(private readonly less: (a: T, b: T) => boolean) {}

  get size(): number {
    return this.items.length;
  }

  peek(): T | undefined {
    return this.items[0];
  }

  push(item: T): void {
    const a = this.items;
    a.push(item);
    let i = a.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.less(a[i]!, a[parent]!)) break;
      [a[i], a[parent]] = [a[parent]!, a[i]!];
      i = parent;
    }
  }

  pop(): T | undefined {
    const a = this.items;
    const top = a[0];
    const last = a.pop();
    if (a.length > 0 && last !== undefined) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && this.less(a[l]!, a[m]!)) m = l;
        if (r < a.length && this.less(a[r]!, a[m]!)) m = r;
        if (m === i) break;
        [a[i], a[m]] = [a[m]!, a[i]!];
        i = m;
      }
    }
    return top;
  }
}

/**
 * Per resource, windows by `ok`; a min-heap on E holds the windows still believed in. Everything left in the heap
 * after popping the ended ones overlaps the new window, so a different lock among them is a violation (no
 * epsilon: E_a == ok_b touches, it does not overlap). Gaps under eps between locks are near misses.
 */
export function checkS1(m: Model, eps: bigint): CheckResult {
  const f = new Findings('S1');
  let windows = 0;
  let nearMisses = 0;
  let minGap: bigint | undefined;
  for (const [resource, list] of m.grantsByResource) {
    const heap = new MinHeap<Grant>((a, b) => a.E < b.E);
    let lastEnded: Grant | undefined;
    for (const w of list) {
      if (w.E <= w.ok) continue; // empty window: a failed grant (S2's stats)
      windows++;
      while (heap.size > 0 && heap.peek()!.E <= w.ok) {
        const ended = heap.pop()!;
        if (!lastEnded || ended.E > lastEnded.E) lastEnded = ended;
      }
      let worst: Grant | undefined;
      let worstOverlap = 0n;
      const scan = Math.min(heap.items.length, S1_SCAN_LIMIT);
      for (let i = 0; i < scan; i++) {
        const a = heap.items[i]!;
        if (a.lock === w.lock) continue; // the same lease granted twice (an idempotent retry) is one holder
        const overlap = minBig(a.E, w.E) - w.ok;
        if (overlap > worstOverlap) {
          worst = a;
          worstOverlap = overlap;
        }
      }
      if (worst) {
        f.add(
          `${describeGrant(m, worst)} overlaps ${describeGrant(m, w)} by ${msOfNs(worstOverlap).toFixed(1)} ms`,
          [...grantEvidence(worst), ...grantEvidence(w)],
          { resource, overlap_ns: worstOverlap.toString(), a: worst.lock, b: w.lock },
        );
      } else if (lastEnded && lastEnded.lock !== w.lock) {
        const gap = w.ok - lastEnded.E;
        if (gap < eps) nearMisses++;
        if (minGap === undefined || gap < minGap) minGap = gap;
      }
      heap.push(w);
    }
  }
  const stats = {
    windows,
    overlaps: f.count,
    nearMisses,
    minGapMs: minGap === undefined ? undefined : round3(msOfNs(minGap)),
  };
  return f.result(
    f.count === 0,
    `${windows} windows, ${nearMisses} near misses under ${round3(msOfNs(eps))} ms`,
    stats,
  );
}
