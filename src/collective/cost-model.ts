// The alpha-beta (Hockney) cost model of the all-reduce algorithms, pure: a message of n bytes over
// one link takes alpha + n beta seconds (alpha: per-message latency, beta: seconds per byte). From it:
// each algorithm's predicted time for a world of p ranks and a vector of n bytes, the fastest one per
// message size, the size where two algorithms cross, and a fit of alpha and beta from measurements.
//
// Assumptions, which the schedules in this folder meet: every pair of ranks has its own link (a full
// mesh of data channels), a rank sends one message at a time and receives one at a time, and a step's
// time is its slowest message (steps are barriers). Under them every algorithm costs
//     T = a(p) alpha + b(p) n beta
// with the terms below (P = the largest power of two <= p, L = ceil(log2 p)):
//
//   ring    2(p-1) alpha + 2(p-1)/p n beta          p-1 reduce-scatter + p-1 all-gather hops of n/p
//   tree    2L alpha + 2L n beta                    reduce up, broadcast down; whole vector per hop
//   rhd     2 log2 P alpha + 2(P-1)/P n beta        halving + doubling (Rabenseifner), and when p != P
//           + 2 alpha + 2 n beta                    the fold before and the unfold after (whole vector)
//   naive   (p-1) alpha + (p-1) n beta              everyone sends everything to everyone, one at a time
//   ps      2(p-1) alpha + 2(p-1) n beta            the server's link: p-1 vectors in, p-1 out
//
// What follows from the terms alone: for a power of two, rhd has the tree's latency and the ring's
// bandwidth, so it is never slower than either; the tree's bandwidth term only matters on large
// vectors, where the ring wins instead; when p is not a power of two the fold costs rhd 2 n beta, so the
// ring wins from a crossover size upwards (crossoverBytes). The textbook tree term ignores the part
// pipelining tree-allreduce.ts does, so it over-predicts the tree on vectors of many parts.

export type AllReduceAlgorithm = 'ring' | 'tree' | 'rhd' | 'naive' | 'ps';

export const ALL_REDUCE_ALGORITHMS: readonly AllReduceAlgorithm[] = ['ring', 'tree', 'rhd', 'naive', 'ps'];

/** One link's cost: alpha in seconds per message, beta in seconds per byte. */
export interface LinkCost {
  alpha: number;
  beta: number;
}

/** T = latencyTerms * alpha + byteTerms * n * beta. */
export interface CostTerms {
  latencyTerms: number;
  byteTerms: number;
}

function checkWorld(world: number): void {
  if (!Number.isSafeInteger(world) || world < 1) throw new RangeError(`world must be an integer >= 1, got ${world}`);
}

function checkLink(link: LinkCost): void {
  if (!(link.alpha >= 0) || !(link.beta >= 0) || !Number.isFinite(link.alpha) || !Number.isFinite(link.beta)) {
    throw new RangeError(`alpha and beta must be finite numbers >= 0, got alpha ${link.alpha}, beta ${link.beta}`);
  }
}

/** The multipliers of alpha and of n beta for one algorithm and world (see the table in the header). */
export function costTerms(algorithm: AllReduceAlgorithm, world: number): CostTerms {
  checkWorld(world);
  const p = world;
  if (p === 1) return { latencyTerms: 0, byteTerms: 0 };
  switch (algorithm) {
    case 'ring':
      return { latencyTerms: 2 * (p - 1), byteTerms: (2 * (p - 1)) / p };
    case 'tree': {
      const levels = Math.ceil(Math.log2(p));
      return { latencyTerms: 2 * levels, byteTerms: 2 * levels };
    }
    case 'rhd': {
      const core = 2 ** Math.floor(Math.log2(p));
      const fold = core === p ? 0 : 2;
      return { latencyTerms: 2 * Math.log2(core) + fold, byteTerms: (2 * (core - 1)) / core + fold };
    }
    case 'naive':
      return { latencyTerms: p - 1, byteTerms: p - 1 };
    case 'ps':
      return { latencyTerms: 2 * (p - 1), byteTerms: 2 * (p - 1) };
    default:
      throw new RangeError(`unknown all-reduce algorithm ${String(algorithm)}`);
  }
}

/** Predicted seconds of one all-reduce of `bytes` bytes over `world` ranks. */
export function predictSeconds(algorithm: AllReduceAlgorithm, world: number, bytes: number, link: LinkCost): number {
  checkLink(link);
  if (!(bytes >= 0) || !Number.isFinite(bytes)) throw new RangeError(`bytes must be a finite number >= 0, got ${bytes}`);
  const { latencyTerms, byteTerms } = costTerms(algorithm, world);
  return latencyTerms * link.alpha + byteTerms * bytes * link.beta;
}

export interface Pick {
  algorithm: AllReduceAlgorithm;
  seconds: number;
  /** Every candidate's prediction, in the candidates' order. */
  predictions: { algorithm: AllReduceAlgorithm; seconds: number }[];
}

/** The candidate with the smallest predicted time; ties go to the earlier candidate. */
export function pickFastest(
  world: number,
  bytes: number,
  link: LinkCost,
  candidates: readonly AllReduceAlgorithm[] = ['ring', 'rhd', 'tree'],
): Pick {
  if (candidates.length === 0) throw new RangeError('pickFastest needs at least one candidate');
  const predictions = candidates.map((algorithm) => ({ algorithm, seconds: predictSeconds(algorithm, world, bytes, link) }));
  const best = predictions.reduce((a, b) => (b.seconds < a.seconds ? b : a));
  return { algorithm: best.algorithm, seconds: best.seconds, predictions };
}

/**
 * The vector size in bytes at which `a` and `b` take the same time (both are straight lines in n), or
 * null when they never cross at a positive size (one is never slower, or they are the same line).
 * Below it the one with fewer latency terms wins, above it the one with fewer byte terms.
 */
export function crossoverBytes(a: AllReduceAlgorithm, b: AllReduceAlgorithm, world: number, link: LinkCost): number | null {
  checkLink(link);
  const ta = costTerms(a, world);
  const tb = costTerms(b, world);
  const latencyGap = (ta.latencyTerms - tb.latencyTerms) * link.alpha;
  const byteGap = (tb.byteTerms - ta.byteTerms) * link.beta;
  if (byteGap === 0) return null;
  const n = latencyGap / byteGap;
  return n > 0 && Number.isFinite(n) ? n : null;
}

export interface TimingSample {
  bytes: number;
  seconds: number;
}

export interface AlphaBetaFit extends LinkCost {
  /** Root mean square of (measured - predicted) / measured over the samples. */
  rmsRelativeError: number;
  /** The unconstrained fit gave a negative alpha or beta; it was set to 0 and the other refitted. */
  clamped: boolean;
  samples: number;
}

/**
 * Least-squares fit of seconds = alpha + beta * bytes. By default each sample is weighted by 1/seconds^2,
 * i.e. the fit minimises relative errors, because benchmark sizes span several orders of magnitude and
 * an unweighted fit lets the largest sizes decide alpha (which they barely depend on). A negative
 * parameter, which noise can produce, is clamped to 0 and the other one refitted alone.
 */
export function fitAlphaBeta(samples: readonly TimingSample[], weighting: 'relative' | 'absolute' = 'relative'): AlphaBetaFit {
  for (const s of samples) {
    if (!(s.bytes >= 0) || !Number.isFinite(s.bytes) || !(s.seconds > 0) || !Number.isFinite(s.seconds)) {
      throw new RangeError(`a timing sample needs bytes >= 0 and seconds > 0, got ${JSON.stringify(s)}`);
    }
  }
  if (new Set(samples.map((s) => s.bytes)).size < 2) throw new RangeError('fitting alpha and beta needs samples of at least two different sizes');
  const weight = (s: TimingSample) => (weighting === 'relative' ? 1 / (s.seconds * s.seconds) : 1);
  let sw = 0, sx = 0, sy = 0, sxx = 0, sxy = 0;
  for (const s of samples) {
    const w = weight(s);
    sw += w;
    sx += w * s.bytes;
    sy += w * s.seconds;
    sxx += w * s.bytes * s.bytes;
    sxy += w * s.bytes * s.seconds;
  }
  const det = sw * sxx - sx * sx;
  let beta = (sw * sxy - sx * sy) / det;
  let alpha = (sy - beta * sx) / sw;
  let clamped = false;
  if (alpha < 0) {
    clamped = true;
    alpha = 0;
    beta = sxy / sxx; // through the origin
  } else if (beta < 0) {
    clamped = true;
    beta = 0;
    alpha = sy / sw;
  }
  const squares = samples.reduce((total, s) => total + ((s.seconds - alpha - beta * s.bytes) / s.seconds) ** 2, 0);
  return { alpha, beta, rmsRelativeError: Math.sqrt(squares / samples.length), clamped, samples: samples.length };
}
