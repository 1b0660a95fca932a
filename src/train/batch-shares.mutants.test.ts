// Checks of batch-shares.ts that mutation testing (npm run mutate) showed missing: the order in which the
// largest-remainder split hands out its spare quanta, the edges of what a split may hold, and a table
// that was set more than twice. Each would otherwise let a wrong split through unnoticed while the room
// still trains (a wrong split is still a split).
import { describe, expect, it } from 'vitest';
import { BatchShares, proportionalCounts } from './batch-shares';

describe('proportionalCounts: the spare quanta', () => {
  it('go to the largest fractional remainder, not the largest ideal share or the first rank', () => {
    // 10 samples, one each first, 7 spare: ideal [4.2, 0.7, 2.1] -> floors [4, 0, 2], one left over,
    // which rank 1 (remainder 0.7) gets; by ideal size or by rank it would go to rank 0.
    expect(proportionalCounts([6, 1, 3], 10)).toEqual([5, 2, 3]);
  });

  it('with equal remainders and fewer spare quanta than tied ranks, go to the lowest ranks', () => {
    // 7 samples, 4 spare over three equal speeds: 1 each plus one left for rank 0 only.
    expect(proportionalCounts([1, 1, 1], 7)).toEqual([3, 2, 2]);
    expect(proportionalCounts([1, 1, 1, 1], 10)).toEqual([3, 3, 2, 2]);
  });

  it('a batch of exactly one quantum per rank is a valid split (nothing spare)', () => {
    // Every rank is worth its quantum here (2 samples at speed 4 take 0.5 ms, under the 6 / 9 ms the
    // faster ones would need for the whole batch), so each keeps exactly one.
    expect(proportionalCounts([5, 4, 4], 6, 2)).toEqual([2, 2, 2]);
  });
});

describe('BatchShares: edges', () => {
  it('refuses a zero or fractional quantum, and a share that is not a whole multiple of the quantum (zero is one: a rank not worth a share)', () => {
    expect(() => new BatchShares(8, 2, 0)).toThrow(/quantum must be a positive integer, got 0/);
    expect(() => new BatchShares(8, 2, 1.5)).toThrow(/quantum must be a positive integer, got 1.5/);
    const shares = new BatchShares(8, 2);
    expect(() => shares.set(1, [7.5, 0.5])).toThrow(/share 7.5 is not a whole multiple of 1 samples/);
    expect(() => new BatchShares(8, 2, 2).set(1, [5, 3])).toThrow(/share 5 is not a whole multiple of 2 samples/);
    shares.set(1, [7, 1]);
    expect(shares.countsAt(1)).toEqual([7, 1]);
    shares.set(2, [8, 0]);
    expect(shares.countsAt(2)).toEqual([8, 0]);
  });

  it('keeps the split in force and every later one when set many times (the table is pruned from the middle)', () => {
    const shares = new BatchShares(12, 3);
    const splits: [number, number[]][] = [
      [2, [6, 3, 3]],
      [4, [3, 6, 3]],
      [6, [3, 3, 6]],
      [8, [2, 5, 5]],
      [10, [4, 4, 4]],
    ];
    for (const [step, counts] of splits) {
      shares.set(step, counts);
      // The entry just set and the one before it are what the current and next steps read.
      expect(shares.countsAt(step)).toEqual(counts);
      expect(shares.countsAt(step + 1)).toEqual(counts);
      expect(shares.rangeOf(2, step)).toEqual({ start: counts[0] + counts[1], end: 12 });
    }
    expect(shares.countsAt(9)).toEqual([2, 5, 5]);
    expect(() => shares.set(9, [4, 4, 4])).toThrow(/step 10 already has its own/);
  });
});
