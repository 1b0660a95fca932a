import { describe, expect, it } from 'vitest';
import { DEFAULT_MAX_MESSAGE_BYTES } from './chunking';
import {
  ALL_REDUCE_ALGORITHMS,
  costTerms,
  crossoverBytes,
  fitAlphaBeta,
  fitLinkCost,
  latencyBoundSeconds,
  pickFastest,
  predictSeconds,
  type CostSample,
  type LinkCost,
  type TimingSample,
} from './cost-model';

const MS = 1e-3;
const link: LinkCost = { alpha: 1 * MS, beta: 1 / 10e6, gamma: 1 / 100e6 }; // 1 ms per round, 10 MB/s per link, 100 MB/s handled per rank
const WHOLE = Number.POSITIVE_INFINITY; // every message travels in one part

describe('the cost terms per algorithm, against hand-computed values', () => {
  it('ring: 2(p-1) rounds (+ parts - 1), 2(p-1)/p n on the successor link and received', () => {
    // p = 4, n = 8 MB whole: 6 rounds, 6 x 2 MB.
    expect(costTerms('ring', 4, 8e6, WHOLE)).toEqual({ rounds: 6, linkBytes: 12e6, receivedBytes: 12e6 });
    // Chunks of 2 MB in parts of at most 255 KiB: 8 parts, so 7 more rounds; the bytes stay.
    expect(costTerms('ring', 4, 8e6)).toEqual({ rounds: 6 + 7, linkBytes: 12e6, receivedBytes: 12e6 });
    expect(predictSeconds('ring', 4, 8e6, link, WHOLE)).toBeCloseTo(6 * MS + 12e6 / 10e6 + 12e6 / 100e6, 12);
  });

  it('tree: 2 ceil(log2 p) rounds plus pipelined parts, one part per link and round, rank 0 receives log2 p vectors', () => {
    expect(costTerms('tree', 8, 4096, WHOLE)).toEqual({ rounds: 6, linkBytes: 6 * 4096, receivedBytes: 3 * 4096 });
    expect(costTerms('tree', 5, 4096)).toEqual({ rounds: 6, linkBytes: 6 * 4096, receivedBytes: 3 * 4096 });
    // 1 MiB in 5 parts of at most 255 KiB: 6 + 4 rounds of a fifth each.
    const n = 1 << 20;
    expect(Math.ceil(n / DEFAULT_MAX_MESSAGE_BYTES)).toBe(5);
    const tree = costTerms('tree', 8, n);
    expect(tree.rounds).toBe(10);
    expect(tree.linkBytes).toBeCloseTo((10 * n) / 5, 6);
    expect(tree.receivedBytes).toBe(3 * n);
  });

  it('rhd: 2 log2 P rounds and 2(P-1)/P n, plus a fold and an unfold of the whole vector when p is not a power of two', () => {
    expect(costTerms('rhd', 8, 8e6)).toEqual({ rounds: 6, linkBytes: (14 / 8) * 8e6, receivedBytes: (14 / 8) * 8e6 });
    expect(costTerms('rhd', 6, 8e6)).toEqual({ rounds: 4 + 2, linkBytes: (6 / 4) * 8e6 + 2 * 8e6, receivedBytes: (6 / 4) * 8e6 + 8e6 });
    expect(predictSeconds('rhd', 6, 8e6, link)).toBeCloseTo(6 * MS + 28e6 / 10e6 + 20e6 / 100e6, 12);
  });

  it('naive: one round, each link carries the vector once, each rank receives p-1 vectors', () => {
    expect(costTerms('naive', 4, 8e6)).toEqual({ rounds: 1, linkBytes: 8e6, receivedBytes: 24e6 });
    expect(predictSeconds('naive', 4, 8e6, link)).toBeCloseTo(1 * MS + 8e6 / 10e6 + 24e6 / 100e6, 12);
  });

  it('ps: two rounds (gather, broadcast), the server receives p-1 vectors', () => {
    expect(costTerms('ps', 4, 8e6)).toEqual({ rounds: 2, linkBytes: 16e6, receivedBytes: 24e6 });
  });

  it('with gamma 0 and whole messages the ring, tree and rhd are the textbook alpha-beta terms', () => {
    const ab = { alpha: link.alpha, beta: link.beta, gamma: 0 };
    const n = 8e6;
    expect(predictSeconds('ring', 4, n, ab, WHOLE)).toBeCloseTo(2 * 3 * (ab.alpha + (n / 4) * ab.beta), 12);
    expect(predictSeconds('tree', 8, n, ab, WHOLE)).toBeCloseTo(2 * 3 * (ab.alpha + n * ab.beta), 12);
    expect(predictSeconds('rhd', 8, n, ab, WHOLE)).toBeCloseTo(2 * 3 * ab.alpha + ((2 * 7) / 8) * n * ab.beta, 12);
  });

  it('the latency bound is rounds x alpha', () => {
    expect(latencyBoundSeconds('naive', 8, 4096, 5 * MS)).toBeCloseTo(5 * MS, 15);
    expect(latencyBoundSeconds('ring', 8, 4096, 5 * MS)).toBeCloseTo(14 * 5 * MS, 15);
    expect(latencyBoundSeconds('rhd', 5, 4096, 5 * MS)).toBeCloseTo(6 * 5 * MS, 15);
  });

  it('costs nothing for a world of one, and refuses bad input', () => {
    for (const algorithm of ALL_REDUCE_ALGORITHMS) expect(predictSeconds(algorithm, 1, 1e6, link)).toBe(0);
    expect(() => predictSeconds('ring', 0, 10, link)).toThrow(/world/);
    expect(() => predictSeconds('ring', 2, -1, link)).toThrow(/bytes/);
    expect(() => predictSeconds('ring', 2, 10, { ...link, gamma: -1 })).toThrow(/gamma/);
    expect(() => costTerms('ring', 2, 10, 0)).toThrow(/partBytes/);
  });
});

describe('picking the fastest algorithm per message size', () => {
  it('links that send at once and cheap handling: naive (one round) wins small vectors, the ring or rhd large ones', () => {
    const cheap = { alpha: 5 * MS, beta: 1 / 20e6, gamma: 1 / 1e9 };
    expect(pickFastest(8, 4096, cheap, ['ring', 'tree', 'rhd', 'naive']).algorithm).toBe('naive');
    // Costly handling (ranks sharing cores): naive's 7 received vectors lose at 1 MiB.
    const costly = { ...cheap, gamma: 1 / 20e6 };
    expect(pickFastest(8, 1 << 20, costly, ['ring', 'tree', 'rhd', 'naive']).algorithm).toBe('rhd');
  });

  it('power of two, gamma 0, whole messages: rhd has the tree\'s latency and the ring\'s bytes, so it beats both at every size', () => {
    const ab = { ...link, gamma: 0 };
    for (const bytes of [4, 4096, 1 << 20, 64 << 20]) expect(pickFastest(8, bytes, ab, ['ring', 'rhd', 'tree'], WHOLE).algorithm).toBe('rhd');
    // Pipelined in parts, the tree's levels overlap: on 64 MiB its busiest link carries about n, rhd's 1.75 n.
    expect(pickFastest(8, 64 << 20, ab).algorithm).toBe('tree');
  });

  it('six ranks: rhd for small vectors, the ring from the crossover up', () => {
    const cross = crossoverBytes('rhd', 'ring', 6, link)!;
    // rhd: 6 alpha + n (3.5 beta + 2.5 gamma); ring: 10 alpha + 5/3 n (beta + gamma), whole messages.
    expect(cross).toBeCloseTo((4 * link.alpha) / ((3.5 - 10 / 6) * link.beta + (2.5 - 10 / 6) * link.gamma), 6);
    expect(pickFastest(6, cross * 0.9, link, ['ring', 'rhd'], WHOLE).algorithm).toBe('rhd');
    expect(pickFastest(6, cross * 1.1, link, ['ring', 'rhd'], WHOLE).algorithm).toBe('ring');
    const pick = pickFastest(6, 4096, link, ALL_REDUCE_ALGORITHMS);
    expect(pick.predictions.map((p) => p.algorithm)).toEqual(['ring', 'tree', 'rhd', 'naive', 'ps']);
    expect(pick.seconds).toBe(Math.min(...pick.predictions.map((p) => p.seconds)));
  });

  it('the ring beats the tree on large vectors and loses on small ones (p = 16)', () => {
    const cross = crossoverBytes('tree', 'ring', 16, link)!;
    expect(pickFastest(16, cross / 2, link, ['ring', 'tree'], WHOLE).algorithm).toBe('tree');
    expect(pickFastest(16, cross * 2, link, ['ring', 'tree'], WHOLE).algorithm).toBe('ring');
    expect(crossoverBytes('rhd', 'tree', 8, { ...link, gamma: 0 })).toBeNull(); // rhd is never slower
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

/** Samples of a known model: ping-pong (one round, n on the link, n received), fan-out (one round, n per link, (p-1) n received) and all-reduces. */
function syntheticRoom(truth: LinkCost, world: number, noise: number, seed: number): CostSample[] {
  const random = uniform(seed);
  const samples: CostSample[] = [];
  const add = (terms: Omit<CostSample, 'seconds'>) => {
    const clean = terms.rounds * truth.alpha + terms.linkBytes * truth.beta + terms.receivedBytes * truth.gamma;
    samples.push({ ...terms, seconds: clean * (1 + noise * (2 * random() - 1)) });
  };
  for (let rep = 0; rep < 5; rep++) {
    for (const n of [256, 256 * 1024]) {
      add({ rounds: 1, linkBytes: n, receivedBytes: n });
      add({ rounds: 1, linkBytes: n, receivedBytes: (world - 1) * n });
    }
  }
  for (const n of [4096, 1 << 20]) for (const algorithm of ['ring', 'rhd'] as const) add(costTerms(algorithm, world, n));
  return samples;
}

describe('fitting alpha, beta and gamma', () => {
  const truth: LinkCost = { alpha: 5 * MS, beta: 1 / 20e6, gamma: 1 / 40e6 };

  it('recovers all three exactly from noiseless probe and all-reduce samples', () => {
    const fit = fitLinkCost(syntheticRoom(truth, 4, 0, 1));
    expect(fit.alpha / truth.alpha).toBeCloseTo(1, 9);
    expect(fit.beta / truth.beta).toBeCloseTo(1, 9);
    expect(fit.gamma / truth.gamma).toBeCloseTo(1, 9);
    expect(fit.rmsRelativeError).toBeLessThan(1e-9);
    expect(fit.clamped).toEqual([]);
  });

  it('within 10% (alpha), 15% (beta) and 15% (gamma) with +-10% uniform noise, 8 ranks, five seeds', () => {
    for (const seed of [1, 2, 3, 4, 5]) {
      const fit = fitLinkCost(syntheticRoom(truth, 8, 0.1, seed));
      expect(Math.abs(fit.alpha / truth.alpha - 1)).toBeLessThan(0.1);
      expect(Math.abs(fit.beta / truth.beta - 1)).toBeLessThan(0.15);
      expect(Math.abs(fit.gamma / truth.gamma - 1)).toBeLessThan(0.15);
    }
  });

  it('a room of two cannot tell beta from gamma (every message is received by one rank): beta carries both, gamma is held at 0', () => {
    const fit = fitLinkCost(syntheticRoom(truth, 2, 0, 1).filter((s) => s.linkBytes === s.receivedBytes));
    expect(fit.clamped).toEqual(['gamma']);
    expect(fit.alpha / truth.alpha).toBeCloseTo(1, 6);
    expect(fit.beta / (truth.beta + truth.gamma)).toBeCloseTo(1, 6);
  });

  it('holds a constant the samples push below zero at 0 and fits the others', () => {
    // Times that fall with the bytes received: gamma would be negative.
    const samples: CostSample[] = [
      { rounds: 1, linkBytes: 1000, receivedBytes: 1000, seconds: 0.002 },
      { rounds: 1, linkBytes: 1000, receivedBytes: 3000, seconds: 0.0019 },
      { rounds: 1, linkBytes: 100000, receivedBytes: 100000, seconds: 0.011 },
      { rounds: 2, linkBytes: 2000, receivedBytes: 2000, seconds: 0.004 },
    ];
    const fit = fitLinkCost(samples);
    expect(fit.gamma).toBe(0);
    expect(fit.clamped).toContain('gamma');
    expect(fit.alpha).toBeGreaterThan(0);
    expect(fit.beta).toBeGreaterThan(0);
  });

  it('gives the same bits for the same samples (what lets a room agree), and refuses impossible ones', () => {
    const samples = syntheticRoom(truth, 5, 0.2, 7);
    expect(fitLinkCost(samples)).toEqual(fitLinkCost([...samples]));
    expect(() => fitLinkCost([{ rounds: 1, linkBytes: 1, receivedBytes: 1, seconds: 0 }])).toThrow(/seconds > 0/);
    expect(() => fitLinkCost([{ rounds: -1, linkBytes: 1, receivedBytes: 1, seconds: 1 }])).toThrow(/terms >= 0/);
    expect(() => fitLinkCost([])).toThrow(/at least one/);
  });
});

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
