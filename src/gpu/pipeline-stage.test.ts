// Pipeline stages on WebGPU (SwiftShader here): P stages x M micro-batches, each stage on its own
// WebGPU backend of one device, over the in-memory transport, end where one tab ends on WebGPU. The
// same kernels run on the same shapes as one tab with M micro-batches of gradient accumulation, so
// the MLP ends on the same bits; the GPT's tied wte sums its two gradients in another order (see
// src/parallel/pipeline-trainer.test.ts), and ends within 1e-6 relative to the largest parameter.
import { beforeAll, describe, expect, it } from 'vitest';
import { ADAMW, maxRelativeDifference, TINY_GPT, TINY_MLP, trainOneTab, trainPipeline } from '../parallel/pipeline-test-support';
import { deviceProblems, testDevice } from './test-device';
import { WebGpuBackend } from './webgpu-backend';
import type { GpuContext } from './device';

let ctx: GpuContext;

beforeAll(async () => {
  ctx = await testDevice();
}, 120_000);

describe('pipeline stages on WebGPU', () => {
  it.each([
    ['mlp', TINY_MLP],
    ['gpt', TINY_GPT],
  ] as const)('%s: 2 stages x 4 micro-batches (1F1B) end where one WebGPU tab ends (MLP bit for bit, GPT relative 1e-6)', async (name, spec) => {
    const backends: WebGpuBackend[] = [];
    const backend = async () => {
      const b = await WebGpuBackend.fromContext(ctx);
      backends.push(b);
      return b;
    };
    const [b0, b1, one] = [await backend(), await backend(), await backend()];
    const accumulated = await trainOneTab(spec, ADAMW, 8, 4, 2, { backend: () => one });
    const run = await trainPipeline(spec, ADAMW, '1f1b', 2, 8, 4, { steps: 2, backend: (s) => (s === 0 ? b0 : b1) });
    const difference = maxRelativeDifference(run.params, accumulated);
    console.log(`${name} on WebGPU: max relative difference ${difference.toExponential(2)} vs one tab with 4 micro-batches`);
    expect(difference).toBeLessThan(1e-6);
    if (name === 'mlp') expect(Array.from(run.params)).toEqual(Array.from(accumulated));
    expect(run.losses.every((l) => Number.isFinite(l))).toBe(true);
    expect(deviceProblems).toEqual([]);
  });
});
