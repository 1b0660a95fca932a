// Batch sources: turn the sampler's indices for (step, micro-batch) into a Batch in host arrays that
// are allocated once. Evaluation batches are fixed and built once.
import { gatherClassification, gatherTextWindows, textWindowCount } from '../data/batch';
import type { ClassificationSet } from '../data/types';
import type { Batch } from '../model/model';
import type { BatchShares } from './batch-shares';
import { DistributedSampler } from './sampler';

export interface BatchSource {
  /** Samples (rows) per step on this rank, over all micro-batches. */
  readonly rowsPerStep: number;
  readonly microBatches: number;
  /**
   * This rank's share of the global batch relative to an even share (sampler.ts): the trainer scales
   * its loss gradients by it so that the ring's average stays the global batch's mean. Default 1.
   */
  readonly shareWeight?: number;
  /** The weight at `step` when shares change during the run (batch-shares.ts); shareWeight otherwise. */
  shareWeightAt?(step: number): number;
  /** Micro-batch `micro` of `step` on this rank. The returned arrays are reused by the next call. */
  next(step: number, micro: number): Batch;
}

export interface ShardOptions {
  globalBatch: number;
  microBatches: number;
  world: number;
  rank: number;
  seed: number;
  /**
   * The room's split of each step's global batch when it may change during the run (a room of
   * unequal tabs): the batch arrays, and the model's rows, are then sized for the largest share.
   */
  shares?: BatchShares;
}

/**
 * Rows per evaluation forward pass: the smallest rank's micro-batch, the same on every rank of a room
 * even when shares are uneven, so that ZeRO-3 (which gathers every layer for each evaluation forward)
 * runs the same collectives on every rank. Each rank's model holds at least this many rows.
 */
export function evalRows(globalBatch: number, world: number, microBatches: number): number {
  return Math.max(1, Math.floor(Math.floor(globalBatch / world) / microBatches));
}

/** Rows of the largest micro-batch this rank can be given: its step-0 share, or any share the table allows. */
function capacityRows(options: ShardOptions, microRows: number): number {
  return options.shares ? Math.max(microRows, Math.floor(options.shares.maxCount / options.microBatches)) : microRows;
}

function microSize(perRank: number, microBatches: number): number {
  if (!Number.isInteger(microBatches) || microBatches <= 0) throw new RangeError(`microBatches must be a positive integer, got ${microBatches}`);
  if (perRank % microBatches !== 0) {
    throw new RangeError(`a rank's ${perRank} samples per step do not split into ${microBatches} equal micro-batches`);
  }
  return perRank / microBatches;
}

export class ClassificationBatches implements BatchSource {
  readonly sampler: DistributedSampler;
  readonly rowsPerStep: number;
  readonly shareWeight: number;
  readonly microBatches: number;
  /** Rows per micro-batch at step 0. */
  readonly microRows: number;
  /** The most rows a micro-batch can have (the model is built for this many). */
  readonly maxMicroRows: number;
  private readonly inputs: Float32Array;
  private readonly targets: Uint32Array;

  constructor(
    private readonly set: ClassificationSet,
    options: ShardOptions,
    /** Image shifts of up to this many pixels (0: none). */
    private readonly maxShift = 0,
  ) {
    this.sampler = new DistributedSampler({ size: set.count, ...options });
    this.rowsPerStep = this.sampler.perRank;
    this.shareWeight = this.sampler.shareWeight;
    this.microBatches = options.microBatches;
    this.microRows = microSize(this.rowsPerStep, options.microBatches);
    this.maxMicroRows = capacityRows(options, this.microRows);
    this.inputs = new Float32Array(this.maxMicroRows * set.features);
    this.targets = new Uint32Array(this.maxMicroRows);
  }

  shareWeightAt(step: number): number {
    return this.sampler.weightAt(step);
  }

  next(step: number, micro: number): Batch {
    const all = this.sampler.indices(step);
    const rows = microSize(all.length, this.microBatches);
    const indices = all.subarray(micro * rows, (micro + 1) * rows);
    const augment = this.maxShift > 0 ? { maxShift: this.maxShift, seed: this.sampler.options.seed, epoch: this.sampler.epochOf(step) } : undefined;
    const [inputs, targets] = [this.inputs.subarray(0, rows * this.set.features), this.targets.subarray(0, rows)];
    gatherClassification(this.set, indices, inputs, targets, augment);
    return { inputs, targets, rows };
  }
}

export class TextBatches implements BatchSource {
  readonly sampler: DistributedSampler;
  readonly rowsPerStep: number;
  readonly shareWeight: number;
  readonly microBatches: number;
  /** Rows per micro-batch at step 0. */
  readonly microRows: number;
  /** The most rows a micro-batch can have (the model is built for this many). */
  readonly maxMicroRows: number;
  private readonly tokens: Uint32Array;
  private readonly targets: Uint32Array;
  private readonly starts: Uint32Array;

  constructor(
    private readonly corpus: Uint32Array,
    private readonly seqLen: number,
    options: ShardOptions,
  ) {
    const windows = textWindowCount(corpus.length, seqLen);
    if (windows < options.globalBatch) throw new RangeError(`the text holds ${windows} windows of ${seqLen + 1}; need at least ${options.globalBatch}`);
    this.sampler = new DistributedSampler({ size: windows, ...options });
    this.rowsPerStep = this.sampler.perRank;
    this.shareWeight = this.sampler.shareWeight;
    this.microBatches = options.microBatches;
    this.microRows = microSize(this.rowsPerStep, options.microBatches);
    this.maxMicroRows = capacityRows(options, this.microRows);
    this.tokens = new Uint32Array(this.maxMicroRows * seqLen);
    this.targets = new Uint32Array(this.maxMicroRows * seqLen);
    this.starts = new Uint32Array(this.maxMicroRows);
  }

  shareWeightAt(step: number): number {
    return this.sampler.weightAt(step);
  }

  next(step: number, micro: number): Batch {
    const all = this.sampler.indices(step);
    const rows = microSize(all.length, this.microBatches);
    const starts = this.starts.subarray(0, rows);
    for (let r = 0; r < rows; r++) starts[r] = all[micro * rows + r] * this.seqLen;
    const [tokens, targets] = [this.tokens.subarray(0, rows * this.seqLen), this.targets.subarray(0, rows * this.seqLen)];
    gatherTextWindows(this.corpus, starts, this.seqLen, tokens, targets);
    return { inputs: tokens, targets, rows, seqLen: this.seqLen };
  }
}

/** The whole held-out set in batches of at most `maxRows` (built once, reused by every evaluation). */
export function classificationEvalBatches(set: ClassificationSet, maxRows: number): Batch[] {
  const batches: Batch[] = [];
  for (let start = 0; start < set.count; start += maxRows) {
    const rows = Math.min(maxRows, set.count - start);
    const inputs = new Float32Array(rows * set.features);
    const targets = new Uint32Array(rows);
    gatherClassification(set, Uint32Array.from({ length: rows }, (_, i) => start + i), inputs, targets);
    batches.push({ inputs, targets, rows });
  }
  return batches;
}

/** Up to `maxWindows` evenly spread validation windows, in batches of at most `maxRows`. */
export function textEvalBatches(corpus: Uint32Array, seqLen: number, maxRows: number, maxWindows: number): Batch[] {
  const windows = textWindowCount(corpus.length, seqLen);
  if (windows === 0) throw new RangeError(`validation text too short for one window of ${seqLen + 1}`);
  const count = Math.min(windows, maxWindows);
  const stride = windows / count;
  const starts = Uint32Array.from({ length: count }, (_, i) => Math.floor(i * stride) * seqLen);
  const batches: Batch[] = [];
  for (let at = 0; at < count; at += maxRows) {
    const rows = Math.min(maxRows, count - at);
    const tokens = new Uint32Array(rows * seqLen);
    const targets = new Uint32Array(rows * seqLen);
    gatherTextWindows(corpus, starts.subarray(at, at + rows), seqLen, tokens, targets);
    batches.push({ inputs: tokens, targets, rows, seqLen });
  }
  return batches;
}
