// ZeRO stages 1-3 (and ZeRO-Offload): the trainer hooks that shard optimizer state, gradients and
// parameters across the ring. Entry point called by ../strategy.ts when config.zero > 0.
//
// One partition decides everything: partitionLayout (src/collective/partition.ts) is a pure function
// of the model's flat layout and the world size; the storage, the optimizer's state range, every
// reduce-scatter and all-gather, and the dashboard's shard view (the ZeroLayoutReport) all use it.
import { partitionLayout, type Partition } from '../../collective/partition';
import { CpuBackend } from '../../engine/cpu-backend';
import type { ParamLayout } from '../../model/layout';
import type { Model, SegmentedModel } from '../../model/model';
import { lrScheduleOf } from '../../train/defaults';
import { learningRateAt, type OptimizerConfig } from '../../train/optimizer';
import type { ParallelContext, ParallelHooks } from '../parallel-types';
import { ZeroStorage, type ZeroStageNumber } from './shard-storage';
import { ZeroSync } from './zero-sync';

/** Floats of optimizer state per parameter: AdamW's two moments, momentum's velocity, or none. */
export function optimizerFloatsPerParam(optimizer: OptimizerConfig): number {
  return optimizer.kind === 'adamw' ? 2 : optimizer.momentum > 0 ? 1 : 0;
}

export function zeroPartition(layout: ParamLayout, world: number): Partition {
  return partitionLayout(layout.entries, layout.totalLength, world);
}

function segmented(model: Model): SegmentedModel {
  if (!('forwardSegments' in model) || !('backwardSegments' in model)) throw new Error(`ZeRO needs a model that records its passes layer by layer; ${model.kind} does not`);
  return model as SegmentedModel;
}

export function createZeroHooks(ctx: ParallelContext): ParallelHooks {
  const stage = ctx.config.zero;
  if (stage !== 1 && stage !== 2 && stage !== 3) throw new Error(`ZeRO stage must be 1, 2 or 3, got ${stage}`);
  const { world, rank } = ctx.transport;
  const { recipe } = ctx;
  const schedule = lrScheduleOf(recipe);
  const offload = ctx.config.offload ? new CpuBackend() : undefined;
  let storage: ZeroStorage | undefined;
  let partition: Partition | undefined;
  let sync: ZeroSync | undefined;
  const zero = (): ZeroSync => {
    if (!storage || !partition) throw new Error('ZeRO: the model was built without ZeRO storage');
    if (!sync) storage.onDispose = () => sync?.dispose();
    return (sync ??= new ZeroSync({
      backend: ctx.backend,
      transport: ctx.transport,
      model: segmented(ctx.model()),
      storage,
      partition,
      optimizer: ctx.optimizer(),
      learningRate: (step) => learningRateAt(step, schedule),
      clipNorm: recipe.clipNorm,
      microBatches: ctx.microBatches,
      offload,
      onChunk: ctx.publish,
    }));
  };
  const hooks: ParallelHooks = {
    // The trainer neither clips (the norm spans every shard) nor updates: gradSync does both.
    localUpdate: false,
    modelStorage: (layout, label) => {
      partition = zeroPartition(layout, world);
      storage = new ZeroStorage(ctx.backend, layout, stage as ZeroStageNumber, partition.shards[rank], label);
      ctx.publish({
        type: 'zero-layout',
        stage,
        total: partition.total,
        partition: partition.shards.map((s, r) => ({ rank: r, start: s.offset, end: s.offset + s.length })),
        optimizerFloatsPerParam: optimizerFloatsPerParam(recipe.optimizer),
      });
      return storage;
    },
    optimizerStateRange: (layout) => zeroPartition(layout, world).shards[rank],
    gradSync: (c) => zero().gradSync(c),
    afterUpdate: (c) => zero().afterUpdate(c),
    hostBytes: () => (sync ? sync.hostBytes() : { staging: 0, offload: 0 }),
  };
  if (offload) hooks.optimizerBackend = offload;
  if (stage === 1) hooks.gradHooks = (step, micro) => zero().gradHooks(step, micro);
  else hooks.layerwise = { forward: (b, s, step) => zero().passes.forward(b, s, step), backward: (step, micro, h) => zero().passes.backward(step, micro, h) };
  if (stage === 3) {
    hooks.gatherParams = (round) => zero().fullParams(round);
    hooks.gatherInPieces = (round, each) => zero().gatherInPieces(round, each);
    hooks.replicaDigest = (round, afterStep) => zero().replicaDigest(round, afterStep);
    hooks.replicaCheckTraffic = () => zero().takeCheckTraffic();
  }
  return hooks;
}
