// Wires a data set and a recipe into a ready trainer: the one place that knows how a model, its
// optimizer, its batches and its evaluation fit together. The lab, the CPU tuning scripts and the
// tests all start runs through here, so they train the same thing.
import type { Backend } from '../engine/backend';
import { decodeTokens } from '../data/text';
import type { ClassificationData, TextData } from '../data/types';
import { Gpt } from '../model/gpt';
import { Mlp } from '../model/mlp';
import type { FlatRange, ParamLayout } from '../model/layout';
import type { Batch, StorageFactory } from '../model/model';
import type { BatchShares } from './batch-shares';
import { ClassificationBatches, classificationEvalBatches, evalRows, TextBatches, textEvalBatches } from './batches';
import { lrScheduleOf, type CharLmRecipe, type ClassifierRecipe } from './defaults';
import { learningRateAt, Optimizer, type OptimizerConfig } from './optimizer';
import { Trainer, type TrainerOptions } from './trainer';

export interface Shard {
  world: number;
  rank: number;
}

/** What the caller may add: the sync hook, gradient hooks, the event sink (and its own text sampler). */
export type TrainerExtras = Pick<
  TrainerOptions,
  'gradSync' | 'afterUpdate' | 'localUpdate' | 'gradHooks' | 'onEvent' | 'sampler' | 'layerwise' | 'eagerUpdates' | 'prefetchForward' | 'alongsideComm'
> & {
  /**
   * ZeRO: hold optimizer state for (and update) this slice of the flat buffers only. A function gets
   * the model's layout (the ZeRO partition is a function of it).
   */
  optimizerStateRange?: FlatRange | ((layout: ParamLayout) => FlatRange);
  /** ZeRO-Offload: the optimizer's state (and its update math) live on this backend, the host's. */
  optimizerBackend?: Backend;
  /** ZeRO-2/3: where the model keeps parameters and gradients (this rank's shards). */
  modelStorage?: StorageFactory;
  /** Rewrites the recipe's optimizer (DGC momentum correction: the sparsifier owns the momentum). */
  optimizerConfig?: (base: OptimizerConfig) => OptimizerConfig;
  /** The room's split of each step's global batch, when a balancer may change it (batch-shares.ts). */
  batchShares?: BatchShares;
};

export interface Run<M> {
  model: M;
  optimizer: Optimizer;
  trainer: Trainer;
  evalBatches: Batch[];
  dispose(): void;
}

export function classifierRun(
  backend: Backend,
  data: ClassificationData,
  recipe: ClassifierRecipe,
  shard: Shard = { world: 1, rank: 0 },
  extras: TrainerExtras = {},
): Run<Mlp> {
  const sizes = recipe.model.sizes;
  if (sizes[0] !== data.train.features || sizes[sizes.length - 1] !== data.train.numClasses) {
    throw new Error(`model [${sizes.join(', ')}] does not fit ${data.train.name}: ${data.train.features} features, ${data.train.numClasses} classes`);
  }
  const batches = new ClassificationBatches(
    data.train,
    { globalBatch: recipe.globalBatch, microBatches: recipe.microBatches, seed: recipe.seed, ...shard, shares: extras.batchShares },
    recipe.maxShift,
  );
  const model = new Mlp(backend, recipe.model, batches.maxMicroRows, extras.modelStorage);
  model.init(recipe.seed);
  const rows = evalRows(recipe.globalBatch, shard.world, recipe.microBatches);
  return finish(backend, model, recipe, batches, classificationEvalBatches(data.test, rows), shard, extras);
}

export function charLmRun(
  backend: Backend,
  data: TextData,
  recipe: CharLmRecipe,
  shard: Shard = { world: 1, rank: 0 },
  extras: TrainerExtras = {},
): Run<Gpt> {
  const config = { ...recipe.model, vocabSize: data.vocab.length };
  const batches = new TextBatches(data.train, config.blockSize, {
    globalBatch: recipe.globalBatch,
    microBatches: recipe.microBatches,
    seed: recipe.seed,
    ...shard,
    shares: extras.batchShares,
  });
  const model = new Gpt(backend, config, batches.maxMicroRows, extras.modelStorage);
  model.init(recipe.seed);
  const evalBatches = textEvalBatches(data.val, config.blockSize, evalRows(recipe.globalBatch, shard.world, recipe.microBatches), recipe.evalWindows);
  // Samples start from the first character of the validation text and are seeded by the step, so
  // every replica (and a rerun) writes the same sample at the same step. With layer-by-layer passes
  // (ZeRO-3: no rank holds every layer) it samples through them, and every rank of the room must sample.
  const prompt = (data.val.length > 0 ? data.val : data.train).subarray(0, 1);
  const layerwise = extras.layerwise;
  const sampler = async (step: number) => {
    const forward = layerwise ? (batch: Batch) => layerwise.forward(batch, 0, step) : undefined;
    const tokens = await model.sample(prompt, recipe.sampleLength, { temperature: recipe.temperature, seed: recipe.seed + step, forward });
    return decodeTokens(prompt, data.vocab) + decodeTokens(tokens, data.vocab);
  };
  return finish(backend, model, recipe, batches, evalBatches, shard, { sampler, ...extras });
}

function finish<M extends Mlp | Gpt>(
  backend: Backend,
  model: M,
  recipe: ClassifierRecipe | CharLmRecipe,
  batches: ClassificationBatches | TextBatches,
  evalBatches: Batch[],
  shard: Shard,
  extras: TrainerExtras,
): Run<M> {
  const { optimizerStateRange, optimizerConfig, optimizerBackend, modelStorage: _storage, batchShares: _shares, ...trainerExtras } = extras;
  const stateRange = typeof optimizerStateRange === 'function' ? optimizerStateRange(model.layout) : optimizerStateRange;
  const optimizerConfigured = optimizerConfig ? optimizerConfig(recipe.optimizer) : recipe.optimizer;
  const optimizer = new Optimizer(optimizerBackend ?? backend, model.layout, optimizerConfigured, stateRange);
  const schedule = lrScheduleOf(recipe);
  const trainer = new Trainer({
    backend,
    model,
    optimizer,
    batches,
    learningRate: (step) => learningRateAt(step, schedule),
    clipNorm: recipe.clipNorm,
    globalBatch: recipe.globalBatch,
    rank: shard.rank,
    logEvery: recipe.logEvery,
    ...trainerExtras,
  });
  return {
    model,
    optimizer,
    trainer,
    evalBatches,
    dispose() {
      trainer.dispose();
      optimizer.dispose();
      model.dispose();
    },
  };
}
