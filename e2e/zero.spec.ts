// ZeRO in real tabs: 2 tabs with zero=1, 2 and 3 end with the parameters plain data parallelism
// (zero=0) reaches on the same seed and batch, within float tolerance; the tabs' hashes of the
// (gathered) parameters agree; and each stage holds the bytes it should by the browser's real
// WebGPU allocations: stage 1 shards the optimizer state, stage 2 the gradients too, stage 3 all three.
import { expect, test } from '@playwright/test';
import { paramsHash } from '../src/model/layout';
import { base64ToBytes, loadCheckpoint } from '../src/train/checkpoint';
import { finishTraining, maxRelativeDifference, openTrainingTabs } from './training';

const RUN = { model: 'mlp', dataset: 'mnist', steps: 4, batch: 64, seed: 5 };
// Reduce-scatter + all-gather sum in another order than the bucketed all-reduce; the clip norm is a
// sum of per-shard sums. Steps move parameters by ~1e-3, far above this.
const TOLERANCE = 1e-5;

test('zero=1, 2, 3 on 2 tabs end where plain data parallelism ends; hashes agree; shards held', async ({ browser }) => {
  test.setTimeout(240_000);
  const plainContext = await browser.newContext();
  const plain = await finishTraining(await openTrainingTabs(plainContext, 2, { ...RUN, zero: 0 }));
  await plainContext.close();
  const plainMemory = plain[0].metrics.memory!;
  const P = plainMemory.params / 4;

  for (const zero of [1, 2, 3]) {
    const context = await browser.newContext();
    const pages = await openTrainingTabs(context, 2, { ...RUN, zero });
    const results = await finishTraining(pages);
    // Each tab's checkpoint holds the full parameters (ZeRO-3: gathered) and its own optimizer slice.
    const ranks = await Promise.all(pages.map((p) => p.evaluate(() => window.lab.status().rank)));
    const file = loadCheckpoint(base64ToBytes(await pages[ranks.indexOf(1)].evaluate(() => window.lab.checkpoint())));
    expect(file.header).toMatchObject({ step: RUN.steps, world: 2, rank: 1 });
    expect(paramsHash(file.params)).toBe(results[0].hash);
    expect(file.header.optimizer.stateRange.offset).toBeGreaterThan(0);
    await context.close();
    for (const r of results) {
      expect(r.metrics.hashesAgree).toBe(true);
      expect(r.hash).toBe(results[0].hash);
      expect(r.metrics.zero).toMatchObject({ stage: zero, world: 2, elements: P });
      const memory = r.metrics.memory!;
      // Shards are whole 64-float blocks: within one block of P/2.
      const near = (bytes: number, elements: number) => expect(Math.abs(bytes / 4 - elements)).toBeLessThanOrEqual(64);
      near(memory.optimizer, P); // 2 floats per parameter of half the vector
      near(memory.grads, zero >= 2 ? P / 2 : P);
      near(memory.params, zero >= 3 ? P / 2 : P);
    }
    const difference = maxRelativeDifference(plain[0].params, results[0].params);
    console.log(`zero=${zero}: max relative parameter difference to zero=0 ${difference.toExponential(2)}`);
    expect(difference).toBeLessThan(TOLERANCE);
  }
});
