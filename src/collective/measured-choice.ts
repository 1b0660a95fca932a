// What `collective=auto` learns from its own all-reduces, pure: the room's measured time of each
// algorithm per message-size class, the choice that lets those measurements override the cost model's
// prediction, and which algorithms deserve a trial.
//
// Why: the cost model (cost-model.ts) is fitted from probes and from the buckets auto already ran, so
// an algorithm it under-predicts keeps being chosen and its refits never see the alternatives (on real
// data channels naive's fan-out to three peers did not get three links' rate, and auto ran naive 1.3x
// slower than the best fixed algorithm). So every timing (parallel/collective-choice.ts times a step's
// communication) is kept under its algorithm and its size class, the room pools every rank's timings,
// and the choice for a size compares, within the size's class, measured medians where they exist and
// the model's prediction for the same measured size, scaled as the measured cells are to theirs, where
// they do not. A size class never measured is the model's alone.
//
// Size classes are octaves (log2 of the bytes, rounded): the bucket a choice is made for and the
// timings that inform it need not be the same bytes (a data-parallel span is timed whole but picked
// per piece), only of the same class. Everything here is deterministic: the same pooled timings in the
// same order give the same choice on every rank.
import { decodeRows, encodeRows } from './fixed-records';
import { ALL_REDUCE_ALGORITHMS, pickFastest, predictSeconds, type AllReduceAlgorithm, type LinkCost } from './cost-model';

/** One timed all-reduce: the algorithm, the bytes its choice was made for, the bytes it moved, its time. */
export interface TimedBucket {
  algorithm: AllReduceAlgorithm;
  /** The size the algorithm was picked for (its size class keys the timing). */
  pickedBytes: number;
  /** The size that was timed (the model's prediction of it is what the timing replaces). */
  bytes: number;
  seconds: number;
}

/** The room's measured time of one algorithm in one size class. */
export interface MeasuredCell {
  algorithm: AllReduceAlgorithm;
  sizeClass: number;
  /** Medians over every rank's timings of this algorithm and class. */
  seconds: number;
  bytes: number;
  samples: number;
}

/** A candidate's score for a size: its measured median, or the model's prediction. */
export interface Score {
  algorithm: AllReduceAlgorithm;
  seconds: number;
  source: 'measured' | 'model';
}

export interface Choice {
  algorithm: AllReduceAlgorithm;
  /** Every candidate's score, in the candidates' order. */
  scores: Score[];
}

/** The octave a size belongs to: round(log2 bytes) (sizes below one byte count as one). */
export function sizeClass(bytes: number): number {
  if (!(bytes >= 0) || !Number.isFinite(bytes)) throw new RangeError(`bytes must be a finite number >= 0, got ${bytes}`);
  return Math.round(Math.log2(Math.max(1, bytes)));
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/**
 * Pools every rank's timings into one cell per (size class, algorithm), ordered by class and then by
 * ALL_REDUCE_ALGORITHMS: what every rank computes alike from the gathered timings.
 */
export function measuredCells(perRank: readonly (readonly TimedBucket[])[]): MeasuredCell[] {
  const groups = new Map<string, { algorithm: AllReduceAlgorithm; sizeClass: number; seconds: number[]; bytes: number[] }>();
  for (const timings of perRank) {
    for (const t of timings) {
      if (!ALL_REDUCE_ALGORITHMS.includes(t.algorithm)) throw new RangeError(`unknown all-reduce algorithm ${String(t.algorithm)}`);
      if (!(t.seconds > 0) || !Number.isFinite(t.seconds) || !(t.bytes >= 0)) throw new RangeError(`a timed bucket needs seconds > 0 and bytes >= 0, got ${JSON.stringify(t)}`);
      const cls = sizeClass(t.pickedBytes);
      const key = `${cls}:${t.algorithm}`;
      const group = groups.get(key) ?? { algorithm: t.algorithm, sizeClass: cls, seconds: [], bytes: [] };
      group.seconds.push(t.seconds);
      group.bytes.push(t.bytes);
      groups.set(key, group);
    }
  }
  return [...groups.values()]
    .sort((a, b) => a.sizeClass - b.sizeClass || ALL_REDUCE_ALGORITHMS.indexOf(a.algorithm) - ALL_REDUCE_ALGORITHMS.indexOf(b.algorithm))
    .map((g) => ({ algorithm: g.algorithm, sizeClass: g.sizeClass, seconds: median(g.seconds), bytes: median(g.bytes), samples: g.seconds.length }));
}

/**
 * The candidate for a message of `bytes` with the smallest score; ties go to the earlier candidate.
 * Without a measured cell of the size's class among the candidates it is the model's pick for `bytes`.
 * With one, measured candidates score their median, and the others the model's prediction for the
 * measured size (the median of the class's measured sizes) times the median ratio of measured to
 * predicted over the class's measured cells, so that both describe the same work: an algorithm the
 * model under-predicts loses to one measured faster, and one never measured still wins when the
 * corrected model says it beats what was measured (then it runs, and is measured in turn).
 */
export function chooseAlgorithm(
  world: number,
  bytes: number,
  link: LinkCost,
  cells: readonly MeasuredCell[],
  candidates: readonly AllReduceAlgorithm[],
  partBytes?: number,
): Choice {
  const cls = sizeClass(bytes);
  const measured = cells.filter((c) => c.sizeClass === cls && candidates.includes(c.algorithm));
  if (measured.length === 0) {
    const pick = pickFastest(world, bytes, link, candidates, partBytes);
    return { algorithm: pick.algorithm, scores: pick.predictions.map((p) => ({ ...p, source: 'model' })) };
  }
  const timedBytes = median(measured.map((c) => c.bytes));
  // What was timed may be more than one all-reduce (a step's span): the model's predictions are scaled
  // by how the class's measured times relate to them (the median of measured / predicted).
  const scale = median(measured.map((c) => c.seconds / Math.max(predictSeconds(c.algorithm, world, c.bytes, link, partBytes), Number.MIN_VALUE)));
  const scores = candidates.map((algorithm): Score => {
    const cell = measured.find((c) => c.algorithm === algorithm);
    return cell ? { algorithm, seconds: cell.seconds, source: 'measured' } : { algorithm, seconds: scale * predictSeconds(algorithm, world, timedBytes, link, partBytes), source: 'model' };
  });
  const best = scores.reduce((a, b) => (b.seconds < a.seconds ? b : a));
  return { algorithm: best.algorithm, scores };
}

/**
 * The algorithms worth a trial for `bytes`: every candidate but the model's pick whose predicted time
 * is within `within` times the pick's, in the candidates' order. The model decides which alternatives
 * are plausible; a trial decides whether they are faster.
 */
export function trialCandidates(world: number, bytes: number, link: LinkCost, candidates: readonly AllReduceAlgorithm[], within: number, partBytes?: number): AllReduceAlgorithm[] {
  if (!(within >= 1)) throw new RangeError(`within must be >= 1, got ${within}`);
  const pick = pickFastest(world, bytes, link, candidates, partBytes);
  return pick.predictions.filter((p) => p.algorithm !== pick.algorithm && p.seconds <= within * pick.seconds).map((p) => p.algorithm);
}

/** Floats per timed bucket on the wire: algorithm index, picked bytes, bytes, seconds. */
const TIMED_FIELDS = 4;

/** A rank's timings as a fixed-size record (fixed-records.ts): what the room all-gathers. */
export function encodeTimings(timings: readonly TimedBucket[], capacity: number): Uint8Array {
  return encodeRows(timings.map((t) => [ALL_REDUCE_ALGORITHMS.indexOf(t.algorithm), t.pickedBytes, t.bytes, t.seconds]), TIMED_FIELDS, capacity, 'timings');
}

export function decodeTimings(bytes: Uint8Array): TimedBucket[] {
  return decodeRows(bytes, TIMED_FIELDS, 'timings').map(([index, pickedBytes, timed, seconds]) => {
    const algorithm = ALL_REDUCE_ALGORITHMS[index];
    if (algorithm === undefined) throw new RangeError(`a timings record names algorithm ${index}`);
    return { algorithm, pickedBytes, bytes: timed, seconds };
  });
}
