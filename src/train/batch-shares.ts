// How a room splits each step's global batch among its ranks: integer sample counts, one per rank,
// summing to the global batch, each a whole number of micro-batches. The split is a function of the
// step: it starts even (sampler.ts shareOf) and a balancer (src/parallel/share-balancer.ts) may set new
// counts from a later step on. Every rank holds the same table (the balancer derives it from values the
// whole room exchanged), so every rank cuts the same global batch the same way at every step: the
// shares are disjoint and cover it, whatever their sizes.
//
// A rank's gradient is of the mean loss over its own share; weighted by share * C / global batch
// (weightOf, C the ranks with a share above zero), the average of those C gradients is exactly the
// gradient of the global batch's mean. A share may be zero (a tab too slow to be worth even one
// micro-batch): that rank computes nothing, its weight is exactly 0, and it sits the step's all-reduce
// out (src/parallel/share-groups.ts): it receives the others' average and applies the same update, so
// its replica stays bitwise equal and hash-checked.

/** The half-open range of a step's global batch that `rank` takes when the shares are even. */
export function evenShareOf(globalBatch: number, world: number, rank: number): { start: number; end: number } {
  return { start: Math.floor((rank * globalBatch) / world), end: Math.floor(((rank + 1) * globalBatch) / world) };
}

/** The even split's counts (they differ by at most one sample when the world does not divide the batch). */
export function evenCounts(globalBatch: number, world: number): number[] {
  return Array.from({ length: world }, (_, rank) => {
    const { start, end } = evenShareOf(globalBatch, world, rank);
    return end - start;
  });
}

/** Entries kept after the even split (see set). */
const KEPT_ENTRIES = 4;

export class BatchShares {
  /** (from step, counts) in increasing step order; the first entry is the even split from step 0. */
  private readonly table: { from: number; counts: readonly number[] }[];

  constructor(
    readonly globalBatch: number,
    readonly world: number,
    /** Every count is a multiple of this (the micro-batches per step: each splits into equal micro-batches). */
    readonly quantum = 1,
  ) {
    if (!Number.isInteger(quantum) || quantum < 1) throw new RangeError(`share quantum must be a positive integer, got ${quantum}`);
    this.table = [{ from: 0, counts: evenCounts(globalBatch, world) }];
  }

  /** The most samples one rank can ever be given: all of them (every other rank's share may be zero). */
  get maxCount(): number {
    return this.globalBatch;
  }

  /** The counts in force at `step`. */
  countsAt(step: number): readonly number[] {
    let counts = this.table[0].counts;
    for (const entry of this.table) if (entry.from <= step) counts = entry.counts;
    return counts;
  }

  /** `rank`'s half-open range of the global batch of `step`: ranks in order, contiguous, covering it. */
  rangeOf(rank: number, step: number): { start: number; end: number } {
    const counts = this.countsAt(step);
    let start = 0;
    for (let r = 0; r < rank; r++) start += counts[r];
    return { start, end: start + counts[rank] };
  }

  /**
   * `rank`'s gradient weight at `step`: its share relative to an even split among the ranks with samples
   * (1 when all are even). Those ranks average their gradients among themselves (a rank with no samples
   * sits that step out: src/parallel/share-groups.ts), so their weights sum to their number.
   */
  weightOf(rank: number, step: number): number {
    const counts = this.countsAt(step);
    const contributors = counts.filter((c) => c > 0).length;
    return (counts[rank] * contributors) / this.globalBatch;
  }

  /**
   * From `step` on, split by `counts`. Throws on counts that do not fit (a wrong length, a sum other
   * than the global batch, a count that is not a whole multiple of the quantum, zero included), or on a
   * step before one already set: a step's split never changes once a rank may have cut it.
   */
  set(step: number, counts: readonly number[]): void {
    if (counts.length !== this.world) throw new RangeError(`shares for ${counts.length} ranks, the room has ${this.world}`);
    const sum = counts.reduce((a, b) => a + b, 0);
    if (sum !== this.globalBatch) throw new RangeError(`shares [${counts.join(', ')}] sum to ${sum}, not the global batch ${this.globalBatch}`);
    const bad = counts.find((c) => !Number.isInteger(c) || c < 0 || c % this.quantum !== 0);
    if (bad !== undefined) throw new RangeError(`share ${bad} is not a whole multiple of ${this.quantum} samples (the micro-batches per step)`);
    const last = this.table[this.table.length - 1];
    if (!Number.isInteger(step) || step <= last.from) throw new RangeError(`shares set from step ${step}, but step ${last.from} already has its own`);
    this.table.push({ from: step, counts: [...counts] });
    // Keep the table short on long runs, but keep what is still read: the split set now takes effect
    // two steps on (share-balancer.ts), and the step just trained is still read after it (the room's
    // loss, src/lab/replica-check.ts), so with a split set after every step the last four entries.
    if (this.table.length > KEPT_ENTRIES + 1) this.table.splice(1, this.table.length - KEPT_ENTRIES - 1);
  }
}

/**
 * A second rank with samples turns the step's hand-out (one contributor sends its gradient to the
 * others, waiting on no one) into an all-reduce: every contributor then waits for the slowest one's
 * gradient to reach the host (a per-step read-back that the speeds, measured over the passes, do not
 * count) and the vector crosses the links twice. So the second rank is kept only if it takes at least
 * this fraction off the step's passes, i.e. if it is at least 1/4 as fast as the fastest. A heuristic
 * from one measurement (docs/shares.md, "Where the step goes"): at batch 4096 two SwiftShader tabs at
 * 2% of the CPU tab's speed each took 85-91 samples, saving 4% of its passes, and made the step 2.3x
 * the concurrent ideal.
 */
export const MIN_GAIN_OF_A_SECOND_CONTRIBUTOR = 0.2;

/**
 * The ranks worth a share at these speeds: the fastest always; then, from fast to slow, each rank whose
 * one quantum would take less time than the step takes on the ranks already kept (globalBatch / their
 * summed speed). A rank slower than that would make the step longer with any share at all, so it gets
 * none. The second rank must also take MIN_GAIN_OF_A_SECOND_CONTRIBUTOR of the step's passes off.
 * Ties keep the lower rank first. Deterministic.
 */
export function ranksWorthAShare(speeds: readonly number[], globalBatch: number, quantum = 1): boolean[] {
  const order = speeds.map((speed, rank) => ({ speed, rank })).sort((a, b) => b.speed - a.speed || a.rank - b.rank);
  const kept = speeds.map(() => false);
  let keptSpeed = 0;
  for (const [i, { speed, rank }] of order.entries()) {
    if (keptSpeed > 0 && quantum / speed >= globalBatch / keptSpeed) break;
    // The passes with it take keptSpeed / (keptSpeed + speed) of those without it.
    if (i === 1 && speed / (keptSpeed + speed) < MIN_GAIN_OF_A_SECOND_CONTRIBUTOR) break;
    kept[rank] = true;
    keptSpeed += speed;
  }
  return kept;
}

/**
 * Counts proportional to `speeds` (samples per ms, one per rank), in whole quanta summing to the global
 * batch: zero for a rank not worth a share (ranksWorthAShare), at least one quantum for every other,
 * the rest in proportion to speed by largest remainders, ties to the lower rank. Deterministic, so every
 * rank given the same speeds computes the same counts.
 */
export function proportionalCounts(speeds: readonly number[], globalBatch: number, quantum = 1): number[] {
  const units = globalBatch / quantum;
  if (!Number.isInteger(units) || units < 1) throw new RangeError(`global batch ${globalBatch} is not a whole number of ${quantum}-sample quanta`);
  if (speeds.length === 0 || speeds.some((s) => !(s > 0) || !Number.isFinite(s))) throw new RangeError(`speeds must be positive and finite, got [${speeds.join(', ')}]`);
  let kept = ranksWorthAShare(speeds, globalBatch, quantum);
  // More ranks worth a share than quanta to give: the fastest `units` of them (ties to the lower rank).
  if (kept.filter(Boolean).length > units) {
    const fastest = new Set(speeds.map((speed, rank) => ({ speed, rank })).sort((a, b) => b.speed - a.speed || a.rank - b.rank).slice(0, units).map((r) => r.rank));
    kept = kept.map((k, rank) => k && fastest.has(rank));
  }
  const world = kept.filter(Boolean).length;
  const total = speeds.reduce((sum, s, rank) => (kept[rank] ? sum + s : sum), 0);
  // One quantum each first; the rest in proportion to speed.
  const spare = units - world;
  const ideal = speeds.map((s, rank) => (kept[rank] ? (spare * s) / total : 0));
  const given = ideal.map(Math.floor);
  let left = spare - given.reduce((a, b) => a + b, 0);
  const order = ideal
    .map((x, rank) => ({ rank, remainder: x - Math.floor(x) }))
    .filter(({ rank }) => kept[rank])
    .sort((a, b) => b.remainder - a.remainder || a.rank - b.rank);
  for (const { rank } of order) {
    if (left === 0) break;
    given[rank]++;
    left--;
  }
  return given.map((g, rank) => (kept[rank] ? (g + 1) * quantum : 0));
}

/**
 * The global batch's mean loss from each rank's mean loss over its own share: the ranks' losses weighted
 * by their sample counts, summed in rank order (every rank given the same values computes the same
 * bits). A rank with no samples (its loss is NaN) weighs nothing; a rank whose loss is not finite is
 * left out too, and the others' counts renormalise. Null when no rank is left.
 */
export function shareWeightedLoss(losses: readonly number[], counts: readonly number[]): { loss: number; ranks: number } | null {
  if (losses.length !== counts.length) throw new RangeError(`${losses.length} losses for ${counts.length} shares`);
  let weighted = 0;
  let samples = 0;
  let ranks = 0;
  losses.forEach((loss, rank) => {
    const count = counts[rank];
    if (!(count > 0) || !Number.isFinite(loss)) return;
    weighted += count * loss;
    samples += count;
    ranks++;
  });
  return ranks === 0 ? null : { loss: weighted / samples, ranks };
}
