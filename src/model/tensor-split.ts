// How a tensor-parallel rank holds its share of a model's parameters (Megatron-LM's column- and
// row-parallel linears), as pure functions over flat float arrays. Every tensor is seen as a matrix
// [rows, cols] (a vector is [1, n]) and is either
// - replicated: every rank holds all of it;
// - split by columns: the columns form `segments` equal segments (3 for a fused q|k|v weight, else 1)
//   and rank r holds piece r of T of every segment, in segment order, so a rank's q, k and v columns are
//   those of the same heads;
// - split by rows: rank r holds rows [r * rows/T, (r+1) * rows/T).
// A shard layout keeps the whole model's tensor names, groups, weight-decay flags and init, with the
// shard's shape, so the optimizer treats it exactly as it treats the whole layout, and a rank's share
// of the initial parameters is cut out of the whole model's (T ranks start where one rank starts).
import { initialParams } from './init';
import { buildLayout, type ParamLayout } from './layout';

export type SplitKind = 'replicated' | 'columns' | 'rows';

export interface TensorSplit {
  split: SplitKind;
  /** Columns only: equal column segments each cut into T pieces (3 for a fused qkv). Default 1. */
  segments?: number;
}

/** Tensor name -> its split; a name not in the plan is replicated. */
export type SplitPlan = ReadonlyMap<string, TensorSplit>;

const REPLICATED: TensorSplit = { split: 'replicated' };

export function splitOf(plan: SplitPlan, name: string): TensorSplit {
  return plan.get(name) ?? REPLICATED;
}

function asMatrix(shape: readonly number[]): [number, number] {
  if (shape.length === 1) return [1, shape[0]];
  if (shape.length === 2) return [shape[0], shape[1]];
  throw new RangeError(`only vectors and matrices can be split, got shape [${shape.join(', ')}]`);
}

function checkRanks(ranks: number, rank?: number): void {
  if (!Number.isInteger(ranks) || ranks < 1) throw new RangeError(`tensor-parallel ranks must be an integer >= 1, got ${ranks}`);
  if (rank !== undefined && (!Number.isInteger(rank) || rank < 0 || rank >= ranks)) throw new RangeError(`rank must be an integer in [0, ${ranks}), got ${rank}`);
}

/** The shape rank r holds of a tensor of `shape` (the same for every rank). */
export function shardShape(name: string, shape: readonly number[], s: TensorSplit, ranks: number): number[] {
  checkRanks(ranks);
  if (s.split === 'replicated') return [...shape];
  const [rows, cols] = asMatrix(shape);
  if (s.split === 'rows') {
    if (shape.length !== 2 || rows % ranks !== 0) throw new RangeError(`${name}: ${rows} rows do not split over ${ranks} ranks`);
    return [rows / ranks, cols];
  }
  const segments = s.segments ?? 1;
  if (cols % (segments * ranks) !== 0) throw new RangeError(`${name}: ${cols} columns (${segments} segment(s)) do not split over ${ranks} ranks`);
  return shape.length === 1 ? [cols / ranks] : [rows, cols / ranks];
}

/**
 * For each element of rank r's shard (row-major in the shard's shape), its index in the whole
 * tensor (row-major in the whole shape).
 */
export function shardIndices(name: string, shape: readonly number[], s: TensorSplit, rank: number, ranks: number): Uint32Array {
  checkRanks(ranks, rank);
  const [rows, cols] = asMatrix(shape);
  const sub = asMatrix(shardShape(name, shape, s, ranks));
  const out = new Uint32Array(sub[0] * sub[1]);
  if (s.split === 'replicated') return out.map((_, i) => i);
  if (s.split === 'rows') {
    const first = rank * sub[0];
    return out.map((_, i) => (first + Math.floor(i / cols)) * cols + (i % cols));
  }
  const segments = s.segments ?? 1;
  const segment = cols / segments;
  const piece = segment / ranks;
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < sub[1]; c++) {
      const seg = Math.floor(c / piece);
      out[r * sub[1] + c] = r * cols + seg * segment + rank * piece + (c % piece);
    }
  }
  return out;
}

/** Rank r's shard of a whole tensor's values. */
export function takeShard(name: string, whole: Float32Array, shape: readonly number[], s: TensorSplit, rank: number, ranks: number): Float32Array {
  const index = shardIndices(name, shape, s, rank, ranks);
  return Float32Array.from(index, (i) => whole[i]);
}

/** Writes rank r's shard into its place in `whole` (the whole tensor's values). */
export function putShard(name: string, whole: Float32Array, shard: Float32Array, shape: readonly number[], s: TensorSplit, rank: number, ranks: number): void {
  const index = shardIndices(name, shape, s, rank, ranks);
  if (shard.length !== index.length) throw new RangeError(`${name}: shard of ${shard.length} elements, rank ${rank} of ${ranks} holds ${index.length}`);
  index.forEach((i, k) => (whole[i] = shard[k]));
}

/** The layout a rank holds: the whole layout's tensors, in the same order, with their shard shapes. */
export function shardLayout(whole: ParamLayout, plan: SplitPlan, ranks: number): ParamLayout {
  for (const name of plan.keys()) if (!whole.entries.some((e) => e.name === name)) throw new Error(`split plan names "${name}", which the model does not have`);
  return buildLayout(whole.entries.map((e) => ({ name: e.name, shape: shardShape(e.name, e.shape, splitOf(plan, e.name), ranks), group: e.group, decay: e.decay, init: e.init })));
}

/** Rank r's share of a whole flat parameter (or gradient, or optimizer-state) vector. */
export function shardVector(wholeValues: Float32Array, whole: ParamLayout, plan: SplitPlan, rank: number, ranks: number): Float32Array {
  const layout = shardLayout(whole, plan, ranks);
  const out = new Float32Array(layout.totalLength);
  whole.entries.forEach((e, i) => {
    const values = takeShard(e.name, wholeValues.subarray(e.offset, e.offset + e.length), e.shape, splitOf(plan, e.name), rank, ranks);
    out.set(values, layout.entries[i].offset);
  });
  return out;
}

/** Rank r's share of the whole model's seeded initial parameters. */
export function initialShardParams(whole: ParamLayout, plan: SplitPlan, rank: number, ranks: number, seed: number): Float32Array {
  return shardVector(initialParams(whole, seed), whole, plan, rank, ranks);
}

/**
 * The whole vector put together from every rank's shard (in rank order). A replicated tensor is taken
 * from rank 0; `replicasEqual` says whether every rank's copy of every replicated tensor has the same
 * bits as rank 0's.
 */
export function gatherShards(whole: ParamLayout, plan: SplitPlan, shards: readonly Float32Array[]): { values: Float32Array; replicasEqual: boolean } {
  const ranks = shards.length;
  const layout = shardLayout(whole, plan, ranks);
  const values = new Float32Array(whole.totalLength);
  let replicasEqual = true;
  whole.entries.forEach((e, i) => {
    const s = splitOf(plan, e.name);
    const own = layout.entries[i];
    const target = values.subarray(e.offset, e.offset + e.length);
    shards.forEach((shard, rank) => {
      if (shard.length !== layout.totalLength) throw new RangeError(`rank ${rank}'s shard holds ${shard.length} elements, the layout ${layout.totalLength}`);
      const part = shard.subarray(own.offset, own.offset + own.length);
      if (s.split !== 'replicated') putShard(e.name, target, part, e.shape, s, rank, ranks);
      else if (rank === 0) target.set(part);
      else if (!part.every((v, k) => Object.is(v, target[k]))) replicasEqual = false;
    });
  });
  return { values, replicasEqual };
}

/** Parameters one rank holds: replicated tensors whole, split tensors 1/T (exact, no padding). */
export function shardParamCount(whole: ParamLayout, plan: SplitPlan, ranks: number): { replicated: number; split: number; perRank: number } {
  let replicated = 0;
  let split = 0;
  for (const e of whole.entries) {
    if (splitOf(plan, e.name).split === 'replicated') replicated += e.length;
    else split += e.length;
  }
  return { replicated, split, perRank: replicated + split / ranks };
}
