// Gradient compression: fp16 for dense vectors, Top-K / Random-K sparsification with error feedback and
// DGC-style momentum correction, the sparse wire format, and the exact byte count of each, so the
// trainer can report bytes on the wire rather than guess them.

import { deriveSeed } from '../data/random';

// --- fp16 ---------------------------------------------------------------------------------------------

const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

/** IEEE half bits of `x`, rounded to nearest, ties to even; overflow gives inf, NaN stays NaN. */
export function f32ToF16Bits(x: number): number {
  scratchF32[0] = x;
  const bits = scratchU32[0];
  const sign = (bits >>> 16) & 0x8000;
  const exp = (bits >>> 23) & 0xff;
  let mant = bits & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 | (mant >>> 13) : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    // Half subnormal (or zero): shift the full 24-bit significand into the 10-bit field.
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const rest = mant & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    let half = mant >>> shift;
    if (rest > halfway || (rest === halfway && half & 1)) half++;
    return sign | half; // a carry out of the field correctly becomes the smallest normal
  }
  let half = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && half & 1)) half++; // a carry may reach inf: correct rounding
  return sign | half;
}

export function f16BitsToF32(half: number): number {
  const negative = (half & 0x8000) !== 0;
  const exp = (half >>> 10) & 0x1f;
  const mant = half & 0x3ff;
  if (exp === 0) return (negative ? -1 : 1) * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : negative ? -Infinity : Infinity;
  scratchU32[0] = ((half & 0x8000) << 16) | ((exp - 15 + 127) << 23) | (mant << 13);
  return scratchF32[0];
}

export function encodeFp16(values: Float32Array, out: Uint16Array = new Uint16Array(values.length)): Uint16Array {
  if (out.length !== values.length) throw new RangeError(`fp16 output holds ${out.length} values, need ${values.length}`);
  for (let i = 0; i < values.length; i++) out[i] = f32ToF16Bits(values[i]);
  return out;
}

export function decodeFp16(halves: Uint16Array, out: Float32Array = new Float32Array(halves.length)): Float32Array {
  if (out.length !== halves.length) throw new RangeError(`f32 output holds ${out.length} values, need ${halves.length}`);
  for (let i = 0; i < halves.length; i++) out[i] = f16BitsToF32(halves[i]);
  return out;
}

/** Rounds values to what fp16 can represent, in place (what a receiver of the fp16 wire will see). */
export function roundToFp16(values: Float32Array): void {
  for (let i = 0; i < values.length; i++) values[i] = f16BitsToF32(f32ToF16Bits(values[i]));
}

// --- sparse wire format -------------------------------------------------------------------------------

/** A sparse vector: ascending element indices and their values. */
export interface SparseVector {
  indices: Uint32Array;
  values: Float32Array;
}

/** 4 bytes of u32 index + 4 bytes of f32 value per entry, interleaved, little-endian, no header. */
export const SPARSE_ENTRY_BYTES = 8;

export function encodeSparse({ indices, values }: SparseVector): Uint8Array {
  if (indices.length !== values.length) throw new RangeError(`${indices.length} indices but ${values.length} values`);
  const buffer = new ArrayBuffer(indices.length * SPARSE_ENTRY_BYTES);
  const view = new DataView(buffer);
  for (let i = 0; i < indices.length; i++) {
    view.setUint32(i * 8, indices[i], true);
    view.setFloat32(i * 8 + 4, values[i], true);
  }
  return new Uint8Array(buffer);
}

export function decodeSparse(payload: Uint8Array): SparseVector {
  if (payload.byteLength % SPARSE_ENTRY_BYTES !== 0) {
    throw new RangeError(`a sparse payload is whole ${SPARSE_ENTRY_BYTES}-byte entries, got ${payload.byteLength} bytes`);
  }
  const count = payload.byteLength / SPARSE_ENTRY_BYTES;
  const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  const indices = new Uint32Array(count);
  const values = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    indices[i] = view.getUint32(i * 8, true);
    values[i] = view.getFloat32(i * 8 + 4, true);
  }
  return { indices, values };
}

/** target[index] += value for every entry; an index outside the target (a bad peer) is refused. */
export function addSparseInto(target: Float32Array, sparse: SparseVector): void {
  for (let i = 0; i < sparse.indices.length; i++) {
    const index = sparse.indices[i];
    if (index >= target.length) throw new RangeError(`sparse index ${index} is outside a vector of ${target.length}`);
    target[index] += sparse.values[i];
  }
}

// --- compact sparse wire format -----------------------------------------------------------------------
//
// The interleaved format spends 4 bytes on each index. Sorted indices at density r are on average 1/r
// apart, so their gaps fit in one or two LEB128 bytes: that brings Top-K 1% from 8 to about 5 bytes per
// entry. Layout (little-endian): u32 count | count f32 values | count varint gaps | zero padding to a
// whole 32-bit word (the sparse all-gather moves words). The first gap is the first index itself; every
// later gap is at least 1, so indices decode strictly ascending. Values stay float32: exact.

/** LEB128 length of a non-negative integer below 2^32. */
function varintBytes(n: number): number {
  let bytes = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    bytes++;
  }
  return bytes;
}

function checkAscending(indices: Uint32Array): void {
  for (let i = 1; i < indices.length; i++) {
    if (indices[i] <= indices[i - 1]) throw new RangeError(`sparse indices must be strictly ascending (index ${i}: ${indices[i]} after ${indices[i - 1]})`);
  }
}

/** Exact byte size of the compact encoding of these (ascending) indices. */
export function compactSparseBytes(indices: Uint32Array): number {
  let gapBytes = 0;
  for (let i = 0; i < indices.length; i++) gapBytes += varintBytes(i === 0 ? indices[0] : indices[i] - indices[i - 1]);
  return 4 + 4 * indices.length + Math.ceil(gapBytes / 4) * 4;
}

export function encodeSparseCompact({ indices, values }: SparseVector): Uint8Array {
  if (indices.length !== values.length) throw new RangeError(`${indices.length} indices but ${values.length} values`);
  checkAscending(indices);
  const out = new Uint8Array(compactSparseBytes(indices));
  const view = new DataView(out.buffer);
  view.setUint32(0, indices.length, true);
  for (let i = 0; i < values.length; i++) view.setFloat32(4 + 4 * i, values[i], true);
  let at = 4 + 4 * values.length;
  for (let i = 0; i < indices.length; i++) {
    let gap = i === 0 ? indices[0] : indices[i] - indices[i - 1];
    while (gap >= 0x80) {
      out[at++] = (gap & 0x7f) | 0x80;
      gap = Math.floor(gap / 128);
    }
    out[at++] = gap;
  }
  return out;
}

/** Decodes (and validates: a peer's bytes are untrusted) the compact format for a vector of `length`. */
export function decodeSparseCompact(payload: Uint8Array, length: number): SparseVector {
  if (payload.byteLength < 4 || payload.byteLength % 4 !== 0) throw new RangeError(`a compact sparse payload is whole 32-bit words (at least one), got ${payload.byteLength} bytes`);
  const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  const count = view.getUint32(0, true);
  // Each entry needs 4 value bytes and at least one gap byte.
  if (count * 5 + 4 > payload.byteLength) throw new RangeError(`compact sparse payload claims ${count} entries in ${payload.byteLength} bytes`);
  const values = new Float32Array(count);
  for (let i = 0; i < count; i++) values[i] = view.getFloat32(4 + 4 * i, true);
  const indices = new Uint32Array(count);
  let at = 4 + 4 * count;
  let index = 0;
  for (let i = 0; i < count; i++) {
    let gap = 0;
    let scale = 1;
    for (;;) {
      if (at >= payload.byteLength) throw new RangeError('compact sparse payload ends inside an index');
      const byte = payload[at++];
      gap += (byte & 0x7f) * scale;
      if (!(byte & 0x80)) break;
      scale *= 128;
      if (scale > 2 ** 35) throw new RangeError('compact sparse index gap is too long');
    }
    if (i > 0 && gap === 0) throw new RangeError(`compact sparse indices repeat at entry ${i}`);
    index = i === 0 ? gap : index + gap;
    if (index >= length) throw new RangeError(`sparse index ${index} is outside a vector of ${length}`);
    indices[i] = index;
  }
  return { indices, values };
}

// --- byte accounting ----------------------------------------------------------------------------------

export type CodecKind = 'none' | 'fp16' | 'topk' | 'randomk';

/** Exact payload bytes one vector of `length` elements costs under a codec (k entries for sparse ones). */
export function wireBytes(codec: CodecKind, length: number, k = 0): number {
  switch (codec) {
    case 'none':
      return length * 4;
    case 'fp16':
      return length * 2;
    case 'topk':
    case 'randomk':
      if (k > length) throw new RangeError(`k = ${k} exceeds the vector length ${length}`);
      return k * SPARSE_ENTRY_BYTES;
  }
}

/** Entries kept for a density ratio in (0, 1]: at least one for a non-empty vector. */
export function kForRatio(length: number, ratio: number): number {
  if (!(ratio > 0 && ratio <= 1)) throw new RangeError(`ratio must be in (0, 1], got ${ratio}`);
  return length === 0 ? 0 : Math.min(length, Math.max(1, Math.ceil(length * ratio)));
}

// --- selection ----------------------------------------------------------------------------------------

/** The k-th largest value of `values` (1-based k), by quickselect with a three-way partition; scrambles `values`. */
function kthLargest(values: Float32Array, k: number): number {
  let lo = 0;
  let hi = values.length - 1;
  let want = k - 1; // index in descending order
  for (;;) {
    const pivot = values[(lo + hi) >>> 1];
    // Dutch flag: [lo, gt) > pivot, [gt, i) == pivot, (lt, hi] < pivot.
    let gt = lo;
    let i = lo;
    let lt = hi;
    while (i <= lt) {
      const v = values[i];
      if (v > pivot) {
        values[i] = values[gt];
        values[gt++] = v;
        i++;
      } else if (v < pivot) {
        values[i] = values[lt];
        values[lt--] = v;
      } else i++;
    }
    if (want < gt - lo) hi = gt - 1;
    else if (want < i - lo) return pivot;
    else {
      want -= i - lo;
      lo = i;
    }
  }
}

/** |x|, with NaN ranked above everything so that non-finite values are sent, never hidden in a residual. */
const magnitude = (x: number): number => (Number.isNaN(x) ? Infinity : Math.abs(x));

/** Indices (ascending) of the k entries of largest magnitude; ties go to the lower index. */
export function topKIndices(values: Float32Array, k: number): Uint32Array {
  if (!Number.isSafeInteger(k) || k < 0 || k > values.length) throw new RangeError(`k must be in [0, ${values.length}], got ${k}`);
  if (k === 0) return new Uint32Array(0);
  const magnitudes = new Float32Array(values.length);
  for (let i = 0; i < values.length; i++) magnitudes[i] = magnitude(values[i]);
  const threshold = kthLargest(magnitudes, k);
  let above = 0;
  for (let i = 0; i < values.length; i++) if (magnitude(values[i]) > threshold) above++;
  let ties = k - above;
  const out = new Uint32Array(k);
  let n = 0;
  for (let i = 0; i < values.length && n < k; i++) {
    const m = magnitude(values[i]);
    if (m > threshold || (m === threshold && ties-- > 0)) out[n++] = i;
  }
  return out;
}

/** mulberry32: a small seeded PRNG, so Random-K is reproducible from a seed. */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** k distinct indices in [0, length), ascending, uniformly at random (Floyd's algorithm: O(k) memory). */
export function randomKIndices(length: number, k: number, random: () => number): Uint32Array {
  if (!Number.isSafeInteger(k) || k < 0 || k > length) throw new RangeError(`k must be in [0, ${length}], got ${k}`);
  const chosen = new Set<number>();
  for (let j = length - k; j < length; j++) {
    const t = Math.floor(random() * (j + 1));
    chosen.add(chosen.has(t) ? j : t);
  }
  return Uint32Array.from(chosen).sort();
}

// --- sparsifier with error feedback -------------------------------------------------------------------

export interface SparsifierOptions {
  kind: 'topk' | 'randomk';
  /** Fraction of entries sent per step, in (0, 1]. */
  ratio: number;
  /**
   * Momentum correction (Deep Gradient Compression): momentum is accumulated locally before selection
   * and masked where entries are sent. 0 (default) turns it off. With it on, the optimizer applying the
   * aggregated sparse update must not add momentum again (use plain SGD).
   */
  momentum?: number;
  /**
   * Random-K seed: the room's, the same on every rank, so that every rank draws the same indices at
   * the same step (sparse-sync.ts all-reduces the k values that line up).
   */
  seed?: number;
}

/**
 * Keeps what was not sent (error feedback: the residual is added back next step, so nothing is lost,
 * only delayed) and picks what to send.
 */
export class Sparsifier {
  /** Accumulated gradient not yet sent (DGC's v). */
  readonly residual: Float32Array;
  /** Local momentum (DGC's u); null without momentum correction. */
  readonly velocity: Float32Array | null;
  readonly k: number;

  constructor(readonly length: number, readonly options: SparsifierOptions) {
    this.k = kForRatio(length, options.ratio);
    this.residual = new Float32Array(length);
    const momentum = options.momentum ?? 0;
    if (!(momentum >= 0 && momentum < 1)) throw new RangeError(`momentum must be in [0, 1), got ${momentum}`);
    this.velocity = momentum > 0 ? new Float32Array(length) : null;
  }

  /**
   * Folds `grad` into the residual and takes the k entries to send out of it. Random-K draws its
   * indices from (seed, step) alone, as every draw of a run does (train/checkpoint.ts): a sparsifier
   * built afresh at step s (a re-formed ring, a resumed checkpoint, a strategy switch rebuild the run)
   * draws what one that ran from step 0 draws at s, instead of restarting a stream at step 0's draw.
   */
  compress(grad: Float32Array, step?: number): SparseVector {
    if (grad.length !== this.length) throw new RangeError(`gradient has ${grad.length} elements, sparsifier ${this.length}`);
    if (this.options.kind === 'randomk' && !(Number.isSafeInteger(step) && step! >= 0)) throw new RangeError(`Random-K draws its indices from (seed, step): give the step (an integer >= 0), got ${step}`);
    const { residual, velocity } = this;
    if (velocity) {
      const m = this.options.momentum!;
      for (let i = 0; i < grad.length; i++) {
        velocity[i] = m * velocity[i] + grad[i];
        residual[i] += velocity[i];
      }
    } else {
      for (let i = 0; i < grad.length; i++) residual[i] += grad[i];
    }
    const indices = this.options.kind === 'topk' ? topKIndices(residual, this.k) : randomKIndices(this.length, this.k, mulberry32(deriveSeed(this.options.seed ?? 1, step!)));
    const values = new Float32Array(indices.length);
    indices.forEach((index, i) => {
      values[i] = residual[index];
      residual[index] = 0;
      if (velocity) velocity[index] = 0; // momentum factor masking: sent momentum must not be sent again
    });
    return { indices, values };
  }
}
