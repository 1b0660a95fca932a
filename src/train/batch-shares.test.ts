import { describe, expect, it } from 'vitest';
import { BatchShares, evenCounts, proportionalCounts } from './batch-shares';

describe('proportionalCounts', () => {
  it('splits in proportion to speed, in whole quanta summing to the batch, at least one quantum each', () => {
    expect(proportionalCounts([1, 1, 1 / 3], 24)).toEqual([10, 10, 4]);
    expect(proportionalCounts([2, 1], 24, 2)).toEqual([16, 8]);
    // A very slow rank still gets one quantum; the rest goes to the fast ones.
    expect(proportionalCounts([1000, 1000, 1e-6], 64, 4)).toEqual([32, 28, 4]);
    for (const speeds of [[1, 2, 3, 4, 5], [0.7, 0.1, 0.2], [5, 5]]) {
      const counts = proportionalCounts(speeds, 60, 3);
      expect(counts.reduce((a, b) => a + b, 0)).toBe(60);
      for (const c of counts) expect(c % 3 === 0 && c >= 3).toBe(true);
    }
  });

  it('is deterministic with ties (to the lower rank) and refuses what cannot be split', () => {
    expect(proportionalCounts([1, 1, 1], 32)).toEqual([11, 11, 10]);
    expect(() => proportionalCounts([1, 0], 8)).toThrow(/positive and finite/);
    expect(() => proportionalCounts([1, 1], 9, 2)).toThrow(/whole number of 2-sample quanta/);
    expect(() => proportionalCounts([1, 1, 1], 4, 2)).toThrow(/cannot give 3 ranks 2 samples each/);
  });
});

describe('BatchShares', () => {
  it('starts even, and ranges are contiguous, disjoint and cover the batch at every step', () => {
    const shares = new BatchShares(24, 5);
    expect(shares.countsAt(0)).toEqual(evenCounts(24, 5));
    shares.set(3, [10, 2, 4, 4, 4]);
    for (const step of [0, 2, 3, 9]) {
      const ranges = [0, 1, 2, 3, 4].map((rank) => shares.rangeOf(rank, step));
      expect(ranges[0].start).toBe(0);
      expect(ranges[4].end).toBe(24);
      for (let r = 1; r < 5; r++) expect(ranges[r].start).toBe(ranges[r - 1].end);
    }
    expect(shares.rangeOf(0, 2)).toEqual({ start: 0, end: 4 });
    expect(shares.rangeOf(0, 3)).toEqual({ start: 0, end: 10 });
    // weights: share * world / batch, summing to the world
    expect([0, 1, 2, 3, 4].reduce((sum, r) => sum + shares.weightOf(r, 5), 0)).toBeCloseTo(5, 12);
    expect(shares.weightOf(0, 5)).toBeCloseTo(50 / 24, 12);
  });

  it('refuses counts that do not fit, and a step already cut', () => {
    const shares = new BatchShares(24, 3, 2);
    expect(shares.maxCount).toBe(20);
    expect(() => shares.set(2, [10, 10])).toThrow(/for 2 ranks, the room has 3/);
    expect(() => shares.set(2, [10, 10, 2, 2].slice(0, 3))).toThrow(/sum to 22, not the global batch 24/);
    expect(() => shares.set(2, [11, 11, 2])).toThrow(/not a positive multiple of 2/);
    shares.set(4, [12, 8, 4]);
    expect(() => shares.set(4, [8, 8, 8])).toThrow(/step 4 already has its own/);
  });
});
