// The all-reduce among the tabs with samples and the copies to the tabs without, over the in-memory
// mesh: every rank ends with the same bits, the result is the contributors' mean, and an idle rank
// sends nothing.
import { describe, expect, it } from 'vitest';
import { runAllReduce } from '../collective/collectives';
import { secondsOf } from '../collective/cost-model';
import { createMemoryMesh } from '../collective/memory-transport';
import type { ChunkEvent, Transport } from '../collective/types';
import { Rng } from '../data/random';
import { distributionCosts, reduceByShares, sharePlanOf } from './share-groups';

const LENGTH = 1000;
// Float32 sums of up to 5 values of magnitude <= 1, compared with the float64 mean.
const TOLERANCE = 1e-6;

function inputs(counts: readonly number[], seed: number): Float32Array[] {
  const rng = new Rng(seed);
  // An idle rank's gradient is exactly zero (the trainer fills it and computes nothing).
  return counts.map((count) => Float32Array.from({ length: LENGTH }, () => (count > 0 ? rng.uniform() * 2 - 1 : 0)));
}

async function reduceAll(counts: readonly number[], data: Float32Array[], wire?: 'f32' | 'f16') {
  const mesh = createMemoryMesh(counts.length);
  const events: ChunkEvent[] = [];
  const stats = await Promise.all(mesh.map((t: Transport, rank) => reduceByShares(t, data[rank], counts, { round: 7, collective: 16, wire, onEvent: (e) => events.push(e) })));
  return { stats, events };
}

/** Count patterns for a room of `world`: no zeros, one zero (first, last), all but one zero. */
function patterns(world: number): number[][] {
  const all = Array.from({ length: world }, (_, r) => r + 1);
  const firstZero = all.map((c, r) => (r === 0 ? 0 : c));
  const lastZero = all.map((c, r) => (r === world - 1 ? 0 : c));
  const onlyMiddle = all.map((_, r) => (r === Math.floor(world / 2) ? 12 : 0));
  return [all, firstZero, lastZero, onlyMiddle];
}

describe('reduceByShares: contributors reduce, idle ranks receive', () => {
  for (let world = 2; world <= 5; world++) {
    for (const counts of patterns(world)) {
      it(`world ${world}, counts [${counts.join(', ')}]: every rank ends with the same bits, the contributors' mean within ${TOLERANCE}, idle ranks send 0 bytes`, async () => {
        const data = inputs(counts, world * 100 + counts.indexOf(0));
        const original = data.map((d) => d.slice());
        const plan = sharePlanOf(counts);
        const { stats } = await reduceAll(counts, data);
        for (let rank = 1; rank < world; rank++) expect(Buffer.from(data[rank].buffer).equals(Buffer.from(data[0].buffer)), `rank ${rank}`).toBe(true);
        let worst = 0;
        for (let i = 0; i < LENGTH; i++) {
          const mean = plan.contributors.reduce((sum, r) => sum + original[r][i], 0) / plan.contributors.length;
          worst = Math.max(worst, Math.abs(data[0][i] - mean));
        }
        expect(worst).toBeLessThan(TOLERANCE);
        for (const rank of plan.idle) {
          expect(stats[rank].bytesSent, `idle rank ${rank}`).toBe(0);
          expect(stats[rank].bytesReceived).toBe(LENGTH * 4);
        }
        expect(stats.every((s) => s.wholeRoom === (plan.idle.length === 0))).toBe(true);
        if (plan.contributors.length === 1) {
          // Nothing to reduce: the one contributor's gradient, bit for bit, everywhere.
          expect(Buffer.from(data[0].buffer).equals(Buffer.from(original[plan.contributors[0]].buffer))).toBe(true);
          expect(stats[plan.contributors[0]].bytesSent).toBe(plan.idle.length * LENGTH * 4);
        }
      });
    }
  }

  it('every rank contributing: the same bits as the plain ring all-reduce', async () => {
    const counts = [3, 1, 2, 5];
    const data = inputs(counts, 1);
    const ring = data.map((d) => d.slice());
    await reduceAll(counts, data);
    await Promise.all(createMemoryMesh(4).map((t, rank) => runAllReduce(t, ring[rank], { round: 7, collective: 16, average: true })));
    for (let rank = 0; rank < 4; rank++) expect(Buffer.from(data[rank].buffer).equals(Buffer.from(ring[rank].buffer))).toBe(true);
  });

  it('wire f16 with one contributor: the idle ranks receive exactly the bits the contributor keeps', async () => {
    const counts = [0, 8, 0];
    const data = inputs(counts, 2);
    const original = data[1].slice();
    await reduceAll(counts, data, 'f16');
    // The contributor rounded its vector to fp16 to send it (so it differs from what it computed)...
    expect(Buffer.from(data[1].buffer).equals(Buffer.from(original.buffer))).toBe(false);
    // ...and keeps what it sent.
    for (const rank of [0, 2]) expect(Buffer.from(data[rank].buffer).equals(Buffer.from(data[1].buffer))).toBe(true);
  });

  it('the dashboard events name room ranks, and no idle rank sends a chunk', async () => {
    const counts = [0, 4, 0, 4, 0];
    const { events } = await reduceAll(counts, inputs(counts, 3));
    const sends = events.filter((e) => e.direction === 'send');
    expect(new Set(sends.map((e) => e.rank))).toEqual(new Set([1, 3]));
    // The ring between 1 and 3, and the idle ranks dealt round-robin: 0 and 4 from rank 1, 2 from rank 3.
    const links = new Set(sends.map((e) => `${e.rank}->${e.peer}`));
    expect(links).toEqual(new Set(['1->3', '3->1', '1->0', '1->4', '3->2']));
  });
});

describe('reduceByShares when a tab leaves', () => {
  it('the idle ranks waiting on a contributor that left get a lost-peer error (the room re-forms), not a hang', async () => {
    const mesh = createMemoryMesh(3);
    mesh[1].kill('rank 1 closed its tab');
    const counts = [0, 8, 0];
    const results = await Promise.allSettled([0, 2].map((rank) => reduceByShares(mesh[rank], new Float32Array(LENGTH), counts, { round: 1, collective: 16 })));
    for (const r of results) {
      expect(r.status).toBe('rejected');
      expect(String((r as PromiseRejectedResult).reason.cause?.message ?? (r as PromiseRejectedResult).reason)).toMatch(/rank 1/);
    }
  });
});

describe('sharePlanOf', () => {
  it('deals the idle ranks round-robin over the contributors, in rank order', () => {
    expect(sharePlanOf([0, 5, 0, 0, 3])).toEqual({ contributors: [1, 4], idle: [0, 2, 3], sendsTo: [[0, 3], [2]] });
    expect(sharePlanOf([2, 2])).toEqual({ contributors: [0, 1], idle: [], sendsTo: [[], []] });
  });

  it('refuses counts with no contributor or a count that is not a whole number >= 0', () => {
    expect(() => sharePlanOf([0, 0])).toThrow(/no rank has a share/);
    expect(() => sharePlanOf([1, -1])).toThrow(/integers >= 0/);
    expect(() => sharePlanOf([1.5, 2])).toThrow(/integers >= 0/);
  });

  it('refuses counts for another room size', async () => {
    const [t] = createMemoryMesh(2);
    await expect(reduceByShares(t, new Float32Array(4), [4], { round: 0, collective: 16 })).rejects.toThrow(/1 ranks in a room of 2/);
  });
});

describe('distributionCosts', () => {
  it('in the cost model, direct sends cost no more than a chain for 1-4 receivers, and less from 2 receivers or 2 parts', () => {
    const link = { alpha: 2e-3, beta: 1e-8, gamma: 5e-9 };
    for (let receivers = 1; receivers <= 4; receivers++) {
      for (const parts of [1, 4]) {
        const { direct, chain } = distributionCosts(receivers, 1 << 20, parts);
        expect(secondsOf(direct, link)).toBeLessThanOrEqual(secondsOf(chain, link));
        if (receivers > 1) expect(secondsOf(direct, link)).toBeLessThan(secondsOf(chain, link));
      }
    }
    expect(() => distributionCosts(0, 10, 1)).toThrow(/receivers >= 1/);
  });
});
