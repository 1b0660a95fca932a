import { describe, expect, it } from 'vitest';
import { viewOf, VIEW_ALIGNMENT } from '../engine/backend';
import { CpuBackend } from '../engine/cpu-backend';
import { Rng } from '../data/random';
import { paramsHash } from './layout';
import { firstLayerBlocks, FIRST_LAYER_BLOCKS, Mlp } from './mlp';
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

  it('computes the first layer\'s weight gradient in aligned row blocks, announced last rows first, each final when announced', async () => {
    const backend = new CpuBackend();
    const model = new Mlp(backend, { sizes: [64, 8, 3] }, 4);
    model.init(2);
    const p = await backend.read(viewOf(model.params));
    for (const e of model.layout.entries.filter((x) => x.name.endsWith('.b'))) for (let i = 0; i < e.length; i++) p[e.offset + i] = 0.2 + 0.1 * Math.sin(i);
    backend.write(viewOf(model.params), p);
    // The blocked gradient passes the finite-difference check on many coordinates of fc0.w.
    const { mismatches } = await checkModelGradients(backend, model, randomBatch(4, 64, 3, 5), { coordsPerTensor: 24 });
    expect(mismatches).toEqual([]);

    backend.fill(viewOf(model.grads), 0);
    model.forward(randomBatch(4, 64, 3, 6), 1 / 4);
    const seen: { group: string; range: FlatRange; values: Promise<Float32Array> }[] = [];
    model.backward({ onGradReady: (range, group) => seen.push({ group, range, values: backend.read(viewOf(model.grads, range.offset, range.length)) }) });
    const final = await backend.read(viewOf(model.grads));
    const first = seen.filter((s) => s.group === 'fc0');
    expect(seen.map((s) => s.group)).toEqual(['fc1', ...first.map(() => 'fc0')]);
    expect(first.length).toBe(8);
    const group = model.layout.groups.find((g) => g.name === 'fc0')!.range;
    let end = group.offset + group.length;
    for (const s of first) {
      expect(s.range.offset + s.range.length).toBe(end); // adjacent, descending
      expect(s.range.offset % 64).toBe(0);
      expect(Array.from(await s.values)).toEqual(Array.from(final.subarray(s.range.offset, s.range.offset + s.range.length)));
      end = s.range.offset;
    }
    expect(end).toBe(group.offset);
  });

  it('starts a forward block by block: each first-layer block reads only its own weight rows, and finishing equals forward bit for bit', async () => {
    const backend = new CpuBackend();
    const model = new Mlp(backend, { sizes: [64, 8, 3] }, 4);
    model.init(4);
    const batch = randomBatch(4, 64, 3, 7);
    const reference = model.forward(batch, 1 / 4);
    const [losses, probs] = await Promise.all([backend.read(reference.losses), backend.read(reference.probs)]);
    const params = await backend.read(viewOf(model.params));

    const started = model.startForward(batch);
    const w0 = model.layout.entries[0];
    // Descending, adjacent, aligned blocks that tile fc0.w: the order the backward pass announces them in.
    expect(started.blocks.length).toBe(8);
    let end = w0.offset + w0.length;
    for (const block of started.blocks) {
      expect(block.offset + block.length).toBe(end);
      expect(block.offset % VIEW_ALIGNMENT).toBe(0);
      end = block.offset;
    }
    expect(end).toBe(w0.offset);
    for (let i = 0; i < 3; i++) started.recordBlock();
    expect(started.recorded).toBe(3);
    // The recorded blocks have read their rows: overwriting them now changes nothing.
    for (const block of started.blocks.slice(0, 3)) backend.fill(viewOf(model.params, block.offset, block.length), Number.NaN);
    const result = started.finish(1 / 4);
    expect(await backend.read(result.losses)).toEqual(losses);
    expect(await backend.read(result.probs)).toEqual(probs);
    backend.write(viewOf(model.params), params);

    // An unrecorded block reads its rows when it is recorded: the same change does matter there.
    const late = model.startForward(batch);
    backend.fill(viewOf(model.params, late.blocks[0].offset, late.blocks[0].length), 0);
    expect(await backend.read(late.finish(1 / 4).losses)).not.toEqual(losses);
  });

  it('a started forward goes stale when another forward starts: it refuses to record into overwritten activations', () => {
    const backend = new CpuBackend();
    const model = new Mlp(backend, { sizes: [64, 8, 3] }, 4);
    model.init(4);
    const started = model.startForward(randomBatch(4, 64, 3, 7));
    started.recordBlock();
    expect(started.current).toBe(true);
    model.forward(randomBatch(4, 64, 3, 8), 0);
    expect(started.current).toBe(false);
    expect(() => started.recordBlock()).toThrow(/another forward/);
    expect(() => started.finish(1)).toThrow(/another forward/);
  });

  it('first-layer blocks cover the rows in at most 8 aligned blocks', () => {
    for (const [nIn, nOut] of [[784, 128], [784, 100], [72, 8], [5, 7], [2, 32], [3072, 3], [1000, 1]]) {
      const blocks = firstLayerBlocks(nIn, nOut);
      expect(blocks.length).toBeLessThanOrEqual(FIRST_LAYER_BLOCKS);
      let row = 0;
      for (const b of blocks) {
        expect(b.offset).toBe(row);
        expect((b.offset * nOut) % VIEW_ALIGNMENT).toBe(0);
        row += b.length;
      }
      expect(row).toBe(nIn);
    }
    expect(firstLayerBlocks(784, 128).length).toBe(8);
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
