import { describe, expect, it } from 'vitest';
import { runAllReduce } from './collectives';
import { GroupTransport } from './group-transport';
import { createMemoryMesh } from './memory-transport';

describe('GroupTransport', () => {
  it('runs one all-reduce per group on one mesh: the groups {0, 2} and {1, 3} sum only their own', async () => {
    const mesh = createMemoryMesh(4);
    const groups = [[0, 2], [1, 3]];
    const data = mesh.map((t) => new Float32Array([t.rank + 1, 10 * (t.rank + 1)]));
    await Promise.all(
      mesh.map((t, r) => runAllReduce(new GroupTransport(t, groups[r % 2]), data[r], { round: 0, collective: 0 })),
    );
    expect(data.map((d) => Array.from(d))).toEqual([[4, 40], [6, 60], [4, 40], [6, 60]]);
    for (const t of mesh) expect(t.pendingMessages).toBe(0);
  });

  it('refuses a group without this rank, with duplicates, or with ranks outside the room', () => {
    const [t0] = createMemoryMesh(3);
    expect(new GroupTransport(t0, [2, 0]).rank).toBe(1);
    expect(() => new GroupTransport(t0, [1, 2])).toThrow(/room rank 0 is not a member of the group \[1, 2\]/);
    expect(() => new GroupTransport(t0, [0, 0])).toThrow(/distinct members/);
    expect(() => new GroupTransport(t0, [0, 3])).toThrow(/group member 3 outside a room of 3/);
    expect(() => new GroupTransport(t0, [0, 1]).send(2, { round: 0, collective: 0, chunk: 0 }, new Uint8Array(4))).toThrow(/group rank 2 outside a group of 2/);
  });
});
