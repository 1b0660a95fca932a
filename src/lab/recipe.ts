// The run a tab trains: the measured defaults of src/train/defaults.ts with the URL's overrides.
import { defaults, type CharLmRecipe, type ClassifierRecipe } from '../train/defaults';
import { ConfigError, type LabConfig } from './config';

export type Recipe = { kind: 'classifier'; recipe: ClassifierRecipe } | { kind: 'charlm'; recipe: CharLmRecipe };

function overrides<R extends ClassifierRecipe | CharLmRecipe>(base: R, config: LabConfig): R {
  const recipe: R = { ...base, optimizer: { ...base.optimizer } };
  if (config.batch > 0) recipe.globalBatch = config.batch;
  if (config.steps > 0) recipe.steps = config.steps;
  if (config.lr > 0) recipe.optimizer.lr = config.lr;
  recipe.microBatches = config.accum;
  recipe.seed = config.seed;
  return recipe;
}

export function recipeFor(config: LabConfig, world: number): Recipe {
  const recipe: Recipe =
    config.model === 'gpt'
      ? { kind: 'charlm', recipe: overrides(defaults.sotu, config) }
      : { kind: 'classifier', recipe: overrides(config.dataset === 'mnist' ? defaults.mnist : defaults.synthetic, config) };
  const { globalBatch, microBatches } = recipe.recipe;
  if (globalBatch % (world * microBatches) !== 0) {
    throw new ConfigError(
      `the global batch (${globalBatch}) must split evenly into ${world} tab(s) x ${microBatches} micro-batch(es)`,
    );
  }
  return recipe;
}
