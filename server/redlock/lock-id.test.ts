import { describe, expect, it } from 'vitest';
import { LOCK_ID_PATTERN, newLockId } from './lock-id.js';

describe('newLockId (lock ids are unguessable)', () => {
  it('10^6 ids: all 32 lowercase hex characters, no duplicates, across many pool refills', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 1_000_000; i++) {
      const id = newLockId();
      if (!LOCK_ID_PATTERN.test(id)) throw new Error(`malformed id ${id}`);
      seen.add(id);
    }
    expect(seen.size).toBe(1_000_000);
  });

  it('consecutive ids are not sequential: no shared prefix beyond chance, no constant difference', () => {
    const ids = Array.from({ length: 1_000 }, newLockId);
    let sharedPrefixes = 0;
    for (let i = 1; i < ids.length; i++)
      if (ids[i]!.slice(0, 4) === ids[i - 1]!.slice(0, 4)) sharedPrefixes++;
    // 16 random bits agree with probability 1/65536: a counter or timestamp would share them almost always.
    expect(sharedPrefixes).toBeLessThan(5);
    const diffs = new Set(ids.slice(1).map((id, i) => BigInt(`0x${id}`) - BigInt(`0x${ids[i]}`)));
    expect(diffs.size).toBe(ids.length - 1);
  });
});
