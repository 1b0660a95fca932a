// Checks of trainer.ts that mutation testing (npm run mutate) pointed at: the weight of an uneven share
// (the multi-rank tests of src/train split the batch evenly, where the weight is 1 and a trainer that ignored
// it is still right) and global-norm clipping (the older tests train with it on, where a trainer that
// skipped it still learns). Both are compared with the formula on plain SGD, which moves in proportion
// to the gradient.
import { describe, expect, it } from 'vitest';
import { viewOf } from '../engine/backend';
import { CpuBackend } from '../engine/cpu-backend';
import { syntheticData } from '../data/synthetic';
import { BatchShares } from './batch-shares';
import { defaults, type ClassifierRecipe } from './defaults';
import { classifierRun } from './recipes';

const spirals = syntheticData({ kind: 'spirals', classes: 3, trainCount: 384, testCount: 64, noise: 0.03, seed: 4 });
const sgd: ClassifierRecipe = {
  ...defaults.synthetic,
  optimizer: { kind: 'sgd', lr: 0.5, momentum: 0, weightDecay: 0 },
  warmupSteps: 0,
  clipNorm: 0,
};

const norm = (a: Float32Array) => Math.sqrt(a.reduce((s, x) => s + x * x, 0));
const relativeDistance = (a: Float32Array, b: Float32Array) => norm(a.map((x, i) => x - b[i])) / norm(b);

/**
 * Trains `world` ranks for `steps` steps with an in-memory averaging sync, and returns every rank's
 * gradient as it entered the sync (before averaging), per step.
 */
async function rankGradients(recipe: ClassifierRecipe, world: number, steps: number, shares?: BatchShares): Promise<Float32Array[][]> {
  const raw: Float32Array[][] = Array.from({ length: steps }, () => []);
  const waiting = new Map<number, () => void>();
  const runs = Array.from({ length: world }, (_, rank) => {
    const backend = new CpuBackend();
    return classifierRun(backend, spirals, recipe, { world, rank }, {
      batchShares: shares,
      gradSync: async ({ step, grads }) => {
        raw[step][rank] = await backend.read(viewOf(grads));
        if (raw[step].filter(Boolean).length < world) await new Promise<void>((resolve) => waiting.set(step * world + rank, resolve));
        else for (let r = 0; r < world; r++) waiting.get(step * world + r)?.();
        const mean = raw[step][0].map((_, i) => raw[step].reduce((s, g) => s + g[i], 0) / world);
        backend.write(viewOf(grads), mean);
      },
    });
  });
  await Promise.all(runs.map((run) => run.trainer.train(steps)));
  return raw;
}

async function singleGradients(recipe: ClassifierRecipe, steps: number): Promise<Float32Array[]> {
  const backend = new CpuBackend();
  const grads: Float32Array[] = [];
  const run = classifierRun(backend, spirals, recipe, undefined, {
    gradSync: async ({ grads: g }) => void grads.push(await backend.read(viewOf(g))),
  });
  await run.trainer.train(steps);
  return grads;
}

const meanOf = (gs: Float32Array[]) => gs[0].map((_, i) => gs.reduce((s, g) => s + g[i], 0) / gs.length);

describe('Trainer: uneven shares are weighted by their size', () => {
  it('3 ranks on a batch of 32 (10, 11, 11 samples): the mean of their gradients is the 1-rank gradient within 1e-5 relative', async () => {
    const recipe = { ...sgd, globalBatch: 32 };
    const [want] = await singleGradients(recipe, 1);
    const [ranks] = await rankGradients(recipe, 3, 1);
    // Unweighted, the mean would be off by about (1/3 - 10/32) of a share's gradient: ~1e-2.
    expect(relativeDistance(meanOf(ranks), want)).toBeLessThan(1e-5);
  });

  it('a re-balanced split with 2 micro-batches ([4, 8, 24] of 36 from step 1): the mean is the 1-rank gradient within 1e-5 relative, at both steps', async () => {
    const recipe = { ...sgd, globalBatch: 36, microBatches: 2 };
    const want = await singleGradients(recipe, 2);
    const shares = new BatchShares(36, 3, 2);
    shares.set(1, [4, 8, 24]);
    const got = await rankGradients(recipe, 3, 2, shares);
    expect(relativeDistance(meanOf(got[0]), want[0])).toBeLessThan(1e-5);
    expect(relativeDistance(meanOf(got[1]), want[1])).toBeLessThan(1e-5);
    // The ranks' own gradients differ widely: a weight of 1/3 against 2 (the check is not vacuous).
    expect(relativeDistance(got[1][0], got[1][2])).toBeGreaterThan(0.1);
  });
});

describe('Trainer: global-norm clipping', () => {
  /** Parameters before and after one SGD step, and the gradient the sync saw (before clipping). */
  async function oneStep(clipNorm: number) {
    const backend = new CpuBackend();
    let grads: Float32Array = new Float32Array(0);
    const run = classifierRun(backend, spirals, { ...sgd, clipNorm }, undefined, {
      gradSync: async ({ grads: g }) => void (grads = await backend.read(viewOf(g))),
    });
    const before = await backend.read(viewOf(run.model.params));
    await run.trainer.trainStep();
    const after = await backend.read(viewOf(run.model.params));
    return { step: after.map((p, i) => p - before[i]), grads };
  }

  it('scales a gradient above the limit to norm clipNorm before the update (SGD step = -lr * clipped gradient, within 1e-5 relative)', async () => {
    const free = await oneStep(0);
    const gNorm = norm(free.grads);
    expect(relativeDistance(free.step, free.grads.map((g) => -0.5 * g))).toBeLessThan(1e-5);
    const clipped = await oneStep(gNorm / 4);
    expect(relativeDistance(clipped.step, free.grads.map((g) => -0.5 * g * 0.25))).toBeLessThan(1e-5);
    // A limit above the norm changes nothing.
    const loose = await oneStep(gNorm * 4);
    expect(relativeDistance(loose.step, free.step)).toBeLessThan(1e-6);
  });
});
