import { describe, expect, it } from 'vitest';
import { viewOf } from '../engine/backend';
import { CpuBackend } from '../engine/cpu-backend';
import { Rng } from '../data/random';
import { paramsHash } from './layout';
import { Mlp } from './mlp';
import type { FlatRange } from './layout';
import { checkModelGradients } from './model-gradcheck';

function randomBatch(rows: number, features: number, classes: number, seed: number) {
  const rng = new Rng(seed);
  return {
    inputs: Float32Array.from({ length: rows * features }, () => rng.normal()),
    targets: Uint32Array.from({ length: rows }, () => rng.int(classes)),
    rows,
  };
}

describe('Mlp', () => {
  it('passes a whole-model finite-difference gradient check (float32, eps 1e-2, atol 1e-4, rtol 3e-2)', async () => {
    const backend = new CpuBackend();
    const model = new Mlp(backend, { sizes: [5, 7, 6, 3] }, 4);
    model.init(1);
    // Zero biases put a dead row's next pre-activations exactly on ReLU's kink, where a central
    // difference is meaningless: give every bias a value in [0.1, 0.3], far from the kink.
    const p = await backend.read(viewOf(model.params));
    for (const e of model.layout.entries.filter((x) => x.name.endsWith('.b'))) {
      for (let i = 0; i < e.length; i++) p[e.offset + i] = 0.2 + 0.1 * Math.sin(i);
    }
    backend.write(viewOf(model.params), p);
    const { checked, mismatches } = await checkModelGradients(backend, model, randomBatch(4, 5, 3, 2), { coordsPerTensor: 4 });
    expect(checked).toBe(4 * 5 + 3); // fc2.b has only 3 elements
    expect(mismatches).toEqual([]);
  });

  it('initialises deterministically from the seed (He normal weights, zero biases)', async () => {
    const backend = new CpuBackend();
    const hashOf = async (seed: number) => {
      const m = new Mlp(backend, { sizes: [64, 32, 10] }, 2);
      m.init(seed);
      const p = await backend.read(viewOf(m.params));
      m.dispose();
      return { hash: paramsHash(p), p, m };
    };
    const a = await hashOf(5);
    expect((await hashOf(5)).hash).toBe(a.hash);
    expect((await hashOf(6)).hash).not.toBe(a.hash);
    const w = a.p.subarray(0, 64 * 32);
    const std = Math.sqrt(w.reduce((s, v) => s + v * v, 0) / w.length);
    expect(std).toBeGreaterThan(Math.sqrt(2 / 64) * 0.9);
    expect(std).toBeLessThan(Math.sqrt(2 / 64) * 1.1);
    const bias = a.p.subarray(a.m.layout.entries[1].offset, a.m.layout.entries[1].offset + 32);
    expect(bias.every((v) => v === 0)).toBe(true);
  });

  it('reports each layer as gradient-ready in reverse order, with the final gradients already recorded', async () => {
    const backend = new CpuBackend();
    const model = new Mlp(backend, { sizes: [4, 8, 8, 2] }, 3);
    model.init(3);
    model.forward(randomBatch(3, 4, 2, 4), 1 / 3);
    const seen: { group: string; range: FlatRange; nonZero: boolean }[] = [];
    const pending: Promise<void>[] = [];
    model.backward({
      onGradReady: (range, group) => {
        const entry = { group, range, nonZero: false };
        seen.push(entry);
        pending.push(backend.read(viewOf(model.grads, range.offset, range.length)).then((g) => void (entry.nonZero = g.some((v) => v !== 0))));
      },
    });
    await Promise.all(pending);
    expect(seen.map((s) => s.group)).toEqual(['fc2', 'fc1', 'fc0']);
    expect(seen.every((s) => s.nonZero)).toBe(true);
    expect(seen.map((s) => s.range.offset)).toEqual([...seen.map((s) => s.range.offset)].sort((x, y) => y - x));
  });

  it('predicts with argmax and refuses oversize batches', async () => {
    const backend = new CpuBackend();
    const model = new Mlp(backend, { sizes: [2, 3] }, 2);
    // Identity-ish weights: class = the larger of the two inputs' projections.
    backend.fill(viewOf(model.params), 0);
    backend.write(viewOf(model.params, 0, 6), Float32Array.from([1, 0, 0, 0, 1, 0]));
    const preds = await model.predict({ inputs: Float32Array.from([5, 1, -1, 3]), targets: new Uint32Array(2), rows: 2 });
    expect(Array.from(preds)).toEqual([0, 1]);
    expect(() => model.forward({ inputs: new Float32Array(6), targets: new Uint32Array(3), rows: 3 }, 1)).toThrow(/1\.\.2/);
    expect(() => model.forward({ inputs: new Uint32Array(4), targets: new Uint32Array(2), rows: 2 }, 1)).toThrow(/Float32Array/);
  });

  it('allocates once: the buffer count does not grow over many steps', () => {
    const backend = new CpuBackend();
    const model = new Mlp(backend, { sizes: [3, 4, 2] }, 2);
    model.init(1);
    const before = backend.bufferCount();
    for (let i = 0; i < 10; i++) {
      model.forward(randomBatch(2, 3, 2, i), 0.5);
      model.backward();
    }
    expect(backend.bufferCount()).toBe(before);
    model.dispose();
    expect(backend.bufferCount()).toBe(0);
  });
});
