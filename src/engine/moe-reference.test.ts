import { describe, expect, it } from 'vitest';
import type { MoeShape } from './backend';
import { CpuBackend } from './cpu-backend';
import { MOE_NONE, moeCapacity } from './moe-reference';
import { moeChainMismatches, readU32, routingViews, upload } from './moe-test-support';

const cpu = new CpuBackend();

describe('MoE routing ops, CPU reference', () => {
  it('fills capacity first choices first, in token order, per group; counts drops; f and the aux loss by the formula', async () => {
    // 6 tokens in 2 groups of 3, E = 3, top-2, capacity 2 per group and expert.
    const s: MoeShape = { tokens: 6, experts: 3, topk: 2, groups: 2, capacity: 2, slotsPerExpert: 5 };
    // Every token prefers expert 1, then expert 0 (token 2 and 5: expert 2 second).
    const logits = Float32Array.from([0.5, 2, 0, 0.5, 2, 0, 0, 2, 0.5, 0.5, 2, 0, 0.5, 2, 0, 0, 2, 0.5]);
    const r = routingViews(cpu, s);
    cpu.moeRoute(r, upload(cpu, logits), s, 0.1, 2);
    expect(await readU32(cpu, r.choice)).toEqual([1, 0, 1, 0, 1, 2, 1, 0, 1, 0, 1, 2]);
    // Expert 1: tokens 0, 1 kept (slots 5, 6), token 2 dropped; group 1 at 7, 8 then dropped.
    // Expert 0: the second choices of tokens 0, 1 (slots 0, 1), group 1's at 2, 3. Expert 2: token 2 at 10, token 5 at 12.
    expect(await readU32(cpu, r.slot)).toEqual([5, 0, 6, 1, MOE_NONE, 10, 7, 2, 8, 3, MOE_NONE, 12]);
    const N = MOE_NONE;
    expect(await readU32(cpu, r.slotToken)).toEqual([1, 3, 7, 9, N, 0, 2, 6, 8, N, 5, N, 11, N, N]);
    const fractions = await cpu.read(r.fractions);
    expect(Array.from(fractions)).toEqual([0, 1, 0, 0, 1, 0]);
    const probs = await cpu.read(r.probs);
    const meanP1 = (g: number) => (probs[g * 9 + 1] + probs[g * 9 + 4] + probs[g * 9 + 7]) / 3;
    const aux = await cpu.read(r.aux);
    expect(aux[2]).toBeCloseTo((0.1 * 3 * (meanP1(0) + meanP1(1))) / 2, 6);
    const gates = await cpu.read(r.gates);
    expect(gates[0] + gates[1]).toBeCloseTo(1, 6);
    expect(gates[0]).toBeCloseTo(probs[1] / (probs[1] + probs[0]), 6);
  });

  it('routes ties to the lower expert and gives top-1 the raw probability as gate', async () => {
    const s: MoeShape = { tokens: 2, experts: 4, topk: 1, groups: 1, capacity: 2, slotsPerExpert: 2 };
    const r = routingViews(cpu, s);
    cpu.moeRoute(r, upload(cpu, Float32Array.from([1, 3, 3, 0, 2, 2, 2, 2])), s, 0, 0);
    expect(await readU32(cpu, r.choice)).toEqual([1, 0]);
    expect((await cpu.read(r.gates))[1]).toBeCloseTo(0.25, 7);
  });

  it('refuses shapes it cannot route: top-3, tokens not in equal groups, slots shorter than the capacity', () => {
    const s: MoeShape = { tokens: 4, experts: 4, topk: 1, groups: 1, capacity: 2, slotsPerExpert: 2 };
    const r = routingViews(cpu, s);
    const logits = upload(cpu, new Float32Array(16));
    expect(() => cpu.moeRoute(r, logits, { ...s, topk: 3 }, 0, 0)).toThrow(/topk must be 1 or 2/);
    expect(() => cpu.moeRoute(r, logits, { ...s, groups: 3 }, 0, 0)).toThrow(/equal groups/);
    expect(() => cpu.moeRoute(r, logits, { ...s, capacity: 3 }, 0, 0)).toThrow(/exceed 2 slots per expert/);
    expect(moeCapacity(1.25, 8, 2, 4)).toBe(5);
  });
});

describe('MoE ops: backward against finite differences (eps 1e-2, atol 1e-3, rtol 1e-2)', () => {
  for (const topk of [1, 2] as const) {
    it(`top-${topk}, 2 groups, tokens dropped`, async () => {
      const s: MoeShape = { tokens: 12, experts: 4, topk, groups: 2, capacity: topk, slotsPerExpert: 2 * topk + 1 };
      const { mismatches, dropped } = await moeChainMismatches(cpu, s, 3, 11 + topk);
      expect(mismatches).toEqual([]);
      expect(dropped).toBeGreaterThan(0);
    });
  }
});
