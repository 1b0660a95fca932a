// Tensor parallelism on WebGPU (SwiftShader here): T = 2 ranks, each on its own WebGPU backend of one
// device, over the in-memory transport, end where one WebGPU tab ends. The kernels are the same as one
// tab's on narrower shapes, and the row-split linears' partial sums are added by the ring all-reduce,
// so the result differs from one tab by float32 rounding, which AdamW magnifies where gradients are
// near zero: the tolerance is the CPU test's (src/parallel/tensor-trainer.test.ts), 1e-5 relative to the
// largest parameter, ten times the largest difference measured there.
import { beforeAll, describe, expect, it } from 'vitest';
import { ADAMW, maxRelativeDifference, trainOneTab } from '../parallel/pipeline-test-support';
import { TP_GPT, TP_MLP, trainTensor } from '../parallel/tensor-test-support';
import { deviceProblems, testDevice } from './test-device';
import { WebGpuBackend } from './webgpu-backend';
import type { GpuContext } from './device';

let ctx: GpuContext;

beforeAll(async () => {
  ctx = await testDevice();
}, 120_000);

describe('tensor parallelism on WebGPU', () => {
  it.each([
    ['mlp', TP_MLP],
    ['gpt', TP_GPT],
  ] as const)('%s: T = 2 ranks end where one WebGPU tab ends (AdamW, relative 1e-5), replicated tensors bitwise equal', async (name, spec) => {
    const backends = [await WebGpuBackend.fromContext(ctx), await WebGpuBackend.fromContext(ctx), await WebGpuBackend.fromContext(ctx)];
    const oneTab = await trainOneTab(spec, ADAMW, 8, 1, 2, { backend: () => backends[2] });
    const run = await trainTensor(spec, ADAMW, 2, 8, 1, { steps: 2, backend: (rank) => backends[rank] });
    const difference = maxRelativeDifference(run.params, oneTab);
    console.log(`${name} T=2 on WebGPU: max relative difference ${difference.toExponential(2)} vs one WebGPU tab`);
    expect(difference).toBeLessThan(1e-5);
    expect(run.replicatedEqual).toBe(true);
    expect(run.losses.every((l) => Number.isFinite(l))).toBe(true);
    expect(deviceProblems).toEqual([]);
  });
});
