// The speed measurement of ShareBalancer (share-balancer.ts), where share-balancer.test.ts, whose ranks
// each take the same time every step, leaves room for a wrong one: step 0's time (pipeline compilation)
// must not count, a rank with nothing measured offers its last agreed speed, a round where any rank
// offers no usable speed keeps the split, and the option checks. Two balancers on an in-memory ring,
// fed chosen times, so the agreed counts follow from the arithmetic alone.
import { describe, expect, it } from 'vitest';
import { createMemoryMesh } from '../collective/memory-transport';
import { BatchShares, proportionalCounts } from '../train/batch-shares';
import { ShareBalancer, type SharesAgreed } from './share-balancer';

/** A room of `world` balancers over one global batch of 24 samples, re-balancing every `every` steps. */
function room(world: number, every: number) {
  const transports = createMemoryMesh(world);
  const agreed: SharesAgreed[][] = transports.map(() => []);
  const shares = transports.map(() => new BatchShares(24, world));
  const balancers = transports.map((transport, rank) => new ShareBalancer({ transport, shares: shares[rank], every, onAgreed: (a) => agreed[rank].push(a) }));
  /** Every rank's afterStep of `step`, with its compute milliseconds. */
  const step = (s: number, ms: number[]) => Promise.all(balancers.map((b, rank) => b.afterStep(s, ms[rank])));
  return { shares, agreed, step };
}

describe('ShareBalancer measures speed', () => {
  it('step 0\'s time is left out: a rank slow only at step 0 gets an even share; then 2:1 speeds give 16 and 8 of 24', async () => {
    const r = room(2, 2);
    await r.step(0, [10_000, 10]); // compiling pipelines: says nothing about speed
    await r.step(1, [12, 12]); // 12 samples in 12 ms each: equal
    expect(r.agreed[0].at(-1)).toMatchObject({ fromStep: 3, counts: [12, 12], samplesPerSec: [1000, 1000] });
    await r.step(2, [6, 12]);
    await r.step(3, [6, 12]);
    // Rank 0 computed 24 samples in 12 ms (2000/s), rank 1 24 in 24 ms (1000/s).
    expect(r.agreed[1].at(-1)).toMatchObject({ fromStep: 5, counts: [16, 8], samplesPerSec: [2000, 1000] });
    expect(r.shares[0].countsAt(5)).toEqual([16, 8]);
  });

  it('a step with no compute time (0 ms) adds neither samples nor time', async () => {
    const r = room(2, 2);
    await r.step(0, [1, 1]);
    await r.step(1, [0, 12]); // rank 0 measured nothing this window: it offers its last agreed speed, 0
    // A speed of 0 is no information: the room keeps the even split and agrees nothing.
    expect(r.agreed[0]).toEqual([]);
    await r.step(2, [12, 12]);
    await r.step(3, [0, 24]); // rank 0: 12 samples in 12 ms; rank 1: 24 in 36 ms
    expect(r.agreed[0].at(-1)?.samplesPerSec).toEqual([1000, 24_000 / 36]);
  });

  it('a rank with nothing measured offers the speed it was last agreed at', async () => {
    const r = room(2, 1);
    await r.step(0, [1, 1]); // step 0 alone: nothing measured, speed 0 everywhere, nothing agreed
    expect(r.agreed[0]).toEqual([]);
    await r.step(1, [12, 24]); // 1000/s and 500/s: 16 and 8
    expect(r.agreed[0].at(-1)).toMatchObject({ counts: [16, 8], samplesPerSec: [1000, 500] });
    // Rank 0 measured nothing (0 ms): it offers 1000 again. Rank 1: 12 samples (step 2 still cuts the
    // even split; the one agreed after step 1 starts at step 3) in 6 ms.
    await r.step(2, [0, 6]);
    expect(r.agreed[0].at(-1)?.samplesPerSec).toEqual([1000, 2000]);
  });

  it('a rank with a zero share offers its last agreed speed even when it reports compute time; no onAgreed listener is needed', async () => {
    const transports = createMemoryMesh(2);
    const shares = transports.map(() => new BatchShares(24, 2));
    const balancers = transports.map((transport, rank) => new ShareBalancer({ transport, shares: shares[rank], every: 1 }));
    const step = (s: number, ms: number[]) => Promise.all(balancers.map((b, rank) => b.afterStep(s, ms[rank])));
    await step(0, [1, 1]);
    await step(1, [12, 24]); // 1000/s and 500/s: 16 and 8 from step 3
    expect(shares[0].countsAt(3)).toEqual([16, 8]);
    for (const s of shares) s.set(4, [24, 0]);
    // Rank 1 has no samples at step 4 but reports 5 ms (its step's overhead): it offers 500 again, and
    // rank 0's 24 samples in 12 ms make 2000/s: the split of 2000:500 (a zero speed would have kept [24, 0]).
    await step(4, [12, 5]);
    expect(shares[1].countsAt(6)).toEqual(proportionalCounts([2000, 500], 24, 1));
    expect(shares[1].countsAt(6)[1]).toBeGreaterThan(0);
  });

  it('refuses a non-integer or zero re-balancing period and shares for another room size', () => {
    const [transport] = createMemoryMesh(2);
    const shares = new BatchShares(24, 2);
    expect(() => new ShareBalancer({ transport, shares, every: 0 })).toThrow(/positive integer/);
    expect(() => new ShareBalancer({ transport, shares, every: 1.5 })).toThrow(/positive integer/);
    expect(() => new ShareBalancer({ transport, shares: new BatchShares(24, 3), every: 1 })).toThrow(/ranks in a room of 2/);
    expect(() => new ShareBalancer({ transport, shares, every: 1 })).not.toThrow();
  });
});
