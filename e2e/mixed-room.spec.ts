// A room of unequal tabs: two WebGPU tabs and one `backend=cpu` tab (WebAssembly) train MNIST together.
// The forward and backward passes differ between backends, but after the all-reduce every rank applies
// the same averaged gradient, and the CPU backends update in float32 exactly as the WGSL kernels do
// (src/engine/f32-update.ts), so the replicas are bitwise equal after every step (each tab checks the
// room's parameter hashes after each step and stops on any difference), and the room ends where one
// WebGPU tab ends on the same global batch.
import { expect, test } from '@playwright/test';
import { finishTraining, mlpInitialParams, openTrainingTabs, relativeError } from './training';

const RUN = { model: 'mlp', dataset: 'mnist', steps: 6, batch: 64, seed: 3 };
const START = mlpInitialParams([784, 256, 10], RUN.seed);
// Relative to the distance trained, as e2e/data-parallel.spec.ts (same run, same tolerance): the CPU
// tab's float32 matmul sums in another order than WGSL, well inside it (the test prints the figure).
const TOLERANCE = 1e-5;

test(`2 WebGPU tabs + 1 CPU tab: replicas bitwise equal every step, and end where one tab ends within ${TOLERANCE.toExponential()} of the distance trained`, async ({ browser }) => {
  test.setTimeout(300_000);
  const solo = await browser.newContext();
  const [reference] = await finishTraining(await openTrainingTabs(solo, 1, RUN));
  await solo.close();

  const context = await browser.newContext();
  const backends = ['webgpu', 'webgpu', 'cpu'] as const;
  const pages = await openTrainingTabs(context, 3, RUN, backends.map((backend) => ({ backend })));
  const results = await finishTraining(pages, 240_000, [...backends]);
  await context.close();
  expect(results.map((r) => r.status.backend?.kind).sort()).toEqual(['cpu', 'webgpu', 'webgpu']);
  for (const r of results) {
    expect(r.status.step).toBe(RUN.steps);
    expect(r.metrics.hashesAgree).toBe(true);
    expect(r.hash).toBe(results[0].hash);
  }
  const error = relativeError(results[0].params, reference.params, START);
  console.log(`mixed room (2 WebGPU + 1 CPU) vs 1 WebGPU tab: relative error ${error.toExponential(2)} of the distance trained`);
  expect(error).toBeLessThan(TOLERANCE);
});
