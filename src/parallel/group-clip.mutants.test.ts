// Checks of group-clip.ts that mutation testing (npm run mutate) showed missing: all 29 of its mutants
// survived the tensor, MoE and pipeline tests that reach it (their parity runs compare a split model
// with one tab, where a clip that is off or wrong on every tab alike goes unnoticed). Here the function
// runs alone over the in-memory mesh on small integer gradients, against the global norm worked out by
// hand: entries that count on this tab (its own shards, and the replicated ones on one tab only) make
// up the norm once; every tab scales by the same factor, or not at all at or below the limit.
import { describe, expect, it } from 'vitest';
import { createMemoryMesh } from '../collective/memory-transport';
import { viewOf } from '../engine/backend';
import { CpuBackend } from '../engine/cpu-backend';
import type { MessageTag } from '../collective/types';
import { clipOverGroup } from './group-clip';

/** Two entries: 'shard' (this tab's own part of a split tensor) and 'shared' (replicated on every tab). */
const entries = [
  { name: 'shard', offset: 0, length: 2 },
  { name: 'shared', offset: 2, length: 2 },
];

/** Runs the clip on every tab of a group; tab r holds `gradients[r]`; 'shared' counts on tab 0 only. */
async function clipGroup(gradients: number[][], maxNorm: number): Promise<Float32Array[]> {
  const group = createMemoryMesh(gradients.length);
  const tabs = gradients.map((values) => {
    const backend = new CpuBackend();
    const grads = backend.alloc(values.length, 'grads', 'grads');
    backend.write(viewOf(grads), new Float32Array(values));
    return { backend, grads };
  });
  await Promise.all(
    tabs.map(({ backend, grads }, r) =>
      clipOverGroup({ backend, grads, entries, counts: (name) => name === 'shard' || r === 0, group: group[r], maxNorm, round: 3, collective: 7 }),
    ),
  );
  return Promise.all(tabs.map(({ backend, grads }) => backend.read(viewOf(grads))));
}

describe('clip over a group of tabs', () => {
  it('two tabs: the norm counts both tabs\' shards and the replicated entries once (13 here); every tab scales by max / norm (1e-6 relative)', async () => {
    // Shards: tab 0 [3, 4], tab 1 [0, 12]; replicated [0, 0] (counted once: 0). Norm sqrt(9 + 16 + 144) = 13.
    const out = await clipGroup([[3, 4, 0, 0], [0, 12, 0, 0]], 6.5);
    const scale = 6.5 / 13;
    const want = [[3 * scale, 4 * scale, 0, 0], [0, 12 * scale, 0, 0]];
    for (const [r, values] of out.entries()) for (const [i, v] of values.entries()) expect(Math.abs(v - want[r][i])).toBeLessThanOrEqual(1e-6 * Math.abs(want[r][i]));
  });

  it('the replicated entries count once, not once per tab: norm sqrt(1 + 1 + 9 + 16) with 3 and 4 replicated on both tabs (5 decimal places)', async () => {
    // Tab 0 counts [1, 0 | 3, 4], tab 1 counts [0, 1] only: sumSq = 1 + 9 + 16 + 1 = 27.
    const out = await clipGroup([[1, 0, 3, 4], [0, 1, 3, 4]], 1);
    const scale = 1 / Math.sqrt(27);
    expect(Array.from(out[0]).map((v) => v / scale)).toEqual([1, 0, 3, 4].map((v) => expect.closeTo(v, 5)));
    expect(Array.from(out[1]).map((v) => v / scale)).toEqual([0, 1, 3, 4].map((v) => expect.closeTo(v, 5)));
    // The replicated entries stay bitwise equal across the tabs (the same factor on the same values).
    expect(Array.from(out[0].subarray(2))).toEqual(Array.from(out[1].subarray(2)));
  });

  it('at or below the limit nothing changes, bitwise', async () => {
    const at = await clipGroup([[3, 4, 0, 0], [0, 12, 0, 0]], 13);
    expect(at.map((x) => Array.from(x))).toEqual([[3, 4, 0, 0], [0, 12, 0, 0]]);
    const below = await clipGroup([[0.5, 0.25, 1, 0], [0.75, 0, 1, 0]], 100);
    expect(below.map((x) => Array.from(x))).toEqual([[0.5, 0.25, 1, 0], [0.75, 0, 1, 0]]);
  });

  it('a group of one tab clips its whole gradient to the limit, no all-reduce (5 decimal places)', async () => {
    const [out] = await clipGroup([[3, 4, 0, 12]], 1);
    expect(Array.from(out).map((v) => v * 13)).toEqual([3, 4, 0, 12].map((v) => expect.closeTo(v, 5)));
  });

  it('the norm all-reduce goes under the round and collective number given (another collective of the room must not take its messages)', async () => {
    const group = createMemoryMesh(2);
    const tags: string[] = [];
    await Promise.all(
      group.map((transport, r) => {
        const backend = new CpuBackend();
        const grads = backend.alloc(4, 'grads', 'grads');
        backend.write(viewOf(grads), new Float32Array([3, 4, 0, 0]));
        const recording = { rank: transport.rank, world: transport.world, recv: transport.recv.bind(transport), send: (to: number, tag: MessageTag, payload: Uint8Array) => (tags.push(`${tag.round}/${tag.collective}`), transport.send(to, tag, payload)) };
        return clipOverGroup({ backend, grads, entries, counts: (name) => name === 'shard' || r === 0, group: recording, maxNorm: 1, round: 3, collective: 7 });
      }),
    );
    expect(tags.length).toBeGreaterThan(0);
    expect(new Set(tags)).toEqual(new Set(['3/7']));
  });

  it('three tabs, shards of different norms: every tab scales by the same factor 1 / sqrt(12) (6 decimal places)', async () => {
    const out = await clipGroup([[2, 0, 1, 1], [0, 2, 1, 1], [1, 1, 1, 1]], 1);
    // sumSq: tab 0 counts 4 + 1 + 1, tab 1 4, tab 2 2: 12.
    const scale = 1 / Math.sqrt(12);
    const inputs = [[2, 0, 1, 1], [0, 2, 1, 1], [1, 1, 1, 1]];
    for (const [r, values] of out.entries()) for (const [i, v] of values.entries()) expect(v).toBeCloseTo(inputs[r][i] * scale, 6);
  });
});
