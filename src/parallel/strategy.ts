// Picks how a room's ranks keep their replicas in step, from the run's config: the trainer hooks for
// data parallelism over the ring (dense, fp16 on the wire, Top-K / Random-K with error feedback), the
// parameter server (synchronous, or asynchronous with bounded staleness) and ZeRO; on the dense ring,
// shares of the global batch by each tab's speed (shares=auto). The session calls
// this once per run; everything mode-specific lives behind it.
import type { WireFormat } from '../collective/executor';
import { lrScheduleOf } from '../train/defaults';
import { learningRateAt } from '../train/optimizer';
import { AsyncParameterServer } from './async-parameter-server';
import { BatchShares } from '../train/batch-shares';
import { DataParallelSync } from './data-parallel';
import { ShareBalancer, type SharesAgreed } from './share-balancer';
import { PARAMETER_SERVER_RANK, psOptimizerStateRange, SyncParameterServer } from './parameter-server';
import type { ParallelConfig, ParallelContext, ParallelHooks, StatePlacement, Strategy } from './parallel-types';
import { optimizerFor, SparseGradientSync } from './sparse-sync';
import { createZeroHooks } from './zero/zero-hooks';

export type { ParallelContext, ParallelHooks, Strategy } from './parallel-types';

/** The strategy of a tab training alone: no hooks, nothing to check or back up. */
export const SOLO_STRATEGY: Strategy = { name: 'solo', hooks: {}, replicasEqualEveryStep: true, gatherParams: null, replicaDigest: null, replicaCheckTraffic: null, hostBytes: null, statePlacement: 'replicated' };

/** The strategy the config picks, as a value the run loop holds (parallel-types.ts Strategy). */
export function strategyFor(ctx: ParallelContext): Strategy {
  const { replicasEqualEveryStep, gatherParams, gatherInPieces, replicaDigest, replicaCheckTraffic, hostBytes, ...hooks } = createParallelHooks(ctx);
  return {
    name: strategyName(ctx.config),
    hooks,
    replicasEqualEveryStep: replicasEqualEveryStep ?? true,
    gatherParams: gatherParams ?? null,
    ...(gatherInPieces ? { gatherInPieces } : {}),
    replicaDigest: replicaDigest ?? null,
    replicaCheckTraffic: replicaCheckTraffic ?? null,
    hostBytes: hostBytes ?? null,
    statePlacement: statePlacementOf(ctx.config),
  };
}

/** Where the config's strategy keeps the optimizer state (what an elastic room must back up). */
export function statePlacementOf(config: ParallelConfig): StatePlacement {
  if (config.zero > 0) return 'sharded';
  // The asynchronous server is not elastic (notElasticBecause), so its state is never backed up.
  if (config.mode === 'ps' && config.staleness === 0) return 'server';
  return 'replicated';
}

/** Why the config's strategy cannot re-form its ring around a lost or new tab, or null when it can. */
export function notElasticBecause(config: ParallelConfig): string | null {
  if (config.mode === 'ps' && config.staleness > 0) return 'the asynchronous parameter server (staleness > 0) lets replicas differ between steps and is not elastic';
  return null;
}

function strategyName(config: ParallelConfig): string {
  if (config.zero > 0) return `zero-${config.zero}${config.offload ? ' offload' : ''}`;
  if (config.mode === 'ps') return config.staleness > 0 ? `ps async (staleness ${config.staleness})` : 'ps';
  return config.compression === 'none' ? 'ring' : `ring ${config.compression}`;
}

export function createParallelHooks(ctx: ParallelContext): ParallelHooks {
  if (ctx.config.zero > 0) return createZeroHooks(ctx);
  return createRingHooks(ctx);
}

/** Plain data parallelism over the ring, dense (fp32 or fp16 on the wire) or sparsified, or the parameter server. */
function createRingHooks(ctx: ParallelContext): ParallelHooks {
  const { config } = ctx;
  if (config.mode === 'ps') {
    if (config.compression !== 'none') throw new Error(`mode=ps sends whole vectors: compression=${config.compression} works with mode=ring only`);
    if (config.staleness === 0) return syncParameterServerHooks(ctx);
    const { server: _, ...hooks } = asyncParameterServerHooks(ctx);
    return hooks;
  }
  if (config.compression === 'topk' || config.compression === 'randk') {
    const { sync: _, ...hooks } = sparseHooks(ctx, config.compression === 'topk' ? 'topk' : 'randomk');
    return hooks;
  }
  return denseRingHooks(ctx, config.compression === 'fp16' ? 'f16' : 'f32');
}

/** Builds a hook's state on first use: the model exists only once the run is built. */
function lazy<T>(build: () => T): () => T {
  let value: T | undefined;
  return () => (value ??= build());
}

/**
 * shares=auto: the room's split of the global batch and the balancer that re-splits it by speed
 * (share-balancer.ts); the split starts even, and a re-formed ring builds a new one (even again).
 */
function speedShares(ctx: ParallelContext): { batchShares: BatchShares; balancer: ShareBalancer } | undefined {
  const { config, recipe, transport } = ctx;
  if (config.shares !== 'auto' || transport.world < 2) return undefined;
  const batchShares = new BatchShares(recipe.globalBatch, transport.world, ctx.microBatches);
  const onAgreed = (agreed: SharesAgreed) => ctx.publish({ type: 'shares', ...agreed, rank: transport.rank, t: performance.now() });
  return { batchShares, balancer: new ShareBalancer({ transport, shares: batchShares, every: config.rebalance, onAgreed }) };
}

function denseRingHooks(ctx: ParallelContext, wire: WireFormat): ParallelHooks {
  const shares = speedShares(ctx);
  const sync = lazy(
    () =>
      new DataParallelSync({
        backend: ctx.backend,
        transport: ctx.transport,
        model: ctx.model(),
        bucketElements: ctx.bucketElements,
        microBatches: ctx.microBatches,
        wire,
        onChunk: ctx.publish,
        balancer: shares?.balancer,
      }),
  );
  return {
    gradHooks: (step, micro) => sync().hooks(step, micro),
    gradSync: (c) => sync().gradSync(c),
    eagerUpdates: true,
    batchShares: shares?.batchShares,
  };
}

/** Exported with its sync object, so that tests can read what each step put on the wire. */
export function sparseHooks(ctx: ParallelContext, kind: 'topk' | 'randomk'): ParallelHooks & { sync: () => SparseGradientSync } {
  let momentum = 0;
  const sync = lazy(
    () =>
      new SparseGradientSync({
        backend: ctx.backend,
        transport: ctx.transport,
        model: ctx.model(),
        kind,
        ratio: ctx.config.ratio,
        momentum,
        // Random-K: one seed for the whole room, so every rank draws the same indices each step.
        seed: ctx.config.seed,
        onChunk: ctx.publish,
      }),
  );
  return {
    optimizerConfig: (base) => {
      const chosen = optimizerFor(base);
      momentum = chosen.momentum;
      return chosen.optimizer;
    },
    sync,
    gradSync: (c) => sync().gradSync(c),
  };
}

function syncParameterServerHooks(ctx: ParallelContext): ParallelHooks {
  const ps = lazy(() => new SyncParameterServer({ backend: ctx.backend, transport: ctx.transport, model: ctx.model(), onChunk: ctx.publish }));
  const isServer = ctx.transport.rank === PARAMETER_SERVER_RANK;
  return {
    localUpdate: isServer,
    optimizerStateRange: psOptimizerStateRange(ctx.transport.rank, PARAMETER_SERVER_RANK),
    gradSync: (c) => ps().gradSync(c),
    afterUpdate: (c) => ps().afterUpdate(c),
  };
}

/** Exported with its server, so that tests can read the server's release log. */
export function asyncParameterServerHooks(ctx: ParallelContext): ParallelHooks & { server: () => AsyncParameterServer } {
  const { recipe } = ctx;
  const schedule = lrScheduleOf(recipe);
  const ps = lazy(
    () =>
      new AsyncParameterServer({
        backend: ctx.backend,
        transport: ctx.transport,
        model: ctx.model(),
        optimizer: ctx.optimizer,
        steps: recipe.steps,
        staleness: ctx.config.staleness,
        learningRate: (step) => learningRateAt(step, schedule),
        clipNorm: recipe.clipNorm,
        server: PARAMETER_SERVER_RANK,
        onChunk: ctx.publish,
      }),
  );
  return {
    // Every rank, the server's included, takes its parameters from the server's update loop.
    localUpdate: false,
    optimizerStateRange: psOptimizerStateRange(ctx.transport.rank, PARAMETER_SERVER_RANK),
    replicasEqualEveryStep: false,
    server: ps,
    gradSync: (c) => ps().gradSync(c),
    afterUpdate: (c) => ps().afterUpdate(c),
  };
}
