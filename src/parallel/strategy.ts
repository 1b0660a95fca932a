// Picks how a room's ranks keep their replicas in step, from the run's config: the trainer hooks for
// data parallelism over the ring (dense, fp16 on the wire, Top-K / Random-K with error feedback,
// PowerSGD), the parameter server (synchronous, or asynchronous with bounded staleness), DiLoCo / local
// SGD and ZeRO; on the dense ring, shares of the global batch by each tab's speed (shares=auto). The
// session calls this once per run; everything mode-specific lives behind it.
import { wireElementBytes, type WireFormat } from '../collective/executor';
import { DEFAULT_MAX_MESSAGE_ELEMENTS } from '../collective/chunking';
import { lrScheduleOf } from '../train/defaults';
import { learningRateAt } from '../train/optimizer';
import { AsyncParameterServer } from './async-parameter-server';
import { BatchShares } from '../train/batch-shares';
import { CollectivePicker, linkFitLog } from './collective-choice';
import { DataParallelSync } from './data-parallel';
import { DilocoSync, type OuterCodec } from './diloco';
import { ShareBalancer, type SharesAgreed } from './share-balancer';
import { PARAMETER_SERVER_RANK, psOptimizerStateRange, SyncParameterServer } from './parameter-server';
import type { ParallelConfig, ParallelContext, ParallelHooks, StatePlacement, Strategy } from './parallel-types';
import { PowerSgdSync } from './powersgd-sync';
import { optimizerFor, SparseGradientSync } from './sparse-sync';
import { createZeroHooks } from './zero/zero-hooks';

export type { ParallelContext, ParallelHooks, Strategy } from './parallel-types';

/** The strategy of a tab training alone: no hooks, nothing to check or back up. */
export const SOLO_STRATEGY: Strategy = { name: 'solo', hooks: {}, replicasEqualEveryStep: true, replicasEqualAfter: null, gatherParams: null, replicaDigest: null, replicaCheckTraffic: null, hostBytes: null, statePlacement: 'replicated' };

/** The strategy the config picks, as a value the run loop holds (parallel-types.ts Strategy). */
export function strategyFor(ctx: ParallelContext): Strategy {
  const { replicasEqualEveryStep, replicasEqualAfter, gatherParams, gatherInPieces, replicaDigest, replicaCheckTraffic, hostBytes, skipParkedStep, ...hooks } = createParallelHooks(ctx);
  return {
    name: strategyName(ctx.config),
    hooks,
    replicasEqualEveryStep: replicasEqualEveryStep ?? true,
    replicasEqualAfter: replicasEqualAfter ?? null,
    gatherParams: gatherParams ?? null,
    ...(gatherInPieces ? { gatherInPieces } : {}),
    replicaDigest: replicaDigest ?? null,
    replicaCheckTraffic: replicaCheckTraffic ?? null,
    hostBytes: hostBytes ?? null,
    statePlacement: statePlacementOf(ctx.config),
    ...(skipParkedStep ? { skipParkedStep } : {}),
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
  if (config.mode === 'diloco') return `diloco H=${config.inner}${config.compression === 'none' ? '' : ` ${config.compression}`}`;
  if (config.compression === 'powersgd') return `ring powersgd r=${config.rank}`;
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
  if (config.mode === 'diloco') {
    const { sync: _, ...hooks } = dilocoHooks(ctx);
    return hooks;
  }
  if (config.compression === 'powersgd') {
    const { sync: _, ...hooks } = powerSgdHooks(ctx);
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
  return { batchShares, balancer: new ShareBalancer({ transport, shares: batchShares, every: config.rebalance, onAgreed, parkIdle: ctx.parkIdle }) };
}

/** Steps between the room's refits of the link fit (collective=auto). */
const REFIT_EVERY = 10;

/**
 * The run's all-reduce picker (collective=, collective-choice.ts) for elements of `wire`: its fits go to
 * the dashboard's event log and Links panel. `refitEvery`: steps between refits, counted where the sync
 * ends a step with the picker (DiLoCo: only its outer steps, so 1 there refits after each).
 */
function collectivePicker(ctx: ParallelContext, wire: WireFormat, refitEvery = REFIT_EVERY): CollectivePicker {
  return new CollectivePicker({
    choice: ctx.config.collective,
    transport: ctx.transport,
    refitEvery,
    partBytes: DEFAULT_MAX_MESSAGE_ELEMENTS * wireElementBytes(wire),
    onFit: (report) => {
      ctx.publish(linkFitLog(report));
      ctx.publish({ type: 'link-fit', ...report, t: performance.now() });
    },
  });
}

function denseRingHooks(ctx: ParallelContext, wire: WireFormat): ParallelHooks {
  const shares = speedShares(ctx);
  const picker = collectivePicker(ctx, wire);
  const sync = lazy(
    () =>
      new DataParallelSync({
        picker,
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
    ...(shares?.balancer.parksIdle ? { skipParkedStep: (step: number) => shares.balancer.skipStep(step) } : {}),
  };
}

/** Steps between two log lines of the sparsifier's compression error. */
const COMPRESSION_LOG_EVERY = 10;

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
    gradSync: async (c) => {
      const result = await sync().gradSync(c);
      const report = sync().lastStep;
      // What the compression leaves out, beside Top-K's bound, every COMPRESSION_LOG_EVERY steps.
      if (report && (c.step + 1) % COMPRESSION_LOG_EVERY === 0) {
        const message = `${kind} step ${c.step + 1}: ||g - ${kind}(g)||^2/||g||^2 = ${report.compressionError.toFixed(4)}${kind === 'topk' ? ` (bound (d-k)/d = ${report.errorBound.toFixed(4)})` : ''}`;
        ctx.publish({ type: 'log', level: 'info', message, t: performance.now() });
      }
      return result;
    },
  };
}

/**
 * PowerSGD of rank r (powersgd-sync.ts): the whole gradient is compressed after the backward pass, so no
 * per-bucket hooks and no eager updates. Q starts from the room's seed, the same on every rank.
 * Exported with its sync object, so that tests can read the plan and the compressor's state.
 */
export function powerSgdHooks(ctx: ParallelContext): ParallelHooks & { sync: () => PowerSgdSync } {
  const picker = collectivePicker(ctx, 'f32');
  const sync = lazy(() => new PowerSgdSync({ backend: ctx.backend, transport: ctx.transport, model: ctx.model(), rank: ctx.config.rank, minCompressionRate: ctx.config.minrate, seed: ctx.config.seed, picker, onChunk: ctx.publish }));
  return { sync, gradSync: (c) => sync().gradSync(c) };
}

/** DiLoCo's outer exchange codec from the run's compression (config.ts allows none, fp16 and topk with it). */
function outerCodecOf(config: ParallelConfig): OuterCodec {
  if (config.compression === 'none') return { kind: 'none' };
  if (config.compression === 'fp16') return { kind: 'fp16' };
  if (config.compression === 'topk') return { kind: 'topk', ratio: config.ratio };
  throw new Error(`mode=diloco compresses its outer exchange with fp16 or topk, not compression=${config.compression}`);
}

/**
 * DiLoCo / local SGD (diloco.ts): each rank's own optimizer takes H inner steps on its shard, then the
 * room averages the pseudo-gradient and every rank applies the same outer Nesterov step. Replicas are
 * equal after every outer step (every H-th step and the run's last) and differ in between, so the
 * session checks them there. Exported with its sync object for tests.
 */
export function dilocoHooks(ctx: ParallelContext): ParallelHooks & { sync: () => DilocoSync } {
  const { config } = ctx;
  const outer = { lr: config.outerlr, momentum: config.outermomentum, nesterov: config.outermomentum > 0 };
  const codec = outerCodecOf(config);
  const picker = collectivePicker(ctx, codec.kind === 'fp16' ? 'f16' : 'f32', 1);
  const sync = lazy(() => new DilocoSync({ backend: ctx.backend, transport: ctx.transport, model: ctx.model(), innerSteps: config.inner, totalSteps: ctx.recipe.steps, outer, codec, picker, onChunk: ctx.publish }));
  return {
    sync,
    replicasEqualEveryStep: config.inner === 1,
    replicasEqualAfter: (completed) => sync().isOuterStep(completed),
    gradSync: (c) => sync().gradSync(c),
    afterUpdate: (c) => sync().afterUpdate(c),
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
