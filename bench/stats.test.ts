// The bench's statistics: percentiles by linear interpolation, median/min/max over runs, Jain's fairness index,
// and the latency sample buffer.
import { describe, expect, it } from 'vitest';
import { Samples } from './samples.js';
import { jainIndex, percentile, spread } from './stats.js';

describe('percentile', () => {
  it('interpolates between the two nearest ranks', () => {
    expect(percentile([1, 2, 3, 4], 50)).toBe(2.5);
    expect(percentile([1, 2, 3, 4, 5], 50)).toBe(3);
    expect(percentile([10, 20], 25)).toBe(12.5);
    // p99 of 1..100: rank 0.99 × 99 = 98.01 → 99 + 0.01 × (100 − 99)
    const hundred = Array.from({ length: 100 }, (_, i) => i + 1);
    expect(percentile(hundred, 99)).toBeCloseTo(99.01, 10);
  });

  it('gives the extremes at 0 and 100, the value itself for one sample, NaN for none', () => {
    expect(percentile([3, 5, 9], 0)).toBe(3);
    expect(percentile([3, 5, 9], 100)).toBe(9);
    expect(percentile([7], 99)).toBe(7);
    expect(percentile([], 50)).toBeNaN();
  });

  it('refuses a percentile outside [0, 100]', () => {
    expect(() => percentile([1], 101)).toThrow(RangeError);
    expect(() => percentile([1], -1)).toThrow(RangeError);
  });
});

describe('spread', () => {
  it('is the median, min and max, ignoring NaN (a run where the metric did not apply)', () => {
    expect(spread([5, 1, 3, Number.NaN, 4, 2])).toEqual({ median: 3, min: 1, max: 5 });
    expect(spread([2, 4])).toEqual({ median: 3, min: 2, max: 4 });
  });

  it('is all NaN without values', () => {
    expect(spread([])).toEqual({ median: Number.NaN, min: Number.NaN, max: Number.NaN });
  });
});

describe('jainIndex', () => {
  it('is 1 for equal shares and 1/n when one client gets everything', () => {
    expect(jainIndex([5, 5, 5, 5])).toBe(1);
    expect(jainIndex([12, 0, 0, 0])).toBe(0.25);
  });

  it('matches (Σx)² / (n·Σx²) in between', () => {
    // (1 + 2 + 3)² / (3 × (1 + 4 + 9)) = 36 / 42
    expect(jainIndex([1, 2, 3])).toBeCloseTo(36 / 42, 12);
    // 16 clients, one with twice the others' share: (17)² / (16 × (15 + 4)) = 289 / 304
    expect(jainIndex([...new Array(15).fill(1), 2])).toBeCloseTo(289 / 304, 12);
  });

  it('is 1 when nobody got anything, NaN for no clients', () => {
    expect(jainIndex([0, 0, 0])).toBe(1);
    expect(jainIndex([])).toBeNaN();
  });
});

describe('Samples', () => {
  it('grows past its initial capacity and answers percentiles over every sample', () => {
    const samples = new Samples();
    for (let i = 10_000; i >= 1; i--) samples.push(i);
    expect(samples.length).toBe(10_000);
    expect(samples.percentile(0)).toBe(1);
    expect(samples.max).toBe(10_000);
    expect(samples.percentile(50)).toBe(5_000.5);
    samples.push(0); // a push after a percentile re-sorts
    expect(samples.percentile(0)).toBe(0);
  });

  it('is NaN when empty', () => {
    expect(new Samples().percentile(50)).toBeNaN();
    expect(new Samples().max).toBeNaN();
  });
});
