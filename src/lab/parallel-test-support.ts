// Test-only (imported by tests alone): a room of N ranks in one process (CPU backend, in-memory transport)
// trained through the real strategy (createParallelHooks) with a lab config, the way the session wires it.
// It lives in lab/ because it builds runs from a LabConfig; parallel/ must not import lab/.
import { createMemoryMesh, type MemoryMeshOptions } from '../collective/memory-transport';
import type { ChunkEvent, Transport } from '../collective/types';
import { syntheticData } from '../data/synthetic';
import { viewOf, type MemoryKind } from '../engine/backend';
import { CpuBackend } from '../engine/cpu-backend';
import { DEFAULT_CONFIG, type LabConfig } from './config';
import type { LabEvent, StepMetrics } from '../shared/events';
import { bucketFor, recipeFor } from './recipe';
import { paramsHash } from '../model/layout';
import type { Mlp } from '../model/mlp';
import type { ClassifierRecipe } from '../train/defaults';
import { classifierRun, type Run } from '../train/recipes';
import { createParallelHooks, type ParallelContext, type ParallelHooks } from '../parallel/strategy';

export const spirals = syntheticData({ kind: 'spirals', seed: 5 });

/**
 * A short spirals run: the synthetic recipe with a small global batch, even shares unless a test is
 * about shares by speed (shares=auto also sizes each model for the largest share, which the memory
 * tests would count).
 */
export function testConfig(overrides: Partial<LabConfig> = {}): LabConfig {
  return { ...DEFAULT_CONFIG, model: 'mlp', dataset: 'spirals', batch: 24, steps: 8, seed: 3, shares: 'equal', ...overrides };
}

export interface RoomRank<H extends ParallelHooks = ParallelHooks> {
  rank: number;
  backend: CpuBackend;
  run: Run<Mlp>;
  hooks: H;
  chunks: ChunkEvent[];
  steps: StepMetrics[];
}

export interface RoomResult<H extends ParallelHooks = ParallelHooks> {
  ranks: RoomRank<H>[];
  /** Final parameters per rank. */
  params: Float32Array[];
  /** Rank 0's parameters before the first step. */
  initial: Float32Array;
  /** Parameter hash of every rank after every step (lockstep runs only). */
  hashesPerStep: string[][];
  memory: Record<MemoryKind, number>[];
}

export interface RoomOptions<H extends ParallelHooks> {
  /** How the hooks are made: the real strategy unless a test needs a handle on their insides. */
  makeHooks?: (ctx: ParallelContext) => H;
  mesh?: MemoryMeshOptions;
  /** Wraps each rank's transport (to watch or alter what it sends). */
  wrapTransport?: (transport: Transport) => Transport;
  /** Ranks step independently (asynchronous PS) instead of in lockstep with a hash check per step. */
  independent?: boolean;
  /** Changes to the recipe the config selects (e.g. another optimizer). */
  recipe?: Partial<ClassifierRecipe>;
  /** Awaited before each step of each rank (to make one rank slow). */
  beforeStep?: (rank: number, step: number) => Promise<void>;
}

/** The strategy's context for a run built after its hooks (the hooks read its model and optimizer later). */
export function contextFor(
  config: LabConfig,
  backend: CpuBackend,
  transport: Transport,
  run: () => Run<Mlp> | undefined,
  microBatches: number,
  publish: (event: LabEvent) => void = () => undefined,
): ParallelContext {
  const built = () => run() ?? fail('the run is not built yet');
  // The recipe and bucket as the session resolves them for this config and room size.
  const { recipe } = recipeFor(config, transport.world);
  const bucketElements = bucketFor(config);
  return { config, recipe, bucketElements, backend, transport, model: () => built().model, optimizer: () => built().optimizer, microBatches, publish };
}

function fail(message: string): never {
  throw new Error(message);
}

/** world = 1 trains a single tab with no hooks at all: the reference N ranks are compared against. */
export async function trainRoom<H extends ParallelHooks = ParallelHooks>(world: number, config: LabConfig, options: RoomOptions<H> = {}): Promise<RoomResult<H>> {
  const makeHooks = options.makeHooks ?? (createParallelHooks as (ctx: ParallelContext) => H);
  const recipe = recipeFor(config, world);
  if (recipe.kind !== 'classifier') throw new Error('test rooms train the MLP');
  const transports = createMemoryMesh(world, options.mesh).map((t) => options.wrapTransport?.(t) ?? t);
  const ranks = transports.map((transport): RoomRank<H> => {
    const backend = new CpuBackend();
    const chunks: ChunkEvent[] = [];
    const steps: StepMetrics[] = [];
    let run: Run<Mlp> | undefined;
    const hooks: H =
      world === 1
        ? ({} as H)
        : makeHooks(
            contextFor(config, backend, transport, () => run, recipe.recipe.microBatches, (event) => {
              if (event.type === 'chunk') chunks.push(event);
            }),
          );
    const { replicasEqualEveryStep: _, ...extras } = hooks;
    run = classifierRun(backend, spirals, { ...recipe.recipe, logEvery: 1, ...options.recipe }, { world, rank: transport.rank }, {
      ...extras,
      onEvent: (event) => {
        if (event.type === 'step') steps.push(event);
      },
    });
    return { rank: transport.rank, backend, run, hooks, chunks, steps };
  });
  const total = recipe.recipe.steps;
  const readParams = () => Promise.all(ranks.map(({ backend, run }) => backend.read(viewOf(run.model.params))));
  const hashesPerStep: string[][] = [];
  const initial = (await readParams())[0];
  if (options.independent) {
    await Promise.all(
      ranks.map(async ({ rank, run }) => {
        for (let step = 0; step < total; step++) {
          await options.beforeStep?.(rank, step);
          await run.trainer.trainStep();
        }
      }),
    );
  } else {
    for (let step = 0; step < total; step++) {
      await Promise.all(ranks.map(async ({ rank, run }) => {
        await options.beforeStep?.(rank, step);
        await run.trainer.trainStep();
      }));
      hashesPerStep.push((await readParams()).map(paramsHash));
    }
  }
  // StepMetrics are published after a loss read-back: let those settle.
  await Promise.all(ranks.map(({ run }) => run.trainer.lastLoss()));
  return { ranks, params: await readParams(), initial, hashesPerStep, memory: ranks.map(({ backend }) => backend.memory()) };
}

/**
 * How far `candidate` ends from `reference`, relative to how far training moved `reference` from
 * `start`: ||candidate - reference|| / ||reference - start|| (Euclidean norms over the whole vectors,
 * summed in float64). 1e-2 means the runs' total updates differ by 1%: under SGD, an averaged gradient
 * scaled by 1.01 shows as about that, while float rounding (sums in another order) stays near 1e-7.
 */
export function relativeError(candidate: Float32Array, reference: Float32Array, start: Float32Array): number {
  if (candidate.length !== reference.length || start.length !== reference.length) throw new RangeError('relativeError: vectors of different lengths');
  let off = 0;
  let moved = 0;
  for (let i = 0; i < reference.length; i++) {
    off += (candidate[i] - reference[i]) ** 2;
    moved += (reference[i] - start[i]) ** 2;
  }
  if (moved === 0) throw new RangeError('relativeError: the reference never moved from the start');
  return Math.sqrt(off / moved);
}

export function maxDifference(a: Float32Array, b: Float32Array): number {
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return worst;
}

/** Bytes this rank sent, per collective kind, as its ChunkEvents tell. */
export function bytesSentBy(rank: RoomRank, collective?: ChunkEvent['collective']): number {
  return rank.chunks.filter((e) => e.direction === 'send' && (!collective || e.collective === collective)).reduce((sum, e) => sum + e.bytes, 0);
}
