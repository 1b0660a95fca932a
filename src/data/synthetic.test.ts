import { describe, expect, it } from 'vitest';
import { gatherClassification, gatherTextWindows, textWindowCount } from './batch';
import { SYNTHETIC_KINDS, syntheticData } from './synthetic';

describe('synthetic 2-D sets', () => {
  it.each(SYNTHETIC_KINDS)('%s is seeded, balanced and bounded', (kind) => {
    const a = syntheticData({ kind, seed: 3, trainCount: 300, testCount: 60 });
    const b = syntheticData({ kind, seed: 3, trainCount: 300, testCount: 60 });
    const c = syntheticData({ kind, seed: 4, trainCount: 300, testCount: 60 });
    expect(a.train.inputs).toEqual(b.train.inputs);
    expect(a.train.inputs).not.toEqual(c.train.inputs);
    const counts = new Array(a.train.numClasses).fill(0);
    for (const l of a.train.labels) counts[l]++;
    expect(Math.max(...counts) - Math.min(...counts)).toBeLessThanOrEqual(1);
    for (const v of a.train.inputs) expect(Math.abs(v)).toBeLessThan(2);
  });

  it('xor labels follow the quadrant signs', () => {
    const { train } = syntheticData({ kind: 'xor', noise: 0, trainCount: 200 });
    for (let i = 0; i < train.count; i++) {
      const expected = Math.sign(train.inputs[2 * i]) === Math.sign(train.inputs[2 * i + 1]) ? 0 : 1;
      expect(train.labels[i]).toBe(expected);
    }
  });

  it('refuses unknown kinds and bad class counts', () => {
    expect(() => syntheticData({ kind: 'moons' as never })).toThrow(/unknown synthetic/);
    expect(() => syntheticData({ kind: 'spirals', classes: 1 })).toThrow(/classes/);
  });
});

describe('batch gathering', () => {
  const image = {
    name: 'img',
    count: 2,
    features: 9,
    numClasses: 2,
    inputs: Uint8Array.from([0, 0, 0, 0, 255, 0, 0, 0, 0, 255, 0, 0, 0, 0, 0, 0, 0, 0]),
    labels: Uint8Array.from([0, 1]),
    image: { height: 3, width: 3 },
  };

  it('scales bytes to [0, 1] and copies labels in index order', () => {
    const x = new Float32Array(18);
    const y = new Uint32Array(2);
    gatherClassification(image, [1, 0], x, y);
    expect(Array.from(y)).toEqual([1, 0]);
    expect(x[0]).toBe(1);
    expect(x[9 + 4]).toBe(1);
  });

  it('shifts images deterministically and keeps the ink when it stays inside', () => {
    const x1 = new Float32Array(9);
    const x2 = new Float32Array(9);
    const y = new Uint32Array(1);
    const seen = new Set<number>();
    for (let epoch = 0; epoch < 20; epoch++) {
      gatherClassification(image, [0], x1, y, { maxShift: 1, seed: 5, epoch });
      gatherClassification(image, [0], x2, y, { maxShift: 1, seed: 5, epoch });
      expect(x1).toEqual(x2);
      // The centre pixel moves by at most one in each direction: it is never lost.
      expect(x1.reduce((a, b) => a + b, 0)).toBe(1);
      seen.add(x1.indexOf(1));
    }
    expect(seen.size).toBeGreaterThan(3);
  });

  it('cuts text windows into tokens and next-token targets', () => {
    const corpus = Uint32Array.from([0, 1, 2, 3, 4, 5, 6, 7, 8]);
    expect(textWindowCount(corpus.length, 4)).toBe(2);
    const tokens = new Uint32Array(8);
    const targets = new Uint32Array(8);
    gatherTextWindows(corpus, [4, 0], 4, tokens, targets);
    expect(Array.from(tokens)).toEqual([4, 5, 6, 7, 0, 1, 2, 3]);
    expect(Array.from(targets)).toEqual([5, 6, 7, 8, 1, 2, 3, 4]);
    expect(() => gatherTextWindows(corpus, [5], 4, tokens, targets)).toThrow(/runs past/);
  });
});
