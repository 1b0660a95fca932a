import { describe, expect, it } from 'vitest';
import { createMemoryMesh } from './memory-transport';
import { AsyncServerState, acceptGradient, mayProceed, runSyncParameterServerRound } from './ps';
import { exactSum, integerInput } from './test-support';
import type { ChunkEvent } from './types';

describe('synchronous parameter-server round', () => {
  it('leaves every rank with the server\'s updated parameters', async () => {
    const world = 5;
    const server = 2;
    const mesh = createMemoryMesh(world);
    const grads = mesh.map((t) => integerInput(t.rank, 30));
    const params = mesh.map((t) => (t.rank === server ? new Float32Array(30).fill(3) : new Float32Array(30)));
    const events: ChunkEvent[] = [];
    await Promise.all(
      mesh.map((t, r) =>
        runSyncParameterServerRound(t, grads[r], params[r], {
          server,
          round: 4,
          collective: 0,
          average: true,
          onEvent: (e) => events.push(e),
          update: (g, p) => p.forEach((v, i) => (p[i] = v - g[i])),
        }),
      ),
    );
    // Same two roundings as the server: the mean is stored as f32, then the update.
    const want = exactSum(world, 30).map((g) => 3 - Math.fround(g / world));
    for (const p of params) expect(Array.from(p)).toEqual(Array.from(want));
    // A star: every message has the server at one end; the server's link carries (N-1) vectors each way.
    expect(events.every((e) => e.rank === server || e.peer === server)).toBe(true);
    const serverReceived = events.filter((e) => e.rank === server && e.direction === 'recv').reduce((n, e) => n + e.bytes, 0);
    expect(serverReceived).toBe((world - 1) * 30 * 4);
  });
});

describe('bounded staleness', () => {
  it('lets a worker run at most `bound` steps ahead of the slowest', () => {
    expect(mayProceed(5, 5, 0).ok).toBe(true);
    expect(mayProceed(6, 5, 0).ok).toBe(false);
    expect(mayProceed(7, 5, 2).ok).toBe(true);
    const refused = mayProceed(8, 5, 2);
    expect(refused.ok).toBe(false);
    if (!refused.ok) expect(refused.reason).toMatch(/3 steps ahead/);
    expect(() => mayProceed(1, 0, -1)).toThrow(/bound/);
  });

  it('drops gradients staler than the bound, and ones from the future', () => {
    expect(acceptGradient(10, 12, 2).ok).toBe(true);
    expect(acceptGradient(9, 12, 2).ok).toBe(false);
    expect(acceptGradient(13, 12, 2).ok).toBe(false);
  });

  it('tracks versions and clocks on the server', () => {
    const server = new AsyncServerState(2, 1);
    expect(server.push(0, 0).ok).toBe(true); // version 0 -> 1
    expect(server.mayStart(0).ok).toBe(true); // worker 0 at clock 1, slowest at 0: 1 ahead
    expect(server.push(0, 1).ok).toBe(true); // version 2
    expect(server.mayStart(0).ok).toBe(false); // 2 ahead of worker 1
    const stale = server.push(1, 0); // computed on version 0, server at 2: staleness 2 > 1
    expect(stale.ok).toBe(false);
    expect(server.version).toBe(2);
    expect(server.clockOf(1)).toBe(1);
    expect(server.mayStart(0).ok).toBe(true);
    expect(() => server.push(2, 0)).toThrow(/no worker/);
  });
});
