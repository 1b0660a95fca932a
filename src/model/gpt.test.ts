import { describe, expect, it } from 'vitest';
import { viewOf } from '../engine/backend';
import { CpuBackend } from '../engine/cpu-backend';
import { Gpt, gptLayout, type GptConfig, tensorSpan } from './gpt';
import { entry, type FlatRange, paramsHash } from './layout';
import { randomTokens } from './gpt-test-support';
import { checkModelGradients } from './model-gradcheck';

const tiny: GptConfig = { vocabSize: 7, blockSize: 5, nLayer: 2, nHead: 2, nEmbd: 8 };


describe('Gpt', () => {
  it('passes a whole-model finite-difference gradient check (float32, eps 1e-2, atol 1e-4, rtol 5e-2)', async () => {
    const backend = new CpuBackend();
    const model = new Gpt(backend, tiny, 2);
    // Larger weights than GPT-2's 0.02 so that every path carries a gradient well above float32 noise.
    model.init(3);
    const p = await backend.read(viewOf(model.params));
    backend.write(viewOf(model.params), p.map((v, i) => (v === 0 || v === 1 ? v : v * 10 + 0.01 * Math.sin(i))));
    const { checked, mismatches } = await checkModelGradients(backend, model, randomTokens(2, 5, 7, 4), { coordsPerTensor: 3, rtol: 5e-2 });
    expect(checked).toBe(gptLayout(tiny).entries.length * 3);
    expect(mismatches).toEqual([]);
  });

  it('lays out embed, blocks, final norm so that gradient buckets come out tail first', () => {
    const layout = gptLayout(tiny);
    expect(layout.groups.map((g) => g.name)).toEqual(['embed', 'h0', 'h1', 'lnf']);
    expect(entry(layout, 'h1.fcproj.w').shape).toEqual([32, 8]);
    expect(() => gptLayout({ ...tiny, nHead: 3 })).toThrow(/multiple of nHead/);
    expect(() => gptLayout({ ...tiny, nLayer: 0 })).toThrow(/positive integer/);
  });

  it('announces each tensor pair as soon as its gradient is final, in descending layout order', async () => {
    const backend = new CpuBackend();
    const model = new Gpt(backend, tiny, 2);
    model.init(1);
    model.forward(randomTokens(2, 5, 7, 1), 0.1);
    // The CPU backend runs each op as it is recorded, so a read at announcement time is a snapshot.
    const seen: { group: string; range: FlatRange; snapshot: Promise<Float32Array> }[] = [];
    model.backward({
      onGradReady: (range, group) => seen.push({ group, range, snapshot: backend.read(viewOf(model.grads, range.offset, range.length)) }),
    });
    const layout = model.layout;
    const named = (r: FlatRange) => layout.entries.filter((e) => e.offset >= r.offset && e.offset + e.length <= r.offset + r.length).map((e) => e.name);
    expect(seen.map((s) => named(s.range).join('+'))).toEqual([
      'lnf.g+lnf.b',
      ...[1, 0].flatMap((l) => ['fcproj.w+fcproj.b', 'fc.w+fc.b', 'ln2.g+ln2.b', 'proj.w+proj.b', 'qkv.w+qkv.b', 'ln1.g+ln1.b'].map((pair) => pair.replace(/(\w+\.\w)/g, `h${l}.$1`))),
      'wte+wpe',
    ]);
    expect(seen.map((s) => s.group)).toEqual(['lnf', ...Array(6).fill('h1'), ...Array(6).fill('h0'), 'embed']);
    // Descending and disjoint: each range ends where (padding aside) the previous one began.
    for (let i = 1; i < seen.length; i++) expect(seen[i].range.offset + seen[i].range.length).toBeLessThanOrEqual(seen[i - 1].range.offset);
    // Final when announced: nothing the rest of the backward pass records changes an announced range.
    const final = await backend.read(viewOf(model.grads));
    for (const s of seen) {
      const snapshot = await s.snapshot;
      expect(snapshot.some((v) => v !== 0)).toBe(true);
      expect(Array.from(snapshot)).toEqual(Array.from(final.subarray(s.range.offset, s.range.offset + s.range.length)));
    }
  });

  it('spans adjacent tensors only', () => {
    const layout = gptLayout(tiny);
    const [w, bias] = [entry(layout, 'h0.fc.w'), entry(layout, 'h0.fc.b')];
    expect(tensorSpan(layout, 'h0.fc.w', 'h0.fc.b')).toEqual({ offset: w.offset, length: bias.offset + bias.length - w.offset });
    expect(tensorSpan(layout, 'lnf.g', 'lnf.g')).toEqual({ offset: entry(layout, 'lnf.g').offset, length: 8 });
    expect(() => tensorSpan(layout, 'h0.fc.w', 'h0.fcproj.b')).toThrow(/not adjacent/);
    expect(() => tensorSpan(layout, 'h0.fc.b', 'h0.fc.w')).toThrow(/not adjacent/);
  });

  it('initialises GPT-2 style and deterministically', async () => {
    const backend = new CpuBackend();
    const config = { vocabSize: 11, blockSize: 8, nLayer: 4, nHead: 2, nEmbd: 32 };
    const read = async (seed: number) => {
      const m = new Gpt(backend, config, 1);
      m.init(seed);
      const p = await backend.read(viewOf(m.params));
      return { p, layout: m.layout };
    };
    const a = await read(1);
    expect(paramsHash((await read(1)).p)).toBe(paramsHash(a.p));
    expect(paramsHash((await read(2)).p)).not.toBe(paramsHash(a.p));
    const std = (name: string) => {
      const e = entry(a.layout, name);
      const v = a.p.subarray(e.offset, e.offset + e.length);
      return Math.sqrt(v.reduce((s, x) => s + x * x, 0) / v.length);
    };
    expect(std('h0.fc.w')).toBeGreaterThan(0.018);
    expect(std('h0.fc.w')).toBeLessThan(0.022);
    expect(std('h0.fcproj.w') / std('h0.fc.w')).toBeCloseTo(1 / Math.sqrt(8), 1);
    const ln = entry(a.layout, 'h2.ln1.g');
    expect(a.p.subarray(ln.offset, ln.offset + ln.length).every((v) => v === 1)).toBe(true);
  });

  it('samples reproducibly for a seed, within the vocabulary, and refuses bad arguments', async () => {
    const backend = new CpuBackend();
    const model = new Gpt(backend, tiny, 2);
    model.init(4);
    const prompt = Uint32Array.of(1, 2);
    const a = await model.sample(prompt, 12, { seed: 3 });
    const b = await model.sample(prompt, 12, { seed: 3 });
    const c = await model.sample(prompt, 12, { seed: 4 });
    expect(a.length).toBe(12);
    expect(Array.from(a)).toEqual(Array.from(b));
    expect(Array.from(a)).not.toEqual(Array.from(c));
    expect(a.every((t) => t < tiny.vocabSize)).toBe(true);
    await expect(model.sample(prompt, 3, { temperature: 0 })).rejects.toThrow(/temperature/);
    await expect(model.sample(Uint32Array.of(9), 3)).rejects.toThrow(/outside/);
  });

  it('runs shorter sequences than the block size', async () => {
    const backend = new CpuBackend();
    const model = new Gpt(backend, tiny, 2);
    model.init(4);
    const r = model.forward({ ...randomTokens(2, 3, 7, 5), seqLen: 3 }, 1 / 6);
    expect(r.lossRows).toBe(6);
    model.backward();
    expect(() => model.forward({ ...randomTokens(1, 6, 7, 5), seqLen: 6 }, 1)).toThrow(/seqLen/);
  });
});
