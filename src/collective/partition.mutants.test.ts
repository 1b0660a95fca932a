// Checks of partition.ts that mutation testing (npm run mutate) showed missing: partition.test.ts refuses
// an overlap, a tensor past the end and an index outside, but not a negative or fractional total, an
// alignment below 1, a tensor with a negative or fractional offset or length, a rank outside the room, or
// tensors handed over out of order (the overlap check compares each tensor with the one before it, so
// an unsorted list hides an overlap). A ZeRO partition built from such input would hand a rank a shard
// that is not its own instead of failing.
import { describe, expect, it } from 'vitest';
import { ownerOf, partitionFlat, partitionLayout, slicesOnRank, type TensorSpan } from './partition';

describe('partition refusals, each by name', () => {
  it('a total below 0 or not a whole number; an alignment below 1 (1 itself is fine)', () => {
    expect(() => partitionFlat(-1, 2)).toThrow(new RangeError('total must be an integer >= 0, got -1'));
    expect(() => partitionFlat(2.5, 2)).toThrow(new RangeError('total must be an integer >= 0, got 2.5'));
    expect(() => partitionFlat(8, 2, 0)).toThrow(new RangeError('alignment must be an integer >= 1, got 0'));
    expect(() => partitionFlat(8, 2, 1.5)).toThrow(new RangeError('alignment must be an integer >= 1, got 1.5'));
    expect(partitionFlat(3, 2, 1).shards).toEqual([
      { offset: 0, length: 2 },
      { offset: 2, length: 1 },
    ]);
  });

  it('a tensor with a negative or fractional offset or length; an empty tensor is fine', () => {
    const bad = (t: Partial<TensorSpan>) => () => partitionLayout([{ name: 't', offset: 0, length: 4, ...t }], 64, 2);
    expect(bad({ offset: -4 })).toThrow(new RangeError('tensor t has an invalid range [-4, +4)'));
    expect(bad({ length: -1 })).toThrow(new RangeError('tensor t has an invalid range [0, +-1)'));
    expect(bad({ offset: 0.5 })).toThrow(new RangeError('tensor t has an invalid range [0.5, +4)'));
    expect(bad({ length: 1.5 })).toThrow(new RangeError('tensor t has an invalid range [0, +1.5)'));
    expect(partitionLayout([{ name: 't', offset: 0, length: 0 }], 64, 2).world).toBe(2);
  });

  it('tensors are checked in offset order: an overlap is found whatever order they come in; one ending exactly at the end is fine', () => {
    const a = { name: 'a', offset: 0, length: 40 };
    const b = { name: 'b', offset: 32, length: 32 };
    expect(() => partitionLayout([b, a], 64, 2)).toThrow(/tensor b overlaps the tensor before it/);
    expect(partitionLayout([{ name: 'c', offset: 40, length: 24 }, a], 64, 2).total).toBe(64);
  });

  it('an index below 0 or fractional, a rank below 0, fractional or past the room', () => {
    const p = partitionFlat(128, 2);
    expect(() => ownerOf(p, -1)).toThrow(new RangeError('element -1 is outside [0, 128)'));
    expect(() => ownerOf(p, 0.5)).toThrow(new RangeError('element 0.5 is outside [0, 128)'));
    const tensors = [{ name: 't', offset: 0, length: 128 }];
    for (const rank of [-1, 0.5, 2]) expect(() => slicesOnRank(p, tensors, rank)).toThrow(new RangeError(`rank ${rank} is outside [0, 2)`));
    expect(slicesOnRank(p, tensors, 1)).toEqual([{ name: 't', rank: 1, flatOffset: 64, tensorOffset: 64, length: 64 }]);
  });
});

describe('slices at a shard boundary', () => {
  it('a tensor that ends exactly where a shard starts has no slice on that shard (not an empty one)', () => {
    const p = partitionFlat(128, 2);
    expect(slicesOnRank(p, [{ name: 'a', offset: 0, length: 64 }], 1)).toEqual([]);
    expect(slicesOnRank(p, [{ name: 'b', offset: 64, length: 64 }], 0)).toEqual([]);
  });
});
