// Data parallelism is checked against math: N tabs training on shards of a global batch end with the
// parameters one tab reaches on that whole batch (within float tolerance: the sums are ordered
// differently), and every replica is bitwise equal after every step (each tab all-gathers the
// parameter hashes after each step and stops with an error on any difference).
import { expect, test } from '@playwright/test';
import { finishTraining, maxRelativeDifference, openTrainingTabs } from './training';

// A short MNIST run: enough steps for the optimizer state to matter, small enough for SwiftShader.
const RUN = { model: 'mlp', dataset: 'mnist', steps: 6, batch: 64, seed: 3 };
// Measured: 2-4e-8 (float32 sums in another order); the first steps move parameters by ~1e-3.
const TOLERANCE = 1e-6;

test('2 and 4 tabs end where one tab ends on the same global batch; replicas bitwise equal', async ({ browser }) => {
  const solo = await browser.newContext();
  const [reference] = await finishTraining(await openTrainingTabs(solo, 1, RUN));
  const [afterOneStep] = await finishTraining(await openTrainingTabs(solo, 1, { ...RUN, steps: 1 }));
  await solo.close();
  expect(reference.status.step).toBe(RUN.steps);
  // The tolerance is meaningful: the steps after the first move the parameters far more than it.
  expect(maxRelativeDifference(reference.params, afterOneStep.params)).toBeGreaterThan(100 * TOLERANCE);

  for (const tabs of [2, 4]) {
    const context = await browser.newContext();
    const results = await finishTraining(await openTrainingTabs(context, tabs, RUN));
    await context.close();
    expect(results.map((r) => r.status.rank)).toEqual([...Array(tabs).keys()]);
    for (const r of results) {
      expect(r.status.world).toBe(tabs);
      expect(r.status.step).toBe(RUN.steps);
      expect(r.metrics.hashesAgree).toBe(true);
      expect(r.hash).toBe(results[0].hash);
      expect(r.metrics.bytesSent).toBeGreaterThan(0);
    }
    const difference = maxRelativeDifference(reference.params, results[0].params);
    console.log(`${tabs} tabs vs 1 tab: max relative parameter difference ${difference.toExponential(2)}`);
    expect(difference).toBeLessThan(TOLERANCE);
  }
});

test('gradient accumulation: 2 tabs x 2 micro-batches end where 2 tabs x 1 batch end', async ({ browser }) => {
  const plain = await browser.newContext();
  const [single] = await finishTraining(await openTrainingTabs(plain, 2, { ...RUN, accum: 1 }));
  await plain.close();
  const accumulating = await browser.newContext();
  // These two also check headless workers without dashboards (dashboard=0, as the swarm runs them).
  const pages = await openTrainingTabs(accumulating, 2, { ...RUN, accum: 2, dashboard: 0 });
  await expect(pages[0].getByText('Dashboard off (dashboard=0)')).toBeVisible();
  await expect(pages[0].getByRole('heading', { name: 'WebGPU training lab' })).toHaveCount(0);
  const results = await finishTraining(pages);
  await accumulating.close();
  expect(results[0].hash).toBe(results[1].hash);
  expect(maxRelativeDifference(single.params, results[0].params)).toBeLessThan(TOLERANCE);
});
