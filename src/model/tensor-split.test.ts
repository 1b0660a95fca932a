// The column, row and segmented-column splits against their definitions, on tensors whose values are
// their own indices; layouts and parameter counts against the formula (replicated + split / T); and
// every model's T shards putting the whole model's initial parameters back together, bit for bit.
import { describe, expect, it } from 'vitest';
import { CpuBackend } from '../engine/cpu-backend';
import { Optimizer } from '../train/optimizer';
import { gptLayout } from './gpt';
import { initialParams } from './init';
import { mlpLayout } from './mlp';
import { gptSplitPlan, TensorGpt } from './tensor-gpt';
import { mlpSplitPlan, TensorMlp } from './tensor-mlp';
import { gatherShards, shardParamCount, shardVector, takeShard } from './tensor-split';
import { viewOf } from '../engine/backend';

const iota = (n: number) => Float32Array.from({ length: n }, (_, i) => i);

describe('tensor splits', () => {
  it('columns: rank r holds columns [r*c/T, (r+1)*c/T) of every row', () => {
    expect(Array.from(takeShard('w', iota(12), [2, 6], { split: 'columns' }, 1, 3))).toEqual([2, 3, 8, 9]);
  });
  it('columns in 3 segments (q|k|v): rank r holds piece r of each segment', () => {
    // one row, q = 0..3, k = 4..7, v = 8..11; rank 1 of 2 takes q 2,3  k 6,7  v 10,11
    expect(Array.from(takeShard('qkv.b', iota(12), [12], { split: 'columns', segments: 3 }, 1, 2))).toEqual([2, 3, 6, 7, 10, 11]);
  });
  it('rows: rank r holds rows [r*n/T, (r+1)*n/T)', () => {
    expect(Array.from(takeShard('w', iota(12), [4, 3], { split: 'rows' }, 1, 2))).toEqual([6, 7, 8, 9, 10, 11]);
  });
  it('refuses a width that does not split', () => {
    expect(() => takeShard('w', iota(10), [2, 5], { split: 'columns' }, 0, 2)).toThrow(/do not split/);
    expect(() => new TensorGpt(new CpuBackend(), { vocabSize: 5, blockSize: 4, nLayer: 1, nHead: 2, nEmbd: 8 }, 2, { rank: 0, ranks: 4 })).toThrow(/heads do not split/);
  });

  for (const [name, layout, plan] of [
    ['mlp [784, 128, 10]', mlpLayout({ sizes: [784, 128, 10] }), mlpSplitPlan({ sizes: [784, 128, 10] })],
    ['gpt C=64 NH=4 L=2 V=65', gptLayout({ vocabSize: 65, blockSize: 32, nLayer: 2, nHead: 4, nEmbd: 64 }), gptSplitPlan({ vocabSize: 65, blockSize: 32, nLayer: 2, nHead: 4, nEmbd: 64 })],
  ] as const) {
    it(`${name}: T = 2, 4 shards give back the whole initial parameters bit for bit`, () => {
      const whole = initialParams(layout, 3);
      for (const T of [2, 4]) {
        const shards = Array.from({ length: T }, (_, r) => shardVector(whole, layout, plan, r, T));
        const { values, replicasEqual } = gatherShards(layout, plan, shards);
        expect(replicasEqual).toBe(true);
        expect(Array.from(values)).toEqual(Array.from(whole));
      }
    });
  }
});

describe('parameter and optimizer bytes per rank vs formula (replicated + split / T), within 5%', () => {
  const cases = [
    ['mlp [784, 128, 10]', (backend: CpuBackend, T: number, r: number) => new TensorMlp(backend, { sizes: [784, 128, 10] }, 4, { rank: r, ranks: T })],
    ['gpt C=64 NH=4 L=2 V=65', (backend: CpuBackend, T: number, r: number) => new TensorGpt(backend, { vocabSize: 65, blockSize: 32, nLayer: 2, nHead: 4, nEmbd: 64 }, 1, { rank: r, ranks: T })],
  ] as const;
  for (const [name, build] of cases) {
    it(`${name}: T = 1, 2, 4`, async () => {
      for (const T of [1, 2, 4]) {
        for (let r = 0; r < T; r++) {
          const backend = new CpuBackend();
          const model = build(backend, T, r);
          const opt = new Optimizer(backend, model.layout, { kind: 'adamw', lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 });
          const formula = shardParamCount(model.wholeLayout, model.plan, T);
          const memory = backend.memory();
          const paramBytes = memory.params;
          const optimizerBytes = memory.optimizer;
          if (r === 0) console.log(`${name} T=${T}: ${paramBytes} parameter bytes, ${optimizerBytes} AdamW bytes per rank; formula ${4 * formula.perRank} and ${8 * formula.perRank} (replicated ${formula.replicated}, split ${formula.split} params)`);
          expect(Math.abs(paramBytes / (4 * formula.perRank) - 1)).toBeLessThan(0.05);
          expect(Math.abs(optimizerBytes / (8 * formula.perRank) - 1)).toBeLessThan(0.05);
          expect((await backend.read(viewOf(model.params))).length).toBe(model.layout.totalLength);
          opt.dispose();
          model.dispose();
        }
      }
    });
  }
});
