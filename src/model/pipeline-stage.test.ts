// Stages chained by hand (no transport) compute what the whole model computes: the same losses and the
// same gradients, bit for bit, tensor by tensor (a GPT's tied wte: the sum of the first and last stage's).
import { describe, expect, it } from 'vitest';
import { Rng } from '../data/random';
import { viewOf } from '../engine/backend';
import { CpuBackend } from '../engine/cpu-backend';
import { Gpt, type GptConfig, gptLayout } from './gpt';
import { Mlp, type MlpConfig, mlpLayout } from './mlp';
import type { Batch, StagedModel } from './model';
import { PipelineStage, splitUnits, type StageModelSpec } from './pipeline-stage';

const mlpConfig: MlpConfig = { sizes: [6, 9, 7, 8, 5, 3] };
const gptConfig: GptConfig = { vocabSize: 7, blockSize: 5, nLayer: 4, nHead: 2, nEmbd: 8 };
const mlpSpec: StageModelSpec = { kind: 'mlp', config: mlpConfig, maxRows: 4 };
const gptSpec: StageModelSpec = { kind: 'gpt', config: gptConfig, maxRows: 3 };

function batchFor(spec: StageModelSpec, rows: number, seed: number): Batch {
  const rng = new Rng(seed);
  if (spec.kind === 'mlp') {
    const { sizes } = spec.config;
    return { inputs: Float32Array.from({ length: rows * sizes[0] }, () => rng.normal()), targets: Uint32Array.from({ length: rows }, () => rng.int(sizes[sizes.length - 1])), rows };
  }
  const { blockSize: T, vocabSize: V } = spec.config;
  return { inputs: Uint32Array.from({ length: rows * T }, () => rng.int(V)), targets: Uint32Array.from({ length: rows * T }, () => rng.int(V)), rows };
}

function wholeModel(backend: CpuBackend, spec: StageModelSpec): StagedModel {
  return spec.kind === 'mlp' ? new Mlp(backend, spec.config, spec.maxRows) : new Gpt(backend, spec.config, spec.maxRows);
}

/** Named tensors of a flat buffer. */
async function tensors(backend: CpuBackend, model: { layout: StagedModel['layout'] }, buf: StagedModel['params']): Promise<Map<string, number[]>> {
  const all = await backend.read(viewOf(buf));
  return new Map(model.layout.entries.map((e) => [e.name, Array.from(all.subarray(e.offset, e.offset + e.length))]));
}

describe('pipeline stages', () => {
  it('split units contiguously and evenly, and refuse more stages than units', () => {
    expect(splitUnits(5, 2)).toEqual([{ from: 0, to: 3 }, { from: 3, to: 5 }]);
    expect(splitUnits(4, 4)).toEqual([0, 1, 2, 3].map((s) => ({ from: s, to: s + 1 })));
    expect(splitUnits(7, 1)).toEqual([{ from: 0, to: 7 }]);
    expect(() => splitUnits(2, 3)).toThrow(/2 layers\/blocks cannot be split into 3 stages/);
    expect(() => new Mlp(new CpuBackend(), { sizes: [3, 4, 2] }, 2, undefined, { from: 1, to: 1 })).toThrow(/non-empty range of MLP layers/);
  });

  it('lay out only their part; the whole part is the whole layout', () => {
    expect(gptLayout(gptConfig, { from: 0, to: 4 })).toEqual(gptLayout(gptConfig));
    expect(gptLayout(gptConfig, { from: 0, to: 2 }).groups.map((g) => g.name)).toEqual(['embed', 'h0', 'h1']);
    expect(gptLayout(gptConfig, { from: 2, to: 3 }).groups.map((g) => g.name)).toEqual(['h2']);
    expect(gptLayout(gptConfig, { from: 3, to: 4 }).groups.map((g) => g.name)).toEqual(['h3', 'lnf', 'head']);
    expect(mlpLayout(mlpConfig, { from: 2, to: 4 }).groups.map((g) => g.name)).toEqual(['fc2', 'fc3']);
    expect(mlpLayout(mlpConfig, { from: 0, to: 5 })).toEqual(mlpLayout(mlpConfig));
  });

  it('refuse the whole-model entry points and inputs of the wrong size, clearly', () => {
    const backend = new CpuBackend();
    const stage = new PipelineStage(backend, mlpSpec, 1, 2);
    const batch = batchFor(mlpSpec, 2, 1);
    expect(() => stage.model.forward(batch, 1)).toThrow(/a pipeline stage \(layers 3..4\) runs forwardStage/);
    expect(() => stage.forward(0, batch, 1)).toThrow(/input activation of 0 elements, need 16 \(2 rows x 8\)/);
    expect(stage.microBatchesInFlight).toBe(0);
    const first = new PipelineStage(backend, mlpSpec, 0, 2);
    expect(() => first.forward(0, batch, 1, new Float32Array(3))).toThrow(/first stage reads its input from the batch/);
    first.forward(0, batch, 1);
    expect(() => first.forward(0, batch, 1)).toThrow(/micro-batch 0 is already in flight/);
    expect(() => first.backward(0)).toThrow(/output gradient of 0 elements, need 16/);
    expect(() => first.backward(1, new Float32Array(16))).toThrow(/micro-batch 1, which is not in flight/);
  });

  it.each([
    ['mlp', 2, mlpSpec],
    ['mlp', 5, mlpSpec],
    ['gpt', 2, gptSpec],
    ['gpt', 4, gptSpec],
  ] as const)('%s in %i stages, chained by hand: the same losses and gradients as the whole model, bit for bit (tied wte within 1e-6)', async (_, P, spec) => {
    const backend = new CpuBackend();
    const whole = wholeModel(backend, spec);
    whole.init(7);
    const stages = Array.from({ length: P }, (_, s) => new PipelineStage(backend, spec, s, P));
    for (const stage of stages) stage.init(7);
    const batches = [batchFor(spec, 3, 1), batchFor(spec, 2, 2)];
    backend.fill(viewOf(whole.grads), 0);
    const wholeLosses: number[][] = [];
    for (const batch of batches) {
      const r = whole.forward(batch, 0.25);
      wholeLosses.push(Array.from(await backend.read(r.losses)));
      whole.backward();
    }
    // Parameters start equal, tensor by tensor.
    const wholeParams = await tensors(backend, whole, whole.params);
    for (const stage of stages) for (const [name, values] of await tensors(backend, stage, stage.model.params)) expect(values).toEqual(wholeParams.get(name));

    for (const stage of stages) backend.fill(viewOf(stage.model.grads), 0);
    for (const [m, batch] of batches.entries()) {
      let input: Float32Array | undefined;
      for (const stage of stages) {
        const out = stage.forward(m, batch, 0.25, input);
        if (stage.isLast) expect(Array.from(await backend.read(out.result!.losses))).toEqual(wholeLosses[m]);
        else input = await backend.read(out.output!);
      }
    }
    for (const m of batches.keys()) {
      let grad: Float32Array | undefined;
      for (const stage of [...stages].reverse()) {
        const inputGrad = stage.backward(m, grad);
        grad = inputGrad && (await backend.read(inputGrad));
        stage.release(m);
      }
      expect(grad).toBeUndefined();
    }
    const wholeGrads = await tensors(backend, whole, whole.grads);
    const seen = new Map<string, number[]>();
    for (const stage of stages) {
      for (const [name, values] of await tensors(backend, stage, stage.model.grads)) {
        const other = seen.get(name);
        // The tied wte: the first stage's and the last stage's gradients sum to the whole model's.
        seen.set(name, other ? other.map((v, i) => Math.fround(v + values[i])) : values);
      }
    }
    expect([...seen.keys()].sort()).toEqual([...wholeGrads.keys()].sort());
    for (const [name, values] of wholeGrads) {
      if (name === 'wte' && P > 1) {
        const diff = Math.max(...values.map((v, i) => Math.abs(v - seen.get(name)![i])));
        expect(diff, 'wte: head and embedding gradients summed in another order').toBeLessThan(1e-6);
      } else expect(seen.get(name), name).toEqual(values);
    }
    expect(stages.map((s) => s.activationSets)).toEqual(new Array(P).fill(2));
  });
});
