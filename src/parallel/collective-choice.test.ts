// The per-bucket all-reduce picker: the ping-pong measures a link's alpha and beta (an in-memory ring
// with a set delay and rate), every rank agrees on one fit and so picks alike, the cost model's choice
// follows the message size, and refits are agreed by the room.
import { describe, expect, it } from 'vitest';
import { createMemoryMesh } from '../collective/memory-transport';
import { CollectivePicker, linkFitLog, probeLink, slowestLink, type LinkFitReport } from './collective-choice';

describe('probeLink', () => {
  it('20 ms and 5 MB/s links: alpha within 15-60 ms and 1/beta within 2.5-6 MB/s (timers on a shared machine run late, never early)', async () => {
    const mesh = createMemoryMesh(3, { latencyMs: 20, bytesPerSec: 5e6 });
    const samples = await Promise.all(mesh.map((t) => probeLink(t, 0)));
    for (const rank of samples) {
      const [small, large] = rank;
      expect(small.seconds).toBeGreaterThanOrEqual(0.015);
      expect(large.seconds).toBeGreaterThan(small.seconds);
      const beta = (large.seconds - small.seconds) / (large.bytes - small.bytes);
      expect(1 / beta / 1e6).toBeGreaterThan(2.5);
      expect(1 / beta / 1e6).toBeLessThan(6);
      expect(small.seconds).toBeLessThan(0.06);
    }
  });
});

describe('CollectivePicker', () => {
  it('a fixed choice is used for every size, with no probe', async () => {
    const [t] = createMemoryMesh(2);
    const picker = new CollectivePicker({ choice: 'tree', transport: t });
    await picker.beforeBucket(0);
    expect([picker.pick(64), picker.pick(1 << 24), picker.agreed]).toEqual(['tree', 'tree', null]);
    expect(() => new CollectivePicker({ choice: 'star' as 'ring', transport: t })).toThrow(/collective must be one of auto, ring, tree, rhd, naive/);
  });

  it('auto, 5 ranks over 20 ms links: every rank holds the same fit and picks alike; 4 KiB goes to halving-doubling, 4 MiB to the ring; refits are agreed', async () => {
    const mesh = createMemoryMesh(5, { latencyMs: 20, bytesPerSec: 5e6 });
    const reports: LinkFitReport[][] = mesh.map(() => []);
    const pickers = mesh.map((transport, rank) => new CollectivePicker({ choice: 'auto', transport, refitEvery: 2, onFit: (r) => reports[rank].push(r) }));
    await Promise.all(pickers.map((p) => p.beforeBucket(0)));
    const fit = pickers[0].agreed!;
    for (const p of pickers) expect(p.agreed).toEqual(fit);
    for (const bytes of [256, 4096, 1 << 22]) expect(new Set(pickers.map((p) => p.pick(bytes))).size).toBe(1);
    // 5 ranks: ring 8 alpha + 1.6 n beta, tree 6 alpha + 6 n beta, rhd 6 alpha + 3.5 n beta (the fold).
    expect([pickers[0].pick(4096), pickers[0].pick(1 << 22)]).toEqual(['rhd', 'ring']);
    expect(reports.map((r) => r[0].kind)).toEqual(mesh.map(() => 'formed'));
    const log = linkFitLog(reports[0][0]);
    expect(log.type === 'log' && log.message).toMatch(/^collective=auto, links probed: alpha [\d.]+ ms, beta [\d.]+ MB\/s; 256 B: rhd \(ring [\d.]+, tree [\d.]+, rhd [\d.]+ ms predicted\)/);
    // Training samples (buckets slower than predicted, each rank differently) move the next agreed fit on every rank alike.
    const ringSeconds = (bytes: number) => 8 * fit.alpha + 1.6 * bytes * fit.beta;
    for (const [rank, p] of pickers.entries()) {
      p.record('ring', 1 << 20, 2 * ringSeconds(1 << 20));
      p.endStep(0);
      p.record('ring', 1 << 20, (2 + rank) * ringSeconds(1 << 20));
      p.endStep(1);
    }
    await Promise.all(pickers.map((p) => p.beforeBucket(2)));
    expect(reports.map((r) => r.length)).toEqual(mesh.map(() => 2));
    for (const p of pickers) expect(p.agreed).toEqual(pickers[0].agreed);
    expect(pickers[0].agreed!.beta).toBeGreaterThan(fit.beta);
    expect(reports[0][1].buckets[0]).toMatchObject({ bytes: 1 << 20, algorithm: 'ring' });
  });

  it('the slowest link bounds the room: the largest alpha and the largest beta', () => {
    expect(slowestLink([{ alpha: 1, beta: 4 }, { alpha: 3, beta: 2 }])).toEqual({ alpha: 3, beta: 4 });
  });
});
