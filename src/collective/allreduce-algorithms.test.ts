import { describe, expect, it } from 'vitest';
import { ALL_REDUCE_SCHEDULES, type AllReduceSchedule, allReduceSchedule, runAllReduceBy } from './allreduce-algorithms';
import { f16BitsToF32, f32ToF16Bits } from './codecs';
import { createMemoryMesh } from './memory-transport';
import { seededFloats } from './schedule-test-kit';
import { exactSum, firstBitDifference, integerInput } from './test-support';

describe('all-reduce by name', () => {
  it('every algorithm sums exactly and sends what its schedule lists (worlds 1, 5, 8)', async () => {
    for (const algorithm of ALL_REDUCE_SCHEDULES) {
      for (const world of [1, 5, 8]) {
        const mesh = createMemoryMesh(world);
        const data = mesh.map((t) => integerInput(t.rank, 211));
        const stats = await Promise.all(mesh.map((t, r) => runAllReduceBy(algorithm, t, data[r], { round: 0, collective: 0, maxMessageElements: 30 })));
        for (const x of data) expect(firstBitDifference(x, exactSum(world, 211))).toBe(-1);
        stats.forEach((s, rank) => {
          const scheduled = allReduceSchedule(algorithm, world, rank, 211, { maxMessageElements: 30 }).steps.flatMap((t) => t.sends).reduce((n, a) => n + a.length, 0);
          expect(s.bytesSent).toBe(4 * scheduled);
        });
      }
    }
  });

  it('fp16 wire: every rank ends with the same fp16 values, for every algorithm (world 6, uneven links)', async () => {
    for (const algorithm of ALL_REDUCE_SCHEDULES) {
      const world = 6;
      const mesh = createMemoryMesh(world, { linkLatencyMs: (from, to) => (from * 5 + to) % 3 });
      const data = mesh.map((t) => seededFloats(t.rank + 3, 300));
      await Promise.all(mesh.map((t, r) => runAllReduceBy(algorithm, t, data[r], { round: 0, collective: 0, wire: 'f16', average: true, maxMessageElements: 64 })));
      for (const x of data) expect(firstBitDifference(x, data[0])).toBe(-1);
      // The naive exchange adds rounded inputs locally, so its sums need not be fp16 numbers; the
      // others copy the owner's rounded result out.
      if (algorithm !== 'naive') for (const v of data[0]) expect(f16BitsToF32(f32ToF16Bits(v))).toBe(v);
    }
  });

  it('refuses an unknown algorithm by name', () => {
    expect(() => allReduceSchedule('butterfly' as AllReduceSchedule, 2, 0, 4)).toThrow(/unknown all-reduce algorithm "butterfly"; expected one of ring, tree, rhd, naive/);
  });
});
