// The ZeRO partition: which rank owns which elements of the flat parameter (and gradient, and
// optimizer-state) buffer. A pure function of the layout and the world size, so every rank computes
// the same answer alone. Shards are contiguous and start on 64-element (256-byte) boundaries, so each
// shard is a valid WebGPU storage-buffer binding offset. The shard boundaries are handed to the ring
// reduce-scatter (ScheduleOptions.boundaries), so ZeRO-2 reduces each gradient straight into its owner.

import type { Range } from './chunking';
import { VIEW_ALIGNMENT } from '../engine/backend';

/** One named tensor of the flat buffer, in elements. */
export interface TensorSpan {
  name: string;
  offset: number;
  length: number;
}

export interface Partition {
  world: number;
  /** Elements in the flat buffer. */
  total: number;
  alignment: number;
  /** shards[r] is rank r's contiguous range. */
  shards: Range[];
}

/** The part of one tensor that lies in one rank's shard. */
export interface TensorSlice {
  name: string;
  rank: number;
  /** Where the slice starts in the flat buffer. */
  flatOffset: number;
  /** Where the slice starts inside the tensor. */
  tensorOffset: number;
  length: number;
}

/**
 * Splits [0, total) into `world` contiguous shards: whole blocks of `alignment` elements are dealt out
 * as evenly as possible (shard sizes differ by at most one block), so every shard starts aligned; the
 * last non-empty shard ends at `total`. When there are fewer blocks than ranks, the last ranks own nothing.
 */
export function partitionFlat(total: number, world: number, alignment: number = VIEW_ALIGNMENT): Partition {
  if (!Number.isSafeInteger(total) || total < 0) throw new RangeError(`total must be an integer >= 0, got ${total}`);
  if (!Number.isSafeInteger(world) || world < 1) throw new RangeError(`world must be an integer >= 1, got ${world}`);
  if (!Number.isSafeInteger(alignment) || alignment < 1) throw new RangeError(`alignment must be an integer >= 1, got ${alignment}`);
  const blocks = Math.ceil(total / alignment);
  const base = Math.floor(blocks / world);
  const extra = blocks % world;
  const shards: Range[] = [];
  let block = 0;
  for (let rank = 0; rank < world; rank++) {
    const start = Math.min(total, block * alignment);
    block += base + (rank < extra ? 1 : 0);
    const end = Math.min(total, block * alignment);
    shards.push({ offset: start, length: end - start });
  }
  return { world, total, alignment, shards };
}

/** Validates a layout (tensors inside [0, total), not overlapping) and partitions its buffer. */
export function partitionLayout(tensors: readonly TensorSpan[], total: number, world: number, alignment: number = VIEW_ALIGNMENT): Partition {
  const sorted = [...tensors].sort((a, b) => a.offset - b.offset);
  let end = 0;
  for (const t of sorted) {
    if (!Number.isSafeInteger(t.offset) || !Number.isSafeInteger(t.length) || t.offset < 0 || t.length < 0) {
      throw new RangeError(`tensor ${t.name} has an invalid range [${t.offset}, +${t.length})`);
    }
    if (t.offset < end) throw new RangeError(`tensor ${t.name} overlaps the tensor before it`);
    end = t.offset + t.length;
    if (end > total) throw new RangeError(`tensor ${t.name} ends at ${end}, past the buffer's ${total} elements`);
  }
  return partitionFlat(total, world, alignment);
}

/** [0, b1, ..., total]: the chunk boundaries that make a ring reduce-scatter land on the shards. */
export function shardBoundaries(partition: Partition): number[] {
  return [0, ...partition.shards.map((s) => s.offset + s.length)];
}

/** The rank that owns element `index`. */
export function ownerOf(partition: Partition, index: number): number {
  if (!Number.isSafeInteger(index) || index < 0 || index >= partition.total) {
    throw new RangeError(`element ${index} is outside [0, ${partition.total})`);
  }
  let lo = 0;
  let hi = partition.world - 1;
  while (lo < hi) {
    // The last rank whose shard starts at or before index (empty shards sit at the end, at `total`).
    const mid = (lo + hi + 1) >>> 1;
    if (partition.shards[mid].offset <= index) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

function intersect(tensor: TensorSpan, shard: Range, rank: number): TensorSlice | null {
  const start = Math.max(tensor.offset, shard.offset);
  const end = Math.min(tensor.offset + tensor.length, shard.offset + shard.length);
  if (end <= start) return null;
  return { name: tensor.name, rank, flatOffset: start, tensorOffset: start - tensor.offset, length: end - start };
}

/** The pieces of the given tensors that live on `rank` (ZeRO-3 gathers, checkpoint shards, the shard view). */
export function slicesOnRank(partition: Partition, tensors: readonly TensorSpan[], rank: number): TensorSlice[] {
  if (!Number.isSafeInteger(rank) || rank < 0 || rank >= partition.world) throw new RangeError(`rank ${rank} is outside [0, ${partition.world})`);
  const shard = partition.shards[rank];
  return tensors.map((t) => intersect(t, shard, rank)).filter((s): s is TensorSlice => s !== null);
}

/** Which rank holds which part of `tensor`, in order; the slices tile the tensor exactly. */
export function slicesOfTensor(partition: Partition, tensor: TensorSpan): TensorSlice[] {
  return partition.shards.map((shard, rank) => intersect(tensor, shard, rank)).filter((s): s is TensorSlice => s !== null);
}
