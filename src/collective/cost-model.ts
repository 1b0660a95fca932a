// The cost model of the all-reduce algorithms, pure: each algorithm's predicted time for a world of p
// ranks and a vector of n bytes, the fastest one per message size, and the fit of the model's three
// constants from measured timings.
//
// The model (an extended Hockney alpha-beta model). A schedule runs in rounds: in a round every rank
// sends on any of its links at once (each pair of ranks has its own link, the lab's data channels and
// the in-memory mesh alike), and the round lasts as long as its slowest link. On top, each rank spends
// time on every byte it receives (copy, check, sum): ranks share CPU cores (tabs on one machine, the
// bench's ranks in one thread), so this term is what makes a rank that receives (p-1) vectors at once
// slow even when its links are idle. So every algorithm costs
//
//     T = R alpha + B beta + C gamma
//
//   R     rounds (schedule steps that wait for a message)
//   B     bytes on the busiest link, summed over the rounds
//   C     bytes the busiest rank receives in the whole all-reduce
//   alpha seconds per round (a message's latency), beta seconds per byte on one link, gamma seconds per
//         byte a rank receives and handles.
//
// With P = the largest power of two <= p, L = ceil(log2 p), m = the parts a message is cut into (the
// schedules cut anything above `partBytes` and pipeline the parts, step-placement.ts):
//
//   ring    R = 2(p-1) + m-1   B = 2(p-1)/p n       C = 2(p-1)/p n    every send goes to the successor, so
//                                                                    pipelining adds rounds, not links
//   tree    R = 2L + m-1       B = R n/m            C = L n           levels use different links, so parts
//                                                                    of one level overlap the next's; rank 0
//                                                                    receives L vectors
//   rhd     R = 2 log2 P       B = 2(P-1)/P n       C = 2(P-1)/P n    no pipelining; when p != P the fold and
//           + 2                + 2n                 + n               unfold add two rounds of the whole vector
//   naive   R = 1              B = n                C = (p-1) n       everyone sends to everyone at once
//   ps      R = 2              B = 2n               C = (p-1) n       the server receives p-1 vectors at once,
//                                                                    then sends to all at once
//
// With gamma = 0 and one part per message, ring, tree and rhd are the textbook alpha-beta terms. What
// the terms say: naive has the fewest rounds (one latency) and wins small vectors whenever gamma is
// small; the ring and rhd receive the least, so they win large vectors when gamma is large (ranks that
// share cores); the tree sits between on latency and loses on bytes.
import { DEFAULT_MAX_MESSAGE_BYTES } from './chunking';

export type AllReduceAlgorithm = 'ring' | 'tree' | 'rhd' | 'naive' | 'ps';

export const ALL_REDUCE_ALGORITHMS: readonly AllReduceAlgorithm[] = ['ring', 'tree', 'rhd', 'naive', 'ps'];

/** The model's constants: alpha seconds per round, beta seconds per byte on a link, gamma seconds per byte a rank receives. */
export interface LinkCost {
  alpha: number;
  beta: number;
  gamma: number;
}

/** T = rounds alpha + linkBytes beta + receivedBytes gamma (see the header). */
export interface CostTerms {
  rounds: number;
  linkBytes: number;
  receivedBytes: number;
}

function checkWorld(world: number): void {
  if (!Number.isSafeInteger(world) || world < 1) throw new RangeError(`world must be an integer >= 1, got ${world}`);
}

function checkLink(link: LinkCost): void {
  for (const key of ['alpha', 'beta', 'gamma'] as const) {
    if (!(link[key] >= 0) || !Number.isFinite(link[key])) throw new RangeError(`alpha, beta and gamma must be finite numbers >= 0, got ${key} ${link[key]}`);
  }
}

function checkBytes(bytes: number): void {
  if (!(bytes >= 0) || !Number.isFinite(bytes)) throw new RangeError(`bytes must be a finite number >= 0, got ${bytes}`);
}

/** floor(log2 x) for x >= 1, by integer steps (exact for every world size). */
function floorLog2(x: number): number {
  let k = 0;
  while (2 ** (k + 1) <= x) k++;
  return k;
}

/** Parts a message of `bytes` travels in (at least one). */
function partsOf(bytes: number, partBytes: number): number {
  return Math.max(1, Math.ceil(bytes / partBytes));
}

/**
 * The rounds, busiest-link bytes and busiest-rank received bytes of one all-reduce of `bytes` bytes
 * (see the header). `partBytes`: the largest message the schedules send (theirs by default, for 4-byte
 * elements; Infinity: every message whole).
 */
export function costTerms(algorithm: AllReduceAlgorithm, world: number, bytes: number, partBytes: number = DEFAULT_MAX_MESSAGE_BYTES): CostTerms {
  checkWorld(world);
  checkBytes(bytes);
  if (!(partBytes > 0)) throw new RangeError(`partBytes must be > 0, got ${partBytes}`);
  const p = world;
  const n = bytes;
  if (p === 1) return { rounds: 0, linkBytes: 0, receivedBytes: 0 };
  switch (algorithm) {
    case 'ring': {
      const chunk = n / p;
      const hops = 2 * (p - 1);
      return { rounds: hops + partsOf(chunk, partBytes) - 1, linkBytes: hops * chunk, receivedBytes: hops * chunk };
    }
    case 'tree': {
      const levels = floorLog2(p - 1) + 1; // ceil(log2 p) for p >= 2
      const parts = partsOf(n, partBytes);
      const rounds = 2 * levels + parts - 1;
      return { rounds, linkBytes: (rounds * n) / parts, receivedBytes: levels * n };
    }
    case 'rhd': {
      const k = floorLog2(p);
      const core = 2 ** k;
      const fold = core === p ? 0 : 1;
      const halves = (2 * (core - 1)) / core;
      return { rounds: 2 * k + 2 * fold, linkBytes: halves * n + 2 * fold * n, receivedBytes: halves * n + fold * n };
    }
    case 'naive':
      return { rounds: 1, linkBytes: n, receivedBytes: (p - 1) * n };
    case 'ps':
      return { rounds: 2, linkBytes: 2 * n, receivedBytes: (p - 1) * n };
    default:
      throw new RangeError(`unknown all-reduce algorithm ${String(algorithm)}`);
  }
}

/** Seconds of the model's terms on `link`. */
export function secondsOf(terms: CostTerms, link: LinkCost): number {
  return terms.rounds * link.alpha + terms.linkBytes * link.beta + terms.receivedBytes * link.gamma;
}

/** Predicted seconds of one all-reduce of `bytes` bytes over `world` ranks. */
export function predictSeconds(algorithm: AllReduceAlgorithm, world: number, bytes: number, link: LinkCost, partBytes?: number): number {
  checkLink(link);
  return secondsOf(costTerms(algorithm, world, bytes, partBytes), link);
}

/**
 * The latency bound of an algorithm: its rounds times alpha, what it would take if bytes were free.
 * A small all-reduce should come close to it (issue 19 asks for 1.5x at 4 KiB).
 */
export function latencyBoundSeconds(algorithm: AllReduceAlgorithm, world: number, bytes: number, alpha: number, partBytes?: number): number {
  return costTerms(algorithm, world, bytes, partBytes).rounds * alpha;
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
  partBytes?: number,
): Pick {
  if (candidates.length === 0) throw new RangeError('pickFastest needs at least one candidate');
  const predictions = candidates.map((algorithm) => ({ algorithm, seconds: predictSeconds(algorithm, world, bytes, link, partBytes) }));
  const best = predictions.reduce((a, b) => (b.seconds < a.seconds ? b : a));
  return { algorithm: best.algorithm, seconds: best.seconds, predictions };
}

/**
 * The vector size in bytes at which `a` and `b` take the same time when every message travels whole
 * (then both are straight lines in n), or null when they never cross at a positive size. Below it the
 * one with fewer rounds wins, above it the one with fewer bytes.
 */
export function crossoverBytes(a: AllReduceAlgorithm, b: AllReduceAlgorithm, world: number, link: LinkCost): number | null {
  checkLink(link);
  const whole = Number.POSITIVE_INFINITY;
  const slope = (x: AllReduceAlgorithm) => {
    const t = costTerms(x, world, 1, whole);
    return t.linkBytes * link.beta + t.receivedBytes * link.gamma;
  };
  const latencyGap = (costTerms(a, world, 0, whole).rounds - costTerms(b, world, 0, whole).rounds) * link.alpha;
  const byteGap = slope(b) - slope(a);
  if (byteGap === 0) return null;
  const n = latencyGap / byteGap;
  return n > 0 && Number.isFinite(n) ? n : null;
}

/** One measured time and the model's terms of what was measured. */
export interface CostSample extends CostTerms {
  seconds: number;
}

export interface LinkCostFit extends LinkCost {
  /** Root mean square of (measured - predicted) / measured over the samples. */
  rmsRelativeError: number;
  /** Constants the samples pushed below zero were held at 0 (the others fitted without them). */
  clamped: ('alpha' | 'beta' | 'gamma')[];
  samples: number;
}

const TERMS = ['rounds', 'linkBytes', 'receivedBytes'] as const;
const CONSTANTS = ['alpha', 'beta', 'gamma'] as const;

/** Solves the small symmetric system a x = b by Gaussian elimination with partial pivoting; null when singular. */
function solve(a: number[][], b: number[]): number[] | null {
  const n = b.length;
  const m = a.map((row, i) => [...row, b[i]]);
  const scale = Math.max(0, ...a.map((row, i) => Math.abs(row[i])));
  for (let col = 0; col < n; col++) {
    let pivot = col;
    for (let r = col + 1; r < n; r++) if (Math.abs(m[r][col]) > Math.abs(m[pivot][col])) pivot = r;
    if (!(Math.abs(m[pivot][col]) > scale * 1e-9)) return null;
    [m[col], m[pivot]] = [m[pivot], m[col]];
    for (let r = col + 1; r < n; r++) {
      const f = m[r][col] / m[col][col];
      for (let c = col; c <= n; c++) m[r][c] -= f * m[col][c];
    }
  }
  const x = new Array<number>(n).fill(0);
  for (let r = n - 1; r >= 0; r--) {
    let s = m[r][n];
    for (let c = r + 1; c < n; c++) s -= m[r][c] * x[c];
    x[r] = s / m[r][r];
  }
  return x;
}

/**
 * Least squares of seconds = rounds alpha + linkBytes beta + receivedBytes gamma over the samples, each
 * weighted by 1/seconds^2 (relative errors: sizes span orders of magnitude, and an unweighted fit lets
 * the largest decide alpha, which they barely depend on), with every constant >= 0: each subset of the
 * three constants is fitted with the others held at 0, and the non-negative fit with the smallest error
 * wins (for three unknowns that is the exact non-negative least squares). Constants the samples cannot
 * tell apart (every sample has linkBytes = receivedBytes, e.g. a room of two) leave the system singular
 * with all three: then a smaller subset carries them. Deterministic: the same samples in the same order
 * give the same bits, which is what lets a room's ranks agree by fitting the same gathered samples.
 */
export function fitLinkCost(samples: readonly CostSample[]): LinkCostFit {
  for (const s of samples) {
    const terms = TERMS.map((t) => s[t]);
    if (terms.some((x) => !(x >= 0) || !Number.isFinite(x)) || !(s.seconds > 0) || !Number.isFinite(s.seconds)) {
      throw new RangeError(`a cost sample needs finite terms >= 0 and seconds > 0, got ${JSON.stringify(s)}`);
    }
  }
  // Each term divided by its largest value, so that the normal equations' entries are of one magnitude
  // (rounds are ~1-30, bytes ~1e2-1e7) and the singularity test means the same for every column.
  const scales = TERMS.map((t) => Math.max(0, ...samples.map((s) => s[t])));
  let best: { x: number[]; error: number; used: number[] } | null = null;
  // Larger subsets first, so that on equal error the fuller model wins.
  const subsets = [[0, 1, 2], [0, 1], [0, 2], [1, 2], [0], [1], [2]];
  for (const used of subsets) {
    if (used.some((i) => scales[i] === 0)) continue;
    const normal = used.map(() => new Array<number>(used.length).fill(0));
    const rhs = new Array<number>(used.length).fill(0);
    for (const s of samples) {
      const w = 1 / (s.seconds * s.seconds);
      const row = used.map((i) => s[TERMS[i]] / scales[i]);
      for (let i = 0; i < used.length; i++) {
        rhs[i] += w * row[i] * s.seconds;
        for (let j = 0; j < used.length; j++) normal[i][j] += w * row[i] * row[j];
      }
    }
    const x = solve(normal, rhs);
    if (!x || x.some((v) => !(v >= 0))) continue;
    const full = [0, 0, 0];
    used.forEach((i, k) => (full[i] = x[k] / scales[i]));
    const error = samples.reduce((total, s) => total + ((s.seconds - TERMS.reduce((t, term, i) => t + s[term] * full[i], 0)) / s.seconds) ** 2, 0);
    if (!best || error < best.error) best = { x: full, error, used };
  }
  if (!best) throw new RangeError('fitting alpha, beta and gamma needs samples with at least one non-zero term');
  const [alpha, beta, gamma] = best.x;
  const kept = best.used;
  return {
    alpha,
    beta,
    gamma,
    rmsRelativeError: Math.sqrt(best.error / samples.length),
    clamped: CONSTANTS.filter((_, i) => !kept.includes(i)),
    samples: samples.length,
  };
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
 * One link's alpha and beta from one-message timings (seconds = alpha + beta * bytes; gamma is 0: a
 * single stream cannot tell link time from handling time). By default each sample is weighted by
 * 1/seconds^2, as fitLinkCost. A negative parameter, which noise can produce, is clamped to 0 and the
 * other one refitted alone.
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
  return { alpha, beta, gamma: 0, rmsRelativeError: Math.sqrt(squares / samples.length), clamped, samples: samples.length };
}
