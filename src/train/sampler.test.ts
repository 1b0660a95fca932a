import { describe, expect, it } from 'vitest';
import { DistributedSampler } from './sampler';

describe('DistributedSampler', () => {
  const base = { size: 103, globalBatch: 12, seed: 7 };

  it('gives each rank a disjoint slice whose union is the single-rank batch', () => {
    const single = new DistributedSampler({ ...base, world: 1, rank: 0 });
    const ranks = [0, 1, 2, 3].map((rank) => new DistributedSampler({ ...base, world: 4, rank }));
    for (const step of [0, 1, 7, 8, 9, 30]) {
      const expected = Array.from(single.indices(step));
      const parts = ranks.map((s) => Array.from(s.indices(step)));
      expect(parts.every((p) => p.length === 3)).toBe(true);
      expect(new Set(parts.flat()).size).toBe(12);
      expect(parts.flat()).toEqual(expected);
    }
  });

  it('is the same across calls and instances, and reshuffles each epoch', () => {
    const a = new DistributedSampler({ ...base, world: 2, rank: 1 });
    const b = new DistributedSampler({ ...base, world: 2, rank: 1 });
    const first = Array.from(a.indices(3));
    a.indices(50); // another epoch in between
    expect(Array.from(a.indices(3))).toEqual(first);
    expect(Array.from(b.indices(3))).toEqual(first);
    expect(a.stepsPerEpoch).toBe(8);
    expect(Array.from(a.indices(3 + 8))).not.toEqual(first);
  });

  it('covers each sample at most once per epoch', () => {
    const s = new DistributedSampler({ ...base, world: 1, rank: 0 });
    const seen = new Set<number>();
    for (let step = 0; step < s.stepsPerEpoch; step++) for (const i of s.indices(step)) seen.add(i);
    expect(seen.size).toBe(s.stepsPerEpoch * 12);
  });

  it('splits a global batch the world does not divide into shares one sample apart, weighted to average exactly', () => {
    const shares = Array.from({ length: 5 }, (_, rank) => new DistributedSampler({ ...base, world: 5, rank }));
    expect(shares.map((s) => s.perRank)).toEqual([2, 2, 3, 2, 3]);
    // concatenated in rank order, the shares are exactly the global batch
    expect(shares.flatMap((s) => Array.from(s.indices(4)))).toEqual(Array.from(shares[0].globalIndices(4)));
    // sum over ranks of weight * (mean over own share) / world = mean over the global batch
    expect(shares.reduce((sum, s) => sum + s.shareWeight, 0)).toBeCloseTo(5, 12);
    expect(shares.map((s) => s.shareWeight * s.options.globalBatch / 5)).toEqual([2, 2, 3, 2, 3]);
  });

  it('refuses impossible configurations', () => {
    expect(() => new DistributedSampler({ ...base, globalBatch: 3, world: 4, rank: 0 })).toThrow(/smaller than the room/);
    expect(() => new DistributedSampler({ ...base, world: 2, rank: 2 })).toThrow(/rank/);
    expect(() => new DistributedSampler({ ...base, globalBatch: 200, world: 1, rank: 0 })).toThrow(/larger/);
    expect(() => new DistributedSampler({ ...base, world: 1, rank: 0 }).indices(-1)).toThrow(/step/);
  });
});
