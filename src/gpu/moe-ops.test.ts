// The mixture-of-experts kernels (shaders/moe.wgsl) against their CPU twins (src/engine/moe-reference.ts)
// on the same inputs, and their backward against finite differences on WebGPU itself. Router logits
// have clear margins (moe-test-support's ladder), so both backends make the same integer routing
// (choices, slots, drops), which is compared exactly; floats within 1e-5 absolute + 1e-4 relative.
// Last, the MoE GPT's whole forward and backward on WebGPU against the CPU reference's.
import { beforeAll, describe, expect, it } from 'vitest';
import { type Backend, type MoeShape, type View, viewOf } from '../engine/backend';
import { CpuBackend } from '../engine/cpu-backend';
import { randomUniform } from '../engine/gradcheck';
import { ladderLogits, moeChainMismatches, readU32, routingViews, upload } from '../engine/moe-test-support';
import { Gpt } from '../model/gpt';
import { randomTokens } from '../model/gpt-test-support';
import { deviceProblems, testDevice } from './test-device';
import { WebGpuBackend } from './webgpu-backend';

let gpu: WebGpuBackend;

beforeAll(async () => {
  gpu = await WebGpuBackend.fromContext(await testDevice());
}, 120_000);

/** Every output of route, dispatch, combine and their backward ops, read back. */
async function runAll(b: Backend, s: MoeShape, C: number, seed: number) {
  const { tokens: n, experts: E, topk: k, slotsPerExpert: S } = s;
  const rows = E * S;
  const r = routingViews(b, s);
  const logits = upload(b, ladderLogits(n, E, seed));
  const x = upload(b, randomUniform(n * C, seed + 1));
  const expertOut = upload(b, randomUniform(rows * C, seed + 2));
  const dy = upload(b, randomUniform(n * C, seed + 3));
  const scratch = (length: number) => upload(b, new Float32Array(length).fill(5));
  const [disp, y, dEo, dGates, dx, dLogits] = [scratch(rows * C), scratch(n * C), scratch(rows * C), scratch(n * k), scratch(n * C), scratch(n * E)];
  b.moeRoute(r, logits, s, 0.05, 2);
  b.moeDispatch(disp, x, r.slotToken, s, C);
  b.moeCombine(y, expertOut, r.slot, r.gates, s, C);
  b.moeCombineBackward(dEo, dGates, dy, expertOut, r.slot, r.slotToken, r.gates, s, C);
  b.moeDispatchBackward(dx, dEo, r.slot, s, C);
  b.moeRouteBackward(dLogits, dGates, r.probs, r.choice, r.fractions, s, 0.05, 0.7);
  const floats: Record<string, View> = { probs: r.probs, gates: r.gates, fractions: r.fractions, aux: r.aux, disp, y, dEo, dGates, dx, dLogits };
  const ints: Record<string, View> = { choice: r.choice, slot: r.slot, slotToken: r.slotToken };
  const out: Record<string, number[]> = {};
  for (const [name, v] of Object.entries(floats)) out[name] = Array.from(await b.read(v));
  for (const [name, v] of Object.entries(ints)) out[name] = await readU32(b, v);
  return { floats: Object.keys(floats), ints: Object.keys(ints), out };
}

describe('MoE kernels on WebGPU', () => {
  for (const topk of [1, 2] as const) {
    it(`top-${topk}: every output equals the CPU reference's (integers exactly, floats 1e-5 + 1e-4 relative)`, async () => {
      // 40 tokens in 2 groups, 4 experts, capacity below demand (tokens dropped), slots padded to 64 rows.
      const s: MoeShape = { tokens: 40, experts: 4, topk, groups: 2, capacity: 4 * topk, slotsPerExpert: 64 };
      const C = 8;
      const want = await runAll(new CpuBackend(), s, C, 31 + topk);
      const got = await runAll(gpu, s, C, 31 + topk);
      for (const name of want.ints) expect(got.out[name], name).toEqual(want.out[name]);
      expect(want.out.slot.filter((v) => v === 0xffffffff).length).toBeGreaterThan(0);
      for (const name of want.floats) {
        const bad = want.out[name].flatMap((w, i) => (Math.abs(got.out[name][i] - w) <= 1e-5 + 1e-4 * Math.abs(w) ? [] : [[i, w, got.out[name][i]]]));
        expect(bad, name).toEqual([]);
      }
      expect(deviceProblems).toEqual([]);
    });

    it(`top-${topk}: the backward ops agree with finite differences on WebGPU (eps 1e-2, atol 1e-3, rtol 1e-2)`, async () => {
      const s: MoeShape = { tokens: 12, experts: 4, topk, groups: 2, capacity: topk, slotsPerExpert: 64 };
      const { mismatches, dropped } = await moeChainMismatches(gpu, s, 3, 11 + topk);
      expect(mismatches).toEqual([]);
      expect(dropped).toBeGreaterThan(0);
    });
  }
});

describe('the MoE GPT on WebGPU', () => {
  it('one forward and backward (top-2, tokens dropped) routes like the CPU reference and gives its loss and gradients (1e-4 of the largest gradient)', async () => {
    const config = { vocabSize: 7, blockSize: 5, nLayer: 2, nHead: 2, nEmbd: 8, moe: { experts: 4, topk: 2 as const, capacityFactor: 0.75, auxWeight: 0.1 } };
    const batch = randomTokens(4, 5, 7, 4);
    const results = [];
    for (const b of [new CpuBackend(), gpu] as Backend[]) {
      const model = new Gpt(b, config, 4);
      model.init(3);
      b.fill(viewOf(model.grads), 0);
      const r = model.forward(batch, 1 / 20);
      model.backward();
      results.push({ losses: await b.read(r.losses), grads: await b.read(viewOf(model.grads)), stats: await model.moeStats() });
      model.dispose();
    }
    const [cpu, web] = results;
    expect(web.stats.map((s) => [s.tokensPerExpert, s.dropped])).toEqual(cpu.stats.map((s) => [s.tokensPerExpert, s.dropped]));
    expect(cpu.stats.every((s) => s.dropped > 0)).toBe(true);
    cpu.losses.forEach((l, i) => expect(Math.abs(web.losses[i] - l)).toBeLessThan(1e-5));
    const scale = Math.max(...cpu.grads.map(Math.abs));
    const worst = Math.max(...cpu.grads.map((g, i) => Math.abs(web.grads[i] - g)));
    expect(worst / scale).toBeLessThan(1e-4);
    expect(deviceProblems).toEqual([]);
  });
});
