// Data parallelism is checked against math: N tabs training on shards of a global batch end with the
// parameters one tab reaches on that whole batch (within float tolerance: the sums are ordered
// differently), and every replica is bitwise equal after every step (each tab all-gathers the
// parameter hashes after each step and stops with an error on any difference). Both optimizers: SGD
// moves in proportion to the averaged gradient, so a wrongly scaled average shows there, while AdamW
// normalises most of such a scale away.
import { expect, test } from '@playwright/test';
import { finishTraining, mlpInitialParams, openTrainingTabs, relativeError } from './training';

// A short MNIST run: enough steps for the optimizer state to matter, small enough for SwiftShader.
const RUN = { model: 'mlp', dataset: 'mnist', steps: 6, batch: 64, seed: 3 };
const OPTIMIZERS = { adamw: {}, sgd: { optimizer: 'sgd', lr: 0.05 } } as const;
const START = mlpInitialParams([784, 256, 10], RUN.seed);
// Relative to the distance trained (||N tabs - 1 tab|| / ||1 tab - start||). Measured on SwiftShader
// (the test prints it): see the numbers in docs/testing.md. A 1% error in the averaged gradient gives
// ~1e-2 under SGD (src/parallel/data-parallel.test.ts).
const TOLERANCE = 1e-5;

for (const [name, optimizer] of Object.entries(OPTIMIZERS)) {
  test(`${name}: 2 and 4 tabs end where one tab ends on the same global batch within ${TOLERANCE.toExponential()} of the distance trained; replicas bitwise equal`, async ({ browser }) => {
    test.setTimeout(240_000);
    const run = { ...RUN, ...optimizer };
    const solo = await browser.newContext();
    const [reference] = await finishTraining(await openTrainingTabs(solo, 1, run));
    await solo.close();
    expect(reference.status.step).toBe(RUN.steps);

    for (const tabs of [2, 4]) {
      const context = await browser.newContext();
      const results = await finishTraining(await openTrainingTabs(context, tabs, run));
      await context.close();
      expect(results.map((r) => r.status.rank)).toEqual([...Array(tabs).keys()]);
      for (const r of results) {
        expect(r.status.world).toBe(tabs);
        expect(r.status.step).toBe(RUN.steps);
        expect(r.metrics.hashesAgree).toBe(true);
        expect(r.hash).toBe(results[0].hash);
        expect(r.metrics.bytesSent).toBeGreaterThan(0);
        // Counted on the data channels: every payload byte the schedules counted, plus each frame's
        // 40-byte header (an open room: no MAC), and the replica checks' hash exchange besides.
        const wire = r.metrics.wire!;
        expect(wire.wireBytes).toBe(wire.payloadBytes + 40 * wire.frames);
        expect(wire.payloadBytes).toBeGreaterThanOrEqual(r.metrics.bytesSent);
      }
      const error = relativeError(results[0].params, reference.params, START);
      console.log(`${name}, ${tabs} tabs vs 1 tab: relative error ${error.toExponential(2)} of the distance trained`);
      expect(error).toBeLessThan(TOLERANCE);
    }
  });
}

test(`gradient accumulation: 2 tabs x 2 micro-batches end where 2 tabs x 1 batch end within ${TOLERANCE.toExponential()} of the distance trained`, async ({ browser }) => {
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
  const error = relativeError(results[0].params, single.params, START);
  console.log(`accumulation: relative error ${error.toExponential(2)} of the distance trained`);
  expect(error).toBeLessThan(TOLERANCE);
});
