import { describe, expect, it } from 'vitest';
import { runAllToAll } from './all-to-all-run';
import { createMemoryMesh } from './memory-transport';
import { seededFloats } from './schedule-test-kit';
import { firstBitDifference } from './test-support';

/** Rank i's block for rank j: uneven sizes (0 included), values that name the pair. */
const blockFor = (i: number, j: number): Float32Array => seededFloats(i * 17 + j + 1, [0, 1, 5, 12, 3, 40][(i * 3 + j * 5) % 6]);

describe('runAllToAll', () => {
  it('learns the counts, delivers every block bit for bit, and the transposed counts bring them home (world 1..8)', async () => {
    for (let world = 1; world <= 8; world++) {
      const mesh = createMemoryMesh(world, { linkLatencyMs: (from, to) => (from + 2 * to) % 3 });
      const there = await Promise.all(
        mesh.map((t) => runAllToAll(t, mesh.map((_, j) => blockFor(t.rank, j)), { round: 0, collective: 5, maxMessageElements: 4 })),
      );
      there.forEach(({ received, counts }, rank) => {
        received.forEach((block, i) => expect(firstBitDifference(block, blockFor(i, rank))).toBe(-1));
        expect(counts).toEqual(mesh.map((_, i) => mesh.map((__, j) => blockFor(i, j).length)));
      });
      // The way back: each rank returns what it got, with the transposed counts (no second count exchange).
      const back = await Promise.all(
        mesh.map((t) => runAllToAll(t, there[t.rank].received, { round: 1, collective: 5, counts: there[t.rank].counts.map((_, i, m) => m.map((row) => row[i])) })),
      );
      back.forEach(({ received, stats }, rank) => {
        received.forEach((block, j) => expect(firstBitDifference(block, blockFor(rank, j))).toBe(-1));
        const sent = mesh.reduce((n, _, j) => (j === rank ? n : n + blockFor(j, rank).length), 0);
        expect(stats.bytesSent).toBe(4 * sent);
      });
      for (const t of mesh) expect(t.pendingMessages).toBe(0);
    }
  });

  it('refuses a wrong number of blocks, or blocks that disagree with given counts', async () => {
    const mesh = createMemoryMesh(2);
    await expect(runAllToAll(mesh[0], [new Float32Array(1)], { round: 0, collective: 0 })).rejects.toThrow(/one block per rank \(2\), got 1/);
    await expect(
      runAllToAll(mesh[0], [new Float32Array(1), new Float32Array(2)], { round: 0, collective: 0, counts: [[1, 3], [0, 0]] }),
    ).rejects.toThrow(/block for rank 1 has 2 elements, counts\[0\]\[1\] says 3/);
  });
});
