import { describe, expect, it } from 'vitest';
import { mlpLayout } from '../../model/mlp';
import { budgetRefusal, predictBytes, slotsHeld } from './budget';
import { largestGroup } from './shard-storage';
import { zeroPartition } from './zero-hooks';
import { STAGING_FLOATS } from './zero-sync';

const layout = mlpLayout({ sizes: [64, 256, 256, 256, 10] });
const P = layout.totalLength;
const plain = { params: 4 * P, grads: 4 * P, optimizer: 8 * P, activations: 1000, workspace: 256, data: 0 };

describe('memory budget', () => {
  it('predicts shards plus the slots each stage lends; activations and the trainer\'s workspace kept', () => {
    const maxGroup = largestGroup(layout);
    const shard = Math.max(...zeroPartition(layout, 4).shards.map((s) => s.length));
    const kept = plain.activations + plain.workspace;
    expect(predictBytes(layout, 4, 0, plain, 0)).toBe(16 * P + kept);
    // Stage 3, one group resident (the MLP): one slot shared by a layer's weights and then its gradients.
    expect(predictBytes(layout, 4, 3, plain, 0, { residentGroups: 1 })).toBe(kept + 16 * shard + 4 * (maxGroup + STAGING_FLOATS));
    // Two groups resident (the GPT's tied head): a parameter and a gradient slot for each.
    expect(predictBytes(layout, 4, 3, plain, 0, { residentGroups: 2 })).toBe(kept + 16 * shard + 4 * (4 * maxGroup + STAGING_FLOATS));
    expect(predictBytes(layout, 4, 2, plain, 0, { residentGroups: 1 })).toBe(kept + 4 * (P + 3 * shard) + 4 * (maxGroup + STAGING_FLOATS));
    expect(predictBytes(layout, 4, 1, plain, 0, { offload: true })).toBe(kept + 8 * P);
    expect(slotsHeld(1, 1)).toBe(0);
  });

  it('counts the copies plain data parallelism keeps to roll back eager updates at stage 0 only', () => {
    const snapshot = 12 * P; // parameters and Adam's m and v
    const holding = { ...plain, workspace: plain.workspace + snapshot };
    const kept = plain.activations + plain.workspace;
    expect(predictBytes(layout, 4, 0, holding, 0, { eagerSnapshot: snapshot })).toBe(16 * P + kept + snapshot);
    expect(predictBytes(layout, 4, 3, holding, 0, { eagerSnapshot: snapshot, residentGroups: 1 })).toBe(predictBytes(layout, 4, 3, plain, 0, { residentGroups: 1 }));
  });

  it('refuses a plain run over budget and points at ZeRO-3 when that fits', () => {
    const bytes = 16 * P + 1256;
    const three = predictBytes(layout, 4, 3, plain, 0);
    const budget = ((bytes + three) / 2) / (1 << 20);
    expect(budgetRefusal(budget, bytes, 0, three)).toMatch(/plain data parallelism holds .* MiB per tab.*set zero=3/);
    expect(budgetRefusal(budget, three, 3, null)).toBeNull();
    expect(budgetRefusal(0, bytes, 0, three)).toBeNull();
    expect(budgetRefusal(three / 2 / (1 << 20), three, 3, null)).toMatch(/ZeRO-3 holds/);
  });
});
