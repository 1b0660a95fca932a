// Default recipes, measured (not guessed) with scripts/train-mnist-cpu.ts and scripts/train-gpt-cpu.ts
// on the CPU reference backend; the numbers they reached are in the comments. Small enough for
// SwiftShader (~0.4 GFLOP/s) to train in minutes.
import type { GptConfig } from '../model/gpt';
import type { MlpConfig } from '../model/mlp';
import type { LrSchedule, OptimizerConfig } from './optimizer';

export interface ClassifierRecipe {
  model: MlpConfig;
  /** Samples per optimizer step over the whole room. */
  globalBatch: number;
  microBatches: number;
  steps: number;
  optimizer: OptimizerConfig;
  warmupSteps: number;
  minLrFraction: number;
  clipNorm: number;
  /** Random image shifts of up to this many pixels (MNIST only). */
  maxShift: number;
  seed: number;
  evalEvery: number;
  logEvery: number;
}

export interface CharLmRecipe {
  /** vocabSize is filled in from the data. */
  model: Omit<GptConfig, 'vocabSize'>;
  globalBatch: number;
  microBatches: number;
  steps: number;
  optimizer: OptimizerConfig;
  warmupSteps: number;
  minLrFraction: number;
  clipNorm: number;
  seed: number;
  evalEvery: number;
  logEvery: number;
  /** Validation windows per evaluation. */
  evalWindows: number;
  sampleEvery: number;
  sampleLength: number;
  temperature: number;
}

/** Either kind of recipe: what the strategies and checkpoints read (optimizer, schedule, batch). */
export type TrainingRecipe = ClassifierRecipe | CharLmRecipe;

/** A run's recipe with its kind: resolved once per run (src/lab/recipe.ts) and passed down. */
export type Recipe = { kind: 'classifier'; recipe: ClassifierRecipe } | { kind: 'charlm'; recipe: CharLmRecipe };

/** The learning-rate schedule a recipe asks for (warm-up, then cosine down to lr * minLrFraction). */
export function lrScheduleOf(recipe: TrainingRecipe): LrSchedule {
  return { lr: recipe.optimizer.lr, warmupSteps: recipe.warmupSteps, totalSteps: recipe.steps, minFraction: recipe.minLrFraction };
}

export const defaults = {
  // Measured with scripts/train-mnist-cpu.ts (8,995 train / 1,005 held-out digits): 96.62% held-out
  // accuracy with seed 1, 97.11% with seed 2 (784-128-10 reached only 95.2% in 1,000 steps).
  mnist: {
    model: { sizes: [784, 256, 10] },
    globalBatch: 128,
    microBatches: 1,
    steps: 1000,
    optimizer: { kind: 'adamw', lr: 2e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 1e-4 },
    warmupSteps: 30,
    minLrFraction: 0.05,
    // No global-norm clipping: over the 1,000 steps of this recipe the gradient norm peaks at 1.52
    // (scripts/train-mnist-cpu.ts --norms), so a clip at 5 never fired. Without it, data-parallel tabs
    // update each bucket as soon as its average lands (train/eager-update.ts) instead of after the last.
    clipNorm: 0,
    maxShift: 1,
    seed: 1,
    evalEvery: 100,
    logEvery: 10,
  } satisfies ClassifierRecipe as ClassifierRecipe,
  synthetic: {
    model: { sizes: [2, 32, 32, 3] },
    globalBatch: 64,
    microBatches: 1,
    steps: 300,
    optimizer: { kind: 'adamw', lr: 1e-2, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 },
    warmupSteps: 10,
    minLrFraction: 0.1,
    clipNorm: 5,
    maxShift: 0,
    seed: 1,
    evalEvery: 50,
    logEvery: 10,
  } satisfies ClassifierRecipe as ClassifierRecipe,
  // Measured with scripts/train-gpt-cpu.ts (1,094,813 train / 121,726 validation chars, vocab 82):
  // bigram baseline 2.410 nats/char on validation; this recipe (109,440 parameters) gives validation
  // 2.384 at step 200, 2.118 at 400, 1.959 at 600 and 1.883 nats/char at 800. Char models sit on a
  // bigram-level plateau for the first ~250 steps; fewer steps than ~400 barely beat the baseline.
  sotu: {
    model: { blockSize: 64, nLayer: 2, nHead: 4, nEmbd: 64 },
    globalBatch: 16,
    microBatches: 1,
    steps: 800,
    optimizer: { kind: 'adamw', lr: 3e-3, beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0.01 },
    warmupSteps: 20,
    minLrFraction: 0.1,
    clipNorm: 1,
    seed: 1,
    evalEvery: 100,
    logEvery: 10,
    evalWindows: 64,
    sampleEvery: 100,
    sampleLength: 120,
    temperature: 0.8,
  } satisfies CharLmRecipe as CharLmRecipe,
};
