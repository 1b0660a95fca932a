import { describe, expect, it } from 'vitest';
import { type Backend, viewOf } from '../engine/backend';
import { CpuBackend } from '../engine/cpu-backend';
import { WasmCpuBackend } from '../engine/wasm-backend';
import { Gpt, gptLayout, type GptConfig } from './gpt';
import type { FlatRange } from './layout';
import { randomTokens } from './gpt-test-support';
import { TensorGpt } from './tensor-gpt';
import { checkModelGradients } from './model-gradcheck';

const dense: GptConfig = { vocabSize: 7, blockSize: 5, nLayer: 2, nHead: 2, nEmbd: 8 };


describe('Gpt with a mixture-of-experts MLP', () => {
  for (const topk of [1, 2] as const) {
    it(`top-${topk}: passes the whole-model finite-difference check with tokens dropped and the aux loss in the loss (eps 1e-2, atol 1e-4, rtol 5e-2)`, async () => {
      const backend = new CpuBackend();
      const config: GptConfig = { ...dense, moe: { experts: 4, topk, capacityFactor: 0.75, hidden: 12, auxWeight: 0.2 } };
      const model = new Gpt(backend, config, 2);
      model.init(3);
      const p = await backend.read(viewOf(model.params));
      backend.write(viewOf(model.params), p.map((v, i) => (v === 0 || v === 1 ? v : v * 10 + 0.01 * Math.sin(i))));
      const batch = randomTokens(2, 5, 7, 4);
      const { checked, mismatches } = await checkModelGradients(backend, model, batch, { coordsPerTensor: 3, rtol: 5e-2 });
      expect(checked).toBe(gptLayout(config).entries.length * 3);
      expect(mismatches).toEqual([]);
      const stats = await model.moeStats();
      expect(stats).toHaveLength(2);
      for (const s of stats) {
        expect(s.dropped).toBeGreaterThan(0);
        expect(s.tokensPerExpert.reduce((a, c) => a + c, 0) + s.dropped).toBe(10 * topk);
        expect(s.aux).toBeGreaterThan(0);
      }
    });
  }

  it('adds the aux losses to every row: the mean loss is cross-entropy + the sum of the blocks aux losses', async () => {
    const backend = new CpuBackend();
    const model = new Gpt(backend, { ...dense, moe: { experts: 4, topk: 2, capacityFactor: 1, auxWeight: 0.5 } }, 2);
    model.init(5);
    const batch = randomTokens(2, 5, 7, 6);
    const losses = await backend.read(model.forward(batch, 0).losses);
    const probs = await backend.read(model.forward(batch, 0).probs);
    const aux = (await model.moeStats()).reduce((a, s) => a + s.aux, 0);
    for (let r = 0; r < 10; r++) expect(losses[r]).toBeCloseTo(-Math.log(probs[r * 7 + batch.targets[r]]) + aux, 5);
  });

  it('lays out a router and E experts per block in place of fc / fcproj, and announces experts last-first, then the router', () => {
    const config: GptConfig = { ...dense, moe: { experts: 3, topk: 1, capacityFactor: 1.25 } };
    const layout = gptLayout(config);
    const h0 = layout.entries.filter((e) => e.name.startsWith('h0.')).map((e) => e.name);
    expect(h0.slice(8)).toEqual(['h0.router.w', ...[0, 1, 2].flatMap((e) => ['fc.w', 'fc.b', 'fcproj.w', 'fcproj.b'].map((t) => `h0.e${e}.${t}`))]);
    expect(layout.entries.find((e) => e.name === 'h0.e1.fc.w')?.shape).toEqual([8, 32]);
    const backend = new CpuBackend();
    const model = new Gpt(backend, config, 2);
    model.init(1);
    model.forward(randomTokens(2, 5, 7, 1), 0.1);
    const seen: FlatRange[] = [];
    model.backward({ onGradReady: (range) => seen.push(range) });
    const named = (r: FlatRange) => layout.entries.filter((e) => e.offset >= r.offset && e.offset + e.length <= r.offset + r.length).map((e) => e.name).join('+');
    expect(seen.slice(1, 6).map(named)).toEqual([
      'h1.e2.fc.w+h1.e2.fc.b+h1.e2.fcproj.w+h1.e2.fcproj.b',
      'h1.e1.fc.w+h1.e1.fc.b+h1.e1.fcproj.w+h1.e1.fcproj.b',
      'h1.e0.fc.w+h1.e0.fc.b+h1.e0.fcproj.w+h1.e0.fcproj.b',
      'h1.router.w',
      'h1.ln2.g+h1.ln2.b',
    ]);
    for (let i = 1; i < seen.length; i++) expect(seen[i].offset + seen[i].length).toBeLessThanOrEqual(seen[i - 1].offset);
  });

  it('refuses a bad MoE config, a pipeline split and a tensor split with a clear error', () => {
    const moe = { experts: 4, topk: 1 as const, capacityFactor: 1 };
    expect(() => gptLayout({ ...dense, moe: { ...moe, experts: 1 } })).toThrow(/experts must be an integer >= 2/);
    expect(() => gptLayout({ ...dense, moe: { ...moe, topk: 3 as 1 } })).toThrow(/topk must be 1 or 2/);
    expect(() => gptLayout({ ...dense, moe: { ...moe, capacityFactor: 0 } })).toThrow(/capacity factor/);
    expect(() => gptLayout({ ...dense, moe }, { from: 0, to: 1 })).toThrow(/not split into pipeline stages/);
    expect(() => new TensorGpt(new CpuBackend(), { ...dense, moe }, 2, { rank: 0, ranks: 2 })).toThrow(/not tensor-split/);
  });

  it('runs on the WebAssembly backend with the reference routing and gradients (1e-5 of the largest; measured 1.7e-7 at C = 64)', async () => {
    const config: GptConfig = { vocabSize: 11, blockSize: 8, nLayer: 2, nHead: 2, nEmbd: 16, moe: { experts: 4, topk: 2, capacityFactor: 1 } };
    const batch = randomTokens(4, 8, 11, 2);
    const results = [];
    for (const b of [new CpuBackend(), await WasmCpuBackend.create()] as Backend[]) {
      const model = new Gpt(b, config, 4);
      model.init(1);
      b.fill(viewOf(model.grads), 0);
      model.forward(batch, 1 / 32);
      model.backward();
      results.push({ grads: await b.read(viewOf(model.grads)), stats: await model.moeStats() });
    }
    const [reference, wasm] = results;
    expect(wasm.stats.map((s) => s.tokensPerExpert)).toEqual(reference.stats.map((s) => s.tokensPerExpert));
    let [worst, scale] = [0, 0];
    reference.grads.forEach((g, i) => {
      worst = Math.max(worst, Math.abs(g - wasm.grads[i]));
      scale = Math.max(scale, Math.abs(g));
    });
    expect(worst / scale).toBeLessThan(1e-5);
  });
});
