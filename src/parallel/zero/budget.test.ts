import { describe, expect, it } from 'vitest';
import { mlpLayout } from '../../model/mlp';
import { budgetRefusal, predictBytes } from './budget';

const layout = mlpLayout({ sizes: [64, 256, 256, 256, 10] });
const P = layout.totalLength;
const plain = { params: 4 * P, grads: 4 * P, optimizer: 8 * P, activations: 1000, workspace: 256, data: 0 };

describe('memory budget', () => {
  it('predicts the ZeRO-3 bytes from a plain run: shards plus the layer slots, activations kept', () => {
    const maxGroup = Math.max(...layout.groups.map((g) => g.range.length));
    const three = predictBytes(layout, 4, 3, plain, 0);
    expect(three).toBeLessThan(16 * P);
    expect(three).toBeGreaterThanOrEqual(1256 + (16 * P) / 4 + 4 * 5 * maxGroup);
    expect(predictBytes(layout, 4, 3, plain, 0, { residentGroups: 1 })).toBe(three - 4 * 2 * maxGroup);
    expect(predictBytes(layout, 4, 0, plain, 0)).toBe(16 * P + 1256);
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
