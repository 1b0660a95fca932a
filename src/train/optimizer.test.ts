import { describe, expect, it } from 'vitest';
import { viewOf } from '../engine/backend';
import { CpuBackend } from '../engine/cpu-backend';
import { buildLayout } from '../model/layout';
import { decayRuns, GradClipper, learningRateAt, Optimizer } from './optimizer';

const zero = { kind: 'constant', value: 0 } as const;
const layout = buildLayout([
  { name: 'w1', shape: [100], group: 'a', decay: true, init: zero },
  { name: 'b1', shape: [10], group: 'a', decay: false, init: zero },
  { name: 'w2', shape: [70], group: 'b', decay: true, init: zero },
]);

function setup(values: (i: number) => number, grads: (i: number) => number) {
  const backend = new CpuBackend();
  const params = backend.alloc(layout.totalLength, 'p', 'params');
  const g = backend.alloc(layout.totalLength, 'g', 'grads');
  backend.write(viewOf(params), Float32Array.from({ length: layout.totalLength }, (_, i) => values(i)));
  backend.write(viewOf(g), Float32Array.from({ length: layout.totalLength }, (_, i) => grads(i)));
  return { backend, params, g };
}

describe('Optimizer', () => {
  it('splits the layout into decay runs that cover it exactly', () => {
    expect(decayRuns(layout)).toEqual([
      { offset: 0, length: 128, decay: true },
      { offset: 128, length: 64, decay: false },
      { offset: 192, length: 128, decay: true },
    ]);
  });

  it('SGD with momentum and decoupled-from-biases weight decay matches the formula over two steps', async () => {
    const { backend, params, g } = setup(() => 1, () => 0.5);
    const opt = new Optimizer(backend, layout, { kind: 'sgd', lr: 0.1, momentum: 0.9, weightDecay: 0.01 });
    opt.update(params, g, 1);
    opt.update(params, g, 2);
    const p = await backend.read(viewOf(params));
    // Weight: buf1 = 0.51, p1 = 0.949; buf2 = 0.9*0.51 + 0.5 + 0.01*0.949, p2 = p1 - 0.1*buf2.
    const buf2 = 0.9 * 0.51 + 0.5 + 0.01 * 0.949;
    expect(p[0]).toBeCloseTo(0.949 - 0.1 * buf2, 6);
    // Bias: no decay. buf2 = 0.9*0.5 + 0.5.
    expect(p[128]).toBeCloseTo(1 - 0.05 - 0.1 * 0.95, 6);
  });

  it('AdamW first step moves every coordinate by ~lr (bias-corrected), biases without decay', async () => {
    const { backend, params, g } = setup(() => 2, (i) => (i % 2 === 0 ? 3 : -0.001));
    const opt = new Optimizer(backend, layout, { kind: 'adamw', lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.1 });
    opt.update(params, g, 1);
    const p = await backend.read(viewOf(params));
    expect(p[0]).toBeCloseTo(2 - 0.01 * 0.1 * 2 - 0.01, 5);
    expect(p[1]).toBeCloseTo(2 - 0.01 * 0.1 * 2 + 0.01, 5);
    expect(p[128]).toBeCloseTo(2 - 0.01, 5);
  });

  it('updates only the asked range, with state for a shard only (ZeRO)', async () => {
    const { backend, params, g } = setup(() => 1, () => 1);
    const opt = new Optimizer(backend, layout, { kind: 'adamw', lr: 0.1, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 }, { offset: 128, length: 192 });
    expect(backend.memory().optimizer).toBe(2 * 192 * 4);
    opt.update(params, g, 1, 0.1, { offset: 192, length: 128 });
    const p = await backend.read(viewOf(params));
    expect(p[0]).toBe(1);
    expect(p[128]).toBe(1);
    expect(p[192]).toBeCloseTo(0.9, 5);
    expect(() => opt.update(params, g, 1, 0.1, { offset: 0, length: 64 })).toThrow(/outside/);
    expect(() => opt.update(params, g, 1, 0.1, { offset: 130, length: 64 })).toThrow(/multiple/);
    expect(() => opt.update(params, g, 0)).toThrow(/step/);
  });
});

describe('GradClipper', () => {
  it('scales the gradient to maxNorm only when it is larger', async () => {
    const backend = new CpuBackend();
    const g = backend.alloc(64, 'g', 'grads');
    backend.fill(viewOf(g), 0);
    backend.write(viewOf(g, 0, 2), Float32Array.of(3, 4));
    const clipper = new GradClipper(backend);
    clipper.clip(g, 1);
    expect(await clipper.lastNorm()).toBeCloseTo(5, 5);
    expect(Array.from(await backend.read(viewOf(g, 0, 2)))).toEqual([Math.fround(0.6), Math.fround(0.8)]);
    clipper.clip(g, 10);
    expect(Array.from(await backend.read(viewOf(g, 0, 2)))).toEqual([Math.fround(0.6), Math.fround(0.8)]);
  });
});

describe('learningRateAt', () => {
  it('warms up linearly, then decays by cosine to the floor', () => {
    const s = { lr: 1, warmupSteps: 10, totalSteps: 110, minFraction: 0.1 };
    expect(learningRateAt(0, s)).toBeCloseTo(0.1);
    expect(learningRateAt(9, s)).toBeCloseTo(1);
    expect(learningRateAt(60, s)).toBeCloseTo(0.55);
    expect(learningRateAt(110, s)).toBeCloseTo(0.1);
    expect(learningRateAt(500, s)).toBeCloseTo(0.1);
  });
});
