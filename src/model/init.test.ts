import { describe, expect, it } from 'vitest';
import { initialParams } from './init';
import { mlpLayout } from './mlp';

describe('initialParams of a range', () => {
  it('is bit for bit that range of the whole vector, wherever the range starts and ends (inside a tensor, across tensors, the padding)', () => {
    const layout = mlpLayout({ sizes: [3, 17, 5, 2] });
    const whole = initialParams(layout, 11);
    const total = layout.totalLength;
    for (const [offset, length] of [[0, total], [0, 1], [5, 40], [47, 61], [total - 9, 9], [51, 1]]) {
      const part = initialParams(layout, 11, { offset, length });
      expect(part.length).toBe(length);
      expect(Array.from(part)).toEqual(Array.from(whole.subarray(offset, offset + length)));
    }
  });
});
