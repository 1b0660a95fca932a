// A room of unequal tabs (simulated: each rank reports a compute time proportional to its samples at its
// own cost per sample) re-splits the global batch by speed through the real strategy (shares=auto), and
// still ends where one tab ends on the same global batch, with replicas bitwise equal after every step.
import { describe, expect, it } from 'vitest';
import type { SharesReport } from '../shared/events';
import { relativeError, testConfig, trainRoom, type RoomRank } from '../lab/parallel-test-support';
import type { LabConfig } from '../lab/config';
import { createParallelHooks, type ParallelContext } from './strategy';
import { createMemoryMesh } from '../collective/memory-transport';
import { BatchShares } from '../train/batch-shares';
import { FIRST_GATHER_AFTER, ShareBalancer, SPEEDS_LAG, type SharesAgreed } from './share-balancer';

// As src/parallel/data-parallel.test.ts: float rounding alone measures ~1e-7 of the distance trained.
const TOLERANCE = 1e-5;
const TOL = TOLERANCE.toExponential();
const SGD = { optimizer: { kind: 'sgd', lr: 0.05, momentum: 0.9, weightDecay: 0 } } as const;

/** Gradient bytes `rank` sent or received in the collectives of `step` (its chunk events). */
function gradientBytes(rank: RoomRank, step: number, direction: 'send' | 'recv'): number {
  return rank.chunks.filter((e) => e.round === step && e.direction === direction).reduce((sum, e) => sum + e.bytes, 0);
}

/**
 * Trains `world` ranks whose compute takes `costs[rank]` ms per sample; records the agreed shares and,
 * per rank and step, how many times the gradients were read back from the backend and the rank's count.
 */
async function unequalRoom(config: LabConfig, costs: number[], recipe = {}) {
  const agreed: SharesReport[] = [];
  const gradReads: { step: number; count: number; reads: number; writes: number; written: number }[][] = costs.map(() => []);
  const room = await trainRoom(costs.length, config, {
    recipe,
    makeHooks: (ctx: ParallelContext) => {
      const reads = gradReads[ctx.transport.rank];
      const read = ctx.backend.read.bind(ctx.backend);
      ctx.backend.read = (view) => {
        if (view.buf === ctx.model().grads) reads[reads.length - 1].reads++;
        return read(view);
      };
      const write = ctx.backend.write.bind(ctx.backend);
      ctx.backend.write = (view, data) => {
        const last = reads[reads.length - 1];
        // Counted from the first step's gradHooks on (the run is built by then).
        if (last && view.buf === ctx.model().grads) {
          last.writes++;
          last.written += view.length;
        }
        write(view, data);
      };
      const hooks = createParallelHooks({
        ...ctx,
        publish: (event) => {
          if (event.type === 'shares' && ctx.transport.rank === 0) agreed.push(event);
          ctx.publish(event);
        },
      });
      const shares = hooks.batchShares;
      const rank = ctx.transport.rank;
      return {
        ...hooks,
        // The buckets are read back when the backward announces them, within the step's last gradHooks.
        gradHooks: (step, micro) => {
          reads.push({ step, count: shares?.countsAt(step)[rank] ?? 0, reads: 0, writes: 0, written: 0 });
          return hooks.gradHooks!(step, micro);
        },
        gradSync: (c) => hooks.gradSync!({ ...c, computeMs: (shares?.countsAt(c.step)[rank] ?? 0) * costs[rank] }),
      };
    },
  });
  return { room, agreed, gradReads };
}

describe('shares of the global batch by speed (shares=auto)', () => {
  for (const [name, recipe] of [['AdamW', {}], ['SGD', SGD]] as const) {
    it(`${name}: 3 ranks at costs 1:1:3 per sample get 10, 10 and 4 of 24 samples, end where one rank ends within ${TOL} of the distance trained, replicas bitwise equal every step`, async () => {
      const config = testConfig({ shares: 'auto', rebalance: 2, steps: 10 });
      const single = await trainRoom(1, config, { recipe });
      const { room, agreed } = await unequalRoom(config, [1, 1, 3], recipe);
      for (const hashes of room.hashesPerStep) expect(new Set(hashes).size).toBe(1);
      // Agreed after steps 1, 3, 5, 7, 9 (0-based), each in force two steps later.
      expect(agreed.map((a) => a.fromStep)).toEqual([3, 5, 7, 9, 11]);
      // Speeds 1:1:1/3 -> 21 spare samples split 9:9:3, plus one each.
      for (const a of agreed) expect(a.counts).toEqual([10, 10, 4]);
      expect(agreed[0].samplesPerSec.map((s) => Math.round(s))).toEqual([1000, 1000, 333]);
      const error = relativeError(room.params[0], single.params[0], single.initial);
      console.log(`${name} unequal shares vs 1 rank: relative error ${error.toExponential(2)}`);
      expect(error).toBeLessThan(TOLERANCE);
    });
  }

  it(`a long period (rebalance=10) also gathers after step ${FIRST_GATHER_AFTER}: the first split by speed is in force from step ${FIRST_GATHER_AFTER + 2}, then every 10 steps; rebalance=6 (too short for it) does not`, async () => {
    const long = await unequalRoom(testConfig({ shares: 'auto', rebalance: 10, steps: 14 }), [1, 1, 3]);
    expect(long.agreed.map((a) => a.fromStep)).toEqual([FIRST_GATHER_AFTER + 2, 11]);
    for (const a of long.agreed) expect(a.counts).toEqual([10, 10, 4]);
    for (const hashes of long.room.hashesPerStep) expect(new Set(hashes).size).toBe(1);
    const short = await unequalRoom(testConfig({ shares: 'auto', rebalance: 6, steps: 14 }), [1, 1, 3]);
    expect(short.agreed.map((a) => a.fromStep)).toEqual([7, 13]);
  });

  it(`accum=2: shares are whole micro-batches (costs 1:2 -> 16 and 8 of 24), one rank's end within ${TOL}`, async () => {
    const config = testConfig({ shares: 'auto', rebalance: 3, steps: 8, accum: 2 });
    const single = await trainRoom(1, config);
    const { room, agreed } = await unequalRoom(config, [1, 2]);
    for (const hashes of room.hashesPerStep) expect(new Set(hashes).size).toBe(1);
    expect(agreed.map((a) => a.counts)).toEqual([[16, 8], [16, 8]]);
    expect(relativeError(room.params[0], single.params[0], single.initial)).toBeLessThan(TOLERANCE);
  });

  for (const [name, recipe] of [['AdamW', {}], ['SGD', SGD]] as const) {
    it(`${name}: a rank too slow to be worth one sample (costs 1:1:100) gets a zero share, stays in the ring with replicas bitwise equal every step, and the room ends where one rank ends within ${TOL}`, async () => {
      const config = testConfig({ shares: 'auto', rebalance: 2, steps: 10 });
      const single = await trainRoom(1, config, { recipe });
      const { room, agreed, gradReads } = await unequalRoom(config, [1, 1, 100], recipe);
      // The zero-share steps read no gradient back (it is known to be zero); the others read theirs.
      const idle = gradReads[2].filter((s) => s.count === 0);
      expect(idle.length).toBeGreaterThan(0);
      for (const s of idle) expect(s.reads, `rank 2, step ${s.step}`).toBe(0);
      for (const s of [...gradReads[2].filter((s) => s.count > 0), ...gradReads[0]]) expect(s.reads, `step ${s.step}`).toBeGreaterThan(0);
      // Every step of every rank, the zero-share one included, ended with the same parameters.
      expect(room.hashesPerStep).toHaveLength(10);
      for (const hashes of room.hashesPerStep) expect(new Set(hashes).size).toBe(1);
      // One sample on rank 2 takes 100 ms, the whole batch on ranks 0 and 1 12 ms: it gets none. It
      // measures nothing while idle and offers its last agreed speed, so the room keeps agreeing.
      expect(agreed.map((a) => a.fromStep)).toEqual([3, 5, 7, 9, 11]);
      for (const a of agreed) expect(a.counts).toEqual([12, 12, 0]);
      for (const a of agreed) expect(Math.round(a.samplesPerSec[2])).toBe(10);
      // On its zero-share steps rank 2 sends no gradient bytes: ranks 0 and 1 reduce between them and
      // rank 0 sends it their average (share-groups.ts).
      for (const s of idle) {
        expect(gradientBytes(room.ranks[2], s.step, 'send'), `rank 2 sends at step ${s.step}`).toBe(0);
        expect(gradientBytes(room.ranks[2], s.step, 'recv'), `rank 2 receives at step ${s.step}`).toBe(room.ranks[2].run.model.grads.length * 4);
      }
      const error = relativeError(room.params[0], single.params[0], single.initial);
      console.log(`${name} with a zero share vs 1 rank: relative error ${error.toExponential(2)}`);
      expect(error).toBeLessThan(TOLERANCE);
    });
  }

  it(`all but one rank at zero (costs 100:1:100 -> [0, 24, 0]): the idle ranks send no gradient bytes and write the average back once per span, replicas bitwise equal every step, one rank's end within ${TOL}`, async () => {
    // Buckets of 64 floats: the larger tensors' spans are cut into several pieces.
    const config = testConfig({ shares: 'auto', rebalance: 2, steps: 10, bucket: 64 });
    const single = await trainRoom(1, config);
    const { room, agreed, gradReads } = await unequalRoom(config, [100, 1, 100]);
    for (const a of agreed) expect(a.counts).toEqual([0, 24, 0]);
    for (const hashes of room.hashesPerStep) expect(new Set(hashes).size).toBe(1);
    for (const rank of [0, 2]) {
      const idle = gradReads[rank].filter((s) => s.count === 0);
      expect(idle.map((s) => s.step)).toEqual([3, 4, 5, 6, 7, 8, 9]);
      for (const s of idle) expect(gradientBytes(room.ranks[rank], s.step, 'send'), `rank ${rank} step ${s.step}`).toBe(0);
      // With no backward to overlap, the average is written back once per bucket's span, not per piece:
      // every gradient element once, in fewer writes than the contributor's pieces.
      const pieceWrites = gradReads[1].find((s) => s.step === 9)!.writes;
      for (const s of idle) {
        expect(s.written).toBe(room.ranks[rank].run.model.grads.length);
        expect(s.writes).toBeLessThan(pieceWrites);
      }
    }
    // Nothing to reduce with one contributor: rank 1 only sends, one copy to each idle rank.
    for (const step of [3, 9]) {
      expect(gradientBytes(room.ranks[1], step, 'recv')).toBe(0);
      expect(gradientBytes(room.ranks[1], step, 'send')).toBe(2 * room.ranks[1].run.model.grads.length * 4);
    }
    const error = relativeError(room.params[0], single.params[0], single.initial);
    console.log(`AdamW with one contributor vs 1 rank: relative error ${error.toExponential(2)}`);
    expect(error).toBeLessThan(TOLERANCE);
  });

  it('shares=equal never re-splits: every step cuts the even shares', async () => {
    const { room, agreed } = await unequalRoom(testConfig({ shares: 'equal', rebalance: 2 }), [1, 3]);
    expect(agreed).toEqual([]);
    expect(room.ranks.every((r) => r.hooks.batchShares === undefined)).toBe(true);
  });

  it(`the parity tolerance catches a share whose gradient weight is wrong (weights forced to 1 fail ${TOL})`, async () => {
    const config = testConfig({ shares: 'auto', rebalance: 2, steps: 10 });
    const single = await trainRoom(1, config, { recipe: SGD });
    const agreed: SharesReport[] = [];
    const room = await trainRoom(3, config, {
      recipe: SGD,
      makeHooks: (ctx: ParallelContext) => {
        const hooks = createParallelHooks({ ...ctx, publish: (e) => e.type === 'shares' && agreed.push(e) });
        const shares = hooks.batchShares!;
        // The deliberate bug: every rank's gradient weighted as if the shares were even.
        shares.weightOf = () => 1;
        const rank = ctx.transport.rank;
        return { ...hooks, gradSync: (c) => hooks.gradSync!({ ...c, computeMs: shares.countsAt(c.step)[rank] * [1, 1, 3][rank] }) };
      },
    });
    expect(agreed.length).toBeGreaterThan(0);
    const error = relativeError(room.params[0], single.params[0], single.initial);
    console.log(`SGD with unweighted unequal shares: relative error ${error.toExponential(2)}`);
    expect(error).toBeGreaterThan(100 * TOLERANCE);
  });
});

describe(`the speeds' all-gather with a re-balancing period above SPEEDS_LAG (${SPEEDS_LAG})`, () => {
  /** Two balancers on the in-memory ring, every 10 steps, over a global batch of 24. */
  function pair() {
    const transports = createMemoryMesh(2);
    const shares = transports.map(() => new BatchShares(24, 2));
    const agreed: SharesAgreed[][] = [[], []];
    const balancers = transports.map((transport, rank) => new ShareBalancer({ transport, shares: shares[rank], every: 10, onAgreed: (a) => agreed[rank].push(a) }));
    return { shares, agreed, balancers };
  }
  const within = async (promise: Promise<unknown>, ms: number) => {
    let done = false;
    void promise.then(() => (done = true));
    await new Promise((resolve) => setTimeout(resolve, ms));
    return done;
  };

  it(`with a zero share in force a rank passes the gathering step without waiting, is held ${SPEEDS_LAG} steps later until the other has gathered, and both set the split from the same step; with none, no lag`, async () => {
    const { shares, agreed, balancers } = pair();
    const [fast, slow] = balancers;
    const both = (step: number, ms: [number, number]) => Promise.all(balancers.map((b, rank) => b.afterStep(step, ms[rank])));
    // Even split (no zero): the first gathering (after step FIRST_GATHER_AFTER = 2, a period of 10) is
    // agreed at once. 12 samples in 12 ms (1000/s) and in 12 s (1/s): the slow rank is not worth one sample.
    for (let s = 0; s <= 3; s++) await both(s, [12, 12_000]);
    for (const rank of [0, 1]) expect(agreed[rank]).toEqual([{ fromStep: FIRST_GATHER_AFTER + 2, counts: [24, 0], samplesPerSec: [1000, 1] }]);
    // From step 4 the slow rank computes nothing; its steps still take 5 ms (zeroing, waiting).
    for (let s = 4; s <= 8; s++) await both(s, [12, 5]);
    // Split [24, 0] in force: the gathering after step 9 does not hold the fast rank at steps 9-11 ...
    for (let s = 9; s <= 11; s++) expect(await within(fast.afterStep(s, 12), 100), `step ${s}`).toBe(true);
    // ... but at step 9 + SPEEDS_LAG, until the slow rank has offered its speed.
    const held = fast.afterStep(9 + SPEEDS_LAG, 12);
    expect(await within(held, 30)).toBe(false);
    for (let s = 9; s <= 9 + SPEEDS_LAG; s++) await slow.afterStep(s, 5);
    await held;
    // Rank 0: 12 + 6 x 24 samples over steps 3-9 in 84 ms; rank 1: its 12 samples of step 3 over the
    // window's 12,000 + 6 x 5 ms.
    for (const rank of [0, 1]) {
      expect(agreed[rank][1]).toEqual({ fromStep: 9 + SPEEDS_LAG + 2, counts: [24, 0], samplesPerSec: [(156 * 1000) / 84, (12 * 1000) / 12_030] });
      expect(shares[rank].countsAt(9 + SPEEDS_LAG + 2)).toEqual([24, 0]);
    }
  });

  it('with a period of SPEEDS_LAG or less the gathering is awaited where it starts (no lag)', async () => {
    const transports = createMemoryMesh(2);
    const shares = transports.map(() => new BatchShares(24, 2));
    const balancers = transports.map((transport, rank) => new ShareBalancer({ transport, shares: shares[rank], every: SPEEDS_LAG }));
    for (let s = 0; s < SPEEDS_LAG; s++) await Promise.all(balancers.map((b, rank) => b.afterStep(s, rank === 0 ? 12 : 24)));
    expect(shares[0].countsAt(SPEEDS_LAG + 1)).toEqual([16, 8]);
  });
});
