// A room of N ranks in one process (a CPU backend each, the in-memory transport), each training the MLP
// through classifierRun with whatever sync hooks a strategy gives it: how the communication-efficient
// strategies (PowerSGD, DiLoCo) are tested and measured before the lab wires them (tests and
// scripts/comm-sim.ts). Ranks step in lockstep; the parameter hashes of every rank are taken after
// every step when asked, and every byte the hooks report is counted per rank.
import { createMemoryMesh } from '../collective/memory-transport';
import type { Transport } from '../collective/types';
import type { ClassificationData } from '../data/types';
import { viewOf } from '../engine/backend';
import { CpuBackend } from '../engine/cpu-backend';
import { paramsHash } from '../model/layout';
import type { Mlp } from '../model/mlp';
import type { ClassifierRecipe } from '../train/defaults';
import { classifierRun, type Run, type TrainerExtras } from '../train/recipes';
import type { GradSyncContext, GradSyncResult } from '../train/trainer';
import { DataParallelSync } from './data-parallel';
import { DilocoSync, type DilocoOptions } from './diloco';
import { PowerSgdSync, type PowerSgdSyncOptions } from './powersgd-sync';

export interface RankEnv {
  rank: number;
  backend: CpuBackend;
  transport: Transport;
  /** The rank's run: available once classifierRun has returned (hooks call it lazily). */
  run: () => Run<Mlp>;
}

/** Gives one rank its sync hooks. */
export type Strategy = (env: RankEnv) => TrainerExtras;

export interface CommRoomOptions {
  world: number;
  data: ClassificationData;
  recipe: ClassifierRecipe;
  strategy: Strategy;
  /** Each rank's backend (a faster CPU twin in scripts). Default: the CPU reference. */
  makeBackend?: () => CpuBackend;
  /** Hash every rank's parameters after every step (costs a read-back of each per step). */
  hashEveryStep?: boolean;
  /** Called after every step with the 1-based step count (progress, evaluation). */
  afterStep?: (step: number, room: CommRoom) => Promise<void>;
}

export interface CommRoom {
  ranks: (RankEnv & { bytesSent: number })[];
  hashesPerStep: string[][];
  params(): Promise<Float32Array[]>;
  /** Held-out accuracy and loss of rank `rank`'s replica. */
  evaluate(rank?: number): Promise<{ loss: number; accuracy: number }>;
}

/** Memoises a hook object built from the run once it exists. */
function lazy<T>(make: () => T): () => T {
  let value: T | undefined;
  return () => (value ??= make());
}

/** Adds what each hook reports to the rank's byte count. */
function counting(extras: TrainerExtras, count: (bytes: number) => void): TrainerExtras {
  const wrap = (hook: ((ctx: GradSyncContext) => Promise<GradSyncResult | void>) | undefined) =>
    hook &&
    (async (ctx: GradSyncContext) => {
      const result = await hook(ctx);
      count(result?.bytesSent ?? 0);
      return result;
    });
  return { ...extras, gradSync: wrap(extras.gradSync), afterUpdate: wrap(extras.afterUpdate) };
}

export async function trainCommRoom(o: CommRoomOptions): Promise<CommRoom> {
  const transports = createMemoryMesh(o.world);
  const ranks = transports.map((transport) => {
    const backend = o.makeBackend?.() ?? new CpuBackend();
    let run: Run<Mlp> | undefined;
    const env = { rank: transport.rank, backend, transport, bytesSent: 0, run: () => run ?? fail('the run is not built yet') };
    const extras = o.world === 1 ? {} : counting(o.strategy(env), (bytes) => (env.bytesSent += bytes));
    run = classifierRun(backend, o.data, o.recipe, { world: o.world, rank: transport.rank }, extras);
    return env;
  });
  const params = () => Promise.all(ranks.map((r) => r.backend.read(viewOf(r.run().model.params))));
  const room: CommRoom = {
    ranks,
    hashesPerStep: [],
    params,
    async evaluate(rank = 0) {
      const run = ranks[rank].run();
      const result = await run.trainer.evaluate(run.evalBatches);
      return { loss: result.loss, accuracy: result.accuracy ?? NaN };
    },
  };
  for (let step = 1; step <= o.recipe.steps; step++) {
    await Promise.all(ranks.map((r) => r.run().trainer.trainStep()));
    if (o.hashEveryStep) room.hashesPerStep.push((await params()).map(paramsHash));
    await o.afterStep?.(step, room);
  }
  return room;
}

function fail(message: string): never {
  throw new Error(message);
}

// --- the strategies ------------------------------------------------------------------------------------

/** Dense data parallelism: the lab's bucketed ring all-reduce of every gradient (DataParallelSync). */
export function denseStrategy(recipe: ClassifierRecipe, bucketElements = 1 << 16): Strategy {
  return (env) => {
    const sync = lazy(() => new DataParallelSync({ backend: env.backend, transport: env.transport, model: env.run().model, bucketElements, microBatches: recipe.microBatches }));
    return { gradHooks: (step, micro) => sync().hooks(step, micro), gradSync: (ctx) => sync().gradSync(ctx) };
  };
}

/** PowerSGD (rank, seed and the optional plan and warm-up settings of PowerSgdSync); `syncs` (optional) collects each rank's sync for inspection. */
export function powerSgdStrategy(options: Pick<PowerSgdSyncOptions, 'rank' | 'seed' | 'minCompressionRate' | 'denseSteps'>, syncs?: PowerSgdSync[]): Strategy {
  return (env) => {
    const sync = lazy(() => {
      const made = new PowerSgdSync({ ...options, backend: env.backend, transport: env.transport, model: env.run().model });
      if (syncs) syncs[env.rank] = made;
      return made;
    });
    return { gradSync: (ctx) => sync().gradSync(ctx) };
  };
}

/** DiLoCo / local SGD with H inner steps; `syncs` (optional) collects each rank's sync. */
export function dilocoStrategy(options: Pick<DilocoOptions, 'innerSteps' | 'outer' | 'codec'>, syncs?: DilocoSync[]): Strategy {
  return (env) => {
    const sync = lazy(() => {
      const made = new DilocoSync({ ...options, backend: env.backend, transport: env.transport, model: env.run().model });
      if (syncs) syncs[env.rank] = made;
      return made;
    });
    return { gradSync: (ctx) => sync().gradSync(ctx), afterUpdate: (ctx) => sync().afterUpdate(ctx) };
  };
}
