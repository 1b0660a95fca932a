import { describe, expect, it } from 'vitest';
import { BatchShares, evenCounts, MIN_GAIN_OF_A_SECOND_CONTRIBUTOR, proportionalCounts, ranksWorthAShare, shareWeightedLoss } from './batch-shares';

describe('proportionalCounts', () => {
  it('splits in proportion to speed, in whole quanta summing to the batch, at least one quantum for each rank worth a share', () => {
    expect(proportionalCounts([1, 1, 1 / 3], 24)).toEqual([10, 10, 4]);
    expect(proportionalCounts([2, 1], 24, 2)).toEqual([16, 8]);
    // A slow rank worth a share still gets one quantum; the rest goes to the fast ones.
    expect(proportionalCounts([1000, 1000, 150], 64, 4)).toEqual([28, 28, 8]);
    for (const speeds of [[1, 2, 3, 4, 5], [0.7, 0.1, 0.2], [5, 5]]) {
      const counts = proportionalCounts(speeds, 60, 3);
      expect(counts.reduce((a, b) => a + b, 0)).toBe(60);
      for (const c of counts) expect(c % 3 === 0 && c >= 3).toBe(true);
    }
  });

  it('gives a zero share to a rank whose one quantum takes at least as long as the step without it', () => {
    // 4 samples at 1e-6/ms take 4e6 ms; the batch on the other two takes 0.032 ms.
    expect(proportionalCounts([1000, 1000, 1e-6], 64, 4)).toEqual([32, 32, 0]);
    // The mixed room measured by e2e/mixed-room.spec.ts: SwiftShader tabs at 12 and 10 samples/s, a CPU
    // tab at 2162: one sample on a GPU tab (83 ms) is slower than the whole batch on the CPU tab (30 ms).
    expect(proportionalCounts([12, 10, 2162], 64)).toEqual([0, 0, 64]);
    // The boundary: one quantum taking exactly the step without it is not worth it (no faster); a hair
    // faster is. Ranks 0, 1 at 1 sample/ms with 8 samples: 4 ms; rank 2's 1 sample at 0.25/ms: 4 ms.
    expect(ranksWorthAShare([1, 1, 0.25], 8)).toEqual([true, true, false]);
    expect(ranksWorthAShare([1, 1, 0.26], 8)).toEqual([true, true, true]);
    // The fastest always keeps a share, and dropping stops at the first rank worth one (fast to slow).
    expect(ranksWorthAShare([1e-9], 8)).toEqual([true]);
    expect(ranksWorthAShare([0.001, 5, 0.002, 4], 16)).toEqual([false, true, false, true]);
    // A second contributor must take at least MIN_GAIN_OF_A_SECOND_CONTRIBUTOR (1/5) of the passes off,
    // i.e. be at least 1/4 as fast as the fastest: exactly 1/4 is kept, a hair below is not.
    expect(MIN_GAIN_OF_A_SECOND_CONTRIBUTOR).toBe(0.2);
    expect(ranksWorthAShare([4, 1], 64)).toEqual([true, true]);
    expect(ranksWorthAShare([4, 0.99], 64)).toEqual([true, false]);
    // The mixed room at batch 4096 (docs/shares.md): SwiftShader tabs at 447 and 416 samples/s beside
    // a CPU tab at 19,445 took 91 and 85 samples before; now the CPU tab takes them all.
    expect(proportionalCounts([447, 19445, 416], 4096)).toEqual([0, 4096, 0]);
    // The rule is for the second rank only: a third slower one is kept by the quantum rule alone.
    expect(ranksWorthAShare([10, 10, 1], 64)).toEqual([true, true, true]);
    // More ranks worth a share than quanta: the fastest ones, ties to the lower rank.
    expect(proportionalCounts([1, 1, 1], 4, 2)).toEqual([2, 2, 0]);
  });

  it('is deterministic with ties (to the lower rank) and refuses what cannot be split', () => {
    expect(proportionalCounts([1, 1, 1], 32)).toEqual([11, 11, 10]);
    expect(() => proportionalCounts([1, 0], 8)).toThrow(/positive and finite/);
    expect(() => proportionalCounts([1, 1], 9, 2)).toThrow(/whole number of 2-sample quanta/);
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
    // weights: share * world / batch when every rank has samples, summing to the world
    expect([0, 1, 2, 3, 4].reduce((sum, r) => sum + shares.weightOf(r, 5), 0)).toBeCloseTo(5, 12);
    expect(shares.weightOf(0, 5)).toBeCloseTo(50 / 24, 12);
  });

  it('refuses counts that do not fit, and a step already cut', () => {
    const shares = new BatchShares(24, 3, 2);
    expect(shares.maxCount).toBe(24);
    expect(() => shares.set(2, [10, 10])).toThrow(/for 2 ranks, the room has 3/);
    expect(() => shares.set(2, [10, 10, 2, 2].slice(0, 3))).toThrow(/sum to 22, not the global batch 24/);
    expect(() => shares.set(2, [11, 11, 2])).toThrow(/not a whole multiple of 2/);
    expect(() => shares.set(2, [26, 0, -2])).toThrow(/share -2 is not a whole multiple/);
    // A zero share is a share: an empty range and a gradient weight of exactly 0.
    shares.set(3, [0, 24, 0]);
    expect(shares.rangeOf(0, 3)).toEqual({ start: 0, end: 0 });
    expect(shares.rangeOf(2, 3)).toEqual({ start: 24, end: 24 });
    expect(shares.weightOf(0, 3)).toBe(0);
    // The ranks with samples average among themselves: their weights sum to their number (here one).
    expect(shares.weightOf(1, 3)).toBe(1);
    shares.set(4, [12, 8, 4]);
    expect(() => shares.set(4, [8, 8, 8])).toThrow(/step 4 already has its own/);
    shares.set(6, [16, 0, 8]);
    expect([0, 1, 2].map((r) => shares.weightOf(r, 6))).toEqual([(16 * 2) / 24, 0, (8 * 2) / 24]);
  });
});

describe('shareWeightedLoss', () => {
  it("is the global batch's mean: each rank's loss weighted by its count (exact on dyadic values)", () => {
    // 8 samples at 1.0 and 24 at 0.5: the mean over 32 samples is 0.625; an unweighted mean would be 0.75.
    expect(shareWeightedLoss([1, 0.5], [8, 24])).toEqual({ loss: 0.625, ranks: 2 });
    expect(shareWeightedLoss([0.25, 0.75, 1.5], [4, 4, 4])).toEqual({ loss: 2.5 / 3, ranks: 3 });
  });

  it('a zero-share rank (NaN loss) and a non-finite loss are left out, not poisoning the mean', () => {
    expect(shareWeightedLoss([Number.NaN, 0.5, Number.NaN], [0, 128, 0])).toEqual({ loss: 0.5, ranks: 1 });
    expect(shareWeightedLoss([1, Number.POSITIVE_INFINITY, 2], [8, 8, 24])).toEqual({ loss: (8 + 48) / 32, ranks: 2 });
    expect(shareWeightedLoss([Number.NaN, Number.NaN], [0, 0])).toBeNull();
    expect(() => shareWeightedLoss([1], [1, 2])).toThrow(/1 losses for 2 shares/);
  });
});

describe('BatchShares history', () => {
  it('a split set after every step: the step just trained still reads its own counts (not the even split)', () => {
    const shares = new BatchShares(12, 2);
    for (let step = 2; step < 40; step++) {
      shares.set(step, step % 2 ? [4, 8] : [12, 0]);
      // Set after step - 2 was trained; that step's split is still known.
      expect(shares.countsAt(step - 2)).toEqual(step - 2 < 2 ? [6, 6] : (step - 2) % 2 ? [4, 8] : [12, 0]);
    }
  });
});
