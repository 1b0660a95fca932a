// The distributed sampler: every rank shuffles the same epoch permutation from the seed, cuts the
// same global batch for a step, and takes its own disjoint slice of it. N ranks with global batch G
// therefore see exactly the samples one rank would see with batch G, which is what makes data-parallel
// training equal to single-tab training.
//
// When the room's size does not divide the global batch (an elastic room that lost a tab), the shares
// differ by at most one sample, and each rank's gradient carries the weight share * world / global batch,
// so the ring's average is still the gradient of the global batch's mean loss.
import { deriveSeed, Rng } from '../data/random';

export interface SamplerOptions {
  /** Samples in the data set. */
  size: number;
  /** Samples per optimizer step over the whole room. */
  globalBatch: number;
  world: number;
  rank: number;
  seed: number;
}

/** The half-open range of a step's global batch that `rank` takes: contiguous, disjoint, covering. */
export function shareOf(globalBatch: number, world: number, rank: number): { start: number; end: number } {
  return { start: Math.floor((rank * globalBatch) / world), end: Math.floor(((rank + 1) * globalBatch) / world) };
}

export class DistributedSampler {
  readonly perRank: number;
  /** This rank's share relative to an even one (1 when the world divides the global batch). */
  readonly shareWeight: number;
  private readonly share: { start: number; end: number };
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
    this.share = shareOf(globalBatch, world, rank);
    this.perRank = this.share.end - this.share.start;
    this.shareWeight = (this.perRank * world) / globalBatch;
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

  /** This rank's disjoint share of the global batch of `step`. */
  indices(step: number): Uint32Array {
    const global = this.globalIndices(step);
    return global.subarray(this.share.start, this.share.end);
  }
}
