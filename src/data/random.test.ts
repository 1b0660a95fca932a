import { describe, expect, it } from 'vitest';
import { deriveSeed, Rng } from './random';

describe('Rng', () => {
  it('is deterministic per seed and differs across seeds', () => {
    const a = new Rng(42);
    const b = new Rng(42);
    const c = new Rng(43);
    const seqA = Array.from({ length: 8 }, () => a.nextU32());
    const seqB = Array.from({ length: 8 }, () => b.nextU32());
    const seqC = Array.from({ length: 8 }, () => c.nextU32());
    expect(seqA).toEqual(seqB);
    expect(seqA).not.toEqual(seqC);
  });

  it('draws normals with mean ~0 and variance ~1', () => {
    const rng = new Rng(7);
    const n = 20000;
    let sum = 0;
    let sumSq = 0;
    for (let i = 0; i < n; i++) {
      const x = rng.normal();
      sum += x;
      sumSq += x * x;
    }
    const mean = sum / n;
    expect(Math.abs(mean)).toBeLessThan(0.03);
    expect(Math.abs(sumSq / n - mean * mean - 1)).toBeLessThan(0.05);
  });

  it('shuffles into a permutation', () => {
    const a = Uint32Array.from({ length: 100 }, (_, i) => i);
    new Rng(1).shuffle(a);
    expect(Array.from(a).sort((x, y) => x - y)).toEqual(Array.from({ length: 100 }, (_, i) => i));
    expect(Array.from(a)).not.toEqual(Array.from({ length: 100 }, (_, i) => i));
  });

  it('derives distinct seeds from distinct parts', () => {
    expect(deriveSeed(1, 2, 3)).toBe(deriveSeed(1, 2, 3));
    expect(deriveSeed(1, 2, 3)).not.toBe(deriveSeed(1, 3, 2));
    expect(deriveSeed(1, 2)).not.toBe(deriveSeed(2, 2));
  });

  it('refuses a non-finite seed', () => {
    expect(() => new Rng(Number.NaN)).toThrow(/seed/);
  });
});
