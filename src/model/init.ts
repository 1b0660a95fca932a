// Seeded, deterministic initialisation: the same seed gives the same bits everywhere, so every replica
// of a room starts from identical parameters without sending them. Each tensor draws from its own
// stream (seed, tensor index), so resizing one tensor never changes the others.
import { deriveSeed, Rng } from '../data/random';
import type { FlatRange, ParamLayout } from './layout';

/**
 * The initial values of the flat range `range` (all of it by default). A part is the same bits as that
 * part of the whole vector: each tensor's stream is drawn from its start and what lies before the range
 * is discarded, so a ZeRO-3 shard never allocates the whole vector.
 */
export function initialParams(layout: ParamLayout, seed: number, range: FlatRange = { offset: 0, length: layout.totalLength }): Float32Array {
  const out = new Float32Array(range.length); // padding stays 0
  const end = range.offset + range.length;
  layout.entries.forEach((e, index) => {
    const from = Math.max(e.offset, range.offset);
    const to = Math.min(e.offset + e.length, end);
    if (from >= to) return;
    const view = out.subarray(from - range.offset, to - range.offset);
    if (e.init.kind === 'constant') {
      view.fill(e.init.value);
      return;
    }
    const rng = new Rng(deriveSeed(seed, index));
    for (let i = e.offset; i < from; i++) rng.normal();
    for (let i = 0; i < view.length; i++) view[i] = e.init.std * rng.normal();
  });
  return out;
}

/**
 * The initial values of a part of a model (a pipeline stage): each tensor of `part` gets the values the
 * tensor of the same name has in the whole model's layout, so that P stages start where one model
 * starts, bit for bit.
 */
export function initialParamsOfPart(part: ParamLayout, whole: ParamLayout, seed: number): Float32Array {
  const full = initialParams(whole, seed);
  const out = new Float32Array(part.totalLength);
  for (const e of part.entries) {
    const source = whole.entries.find((w) => w.name === e.name);
    if (!source || source.length !== e.length) throw new Error(`tensor "${e.name}" of the part is not a tensor of the whole model`);
    out.set(full.subarray(source.offset, source.offset + source.length), e.offset);
  }
  return out;
}

/** He/Kaiming normal for a layer feeding a ReLU: std = sqrt(2 / fanIn). */
export function heStd(fanIn: number): number {
  return Math.sqrt(2 / fanIn);
}
