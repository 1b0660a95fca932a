// The distributed sampler: every rank shuffles the same epoch permutation from the seed, cuts the
// same global batch for a step, and takes its own disjoint slice of it. N ranks with global batch G
// therefore see exactly the samples one rank would see with batch G, which is what makes data-parallel
// training equal to single-tab training.
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

export class DistributedSampler {
  readonly perRank: number;
  readonly stepsPerEpoch: number;
  private cachedEpoch = -1;
  private permutation: Uint32Array;

  constructor(readonly options: SamplerOptions) {
    const { size, globalBatch, world, rank } = options;
    for (const [name, v] of Object.entries({ size, globalBatch, world })) {
      if (!Number.isInteger(v) || v <= 0) throw new RangeError(`sampler ${name} must be a positive integer, got ${v}`);
    }
    if (!Number.isInteger(rank) || rank < 0 || rank >= world) throw new RangeError(`rank ${rank} outside 0..${world - 1}`);
    if (globalBatch % world !== 0) {
      throw new RangeError(`global batch ${globalBatch} must divide evenly over ${world} ranks (each rank averages the same share)`);
    }
    if (globalBatch > size) throw new RangeError(`global batch ${globalBatch} is larger than the data set (${size})`);
    this.perRank = globalBatch / world;
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
    return global.subarray(this.options.rank * this.perRank, (this.options.rank + 1) * this.perRank);
  }
}
