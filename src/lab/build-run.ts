// Builds a run for this tab's rank and world: the strategy the config picks (a value, parallel-types.ts
// Strategy) and the model, optimizer, batches and trainer of the recipe (train/recipes.ts), with the
// strategy's hooks installed. Called at the start and again after every re-form of an elastic ring.
import type { ClassificationData } from '../data/types';
import type { Backend } from '../engine/backend';
import type { Gpt } from '../model/gpt';
import type { Mlp } from '../model/mlp';
import type { Transport } from '../collective/types';
import type { Interval } from '../train/intervals';
import type { Strategy } from '../parallel/parallel-types';
import { SOLO_STRATEGY, strategyFor } from '../parallel/strategy';
import type { LabEvent, ZeroLayoutReport } from '../shared/events';
import type { ParamLayout } from '../model/layout';
import type { OptimizerConfig } from '../train/optimizer';
import { optimizerFloatsPerParam, zeroPartition } from '../parallel/zero/zero-hooks';
import type { ClassifierRecipe, Recipe } from '../train/defaults';
import { charLmRun, classifierRun, type Run } from '../train/recipes';
import type { LabConfig } from './config';
import type { LoadedData } from './datasets';
import { bucketFor } from './recipe';

export interface BuiltRun {
  run: Run<Mlp> | Run<Gpt>;
  strategy: Strategy;
}

export interface BuildRunOptions {
  config: LabConfig;
  recipe: Recipe;
  backend: Backend;
  data: LoadedData;
  /** The ring's transport; none: this tab trains alone. */
  transport: Transport | undefined;
  shard: { world: number; rank: number };
  publish: (event: LabEvent) => void;
  /** What else is on the wire during [from, to): the replica check's exchange (trainer.ts alongsideComm). */
  alongsideComm: (from: number, to: number) => Interval[];
}

export function buildRun(o: BuildRunOptions): BuiltRun {
  const { recipe, backend, data, transport, publish } = o;
  let run: Run<Mlp> | Run<Gpt> | undefined;
  const built = () => {
    if (!run) throw new Error('the run is not built yet');
    return run;
  };
  const strategy = transport
    ? strategyFor({
        config: o.config,
        recipe: recipe.recipe,
        bucketElements: bucketFor(o.config),
        backend,
        transport,
        model: () => built().model,
        optimizer: () => built().optimizer,
        microBatches: recipe.recipe.microBatches,
        publish,
        // The run loop parks a tab with no samples for a step (parked-tabs.ts).
        parkIdle: true,
      })
    : SOLO_STRATEGY;
  const extras = { onEvent: publish, alongsideComm: o.alongsideComm, ...strategy.hooks };
  if (recipe.kind === 'classifier') {
    if (data.kind !== 'classification') throw new Error('the MLP needs a classification data set');
    run = classifierRun(backend, data.data, fitToData(recipe.recipe, data.data), o.shard, extras);
  } else {
    if (data.kind !== 'text') throw new Error('the GPT needs a text data set');
    run = charLmRun(backend, data.data, recipe.recipe, o.shard, extras);
  }
  // Plain data parallelism (and its compressed forms): every rank holds everything. The ZeRO panel
  // draws that as stage 0, the picture its stages are compared with (ZeRO publishes its own layout).
  if (transport && o.config.zero === 0 && strategy.statePlacement === 'replicated') publish(replicatedLayout(run.model.layout, transport.world, recipe.recipe.optimizer));
  return { run, strategy };
}

/** Stage 0: the slices each rank would own under ZeRO, every one of them holding the whole state. */
export function replicatedLayout(layout: ParamLayout, world: number, optimizer: OptimizerConfig): ZeroLayoutReport {
  const partition = zeroPartition(layout, world);
  return {
    type: 'zero-layout',
    stage: 0,
    total: partition.total,
    partition: partition.shards.map((s, rank) => ({ rank, start: s.offset, end: s.offset + s.length })),
    optimizerFloatsPerParam: optimizerFloatsPerParam(optimizer),
  };
}

/** The MLP's input and output widths follow the data set (XOR and circles have 2 classes, spirals 3). */
export function fitToData(recipe: ClassifierRecipe, data: ClassificationData): ClassifierRecipe {
  const sizes = [...recipe.model.sizes];
  sizes[0] = data.train.features;
  sizes[sizes.length - 1] = data.train.numClasses;
  return { ...recipe, model: { ...recipe.model, sizes } };
}
