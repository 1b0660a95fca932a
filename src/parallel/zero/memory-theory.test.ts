import { describe, expect, it } from 'vitest';
import { relativeError, zeroBytesTheory, zeroWireTheory } from './memory-theory';

describe('ZeRO formulas', () => {
  it.each([
    [0, 16],
    [1, 8 + 8 / 4],
    [2, 4 + 12 / 4],
    [3, 16 / 4],
  ])('stage %i holds the paper\'s bytes per parameter on 4 ranks', (stage, perParam) => {
    expect(zeroBytesTheory(stage, 1000, 4).total).toBeCloseTo(perParam * 1000, 6);
  });

  it('offload takes the moments off the device; stage 3 sends 1.5x a 2P all-reduce', () => {
    expect(zeroBytesTheory(2, 1000, 4, 2, true).optimizer).toBe(0);
    expect(zeroWireTheory(3, 800, 4) / zeroWireTheory(1, 800, 4)).toBe(1.5);
    expect(zeroWireTheory(0, 800, 4)).toBe(2 * 4 * 800 * 0.75);
    expect(relativeError(105, 100)).toBeCloseTo(0.05, 9);
  });
});
