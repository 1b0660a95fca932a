// Picks how a room's ranks keep their replicas in step, from the run's config: the trainer hooks for
// plain data parallelism over the ring (and, as they land, compression, the parameter server, ZeRO).
// The session calls this once per run; everything mode-specific lives behind it.
import type { Transport } from '../collective/types';
import type { Backend } from '../engine/backend';
import type { LabConfig } from '../lab/config';
import type { LabEvent } from '../lab/events';
import type { Model } from '../model/model';
import type { Optimizer } from '../train/optimizer';
import type { TrainerOptions } from '../train/trainer';
import { DataParallelSync } from './data-parallel';
import { createZeroHooks } from './zero/zero-hooks';

export type ParallelHooks = Pick<TrainerOptions, 'gradHooks' | 'gradSync' | 'afterUpdate'>;

export interface ParallelContext {
  config: LabConfig;
  backend: Backend;
  transport: Transport;
  /** The run's model and optimizer, available once the run is built (hooks are called later). */
  model: () => Model;
  optimizer: () => Optimizer;
  microBatches: number;
  publish: (event: LabEvent) => void;
}

export function createParallelHooks(ctx: ParallelContext): ParallelHooks {
  if (ctx.config.zero > 0) return createZeroHooks(ctx);
  return createRingHooks(ctx);
}

/** Plain data parallelism over the ring (compression and the parameter server branch off here). */
function createRingHooks(ctx: ParallelContext): ParallelHooks {
  if (ctx.config.mode !== 'ring' || ctx.config.compression !== 'none') {
    throw new Error(
      `not built yet: mode=${ctx.config.mode} zero=${ctx.config.zero} compression=${ctx.config.compression} (only the dense ring runs so far)`,
    );
  }
  let sync: DataParallelSync | undefined;
  const get = () =>
    (sync ??= new DataParallelSync({
      backend: ctx.backend,
      transport: ctx.transport,
      model: ctx.model(),
      bucketElements: ctx.config.bucket,
      microBatches: ctx.microBatches,
      onChunk: ctx.publish,
    }));
  return {
    gradHooks: (step, micro) => get().hooks(step, micro),
    gradSync: (sync) => get().gradSync(sync),
  };
}
