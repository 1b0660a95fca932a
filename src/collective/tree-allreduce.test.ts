import { describe, expect, it } from 'vitest';
import type { ScheduleOptions } from './schedules';
import { expectEventsEqualSchedules, expectExactSumOnMesh, expectSoundExactAllReduce, runOnMemoryMesh, seededFloats } from './schedule-test-kit';
import { exactSum, firstBitDifference, integerInput } from './test-support';
import { treeAllReduce, treeLevels, treeParent } from './tree-allreduce';

const WORLDS = Array.from({ length: 16 }, (_, i) => i + 1);
const lengthsFor = (world: number): number[] => [...new Set([0, 1, 2, Math.max(world - 1, 0), world, 13, 97])];
const OPTION_SETS: ScheduleOptions[] = [{}, { maxMessageElements: 3 }, { maxMessageElements: 3, pipeline: false }];
const allRanks = (world: number, length: number, opts: ScheduleOptions) => Array.from({ length: world }, (_, rank) => treeAllReduce(world, rank, length, opts));

/** The binomial order stated in tree-allreduce.ts, in float32: level by level, parent += child. */
function binomialReference(inputs: Float32Array[]): Float32Array {
  const acc = inputs.map((x) => x.slice());
  for (let span = 1; span < acc.length; span *= 2) {
    for (let parent = 0; parent + span < acc.length; parent += 2 * span) {
      const child = acc[parent + span];
      acc[parent].forEach((v, i) => (acc[parent][i] = Math.fround(v + child[i])));
    }
  }
  return acc[0];
}

describe('binomial-tree all-reduce schedule', () => {
  it('sums exactly on every rank, world 1..16, lengths 0, 1, 2, < world, primes; every send received in its step', () => {
    for (const world of WORLDS) {
      for (const length of lengthsFor(world)) {
        for (const opts of OPTION_SETS) {
          expectSoundExactAllReduce(allRanks(world, length, opts), length);
        }
      }
    }
  });

  it('takes 2 ceil(log2 N) steps, plus P-1 to drain P pipelined parts', () => {
    expect(treeAllReduce(1, 0, 10).steps).toHaveLength(0);
    expect(treeAllReduce(8, 3, 10).steps).toHaveLength(6);
    expect(treeAllReduce(9, 3, 10).steps).toHaveLength(8);
    expect(treeAllReduce(8, 3, 40, { maxMessageElements: 10 }).steps).toHaveLength(6 + 4 - 1);
    expect(treeAllReduce(8, 3, 40, { maxMessageElements: 10, pipeline: false }).steps).toHaveLength(6);
    expect(treeLevels(16)).toBe(4);
    expect(treeLevels(17)).toBe(5);
    expect([1, 2, 3, 6, 12].map(treeParent)).toEqual([0, 0, 2, 4, 8]);
  });

  it('moves the whole vector on every edge: each non-root rank sends n once up and receives n once down', () => {
    const world = 7;
    for (let rank = 0; rank < world; rank++) {
      const s = treeAllReduce(world, rank, 50, { maxMessageElements: 8 });
      const sent = s.steps.flatMap((t) => t.sends).reduce((n, a) => n + a.length, 0);
      const children = Array.from({ length: world }, (_, c) => c).filter((c) => c > 0 && treeParent(c) === rank).length;
      expect(sent).toBe((rank === 0 ? 0 : 50) + 50 * children);
    }
  });
});

describe('binomial-tree all-reduce through the executor and the in-memory transport', () => {
  it('sums exactly for world 1..16 and awkward lengths, nothing left undelivered', async () => {
    for (const world of WORLDS) {
      for (const length of [0, 1, Math.max(world - 1, 0), 101]) {
        await expectExactSumOnMesh(world, length, (r) => treeAllReduce(world, r, length, { maxMessageElements: 37 }));
      }
    }
  });

  it('emits exactly the scheduled sends and receives (events == schedule)', async () => {
    await expectEventsEqualSchedules(6, 70, (r) => treeAllReduce(6, r, 70, { maxMessageElements: 16 }));
  });

  it('gives every rank the same bits, those of the fixed binomial order, whatever the arrival order (non-integer data)', async () => {
    for (const world of [3, 5, 8, 11]) {
      const length = 257;
      const want = binomialReference(Array.from({ length: world }, (_, r) => seededFloats(r + 1, length)));
      const { data } = await runOnMemoryMesh(world, (r) => treeAllReduce(world, r, length, { maxMessageElements: 40 }), (r) => seededFloats(r + 1, length), {}, { linkLatencyMs: (from, to) => (from * 7 + to * 3) % 5 });
      for (const x of data) expect(firstBitDifference(x, want)).toBe(-1);
    }
  });

  it('averages once, at the root, before the broadcast', async () => {
    const world = 5;
    const { data } = await runOnMemoryMesh(world, (r) => treeAllReduce(world, r, 30, { maxMessageElements: 7 }), (r) => integerInput(r, 30).map((v) => v * world), { average: true });
    for (const x of data) expect(Array.from(x)).toEqual(Array.from(exactSum(world, 30)));
  });
});
