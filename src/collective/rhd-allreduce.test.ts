import { describe, expect, it } from 'vitest';
import { splitEven } from './chunking';
import { runSchedule } from './executor';
import { createMemoryMesh } from './memory-transport';
import { rhdAllReduce, rhdCore, rhdCoreRank } from './rhd-allreduce';
import type { ScheduleOptions } from './schedules';
import { expectEventsEqualSchedules, expectExactSumOnMesh, expectSoundExactAllReduce, runOnMemoryMesh, seededFloats } from './schedule-test-kit';
import { exactSum, firstBitDifference, integerInput } from './test-support';

const WORLDS = Array.from({ length: 16 }, (_, i) => i + 1);
const lengthsFor = (world: number): number[] => [...new Set([0, 1, 2, Math.max(world - 1, 0), world, 13, 97])];
const OPTION_SETS: ScheduleOptions[] = [{}, { maxMessageElements: 3 }];
const allRanks = (world: number, length: number, opts: ScheduleOptions) => Array.from({ length: world }, (_, rank) => rhdAllReduce(world, rank, length, opts));

/**
 * The order stated in rhd-allreduce.ts, in float32: fold pairs (odd + even), then over the core ranks
 * v = 0..P-1, S(set) = S(bit b clear) + S(bit b set), splitting on bit 0 first.
 */
function butterflyReference(inputs: Float32Array[]): Float32Array {
  const world = inputs.length;
  const { core, folded } = rhdCore(world);
  const leaves: Float32Array[] = new Array(core);
  for (let rank = 0; rank < world; rank++) {
    const v = rhdCoreRank(world, rank);
    if (v < 0) continue;
    leaves[v] = rank < 2 * folded ? inputs[rank].map((x, i) => Math.fround(x + inputs[rank - 1][i])) : inputs[rank].slice();
  }
  const sumOf = (members: number[], bit: number): Float32Array => {
    if (members.length === 1) return leaves[members[0]];
    const low = sumOf(members.filter((v) => (v & (1 << bit)) === 0), bit + 1);
    const high = sumOf(members.filter((v) => (v & (1 << bit)) !== 0), bit + 1);
    return low.map((x, i) => Math.fround(x + high[i]));
  };
  return sumOf(Array.from({ length: core }, (_, v) => v), 0);
}

describe('recursive halving-doubling all-reduce schedule', () => {
  it('sums exactly on every rank, world 1..16 (powers of two and not), lengths 0, 1, 2, < world, primes; every send received in its step', () => {
    for (const world of WORLDS) {
      for (const length of lengthsFor(world)) {
        for (const opts of OPTION_SETS) {
          expectSoundExactAllReduce(allRanks(world, length, opts), length);
        }
      }
    }
  });

  it('takes 2 log2 P steps, plus a fold and an unfold when N is not a power of two', () => {
    expect(rhdAllReduce(1, 0, 10).steps).toHaveLength(0);
    expect(rhdAllReduce(8, 5, 10).steps).toHaveLength(6);
    expect(rhdAllReduce(6, 0, 10).steps).toHaveLength(2 * 2 + 2);
    expect(rhdCore(6)).toEqual({ core: 4, folded: 2 });
    // N = 6: ranks 0 and 2 fold into 1 and 3; 1, 3, 4, 5 are the core's 0..3.
    expect([0, 1, 2, 3, 4, 5].map((r) => rhdCoreRank(6, r))).toEqual([-1, 0, -1, 1, 2, 3]);
  });

  it('moves 2 (P-1)/P of the vector per core rank (bandwidth-optimal on a power of two) and a whole vector for a fold', () => {
    for (const world of [2, 4, 8, 16]) {
      const length = world * 6;
      for (let rank = 0; rank < world; rank++) {
        const s = rhdAllReduce(world, rank, length, { maxMessageElements: 5 });
        const sent = s.steps.flatMap((t) => t.sends).reduce((n, a) => n + a.length, 0);
        const received = s.steps.flatMap((t) => t.recvs).reduce((n, a) => n + a.length, 0);
        expect(sent).toBe((2 * (world - 1) * length) / world);
        expect(received).toBe(sent);
      }
    }
    const folding = rhdAllReduce(6, 0, 40).steps.flatMap((t) => t.sends).reduce((n, a) => n + a.length, 0);
    expect(folding).toBe(40);
  });

  it('ends the reduce-scatter with core rank v owning block v of splitEven(length, P)', () => {
    const world = 7; // P = 4, ranks 0, 2, 4 fold
    const length = 23;
    const schedules = allRanks(world, length, {});
    const blocks = splitEven(length, 4);
    schedules.forEach((s, rank) => {
      const v = rhdCoreRank(world, rank);
      expect(s.reduced).toEqual(v < 0 ? [] : [{ ...blocks[v], afterStep: 2 }]); // fold, halving x2
    });
  });
});

describe('recursive halving-doubling all-reduce through the executor and the in-memory transport', () => {
  it('sums exactly for world 1..16 and awkward lengths, nothing left undelivered', async () => {
    for (const world of WORLDS) {
      for (const length of [0, 1, Math.max(world - 1, 0), 101]) {
        await expectExactSumOnMesh(world, length, (r) => rhdAllReduce(world, r, length, { maxMessageElements: 11 }));
      }
    }
  });

  it('emits exactly the scheduled sends and receives (events == schedule)', async () => {
    await expectEventsEqualSchedules(6, 70, (r) => rhdAllReduce(6, r, 70, { maxMessageElements: 9 }));
  });

  it('gives every rank the same bits, those of the fixed butterfly order, whatever the arrival order (non-integer data)', async () => {
    for (const world of [2, 3, 6, 8, 13]) {
      const length = 301;
      const want = butterflyReference(Array.from({ length: world }, (_, r) => seededFloats(r + 1, length)));
      const { data } = await runOnMemoryMesh(world, (r) => rhdAllReduce(world, r, length, { maxMessageElements: 40 }), (r) => seededFloats(r + 1, length), {}, { linkLatencyMs: (from, to) => (from * 7 + to * 3) % 5 });
      for (const x of data) expect(firstBitDifference(x, want)).toBe(-1);
    }
  });

  it('averages each block once, at its owner', async () => {
    const world = 6;
    const mesh = createMemoryMesh(world);
    const data = mesh.map((t) => integerInput(t.rank, 31).map((v) => v * world));
    await Promise.all(mesh.map((t, r) => runSchedule(t, rhdAllReduce(world, r, 31, { maxMessageElements: 4 }), data[r], { round: 0, collective: 0, average: true })));
    for (const x of data) expect(Array.from(x)).toEqual(Array.from(exactSum(world, 31)));
  });
});
