// The tiny GPT under ZeRO-3: its tied head needs the embedding group again at the end of the forward
// and the start of the backward, so two layer groups are resident at once; training must still follow
// plain data parallelism.
import { describe, expect, it } from 'vitest';
import { createMemoryMesh } from '../../collective/memory-transport';
import { textDataFromString } from '../../data/text';
import { type MemoryKind, viewOf } from '../../engine/backend';
import { CpuBackend } from '../../engine/cpu-backend';
import { DEFAULT_CONFIG, type LabConfig, type ZeroStage } from '../../lab/config';
import type { CharLmRecipe } from '../../train/defaults';
import { defaults } from '../../train/defaults';
import { charLmRun, type Run } from '../../train/recipes';
import { gptLayout, type Gpt } from '../../model/gpt';
import { initialParams } from '../../model/init';
import type { ParamLayout } from '../../model/layout';
import { DataParallelSync } from '../data-parallel';
import { predictBytes, slotsHeld, totalBytes } from './budget';
import { createZeroHooks } from './zero-hooks';

const data = textDataFromString('the quick brown fox jumps over the lazy dog. '.repeat(40));
const steps = 3;
const recipe: CharLmRecipe = {
  ...defaults.sotu,
  model: { blockSize: 8, nLayer: 2, nHead: 2, nEmbd: 16 },
  globalBatch: 4,
  steps,
  evalWindows: 2,
  logEvery: 1,
  optimizer: { ...defaults.sotu.optimizer, lr: 0.05 },
};

async function train(zero: ZeroStage, world: number): Promise<{ params: Float32Array[]; memory: Record<MemoryKind, number>; layout: ParamLayout }> {
  const config: LabConfig = { ...DEFAULT_CONFIG, model: 'gpt', dataset: 'text', zero, steps, batch: 4, seed: recipe.seed, lr: 0.05 };
  const ranks = createMemoryMesh(world).map((transport) => {
    const backend = new CpuBackend();
    let run: Run<Gpt> | undefined;
    if (zero === 0) {
      let sync: DataParallelSync | undefined;
      run = charLmRun(backend, data, recipe, { world, rank: transport.rank }, { gradHooks: (s, m) => sync!.hooks(s, m), gradSync: (c) => sync!.gradSync(c) });
      sync = new DataParallelSync({ backend, transport, model: run.model, bucketElements: 1 << 16, microBatches: 1 });
      return { run, backend, full: () => backend.read(viewOf(run!.model.params)) };
    }
    const { gatherParams, ...hooks } = createZeroHooks({ config, recipe, bucketElements: 1 << 16, backend, transport, model: () => run!.model, optimizer: () => run!.optimizer, microBatches: 1, publish: () => undefined });
    run = charLmRun(backend, data, { ...recipe, steps }, { world, rank: transport.rank }, hooks);
    return { run, backend, full: () => (gatherParams ? gatherParams(steps) : backend.read(viewOf(run!.model.params))) };
  });
  for (let s = 0; s < steps; s++) await Promise.all(ranks.map(({ run }) => run.trainer.trainStep()));
  const params = await Promise.all(ranks.map(({ full }) => full()));
  return { params, memory: ranks[0].backend.memory(), layout: ranks[0].run.model.layout };
}

describe('ZeRO-3 on the tiny GPT', () => {
  it('2 ranks follow plain data parallelism and gather equal parameters', async () => {
    const [plainRun, shardedRun] = [await train(0, 2), await train(3, 2)];
    const [plain, sharded] = [plainRun.params, shardedRun.params];
    expect(sharded[0]).toEqual(sharded[1]);
    const initial = initialParams(gptLayout({ ...recipe.model, vocabSize: data.vocab.length }), recipe.seed);
    let worst = 0;
    let moved = 0;
    for (let i = 0; i < plain[0].length; i++) {
      worst = Math.max(worst, Math.abs(plain[0][i] - sharded[0][i]));
      moved = Math.max(moved, Math.abs(plain[0][i] - initial[i]));
    }
    expect(worst).toBeLessThan(1e-5);
    expect(moved).toBeGreaterThan(1e-3);
    // Around the tied head the weights and gradients of two groups are resident at once: four slots,
    // as the budget predicts from the plain run (within the clip scalar and a block of shard padding).
    const predicted = predictBytes(shardedRun.layout, 2, 3, plainRun.memory, 0, { residentGroups: 2 });
    expect(Math.abs(predicted - totalBytes(shardedRun.memory))).toBeLessThanOrEqual(4 * 64 * 2);
    expect(slotsHeld(3, 2)).toBe(4);
  });
});
