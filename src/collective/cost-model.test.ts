import { describe, expect, it } from 'vitest';
import { ALL_REDUCE_ALGORITHMS, costTerms, crossoverBytes, fitAlphaBeta, pickFastest, predictSeconds, type TimingSample } from './cost-model';

const MS = 1e-3;
const link = { alpha: 1 * MS, beta: 1 / 10e6 }; // 1 ms per message, 10 MB/s

describe('alpha-beta predictions', () => {
  it('matches the textbook formulas', () => {
    const n = 8e6;
    expect(predictSeconds('ring', 4, n, link)).toBeCloseTo(2 * 3 * (link.alpha + (n / 4) * link.beta), 12);
    expect(predictSeconds('tree', 8, n, link)).toBeCloseTo(2 * 3 * (link.alpha + n * link.beta), 12);
    expect(predictSeconds('rhd', 8, n, link)).toBeCloseTo(2 * 3 * link.alpha + ((2 * 7) / 8) * n * link.beta, 12);
    expect(predictSeconds('naive', 4, n, link)).toBeCloseTo(3 * (link.alpha + n * link.beta), 12);
    expect(predictSeconds('ps', 4, n, link)).toBeCloseTo(2 * 3 * (link.alpha + n * link.beta), 12);
  });

  it('charges rhd a fold and an unfold when the world is not a power of two, and the tree ceil(log2 p) levels', () => {
    expect(costTerms('rhd', 6)).toEqual({ latencyTerms: 2 * 2 + 2, byteTerms: (2 * 3) / 4 + 2 });
    expect(costTerms('tree', 5)).toEqual({ latencyTerms: 6, byteTerms: 6 });
  });

  it('costs nothing for a world of one, and refuses bad input', () => {
    for (const algorithm of ALL_REDUCE_ALGORITHMS) expect(predictSeconds(algorithm, 1, 1e6, link)).toBe(0);
    expect(() => predictSeconds('ring', 0, 10, link)).toThrow(/world/);
    expect(() => predictSeconds('ring', 2, -1, link)).toThrow(/bytes/);
    expect(() => predictSeconds('ring', 2, 10, { alpha: -1, beta: 0 })).toThrow(/alpha/);
  });
});

describe('picking the fastest algorithm per message size', () => {
  it('power of two: rhd has the tree\'s latency and the ring\'s bandwidth, so it wins at every size', () => {
    for (const bytes of [4, 4096, 1 << 20, 64 << 20]) expect(pickFastest(8, bytes, link).algorithm).toBe('rhd');
  });

  it('six ranks: rhd for small vectors, the ring from the crossover up', () => {
    const cross = crossoverBytes('rhd', 'ring', 6, link)!;
    // rhd: 6 alpha + 3.5 n beta; ring: 10 alpha + 5/3 n beta -> n = 4 alpha / (11/6 beta)
    expect(cross).toBeCloseTo((4 * link.alpha) / ((3.5 - 10 / 6) * link.beta), 6);
    expect(pickFastest(6, cross * 0.9, link).algorithm).toBe('rhd');
    expect(pickFastest(6, cross * 1.1, link).algorithm).toBe('ring');
    const pick = pickFastest(6, 4096, link, ['ring', 'tree', 'rhd', 'naive', 'ps']);
    expect(pick.predictions.map((p) => p.algorithm)).toEqual(['ring', 'tree', 'rhd', 'naive', 'ps']);
    expect(pick.seconds).toBe(Math.min(...pick.predictions.map((p) => p.seconds)));
  });

  it('the ring beats the tree on large vectors and loses on small ones (p = 16)', () => {
    const cross = crossoverBytes('tree', 'ring', 16, link)!;
    expect(pickFastest(16, cross / 2, link, ['ring', 'tree']).algorithm).toBe('tree');
    expect(pickFastest(16, cross * 2, link, ['ring', 'tree']).algorithm).toBe('ring');
    expect(crossoverBytes('rhd', 'tree', 8, link)).toBeNull(); // rhd is never slower
  });
});

/** A seeded uniform in [0, 1). */
function uniform(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

function synthetic(alpha: number, beta: number, noise: number, seed: number): TimingSample[] {
  const random = uniform(seed);
  const samples: TimingSample[] = [];
  for (let bytes = 4096; bytes <= 16 << 20; bytes *= 4) {
    for (let rep = 0; rep < 7; rep++) {
      const clean = alpha + beta * bytes;
      samples.push({ bytes, seconds: clean * (1 + noise * (2 * random() - 1)) });
    }
  }
  return samples;
}

describe('fitting alpha and beta', () => {
  it('recovers them exactly from noiseless samples', () => {
    const fit = fitAlphaBeta(synthetic(2 * MS, 1 / 20e6, 0, 1));
    expect(fit.alpha / (2 * MS)).toBeCloseTo(1, 9);
    expect(fit.beta * 20e6).toBeCloseTo(1, 9);
    expect(fit.rmsRelativeError).toBeLessThan(1e-9);
    expect(fit.clamped).toBe(false);
  });

  it('recovers them within 10% (alpha) and 3% (beta) from samples with +-10% uniform noise, for several seeds', () => {
    for (const seed of [1, 2, 3, 4, 5]) {
      const fit = fitAlphaBeta(synthetic(2 * MS, 1 / 20e6, 0.1, seed));
      expect(Math.abs(fit.alpha / (2 * MS) - 1)).toBeLessThan(0.1);
      expect(Math.abs(fit.beta * 20e6 - 1)).toBeLessThan(0.03);
      expect(fit.rmsRelativeError).toBeLessThan(0.1);
    }
  });

  it('the relative weighting finds a small alpha that an unweighted fit loses in the big sizes\' noise', () => {
    const samples = synthetic(0.5 * MS, 1 / 50e6, 0.05, 9);
    const relative = fitAlphaBeta(samples);
    const absolute = fitAlphaBeta(samples, 'absolute');
    expect(Math.abs(relative.alpha / (0.5 * MS) - 1)).toBeLessThan(Math.abs(absolute.alpha / (0.5 * MS) - 1));
    expect(Math.abs(relative.alpha / (0.5 * MS) - 1)).toBeLessThan(0.1);
  });

  it('clamps a negative alpha to zero and refits beta through the origin', () => {
    const fit = fitAlphaBeta([
      { bytes: 1000, seconds: 0.0009 },
      { bytes: 2000, seconds: 0.0021 },
    ]);
    expect(fit.clamped).toBe(true);
    expect(fit.alpha).toBe(0);
    expect(fit.beta).toBeGreaterThan(0);
  });

  it('refuses too few sizes and impossible samples', () => {
    expect(() => fitAlphaBeta([{ bytes: 10, seconds: 1 }, { bytes: 10, seconds: 2 }])).toThrow(/two different sizes/);
    expect(() => fitAlphaBeta([{ bytes: 10, seconds: 0 }, { bytes: 20, seconds: 1 }])).toThrow(/seconds > 0/);
  });
});
