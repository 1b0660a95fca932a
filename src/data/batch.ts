// Gathers rows chosen by the sampler into preallocated host arrays (no allocation per step), ready to
// be written to the device. Image shift augmentation is derived from (seed, epoch, sample) so that it is
// identical on every rank and every run.
import { deriveSeed } from './random';
import type { ClassificationSet } from './types';

export interface ShiftAugmentation {
  /** Largest shift in pixels along each axis (0 turns augmentation off). */
  maxShift: number;
  seed: number;
  /** Mixed into the seed so that each epoch sees different shifts of the same digit. */
  epoch: number;
}

/** Writes rows `indices` of `set` into inputs [n, features] (floats) and labels [n]. */
export function gatherClassification(
  set: ClassificationSet,
  indices: ArrayLike<number>,
  inputs: Float32Array,
  labels: Uint32Array,
  augment?: ShiftAugmentation,
): void {
  const f = set.features;
  const n = indices.length;
  if (inputs.length < n * f || labels.length < n) throw new RangeError(`batch arrays too small for ${n} rows of ${f}`);
  const scale = set.inputs instanceof Uint8Array ? 1 / 255 : 1;
  for (let r = 0; r < n; r++) {
    const i = indices[r];
    if (!(i >= 0 && i < set.count)) throw new RangeError(`sample ${i} outside ${set.name} (${set.count})`);
    labels[r] = set.labels[i];
    const src = i * f;
    const dst = r * f;
    if (augment && augment.maxShift > 0 && set.image) {
      const seed = deriveSeed(augment.seed, augment.epoch, i);
      const span = 2 * augment.maxShift + 1;
      const dx = (seed % span) - augment.maxShift;
      const dy = (Math.floor(seed / span) % span) - augment.maxShift;
      shiftInto(set.inputs, src, set.image.height, set.image.width, dx, dy, scale, inputs, dst);
    } else {
      for (let k = 0; k < f; k++) inputs[dst + k] = set.inputs[src + k] * scale;
    }
  }
}

function shiftInto(
  pixels: Float32Array | Uint8Array,
  src: number,
  height: number,
  width: number,
  dx: number,
  dy: number,
  scale: number,
  out: Float32Array,
  dst: number,
): void {
  for (let y = 0; y < height; y++) {
    const sy = y - dy;
    for (let x = 0; x < width; x++) {
      const sx = x - dx;
      const inside = sy >= 0 && sy < height && sx >= 0 && sx < width;
      out[dst + y * width + x] = inside ? pixels[src + sy * width + sx] * scale : 0;
    }
  }
}

/**
 * Writes windows of `seqLen + 1` tokens starting at `starts`: tokens [n, T] are the window's first T,
 * targets [n, T] its last T (next-character prediction).
 */
export function gatherTextWindows(
  corpus: Uint32Array,
  starts: ArrayLike<number>,
  seqLen: number,
  tokens: Uint32Array,
  targets: Uint32Array,
): void {
  const n = starts.length;
  if (tokens.length < n * seqLen || targets.length < n * seqLen) throw new RangeError(`batch arrays too small for ${n} x ${seqLen}`);
  for (let r = 0; r < n; r++) {
    const s = starts[r];
    if (!(s >= 0 && s + seqLen + 1 <= corpus.length)) throw new RangeError(`window at ${s} runs past the corpus (${corpus.length})`);
    tokens.set(corpus.subarray(s, s + seqLen), r * seqLen);
    targets.set(corpus.subarray(s + 1, s + seqLen + 1), r * seqLen);
  }
}

/** Number of non-overlapping windows of seqLen + 1 tokens that fit (window i starts at i * seqLen). */
export function textWindowCount(corpusLength: number, seqLen: number): number {
  return Math.max(0, Math.floor((corpusLength - 1) / seqLen));
}
