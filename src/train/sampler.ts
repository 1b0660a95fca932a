// The distributed sampler: every rank shuffles the same epoch permutation from the seed, cuts the
// same global batch for a step, and takes its own disjoint slice of it. N ranks with global batch G
// therefore see exactly the samples one rank would see with batch G, which is what makes data-parallel
// training equal to single-tab training.
//
// When the room's size does not divide the global batch (an elastic room that lost a tab), the shares
// differ by at most one sample, and each rank's gradient carries the weight share * world / global batch,
// so the ring's average is still the gradient of the global batch's mean loss. Shares of unequal sizes
// that change from step to step (a room of unequal tabs, src/parallel/share-balancer.ts) come from a
// BatchShares table (batch-shares.ts) the room agrees on; without one, the shares stay even.
import { deriveSeed, Rng } from '../data/random';
import { BatchShares, evenShareOf } from './batch-shares';

export interface SamplerOptions {
  /** Samples in the data set. */
  size: number;
  /** Samples per optimizer step over the whole room. */
  globalBatch: number;
  world: number;
  rank: number;
  seed: number;
  /** The room's split of each step's global batch; absent: even shares at every step. */
  shares?: BatchShares;
}

/** The half-open range of a step's global batch that `rank` takes when the shares are even. */
export const shareOf = evenShareOf;

export class DistributedSampler {
  /** Samples per step on this rank at step 0 (at every step unless the shares are re-balanced). */
  readonly perRank: number;
  /** This rank's share at step 0 relative to an even one (1 when the world divides the global batch). */
  readonly shareWeight: number;
  readonly shares: BatchShares;
  readonly stepsPerEpoch: number;
  private cachedEpoch = -1;
  private permutation: Uint32Array;

  constructor(readonly options: SamplerOptions) {
    const { size, globalBatch, world, rank } = options;
    for (const [name, v] of Object.entries({ size, globalBatch, world })) {
      if (!Number.isInteger(v) || v <= 0) throw new RangeError(`sampler ${name} must be a positive integer, got ${v}`);
    }
    if (!Number.isInteger(rank) || rank < 0 || rank >= world) throw new RangeError(`rank ${rank} outside 0..${world - 1}`);
    if (globalBatch < world) throw new RangeError(`global batch ${globalBatch} is smaller than the room (${world} ranks): a rank would get no sample`);
    if (globalBatch > size) throw new RangeError(`global batch ${globalBatch} is larger than the data set (${size})`);
    if (options.shares && (options.shares.globalBatch !== globalBatch || options.shares.world !== world)) {
      throw new RangeError(`shares of a batch of ${options.shares.globalBatch} over ${options.shares.world} ranks given to a sampler of ${globalBatch} over ${world}`);
    }
    this.shares = options.shares ?? new BatchShares(globalBatch, world);
    this.perRank = this.rowsAt(0);
    this.shareWeight = this.weightAt(0);
    // The tail that does not fill a whole global batch is dropped; it is a different tail each epoch.
    this.stepsPerEpoch = Math.floor(size / globalBatch);
    this.permutation = new Uint32Array(size);
  }

  epochOf(step: number): number {
    return Math.floor(step / this.stepsPerEpoch);
  }

  /** The whole room's samples for `step` (a view: valid until another epoch is asked for). */
  globalIndices(step: number): Uint32Array {
    if (!Number.isInteger(step) || step < 0) throw new RangeError(`step must be a non-negative integer, got ${step}`);
    const epoch = this.epochOf(step);
    if (epoch !== this.cachedEpoch) {
      for (let i = 0; i < this.permutation.length; i++) this.permutation[i] = i;
      new Rng(deriveSeed(this.options.seed, epoch)).shuffle(this.permutation);
      this.cachedEpoch = epoch;
    }
    const start = (step % this.stepsPerEpoch) * this.options.globalBatch;
    return this.permutation.subarray(start, start + this.options.globalBatch);
  }

  /** This rank's samples at `step`. */
  rowsAt(step: number): number {
    return this.shares.countsAt(step)[this.options.rank];
  }

  /** This rank's gradient weight at `step` (batch-shares.ts weightOf). */
  weightAt(step: number): number {
    return this.shares.weightOf(this.options.rank, step);
  }

  /** This rank's disjoint share of the global batch of `step`. */
  indices(step: number): Uint32Array {
    const global = this.globalIndices(step);
    const { start, end } = this.shares.rangeOf(this.options.rank, step);
    return global.subarray(start, end);
  }
}
