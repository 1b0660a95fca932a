import { describe, expect, it } from 'vitest';
import {
  type Schedule,
  type ScheduleOptions,
  broadcast,
  checkSchedule,
  formatSchedule,
  naiveAllReduce,
  parameterServerRound,
  ringAllGather,
  ringAllReduce,
  ringReduceScatter,
  sparseAllGather,
} from './schedules';
import { unmatchedMessages } from './schedule-test-kit';
import { exactSum, firstBitDifference, integerInput, simulate } from './test-support';

const WORLDS = Array.from({ length: 16 }, (_, i) => i + 1);
const lengthsFor = (world: number): number[] => [...new Set([0, 1, Math.max(world - 1, 0), world, 13, 97])];
const OPTION_SETS: ScheduleOptions[] = [{}, { maxMessageElements: 3 }, { maxMessageElements: 3, pipeline: false }];

function allRanks<T>(world: number, build: (rank: number) => T): T[] {
  return Array.from({ length: world }, (_, rank) => build(rank));
}

/**
 * Every send has exactly one matching receive on its peer for the same elements, in the same step (or,
 * with `sameStep` false, in the same or a later one).
 */
function expectMatched(schedules: Schedule[], sameStep = true): void {
  expect(unmatchedMessages(schedules, { sameOffset: true, laterReceive: !sameStep })).toEqual([]);
}

describe('ring all-reduce schedule', () => {
  it('sums exactly on every rank for world 1..16 and awkward lengths', () => {
    for (const world of WORLDS) {
      for (const length of lengthsFor(world)) {
        for (const opts of OPTION_SETS) {
          const schedules = allRanks(world, (rank) => ringAllReduce(world, rank, length, opts));
          for (const s of schedules) expect(checkSchedule(s)).toEqual([]);
          expectMatched(schedules);
          const inputs = schedules.map((_, r) => integerInput(r, length));
          const out = simulate(schedules, inputs);
          const want = exactSum(world, length);
          for (const x of out) expect(firstBitDifference(x, want)).toBe(-1);
        }
      }
    }
  });

  it('sends and receives the bandwidth-optimal 2(N-1)/N of the vector per rank', () => {
    for (const world of WORLDS) {
      for (const length of [world * 5, 97, 1000]) {
        for (let rank = 0; rank < world; rank++) {
          const s = ringAllReduce(world, rank, length, { maxMessageElements: 4 });
          const sent = s.steps.flatMap((t) => t.sends).reduce((n, a) => n + a.length, 0);
          const received = s.steps.flatMap((t) => t.recvs).reduce((n, a) => n + a.length, 0);
          // Each rank sends every chunk except its own during reduce-scatter, and every chunk except
          // the next rank's (which it never owns fully) during all-gather.
          const expected = 2 * length - s.chunks[rank].length - s.chunks[(rank + 1) % world].length;
          expect(sent).toBe(expected);
          expect(received).toBe(2 * length - s.chunks[rank].length - s.chunks[(rank + world - 1) % world].length);
          if (length % world === 0) expect(sent).toBe((2 * (world - 1) * length) / world);
        }
      }
    }
  });

  it('has 2(N-1) steps, plus P-1 to drain a pipeline of P parts', () => {
    expect(ringAllReduce(4, 0, 40, { maxMessageElements: 100 }).steps).toHaveLength(6);
    expect(ringAllReduce(4, 0, 40, { maxMessageElements: 5 }).steps).toHaveLength(6 + 2 - 1);
    expect(ringAllReduce(4, 0, 40, { maxMessageElements: 5, pipeline: false }).steps).toHaveLength(6);
    expect(ringAllReduce(1, 0, 40).steps).toHaveLength(0);
  });

  it('forwards part p while part p+1 is still arriving when pipelined', () => {
    const s = ringAllReduce(3, 0, 30, { maxMessageElements: 4 }); // chunks of 10 -> 3 parts each
    // Step 1: part 0 of logical step 1 goes out while part 1 of logical step 0 comes in.
    const step1 = s.steps[1];
    expect(step1.sends.map((a) => a.part).sort()).toEqual([0, 1]);
    expect(step1.recvs.map((a) => a.part).sort()).toEqual([0, 1]);
  });

  it('ends reduce-scatter with rank r owning chunk r, also at explicit (ZeRO) boundaries', () => {
    const boundaries = [0, 64, 64, 130, 131];
    const world = 4;
    const schedules = allRanks(world, (rank) => ringReduceScatter(world, rank, 131, { boundaries, maxMessageElements: 16 }));
    const out = simulate(schedules, schedules.map((_, r) => integerInput(r, 131)));
    const want = exactSum(world, 131);
    schedules.forEach((s, rank) => {
      const owned = s.chunks[rank];
      expect(owned.offset).toBe(boundaries[rank]);
      expect(owned.offset + owned.length).toBe(boundaries[rank + 1]);
      expect(Array.from(out[rank].subarray(owned.offset, owned.offset + owned.length))).toEqual(Array.from(want.subarray(owned.offset, owned.offset + owned.length)));
      // The reduced ranges cover exactly the owned chunk.
      expect(s.reduced.reduce((n, r) => n + r.length, 0)).toBe(owned.length);
    });
  });

  it('refuses boundaries of the wrong size', () => {
    expect(() => ringAllReduce(3, 0, 10, { boundaries: [0, 10] })).toThrow(/world \+ 1/);
    expect(() => ringAllReduce(3, 3, 10)).toThrow(/rank/);
  });
});

describe('ring all-gather schedule', () => {
  it('spreads each rank\'s own chunk everywhere', () => {
    for (const world of WORLDS) {
      for (const length of lengthsFor(world)) {
        const schedules = allRanks(world, (rank) => ringAllGather(world, rank, length, { maxMessageElements: 5 }));
        expectMatched(schedules);
        const full = integerInput(99, length);
        const inputs = schedules.map((s, rank) => {
          const x = new Float32Array(length).fill(NaN);
          const own = s.chunks[rank];
          x.set(full.subarray(own.offset, own.offset + own.length), own.offset);
          return x;
        });
        for (const x of simulate(schedules, inputs)) expect(firstBitDifference(x, full)).toBe(-1);
      }
    }
  });
});

describe('broadcast schedule', () => {
  it('copies the root vector to every rank, chain and star', () => {
    for (const world of WORLDS) {
      for (const topology of ['chain', 'star'] as const) {
        const root = world - 1;
        const schedules = allRanks(world, (rank) => broadcast(root, world, rank, 23, { topology, maxMessageElements: 4 }));
        for (const s of schedules) expect(checkSchedule(s)).toEqual([]);
        expectMatched(schedules);
        const inputs = schedules.map((_, r) => (r === root ? integerInput(5, 23) : new Float32Array(23)));
        for (const x of simulate(schedules, inputs)) expect(Array.from(x)).toEqual(Array.from(integerInput(5, 23)));
      }
    }
  });

  it('pipelines the chain: N-1 hops + P-1 steps instead of (N-1) * P', () => {
    expect(broadcast(0, 5, 0, 40, { maxMessageElements: 10 }).steps).toHaveLength(4 + 4 - 1);
  });
});

describe('naive all-reduce and parameter-server schedules', () => {
  it('naive: sums exactly, each rank sends its whole vector N-1 times', () => {
    for (const world of WORLDS) {
      const schedules = allRanks(world, (rank) => naiveAllReduce(world, rank, 29, { maxMessageElements: 8 }));
      for (const s of schedules) expect(checkSchedule(s)).toEqual([]);
      expectMatched(schedules, false);
      const out = simulate(schedules, schedules.map((_, r) => integerInput(r, 29)));
      for (const x of out) expect(firstBitDifference(x, exactSum(world, 29))).toBe(-1);
      const sent = schedules[0].steps.flatMap((t) => t.sends).reduce((n, a) => n + a.length, 0);
      expect(sent).toBe((world - 1) * 29);
    }
  });

  it('parameter server: gathers the sum at the server and broadcasts back', () => {
    for (const world of WORLDS) {
      const server = world > 2 ? 1 : 0;
      const rounds = allRanks(world, (rank) => parameterServerRound(server, world, rank, 17, { maxMessageElements: 4 }));
      const gather = rounds.map((r) => r.gather);
      expectMatched(gather);
      const gathered = simulate(gather, gather.map((_, r) => integerInput(r, 17)));
      expect(Array.from(gathered[server])).toEqual(Array.from(exactSum(world, 17)));
      const bcast = rounds.map((r) => r.broadcast);
      expectMatched(bcast);
      const params = simulate(bcast, bcast.map((_, r) => (r === server ? gathered[server] : new Float32Array(17))));
      for (const x of params) expect(Array.from(x)).toEqual(Array.from(exactSum(world, 17)));
    }
  });
});

describe('sparse all-gather schedule', () => {
  it('delivers variable-length payloads exactly, including empty ones', () => {
    const words = [6, 0, 2, 11, 0];
    const world = words.length;
    const schedules = allRanks(world, (rank) => sparseAllGather(world, rank, words, { maxMessageElements: 3 }));
    expect(schedules[0].collective).toBe('sparse-allgather');
    expectMatched(schedules);
    const full = integerInput(3, 19);
    const inputs = schedules.map((s, rank) => {
      const x = new Float32Array(19);
      const own = s.chunks[rank];
      x.set(full.subarray(own.offset, own.offset + own.length), own.offset);
      return x;
    });
    for (const x of simulate(schedules, inputs)) expect(Array.from(x)).toEqual(Array.from(full));
    expect(() => sparseAllGather(3, 0, [1, 2])).toThrow(/one payload size per rank/);
  });
});

describe('checkSchedule and formatSchedule', () => {
  it('finds a step that writes what it sends', () => {
    const s = ringAllReduce(2, 0, 4);
    s.steps[0].recvs[0] = { ...s.steps[0].recvs[0], offset: s.steps[0].sends[0].offset };
    expect(checkSchedule(s).join()).toMatch(/overlapping/);
  });

  it('prints one line per step', () => {
    const text = formatSchedule(ringAllReduce(3, 0, 6));
    expect(text.split('\n')).toHaveLength(1 + 4);
    expect(text).toContain('step 0 [reduce-scatter] send c2.p0 [4..6) -> r1 | recv c1.p0 [2..4) <- r2 sum');
    expect(text).toContain('[all-gather]');
  });
});
