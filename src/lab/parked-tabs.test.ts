// Parked tabs over the in-memory transport: ranks at unequal simulated speeds (each reports a compute
// time of its samples times its own cost per sample) train a shares=auto room through the real strategy
// with idle ranks parked, in the run loop's order (session.ts: a parked rank skips the step and is
// brought back when parked-tabs.ts says; a contributor hands its checkpoint over after its step). The
// replicas that hold a step's state are bitwise equal at every step, the parked ones take exactly the
// contributor's state when brought back, and the room ends where one rank ends.
import { describe, expect, it } from 'vitest';
import { createMemoryMesh, type MemoryTransport } from '../collective/memory-transport';
import { CpuBackend } from '../engine/cpu-backend';
import { viewOf } from '../engine/backend';
import { paramsHash } from '../model/layout';
import type { Mlp } from '../model/mlp';
import { createParallelHooks, type ParallelContext, type ParallelHooks } from '../parallel/strategy';
import { captureCheckpoint, loadCheckpoint, restoreCheckpoint } from '../train/checkpoint';
import { classifierRun, type Run } from '../train/recipes';
import { chooseSource } from './elastic/roster';
import type { LabConfig } from './config';
import { contextFor, relativeError, spirals, testConfig, trainRoom } from './parallel-test-support';
import { BACKUP_BOUNDARIES, handOverState, ParkedTabs, parkedBackupEvery, takeOverState } from './parked-tabs';
import { recipeFor } from './recipe';

// As src/parallel/share-balancer.test.ts: float rounding alone measures ~1e-7 of the distance trained.
const TOLERANCE = 1e-5;
const TOL = TOLERANCE.toExponential();

interface RankLog {
  /** Completed steps -> this rank's parameter hash, at the steps it holds the room's state. */
  held: Map<number, string>;
  satOut: number[];
  broughtBack: number[];
  handedOver: number[];
  /** Gradient read-backs (backend.read of the gradient buffer) at each step it trained (0-based). */
  gradReads: Map<number, number>;
}

/**
 * Trains a room whose rank r costs `costs[r]` ms per sample. `wholeRoomAt`: steps that need every tab
 * equal (a checkpoint or a strategy switch). `backupEvery`: ParkingRules.backupEvery (default: never,
 * as outside an elastic room). `vanish`: this rank leaves once it has completed that many steps.
 */
async function parkedRoom(
  config: LabConfig,
  costs: number[],
  { wholeRoomAt = () => false, backupEvery = Number.POSITIVE_INFINITY, vanish }: { wholeRoomAt?: (t: number) => boolean; backupEvery?: number; vanish?: { rank: number; after: number } } = {},
) {
  const world = costs.length;
  const recipe = recipeFor(config, world);
  if (recipe.kind !== 'classifier') throw new Error('test rooms train the MLP');
  const transports = createMemoryMesh(world) as MemoryTransport[];
  const total = recipe.recipe.steps;
  const logs: RankLog[] = costs.map(() => ({ held: new Map(), satOut: [], broughtBack: [], handedOver: [], gradReads: new Map() }));
  const ranks = transports.map((transport) => {
    const backend = new CpuBackend();
    let run: Run<Mlp> | undefined;
    const hooks: ParallelHooks = createParallelHooks({ ...contextFor(config, backend, transport, () => run, recipe.recipe.microBatches), parkIdle: true });
    const shares = hooks.batchShares!;
    const rank = transport.rank;
    const { replicasEqualEveryStep: _, skipParkedStep, ...extras } = hooks;
    run = classifierRun(backend, spirals, { ...recipe.recipe, logEvery: 1 }, { world, rank }, {
      ...extras,
      gradSync: (c) => hooks.gradSync!({ ...c, computeMs: shares.countsAt(c.step)[rank] * costs[rank] }),
    });
    const read = backend.read.bind(backend);
    backend.read = (view) => {
      const reads = logs[rank].gradReads;
      if (view.buf === run!.model.grads) reads.set(run!.trainer.step, (reads.get(run!.trainer.step) ?? 0) + 1);
      return read(view);
    };
    const parking = new ParkedTabs({ countsAt: (s) => shares.countsAt(s), steps: total, wholeRoomAt, backupEvery });
    return { transport, backend, run, parking, skip: skipParkedStep!, hash: async () => paramsHash(await backend.read(viewOf(run!.model.params))) };
  });
  const initial = await ranks[0].backend.read(viewOf(ranks[0].run.model.params));
  const outcomes = await Promise.allSettled(
    ranks.map(async ({ transport, backend, run, parking, skip, hash }) => {
      const rank = transport.rank;
      const log = logs[rank];
      let step = 0;
      while (step < total) {
        if (parking.parkedAt(step, rank)) {
          await skip(step);
          step++;
          log.satOut.push(step);
          if (!parking.bringBackAt(step, rank)) continue;
          restoreCheckpoint(backend, run, loadCheckpoint(await takeOverState(parking, transport, step)), 'resume', { recipe: recipe.recipe, world });
          expect(run.trainer.step).toBe(step);
          log.broughtBack.push(step);
        } else {
          await run.trainer.trainStep();
          step = run.trainer.step;
          const sent = await handOverState(parking, transport, step, () => captureCheckpoint(backend, run, { recipe: recipe.recipe, world, rank }));
          if (sent.receivers > 0) log.handedOver.push(step);
        }
        log.held.set(step, await hash());
        if (vanish?.rank === rank && step === vanish.after) {
          transport.kill(`rank ${rank} closed its tab`);
          return;
        }
      }
    }),
  );
  const params = await Promise.all(ranks.map(({ backend, run }) => backend.read(viewOf(run.model.params))));
  return { logs, outcomes, params, initial, ranks, total };
}

/** Every step's holders hold the same bits, and every step is held by at least one rank. */
function expectEqualHolders(logs: RankLog[], total: number): void {
  for (let t = 1; t <= total; t++) {
    const hashes = logs.flatMap((log) => (log.held.has(t) ? [log.held.get(t)!] : []));
    expect(hashes.length, `holders of step ${t}`).toBeGreaterThan(0);
    expect(new Set(hashes).size, `hashes after step ${t}`).toBe(1);
  }
}

/** The same room without parking: the idle ranks receive the contributors' average every step (share-groups.ts). */
async function handOutRoom(config: LabConfig, costs: number[]) {
  return trainRoom(costs.length, config, {
    makeHooks: (ctx: ParallelContext) => {
      const hooks = createParallelHooks(ctx);
      const shares = hooks.batchShares!;
      return { ...hooks, gradSync: (c) => hooks.gradSync!({ ...c, computeMs: shares.countsAt(c.step)[ctx.transport.rank] * costs[ctx.transport.rank] }) };
    },
  });
}

describe('parked tabs (shares=auto): a rank with no samples sits the step out and is brought back to the room state', () => {
  it(`costs 100:1:100 ([0, 24, 0] from step 5): the idle ranks sit steps 5-13 out and are brought back only when needed: at 7 (whole room), 8 (the lowest parked rank alone: backup every 8) and 14 (last), not at the re-balancing boundaries 8 and 12; holders bitwise equal every step; one rank's end within ${TOL}`, async () => {
    const config = testConfig({ shares: 'auto', rebalance: 4, steps: 14 });
    const single = await trainRoom(1, config);
    const { logs, outcomes, params, total, ranks } = await parkedRoom(config, [100, 1, 100], { wholeRoomAt: (t) => t === 7, backupEvery: 8 });
    for (const o of outcomes) expect(o.status).toBe('fulfilled');
    for (const rank of [0, 2]) {
      expect(logs[rank].satOut).toEqual([6, 7, 8, 9, 10, 11, 12, 13, 14]);
      // Brought back before the step that needs the whole room: the contributor's bits exactly.
      expect(logs[rank].held.get(7)).toBe(logs[1].held.get(7));
    }
    expect(logs[0].broughtBack).toEqual([7, 8, 14]);
    expect(logs[2].broughtBack).toEqual([7, 14]);
    expect(logs[0].held.get(8)).toBe(logs[1].held.get(8));
    // 8 is a backup of rank 0 only: restored, but not among the holders the room's check at 8 compares
    // (the room does not wait for it); 7 and 14 are needed by the whole room.
    const parking = ranks[1].parking;
    expect([0, 1, 2].map((rank) => parking.backupOnlyAt(8, rank))).toEqual([true, false, false]);
    expect(parking.holdersAt(8)).toEqual([1]);
    expect(parking.holdersAt(7)).toEqual([0, 1, 2]);
    expect(parking.backupOnlyAt(14, 0)).toBe(false);
    expect(logs[1].satOut).toEqual([]);
    expect(logs[1].handedOver).toEqual([7, 8, 14]);
    expectEqualHolders(logs, total);
    expect(new Set(params.map((p) => paramsHash(p))).size).toBe(1);
    const error = relativeError(params[0], single.params[0], single.initial);
    console.log(`parked ranks, one contributor, vs 1 rank: relative error ${error.toExponential(2)}`);
    expect(error).toBeLessThan(TOLERANCE);
  });

  it('the only contributor reads no gradient back at its steps alone (the others parked), and the room ends bitwise where the same room without parking ends (the idle ranks receiving its read-back every step)', async () => {
    const config = testConfig({ shares: 'auto', rebalance: 4, steps: 14 });
    const { logs, params } = await parkedRoom(config, [100, 1, 100]);
    const handOut = await handOutRoom(config, [100, 1, 100]);
    const alone = [...logs[1].gradReads.keys()].filter((step) => step >= 5);
    // Steps 0-4 on even shares (every rank contributes) read back; steps 5-13 alone read nothing.
    for (let step = 0; step < 5; step++) expect(logs[1].gradReads.get(step), `step ${step}`).toBeGreaterThan(0);
    expect(alone, 'gradient reads at the steps rank 1 trained alone').toEqual([]);
    expect(paramsHash(params[1])).toBe(paramsHash(handOut.params[1]));
  });

  it(`costs 1:1:100 ([12, 12, 0]): two contributors all-reduce among themselves, the third rank is parked and brought back after the last step only (no backups, as outside an elastic room); holders bitwise equal every step; one rank's end within ${TOL}`, async () => {
    const config = testConfig({ shares: 'auto', rebalance: 4, steps: 12 });
    const single = await trainRoom(1, config);
    const { logs, outcomes, params, total } = await parkedRoom(config, [1, 1, 100]);
    for (const o of outcomes) expect(o.status).toBe('fulfilled');
    expect(logs[2].broughtBack).toEqual([12]);
    // The idle rank is dealt to the first contributor (share-groups.ts sharePlanOf).
    expect(logs[0].handedOver).toEqual([12]);
    expect(logs[1].handedOver).toEqual([]);
    // Two contributors still read their gradients back to all-reduce them.
    for (const rank of [0, 1]) for (let step = 0; step < total; step++) expect(logs[rank].gradReads.get(step), `rank ${rank} step ${step}`).toBeGreaterThan(0);
    expectEqualHolders(logs, total);
    expect(new Set(params.map((p) => paramsHash(p))).size).toBe(1);
    expect(relativeError(params[2], single.params[0], single.initial)).toBeLessThan(TOLERANCE);
  });

  it('the only contributor vanishes while the others are parked (backup every 8): they get a lost-peer error; the lowest parked rank holds step 8 (its backup), the other step 5 (the last it trained), and a re-formed ring starts from step 8 (elastic/roster.ts picks the most advanced state)', async () => {
    const config = testConfig({ shares: 'auto', rebalance: 4, steps: 14 });
    const { logs, outcomes, ranks } = await parkedRoom(config, [100, 1, 100], { vanish: { rank: 1, after: 10 }, backupEvery: 8 });
    for (const rank of [0, 2]) {
      const outcome = outcomes[rank];
      expect(outcome.status).toBe('rejected');
      expect(String((outcome as PromiseRejectedResult).reason?.cause?.message ?? (outcome as PromiseRejectedResult).reason)).toMatch(/rank 1/);
    }
    expect(logs[0].broughtBack).toEqual([8]);
    expect(ranks[0].run.trainer.step).toBe(8);
    expect(await ranks[0].hash()).toBe(logs[1].held.get(8));
    expect(logs[2].broughtBack).toEqual([]);
    expect(ranks[2].run.trainer.step).toBe(5);
    expect(await ranks[2].hash()).toBe(logs[1].held.get(5));
    // The survivors' state cards (session.ts reform: the trainer's step and the parameters' hash).
    const cards = await Promise.all([0, 2].map(async (rank) => ({ step: ranks[rank].run.trainer.step, hash: await ranks[rank].hash() })));
    expect(cards[chooseSource(cards)].step).toBe(8);
  });

  it('without backups the parked ranks hold the last step they trained: the only contributor vanishing after step 10 leaves step 5', async () => {
    const config = testConfig({ shares: 'auto', rebalance: 4, steps: 14 });
    const { logs, ranks } = await parkedRoom(config, [100, 1, 100], { vanish: { rank: 1, after: 10 } });
    for (const rank of [0, 2]) {
      expect(logs[rank].broughtBack).toEqual([]);
      expect(ranks[rank].run.trainer.step).toBe(5);
      expect(await ranks[rank].hash()).toBe(logs[1].held.get(5));
    }
  });
});

describe('parkedBackupEvery', () => {
  it('an elastic room backs parked tabs up every BACKUP_BOUNDARIES-th re-balancing boundary; any other room never', () => {
    expect(parkedBackupEvery(10, true)).toBe(10 * BACKUP_BOUNDARIES);
    expect(parkedBackupEvery(4, true)).toBe(4 * BACKUP_BOUNDARIES);
    expect(parkedBackupEvery(10, false)).toBe(Number.POSITIVE_INFINITY);
    expect(() => new ParkedTabs({ countsAt: () => [0, 1], steps: 4, wholeRoomAt: () => false, backupEvery: 0 })).toThrow(/positive integer or Infinity/);
  });
});
