// Checks of optimizer.ts that mutation testing (npm run mutate) showed missing: the learning-rate schedule
// between its landmarks (the older test reads it to two decimals at four points, where a cosine turned
// upside down or a warm-up one step too long still agree), the clipper's refusal of a norm it cannot
// scale to, and the ranges an update may touch. A wrong schedule or a leaky range still trains, so only
// a check against the formula notices.
import { describe, expect, it } from 'vitest';
import { viewOf } from '../engine/backend';
import { CpuBackend } from '../engine/cpu-backend';
import { buildLayout } from '../model/layout';
import { decayRuns, GradClipper, learningRateAt, Optimizer } from './optimizer';

const schedule = { lr: 2, warmupSteps: 10, totalSteps: 110, minFraction: 0.1 };
/** nanoGPT's get_lr written out independently (0-based step). */
function expected(step: number): number {
  const { lr, warmupSteps: w, totalSteps: t, minFraction: m } = schedule;
  if (step < w) return (lr * (step + 1)) / w;
  if (step >= t) return lr * m;
  return lr * (m + (1 - m) * 0.5 * (1 + Math.cos((Math.PI * (step - w)) / (t - w))));
}

describe('learningRateAt against the formula (within 1e-12 relative)', () => {
  it('at every step from 0 to past the end, including the first cosine step, the quarter points and the floor', () => {
    for (let step = 0; step <= 130; step++) {
      const got = learningRateAt(step, schedule);
      expect(Math.abs(got - expected(step))).toBeLessThanOrEqual(1e-12 * expected(step));
    }
  });

  it('the last warm-up step reaches the full rate and the first cosine step starts there (no step of the warm-up is skipped or repeated)', () => {
    expect(learningRateAt(9, schedule)).toBe(2);
    expect(learningRateAt(10, schedule)).toBe(2);
    expect(learningRateAt(11, schedule)).toBeLessThan(2);
    // A quarter of the way down the cosine the rate is above the midpoint of lr and the floor.
    expect(learningRateAt(35, schedule)).toBeCloseTo(2 * (0.1 + 0.9 * 0.5 * (1 + Math.SQRT1_2)), 12);
  });

  it('without warm-up the cosine starts at step 0 from the full rate', () => {
    const s = { ...schedule, warmupSteps: 0 };
    expect(learningRateAt(0, s)).toBe(2);
    expect(learningRateAt(55, s)).toBeCloseTo(2 * (0.1 + 0.9 * 0.5 * (1 + Math.cos(Math.PI / 2))), 12);
  });
});

describe('GradClipper edges', () => {
  it('refuses a maximum norm of zero, a negative one and NaN (it could not scale to them)', () => {
    const backend = new CpuBackend();
    const g = backend.alloc(64, 'g', 'grads');
    const clipper = new GradClipper(backend);
    for (const bad of [0, -1, Number.NaN]) expect(() => clipper.clip(g, bad)).toThrow(/maxNorm must be > 0/);
  });

  it('clips only the asked range, measuring the norm of that range alone', async () => {
    const backend = new CpuBackend();
    const g = backend.alloc(128, 'g', 'grads');
    backend.fill(viewOf(g), 0);
    backend.write(viewOf(g, 0, 2), Float32Array.of(30, 40));
    backend.write(viewOf(g, 64, 2), Float32Array.of(3, 4));
    const clipper = new GradClipper(backend);
    clipper.clip(g, 1, { offset: 64, length: 64 });
    expect(await clipper.lastNorm()).toBeCloseTo(5, 5);
    expect(Array.from(await backend.read(viewOf(g, 0, 2)))).toEqual([30, 40]);
    expect(Array.from(await backend.read(viewOf(g, 64, 2)))).toEqual([Math.fround(0.6), Math.fround(0.8)]);
  });
});

describe('Optimizer ranges', () => {
  const zero = { kind: 'constant', value: 0 } as const;
  const layout = buildLayout([
    { name: 'w', shape: [64], group: 'a', decay: true, init: zero },
    { name: 'b', shape: [64], group: 'a', decay: false, init: zero },
  ]);

  it('refuses a negative or NaN learning rate and an empty or unaligned state range', () => {
    const backend = new CpuBackend();
    const sgd = { kind: 'sgd', lr: 0.1, momentum: 0, weightDecay: 0 } as const;
    expect(() => new Optimizer(backend, layout, { ...sgd, lr: -0.1 })).toThrow(/learning rate must be >= 0/);
    expect(() => new Optimizer(backend, layout, { ...sgd, lr: Number.NaN })).toThrow(/learning rate must be >= 0/);
    expect(() => new Optimizer(backend, layout, sgd, { offset: 64, length: 0 })).toThrow(/empty/);
    expect(() => new Optimizer(backend, layout, sgd, { offset: 64, length: 128 })).toThrow(/outside/);
    // A learning rate of 0 is allowed (a frozen run): nothing moves.
    const frozen = new Optimizer(backend, layout, { ...sgd, lr: 0 });
    expect(frozen.stateRange).toEqual({ offset: 0, length: 128 });
  });

  it('an update over a range that ends exactly at the state range end is accepted; one element further is not', () => {
    const backend = new CpuBackend();
    const opt = new Optimizer(backend, layout, { kind: 'sgd', lr: 1, momentum: 0, weightDecay: 0 }, { offset: 64, length: 64 });
    const params = backend.alloc(128, 'p', 'params');
    const grads = backend.alloc(128, 'g', 'grads');
    backend.fill(viewOf(params), 1);
    backend.fill(viewOf(grads), 0.5);
    opt.update(params, grads, 1, 1, { offset: 64, length: 64 });
    expect(() => opt.update(params, grads, 1, 1, { offset: 64, length: 65 })).toThrow(/outside/);
    expect(() => opt.update(params, grads, 1.5)).toThrow(/integer >= 1, got 1.5/);
  });

  it('a shard-sized buffer (ZeRO-2/3) is read from the state range origin; any other size is refused by name', async () => {
    const backend = new CpuBackend();
    const opt = new Optimizer(backend, layout, { kind: 'sgd', lr: 1, momentum: 0, weightDecay: 0 }, { offset: 64, length: 64 });
    const params = backend.alloc(64, 'p', 'params');
    const grads = backend.alloc(128, 'g', 'grads');
    backend.fill(viewOf(params), 1);
    backend.fill(viewOf(grads), 0);
    // Only the shard's half of the full gradient is non-zero: a shard read from flat offset 0 would see zeros.
    backend.fill(viewOf(grads, 64, 64), 0.25);
    opt.update(params, grads, 1);
    expect(Array.from(await backend.read(viewOf(params))).every((p) => p === 0.75)).toBe(true);
    const odd = backend.alloc(96, 'odd', 'grads');
    expect(() => opt.update(params, odd, 1)).toThrow(/grads buffer holds 96 elements/);
  });
});

// Added after the fifth mutation run's survivors: the real layouts alternate matrices (decay) and biases
// (no decay), so decayRuns never had to join two neighbours, and the range refusals were matched by a
// word of their message only.
describe('decayRuns joins neighbours with one decay flag', () => {
  it('two decaying tensors, then two that do not, make two runs; padding joins the tensor before it', () => {
    const zero = { kind: 'constant', value: 0 } as const;
    const layout = buildLayout([
      { name: 'w1', shape: [64], group: 'a', decay: true, init: zero },
      { name: 'w2', shape: [10], group: 'a', decay: true, init: zero },
      { name: 'b1', shape: [64], group: 'a', decay: false, init: zero },
      { name: 'b2', shape: [3], group: 'a', decay: false, init: zero },
      { name: 'w3', shape: [64], group: 'a', decay: true, init: zero },
    ]);
    expect(layout.entries.map((e) => e.offset)).toEqual([0, 64, 128, 192, 256]);
    expect(decayRuns(layout)).toEqual([
      { offset: 0, length: 128, decay: true },
      { offset: 128, length: 128, decay: false },
      { offset: 256, length: 64, decay: true },
    ]);
  });
});

describe('Optimizer range refusals name both ranges', () => {
  const zero = { kind: 'constant', value: 0 } as const;
  const layout = buildLayout([
    { name: 'w', shape: [64], group: 'a', decay: true, init: zero },
    { name: 'b', shape: [64], group: 'a', decay: false, init: zero },
  ]);
  const sgd = { kind: 'sgd', lr: 0.1, momentum: 0, weightDecay: 0 } as const;

  it('a state range past the layout, and an update range that starts before the state range', () => {
    const backend = new CpuBackend();
    expect(() => new Optimizer(backend, layout, sgd, { offset: 64, length: 128 })).toThrow(new RangeError('optimizer state range [64, 192) outside [0, 128)'));
    const opt = new Optimizer(backend, layout, sgd, { offset: 64, length: 64 });
    const params = backend.alloc(128, 'p', 'params');
    expect(() => opt.update(params, params, 1, 0.1, { offset: 0, length: 64 })).toThrow(new RangeError('update range [0, 64) outside [64, 128)'));
  });

  it('step 0 is refused (Adam divides by 1 - beta^step); a params buffer of neither size is named as params', () => {
    const backend = new CpuBackend();
    const opt = new Optimizer(backend, layout, sgd, { offset: 64, length: 64 });
    const params = backend.alloc(128, 'p', 'params');
    expect(() => opt.update(params, params, 0)).toThrow(new RangeError('optimizer step must be an integer >= 1, got 0'));
    const odd = backend.alloc(96, 'odd', 'params');
    expect(() => opt.update(odd, params, 1)).toThrow(new RangeError('params buffer holds 96 elements: neither the layout (128) nor the state range (64)'));
  });

  it('a shard-sized gradient buffer beside full parameters (ZeRO-2) is read from the state range origin', async () => {
    const backend = new CpuBackend();
    const opt = new Optimizer(backend, layout, { ...sgd, lr: 1 }, { offset: 64, length: 64 });
    const params = backend.alloc(128, 'p', 'params');
    const grads = backend.alloc(64, 'g', 'grads');
    backend.fill(viewOf(params), 1);
    backend.write(viewOf(grads), Float32Array.from({ length: 64 }, (_, i) => i / 64));
    opt.update(params, grads, 1);
    const after = await backend.read(viewOf(params));
    expect(Array.from(after.subarray(0, 64)).every((p) => p === 1)).toBe(true);
    expect(Array.from(after.subarray(64))).toEqual(Array.from({ length: 64 }, (_, i) => Math.fround(1 - i / 64)));
  });
});

describe('Optimizer state buffers per kind', () => {
  it('SGD keeps one buffer, sgd.momentum; AdamW two, adam.m and adam.v (checkpoints name their sections so)', () => {
    const zero = { kind: 'constant', value: 0 } as const;
    const layout = buildLayout([{ name: 'w', shape: [64], group: 'a', decay: true, init: zero }]);
    const backend = new CpuBackend();
    const sgd = new Optimizer(backend, layout, { kind: 'sgd', lr: 0.1, momentum: 0.9, weightDecay: 0 });
    expect(sgd.stateBuffers().map((s) => [s.name, s.buf.length])).toEqual([['sgd.momentum', 64]]);
    const adamw = new Optimizer(backend, layout, { kind: 'adamw', lr: 0.1, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 });
    expect(adamw.stateBuffers().map((s) => [s.name, s.buf.length])).toEqual([
      ['adam.m', 64],
      ['adam.v', 64],
    ]);
  });
});

describe('GradClipper buffers and default range', () => {
  it('keeps its one sum as workspace memory, and without a range clips the whole buffer', async () => {
    const backend = new CpuBackend();
    const before = backend.memory().workspace;
    const clipper = new GradClipper(backend);
    expect(backend.memory().workspace).toBeGreaterThan(before);
    const g = backend.alloc(128, 'g', 'grads');
    backend.fill(viewOf(g), 0);
    backend.write(viewOf(g, 0, 1), Float32Array.of(3));
    backend.write(viewOf(g, 127, 1), Float32Array.of(4));
    clipper.clip(g, 1);
    expect(await clipper.lastNorm()).toBeCloseTo(5, 5);
    const after = await backend.read(viewOf(g));
    expect([after[0], after[127]]).toEqual([Math.fround(0.6), Math.fround(0.8)]);
  });
});
