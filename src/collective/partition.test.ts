import { describe, expect, it } from 'vitest';
import { mulberry32 } from './codecs';
import { runReduceScatter } from './collectives';
import { createMemoryMesh } from './memory-transport';
import { type TensorSpan, ownerOf, partitionFlat, partitionLayout, shardBoundaries, slicesOfTensor, slicesOnRank } from './partition';
import { exactSum, integerInput } from './test-support';

function randomLayout(random: () => number): { tensors: TensorSpan[]; total: number } {
  const tensors: TensorSpan[] = [];
  let offset = 0;
  const count = 1 + Math.floor(random() * 8);
  for (let i = 0; i < count; i++) {
    const length = Math.floor(random() * 700);
    tensors.push({ name: `t${i}`, offset, length });
    offset += Math.ceil(length / 64) * 64; // padded to the view alignment, like the model's layouts
  }
  return { tensors, total: offset + Math.floor(random() * 3) * 64 };
}

describe('ZeRO partition', () => {
  it('owns every element exactly once, in aligned balanced shards, world 1..16, random layouts', () => {
    const random = mulberry32(42);
    for (let world = 1; world <= 16; world++) {
      for (let trial = 0; trial < 12; trial++) {
        const { tensors, total } = trial === 0 ? { tensors: [], total: 0 } : randomLayout(random);
        const p = partitionLayout(tensors, total, world);
        expect(p.shards).toHaveLength(world);
        let next = 0;
        for (const shard of p.shards) {
          expect(shard.offset).toBe(next); // contiguous, in rank order: no gap, no overlap
          if (shard.length > 0) expect(shard.offset % 64).toBe(0);
          next += shard.length;
        }
        expect(next).toBe(total);
        const full = p.shards.filter((_, r) => r < world - 1 && p.shards[r + 1].length > 0).map((s) => s.length);
        if (full.length) expect(Math.max(...full) - Math.min(...full)).toBeLessThanOrEqual(64);
        for (let i = 0; i < total; i += 17) {
          const owner = ownerOf(p, i);
          const shard = p.shards[owner];
          expect(i >= shard.offset && i < shard.offset + shard.length).toBe(true);
        }
        // Every tensor is tiled exactly by its slices, and the per-rank view agrees with the per-tensor one.
        for (const t of tensors) {
          const slices = slicesOfTensor(p, t);
          let covered = 0;
          for (const s of slices) {
            expect(s.tensorOffset).toBe(covered);
            expect(s.flatOffset).toBe(t.offset + covered);
            covered += s.length;
          }
          expect(covered).toBe(t.length);
        }
        const perRank = Array.from({ length: world }, (_, r) => slicesOnRank(p, tensors, r)).flat();
        const perTensor = tensors.flatMap((t) => slicesOfTensor(p, t));
        const key = (s: { name: string; rank: number; flatOffset: number; length: number }) => `${s.name}@${s.rank}:${s.flatOffset}+${s.length}`;
        expect(perRank.map(key).sort()).toEqual(perTensor.map(key).sort());
      }
    }
  });

  it('gives the last ranks nothing when there are fewer blocks than ranks', () => {
    expect(partitionFlat(130, 4).shards).toEqual([
      { offset: 0, length: 64 },
      { offset: 64, length: 64 },
      { offset: 128, length: 2 },
      { offset: 130, length: 0 },
    ]);
    expect(ownerOf(partitionFlat(130, 4), 129)).toBe(2);
  });

  it('names which part of a tensor lives where', () => {
    const p = partitionFlat(256, 2);
    const w = { name: 'w', offset: 64, length: 128 };
    expect(slicesOfTensor(p, w)).toEqual([
      { name: 'w', rank: 0, flatOffset: 64, tensorOffset: 0, length: 64 },
      { name: 'w', rank: 1, flatOffset: 128, tensorOffset: 64, length: 64 },
    ]);
    expect(slicesOnRank(p, [w, { name: 'b', offset: 0, length: 10 }], 0).map((s) => s.name)).toEqual(['w', 'b']);
  });

  it('refuses bad layouts and indices', () => {
    expect(() => partitionLayout([{ name: 'a', offset: 0, length: 10 }, { name: 'b', offset: 5, length: 10 }], 64, 2)).toThrow(/overlaps/);
    expect(() => partitionLayout([{ name: 'a', offset: 60, length: 10 }], 64, 2)).toThrow(/past the buffer/);
    expect(() => ownerOf(partitionFlat(10, 2), 10)).toThrow(/outside/);
    expect(() => partitionFlat(10, 0)).toThrow(/world/);
  });

  it('lines the ring reduce-scatter up with the shards (ZeRO-2)', async () => {
    const world = 3;
    const p = partitionFlat(1000, world);
    const mesh = createMemoryMesh(world);
    const grads = mesh.map((t) => integerInput(t.rank, 1000));
    const owned = await Promise.all(mesh.map((t, r) => runReduceScatter(t, grads[r], { round: 0, collective: 0, boundaries: shardBoundaries(p) })));
    const want = exactSum(world, 1000);
    owned.forEach(({ owned: range }, rank) => {
      expect(range).toEqual(p.shards[rank]);
      expect(Array.from(grads[rank].subarray(range.offset, range.offset + range.length))).toEqual(Array.from(want.subarray(range.offset, range.offset + range.length)));
    });
  });
});
