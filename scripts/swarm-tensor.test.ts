import { describe, expect, it } from 'vitest';
import type { TensorFigures } from '../src/lab/partitioned-run';
import { mlpLayout } from '../src/model/mlp';
import { mlpSplitPlan } from '../src/model/tensor-mlp';
import { shardVector } from '../src/model/tensor-split';
import { formatTensorReport, tensorReport, type TensorTab } from './swarm-tensor';

// An MLP 2 -> 4 -> 4 -> 3: one column/row pair (split over T = 2) and a replicated output layer.
const MODEL: TensorFigures['model'] = { kind: 'mlp', config: { sizes: [2, 4, 4, 3] } };
const layout = mlpLayout(MODEL.config);
const plan = mlpSplitPlan(MODEL.config);
// Alignment padding between tensors stays 0, as in a model's vector.
const whole = new Float32Array(layout.totalLength);
for (const e of layout.entries) for (let i = e.offset; i < e.offset + e.length; i++) whole[i] = i / 10;
/** The output layer's (replicated) last bias. */
const lastReplicated = layout.entries[layout.entries.length - 1].offset + layout.entries[layout.entries.length - 1].length - 1;

function tab(tensorRank: number, group: number, values: Float32Array): TensorTab {
  const figures: TensorFigures = {
    kind: 'tensor',
    model: MODEL,
    tensor: 2,
    groups: 2,
    tensorRank,
    group,
    micro: 1,
    rowsPerMicro: 4,
    paramBytes: 100,
    paramFormulaBytes: 100,
    optimizerBytes: 200,
    optimizerFormulaBytes: 200,
    collectivesPerStep: { forward: 1, backward: 0 },
    wireBytesPerStep: 48,
    wireFormulaBytesPerStep: 48,
    dataParallelBytesPerStep: 10,
    dataParallelFormulaBytesPerStep: 10,
  };
  return { figures, params: [...shardVector(values, layout, plan, tensorRank, 2)] };
}

describe('swarm tensor report', () => {
  it('puts group 0 back together for the parity, checks every group\'s replicated tensors, lists every tab in rank order', () => {
    const shifted = whole.map((v, i) => (i === 0 ? v + 0.25 : v));
    const report = tensorReport([tab(1, 1, whole), tab(0, 0, shifted), tab(1, 0, shifted), tab(0, 1, whole)], [...whole]);
    expect(report.rows.map((f) => [f.group, f.tensorRank])).toEqual([[0, 0], [0, 1], [1, 0], [1, 1]]);
    // Entry 0 (fc0.w, split) is off by 0.25 in group 0: relative to the largest parameter.
    expect(report.parity).toBeCloseTo(0.25 / whole[lastReplicated], 6);
    expect(report.replicatedEqual).toBe(true);
    expect(formatTensorReport(report)).toMatch(/T=2 x 2 group\(s\)[\s\S]*bitwise equal across each group: yes[\s\S]*parity/);
  });

  it('reports replicated tensors that differ between a group\'s tabs', () => {
    const other = whole.map((v, i) => (i === lastReplicated ? v + 1 : v));
    const report = tensorReport([tab(0, 0, whole), tab(1, 0, other), tab(0, 1, whole), tab(1, 1, whole)]);
    expect(report.replicatedEqual).toBe(false);
    expect(() => tensorReport([tab(0, 0, whole)])).toThrow(/1 tabs reported tensor figures; the room has 2 x 2/);
  });
});
