import { describe, expect, it } from 'vitest';
import { releaseAll } from './release-all.js';

/** A lease whose release() resolves (or rejects) when the test says so, recording how many are in flight. */
function leases(count: number, failAt = -1) {
  let inFlight = 0;
  let maxInFlight = 0;
  const released: number[] = [];
  const items = Array.from({ length: count }, (_, i) => ({
    async release(): Promise<boolean> {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      await new Promise((resolve) => setImmediate(resolve));
      inFlight--;
      if (i === failAt) throw new Error('DEADLINE_EXCEEDED');
      released.push(i);
      return true;
    },
  }));
  return { items, released, maxInFlight: () => maxInFlight };
}

describe('releaseAll (LockClient.close)', () => {
  it('releases every lease, never more than `concurrency` at once', async () => {
    const l = leases(50);
    expect(await releaseAll(l.items, 8)).toBe(50);
    expect(l.released.sort((a, b) => a - b)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(l.maxInFlight()).toBe(8);
  });

  it('with fewer leases than the bound, sends them all at once', async () => {
    const l = leases(3);
    expect(await releaseAll(l.items, 8)).toBe(3);
    expect(l.maxInFlight()).toBe(3);
    expect(await releaseAll([], 8)).toBe(0);
  });

  it('stops sending after the first failure: the releases already in flight finish, no new one starts', async () => {
    const l = leases(50, 2);
    const attempted = await releaseAll(l.items, 8);
    // #0–#7 go out together and settle in order: #0 and #1 succeed first and their workers take #8 and #9; then
    // #2 fails, and no worker takes another lease.
    expect(attempted).toBe(10);
    expect(l.released.sort((a, b) => a - b)).toEqual([0, 1, 3, 4, 5, 6, 7, 8, 9]);
  });
});
