import { describe, expect, it } from 'vitest';
import { allToAll, allToAllLayout, allToAllSentElements, checkCounts } from './all-to-all';
import { runSchedule } from './executor';
import { createMemoryMesh } from './memory-transport';
import { type Schedule, checkSchedule } from './schedules';
import { eventsVersusSchedule, seededFloats, unmatchedMessages } from './schedule-test-kit';
import { firstBitDifference, simulate } from './test-support';
import type { ChunkEvent } from './types';

const WORLDS = Array.from({ length: 16 }, (_, i) => i + 1);

/** Uneven counts like a router's: 0, 1, primes and a few big blocks, different per ordered pair. */
function routerCounts(world: number, seed: number): number[][] {
  const sizes = [0, 1, 2, 3, 5, 7, 13, 0, 31, 97];
  return Array.from({ length: world }, (_, i) => Array.from({ length: world }, (_, j) => sizes[(i * 7 + j * 3 + seed) % sizes.length]));
}

/** The block rank i sends to rank j: values that name i, j and the position, so a misplaced block shows. */
function block(i: number, j: number, count: number): Float32Array {
  return Float32Array.from({ length: count }, (_, k) => i * 1_000_000 + j * 1_000 + k);
}

/** Rank r's vector before the exchange: block j at send[j], NaN everywhere else (nothing received yet). */
function packed(world: number, rank: number, counts: number[][]): Float32Array {
  const layout = allToAllLayout(world, rank, counts);
  const x = new Float32Array(layout.length).fill(NaN);
  for (let j = 0; j < world; j++) x.set(block(rank, j, counts[rank][j]), layout.send[j].offset);
  return x;
}

/** What rank r must hold afterwards in its receive region: block i -> r at recv[i]. */
function expectReceived(world: number, rank: number, counts: number[][], x: Float32Array): void {
  const layout = allToAllLayout(world, rank, counts);
  for (let i = 0; i < world; i++) {
    const got = x.subarray(layout.recv[i].offset, layout.recv[i].offset + layout.recv[i].length);
    expect(firstBitDifference(got, block(i, rank, counts[i][rank]))).toBe(-1);
  }
}

describe('all-to-all schedule', () => {
  it('delivers every block to its rank exactly, world 1..16, uneven and empty blocks; every send received in its step', () => {
    for (const world of WORLDS) {
      for (const seed of [0, 1, 4]) {
        for (const maxMessageElements of [undefined, 3]) {
          const counts = routerCounts(world, seed);
          const schedules = Array.from({ length: world }, (_, rank) => allToAll(world, rank, counts, { maxMessageElements }));
          for (const s of schedules) expect(checkSchedule(s)).toEqual([]);
          expect(unmatchedMessages(schedules)).toEqual([]);
          expect(new Set(schedules.map((s) => s.steps.length))).toEqual(new Set([Math.max(world - 1, 0)]));
          const out = simulate(schedules, schedules.map((_, rank) => packed(world, rank, counts)));
          out.forEach((x, rank) => expectReceived(world, rank, counts, x));
        }
      }
    }
  });

  it('pairs rank r with r + s at step s, one peer each way per step', () => {
    const world = 5;
    const counts = Array.from({ length: world }, () => new Array(world).fill(4));
    for (let rank = 0; rank < world; rank++) {
      const s = allToAll(world, rank, counts);
      s.steps.forEach((step, t) => {
        expect(step.sends.map((a) => a.to)).toEqual([(rank + t + 1) % world]);
        expect(step.recvs.map((a) => a.from)).toEqual([(rank - t - 1 + world) % world]);
      });
    }
  });

  it('puts on the wire exactly the row without the kept block, and lays out send-then-receive', () => {
    const counts = [
      [2, 0, 5],
      [1, 3, 0],
      [4, 6, 7],
    ];
    const layout = allToAllLayout(3, 1, counts);
    // rank 1: sends to 0 (1) and 2 (0), then receives from 0 (0), keeps its own (3), receives from 2 (6)
    expect(layout.send).toEqual([{ offset: 0, length: 1 }, { offset: 1, length: 3 }, { offset: 1, length: 0 }]);
    expect(layout.recv).toEqual([{ offset: 1, length: 0 }, { offset: 1, length: 3 }, { offset: 4, length: 6 }]);
    expect(layout.length).toBe(10);
    for (let rank = 0; rank < 3; rank++) {
      const s = allToAll(3, rank, counts, { maxMessageElements: 2 });
      const sent = s.steps.flatMap((t) => t.sends).reduce((n, a) => n + a.length, 0);
      expect(sent).toBe(allToAllSentElements(rank, counts));
    }
    expect(allToAllSentElements(2, counts)).toBe(10);
  });

  it('refuses a count matrix of the wrong shape or with bad entries, naming the cell', () => {
    expect(() => checkCounts(2, [[1, 2]])).toThrow(/2 rows/);
    expect(() => allToAll(2, 0, [[1, 2], [3]])).toThrow(/counts\[1\] needs 2 entries/);
    expect(() => allToAll(2, 0, [[1, -2], [3, 4]])).toThrow(/counts\[0\]\[1\] must be an integer >= 0, got -2/);
    expect(() => allToAll(2, 0, [[1, 0.5], [3, 4]])).toThrow(/got 0.5/);
  });
});

describe('all-to-all through the executor and the in-memory transport', () => {
  it('delivers every block bit for bit for world 1..16 (non-integer data, uneven link latencies)', async () => {
    for (const world of WORLDS) {
      const counts = routerCounts(world, world);
      const mesh = createMemoryMesh(world, { linkLatencyMs: (from, to) => (from * 7 + to * 3) % 3 });
      // Arbitrary float bits (not just integers) must arrive unchanged: an all-to-all only copies.
      const blocks = mesh.map((_, i) => mesh.map((__, j) => seededFloats(i * 31 + j + 1, counts[i][j])));
      const data = mesh.map((t) => {
        const layout = allToAllLayout(world, t.rank, counts);
        const x = new Float32Array(layout.length);
        blocks[t.rank].forEach((b, j) => x.set(b, layout.send[j].offset));
        return x;
      });
      await Promise.all(mesh.map((t, r) => runSchedule(t, allToAll(world, r, counts, { maxMessageElements: 8 }), data[r], { round: 0, collective: 0 })));
      data.forEach((x, rank) => {
        const layout = allToAllLayout(world, rank, counts);
        for (let i = 0; i < world; i++) {
          expect(firstBitDifference(x.subarray(layout.recv[i].offset, layout.recv[i].offset + layout.recv[i].length), blocks[i][rank])).toBe(-1);
        }
      });
      for (const t of mesh) expect(t.pendingMessages).toBe(0);
    }
  });

  it('emits exactly the scheduled sends and receives (events == schedule)', async () => {
    const world = 4;
    const counts = routerCounts(world, 2);
    const mesh = createMemoryMesh(world);
    const events: ChunkEvent[] = [];
    const schedules: Schedule[] = mesh.map((t) => allToAll(world, t.rank, counts, { maxMessageElements: 5 }));
    const data = mesh.map((t) => packed(world, t.rank, counts));
    await Promise.all(mesh.map((t, r) => runSchedule(t, schedules[r], data[r], { round: 1, collective: 3, onEvent: (e) => events.push(e) })));
    for (const s of schedules) {
      const { expected, got } = eventsVersusSchedule(s, events);
      expect(got).toEqual(expected);
      expect(got.length).toBeGreaterThan(0);
    }
  });

  it('round-trips: the all-to-all with transposed counts brings every block home (an expert layer\'s dispatch and combine)', async () => {
    const world = 5;
    const counts = routerCounts(world, 3);
    const back = counts.map((_, i) => counts.map((row) => row[i]));
    const mesh = createMemoryMesh(world);
    const data = mesh.map((t) => packed(world, t.rank, counts));
    await Promise.all(mesh.map((t, r) => runSchedule(t, allToAll(world, r, counts), data[r], { round: 0, collective: 0 })));
    // Each rank returns what it received (block i -> r) to i, unchanged.
    const returned = mesh.map((t) => {
      const there = allToAllLayout(world, t.rank, counts);
      const home = allToAllLayout(world, t.rank, back);
      const x = new Float32Array(home.length);
      for (let i = 0; i < world; i++) x.set(data[t.rank].subarray(there.recv[i].offset, there.recv[i].offset + there.recv[i].length), home.send[i].offset);
      return x;
    });
    await Promise.all(mesh.map((t, r) => runSchedule(t, allToAll(world, r, back), returned[r], { round: 0, collective: 1 })));
    returned.forEach((x, rank) => {
      const home = allToAllLayout(world, rank, back);
      for (let j = 0; j < world; j++) {
        expect(firstBitDifference(x.subarray(home.recv[j].offset, home.recv[j].offset + home.recv[j].length), block(rank, j, counts[rank][j]))).toBe(-1);
      }
    });
  });
});
