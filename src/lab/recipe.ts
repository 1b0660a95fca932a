// The run a tab trains: the measured defaults of src/train/defaults.ts with the URL's overrides.
import { defaults, type CharLmRecipe, type ClassifierRecipe, type Recipe } from '../train/defaults';
import { checkBatchSplit, classifierDefaults, type LabConfig, parseHidden } from './config';

export type { Recipe };

function overrides<R extends ClassifierRecipe | CharLmRecipe>(base: R, config: LabConfig): R {
  const recipe: R = { ...base, optimizer: { ...base.optimizer } };
  if (config.batch > 0) recipe.globalBatch = config.batch;
  if (config.steps > 0) recipe.steps = config.steps;
  if (config.lr > 0) recipe.optimizer.lr = config.lr;
  if (config.optimizer !== 'adamw') recipe.optimizer = { kind: 'sgd', lr: recipe.optimizer.lr, momentum: config.optimizer === 'momentum' ? 0.9 : 0, weightDecay: recipe.optimizer.weightDecay };
  recipe.microBatches = config.accum;
  recipe.seed = config.seed;
  return recipe;
}

/** The MLP's hidden widths from the URL; its input and output widths stay the data set's. */
function withHidden(recipe: ClassifierRecipe, hidden: string): ClassifierRecipe {
  if (hidden === '') return recipe;
  const { sizes } = recipe.model;
  return { ...recipe, model: { ...recipe.model, sizes: [sizes[0], ...parseHidden(hidden), sizes[sizes.length - 1]] } };
}

/** The GPT's blocks from the URL (0: the recipe's). */
function withLayers(recipe: CharLmRecipe, layers: number): CharLmRecipe {
  return layers === 0 ? recipe : { ...recipe, model: { ...recipe.model, nLayer: layers } };
}

/** experts=E: every block's MLP a mixture of E experts (src/model/moe-mlp.ts). */
function withExperts(recipe: CharLmRecipe, config: LabConfig): CharLmRecipe {
  if (config.experts === 0) return recipe;
  return { ...recipe, model: { ...recipe.model, moe: { experts: config.experts, topk: config.topk === 1 ? 1 : 2, capacityFactor: config.capacity, ...(config.routegroups > 1 ? { groups: config.routegroups } : {}) } } };
}

export function recipeFor(config: LabConfig, world: number): Recipe {
  const recipe: Recipe =
    config.model === 'gpt'
      ? { kind: 'charlm', recipe: withExperts(withLayers(overrides(defaults.sotu, config), config.layers), config) }
      : { kind: 'classifier', recipe: withHidden(overrides(classifierDefaults(config), config), config.hidden) };
  checkBatchSplit(recipe.recipe.globalBatch, world, recipe.recipe.microBatches);
  return recipe;
}

/**
 * Gradient bucket size in floats: the URL's, or the model's measured default. The GPT announces each
 * tensor's gradient as backward finishes it, and 8,192-float buckets start the all-reduce early enough to
 * hide most of it (4 tabs: step/max(compute, comm) 1.07-1.11 vs 1.24-1.32 at 65,536). The MLP's gradient
 * is nearly all one layer, finished last, so its buckets only add collectives: one big bucket.
 */
export function bucketFor(config: LabConfig): number {
  if (config.bucket > 0) return config.bucket;
  return config.model === 'gpt' ? 8192 : 1 << 16;
}
