import { describe, expect, it } from 'vitest';
import {
  Sparsifier,
  addSparseInto,
  compactSparseBytes,
  decodeFp16,
  decodeSparseCompact,
  encodeSparseCompact,
  decodeSparse,
  encodeFp16,
  encodeSparse,
  f16BitsToF32,
  f32ToF16Bits,
  kForRatio,
  mulberry32,
  randomKIndices,
  topKIndices,
  wireBytes,
} from './codecs';

describe('fp16', () => {
  it('round-trips every one of the 65536 half values', () => {
    const wrong: number[] = [];
    for (let h = 0; h < 0x10000; h++) {
      const x = f16BitsToF32(h);
      const ok = Number.isNaN(x) ? Number.isNaN(f16BitsToF32(f32ToF16Bits(x))) : f32ToF16Bits(x) === h;
      if (!ok) wrong.push(h);
    }
    expect(wrong).toEqual([]);
  });

  it('decodes known values: subnormals, infinities, signed zero', () => {
    expect(f16BitsToF32(0x0001)).toBe(2 ** -24);
    expect(f16BitsToF32(0x03ff)).toBe(1023 * 2 ** -24);
    expect(f16BitsToF32(0x0400)).toBe(2 ** -14);
    expect(f16BitsToF32(0x3c00)).toBe(1);
    expect(f16BitsToF32(0x7bff)).toBe(65504);
    expect(f16BitsToF32(0x7c00)).toBe(Infinity);
    expect(f16BitsToF32(0xfc00)).toBe(-Infinity);
    expect(Object.is(f16BitsToF32(0x8000), -0)).toBe(true);
    expect(f16BitsToF32(0x7e00)).toBeNaN();
  });

  it('rounds to nearest with ties to even, at every positive finite half', () => {
    const wrong: number[] = [];
    for (let h = 0; h < 0x7bff; h++) {
      const lo = f16BitsToF32(h);
      const hi = f16BitsToF32(h + 1);
      const mid = (lo + hi) / 2; // exact in f32: one more bit than a half has
      const even = h % 2 === 0 ? h : h + 1;
      const step = (hi - lo) / 16;
      const ok =
        f32ToF16Bits(mid) === even &&
        f32ToF16Bits(-mid) === (even | 0x8000) &&
        f32ToF16Bits(mid - step) === h &&
        f32ToF16Bits(mid + step) === h + 1;
      if (!ok) wrong.push(h);
    }
    expect(wrong).toEqual([]);
  });

  it('overflows to infinity, underflows to zero, keeps NaN', () => {
    expect(f32ToF16Bits(65519)).toBe(0x7bff);
    expect(f32ToF16Bits(65520)).toBe(0x7c00); // the midpoint to 65536 ties to even: infinity
    expect(f32ToF16Bits(1e10)).toBe(0x7c00);
    expect(f32ToF16Bits(-Infinity)).toBe(0xfc00);
    expect(f32ToF16Bits(2 ** -25)).toBe(0); // tie between 0 and the smallest subnormal: even is 0
    expect(f32ToF16Bits(2 ** -25 * 1.0001)).toBe(1);
    expect(f32ToF16Bits(1e-10)).toBe(0);
    expect(f32ToF16Bits(-1e-10)).toBe(0x8000);
    expect(f16BitsToF32(f32ToF16Bits(NaN))).toBeNaN();
  });

  it('encodes and decodes arrays, checking sizes', () => {
    const x = Float32Array.of(1, -2.5, 0.1, 70000);
    const back = decodeFp16(encodeFp16(x));
    expect(Array.from(back)).toEqual([1, -2.5, f16BitsToF32(f32ToF16Bits(0.1)), Infinity]);
    expect(Math.abs(back[2] - 0.1)).toBeLessThan(0.1 * 2 ** -11);
    expect(() => encodeFp16(x, new Uint16Array(3))).toThrow(/holds 3/);
  });
});

describe('sparse wire format', () => {
  it('round-trips with exact byte counts', () => {
    const sparse = { indices: Uint32Array.of(0, 5, 4_000_000_000), values: Float32Array.of(-1.5, 3, 1e-30) };
    const bytes = encodeSparse(sparse);
    expect(bytes.byteLength).toBe(wireBytes('topk', 4_000_000_001, 3));
    expect(bytes.byteLength).toBe(24);
    const back = decodeSparse(bytes);
    expect(Array.from(back.indices)).toEqual(Array.from(sparse.indices));
    expect(Array.from(back.values)).toEqual(Array.from(sparse.values));
    expect(() => decodeSparse(new Uint8Array(12))).toThrow(/8-byte entries/);
  });

  it('adds into a dense vector and refuses indices out of range', () => {
    const target = new Float32Array(4).fill(1);
    addSparseInto(target, { indices: Uint32Array.of(1, 3), values: Float32Array.of(2, -1) });
    expect(Array.from(target)).toEqual([1, 3, 1, 0]);
    expect(() => addSparseInto(target, { indices: Uint32Array.of(4), values: Float32Array.of(1) })).toThrow(/outside/);
  });

  it('counts bytes for every codec', () => {
    expect(wireBytes('none', 1000)).toBe(4000);
    expect(wireBytes('fp16', 1000)).toBe(2000);
    expect(wireBytes('randomk', 1000, 10)).toBe(80);
    expect(() => wireBytes('topk', 5, 6)).toThrow(/exceeds/);
    expect(kForRatio(1000, 0.01)).toBe(10);
    expect(kForRatio(10, 0.001)).toBe(1);
    expect(kForRatio(0, 0.5)).toBe(0);
    expect(() => kForRatio(10, 0)).toThrow(/ratio/);
  });
});

describe('compact sparse wire format (varint index gaps)', () => {
  it('round-trips exactly, at exactly the bytes it promises', () => {
    const sparse = { indices: Uint32Array.of(0, 1, 127, 128, 300, 20_000, 4_000_000_000), values: Float32Array.of(-1.5, 3, 1e-30, NaN, -0, 7, 2) };
    const bytes = encodeSparseCompact(sparse);
    // Gaps 0, 1, 126, 1, 172, 19700, 3999980000 take 1+1+1+1+2+3+5 = 14 bytes -> 16 with padding.
    expect(bytes.byteLength).toBe(4 + 7 * 4 + 16);
    expect(compactSparseBytes(sparse.indices)).toBe(bytes.byteLength);
    const back = decodeSparseCompact(bytes, 4_000_000_001);
    expect(Array.from(back.indices)).toEqual(Array.from(sparse.indices));
    expect(new Uint8Array(back.values.buffer)).toEqual(new Uint8Array(sparse.values.buffer)); // bit for bit, NaN and -0 too
    expect(compactSparseBytes(new Uint32Array(0))).toBe(4);
    expect(decodeSparseCompact(encodeSparseCompact({ indices: new Uint32Array(0), values: new Float32Array(0) }), 10).indices.length).toBe(0);
  });

  it('costs about 5 bytes per entry at 1% density, against 8 interleaved', () => {
    const indices = randomKIndices(200_000, 2_000, mulberry32(3));
    expect(compactSparseBytes(indices) / indices.length).toBeLessThan(5.3);
  });

  it('refuses unsorted input and hostile payloads', () => {
    expect(() => encodeSparseCompact({ indices: Uint32Array.of(3, 3), values: Float32Array.of(1, 2) })).toThrow(/strictly ascending/);
    const good = encodeSparseCompact({ indices: Uint32Array.of(2, 9), values: Float32Array.of(1, 2) });
    expect(() => decodeSparseCompact(good, 9)).toThrow(/outside a vector of 9/);
    expect(() => decodeSparseCompact(good.subarray(0, 6), 100)).toThrow(/whole 32-bit words/);
    const lying = good.slice();
    new DataView(lying.buffer).setUint32(0, 1000, true);
    expect(() => decodeSparseCompact(lying, 100)).toThrow(/claims 1000 entries/);
    const repeated = good.slice();
    repeated[4 + 8 + 1] = 0; // second gap 0: a repeated index
    expect(() => decodeSparseCompact(repeated, 100)).toThrow(/repeat/);
    const endless = new Uint8Array(16);
    new DataView(endless.buffer).setUint32(0, 1, true);
    endless.fill(0xff, 8);
    expect(() => decodeSparseCompact(endless, 100)).toThrow(/ends inside an index|too long/);
  });
});

describe('selection', () => {
  it('top-k matches a sort, with ties to the lower index', () => {
    const random = mulberry32(7);
    for (const length of [1, 2, 10, 1000]) {
      // Few distinct values, so ties are everywhere.
      const x = Float32Array.from({ length }, () => Math.round((random() - 0.5) * 8));
      for (const k of [0, 1, Math.ceil(length / 3), length]) {
        const order = Array.from(x.keys()).sort((a, b) => Math.abs(x[b]) - Math.abs(x[a]) || a - b);
        const want = order.slice(0, k).sort((a, b) => a - b);
        expect(Array.from(topKIndices(x, k))).toEqual(want);
      }
    }
    expect(Array.from(topKIndices(Float32Array.of(1, NaN, 2), 1))).toEqual([1]);
    expect(() => topKIndices(new Float32Array(3), 4)).toThrow(/k must be/);
  });

  it('random-k picks k distinct ascending indices, reproducibly, covering the vector', () => {
    const a = randomKIndices(100, 10, mulberry32(3));
    expect(a).toHaveLength(10);
    expect(new Set(a).size).toBe(10);
    for (let i = 1; i < a.length; i++) expect(a[i]).toBeGreaterThan(a[i - 1]);
    expect(Array.from(randomKIndices(100, 10, mulberry32(3)))).toEqual(Array.from(a));
    const hits = new Uint32Array(20);
    const random = mulberry32(5);
    for (let t = 0; t < 2000; t++) for (const i of randomKIndices(20, 5, random)) hits[i]++;
    // Each index is expected 500 times; a uniform sampler stays well inside +-20%.
    for (const h of hits) expect(Math.abs(h - 500)).toBeLessThan(100);
  });
});

describe('Sparsifier (error feedback, momentum correction)', () => {
  it('loses nothing: sent + residual always equals the sum of all gradients', () => {
    for (const kind of ['topk', 'randomk'] as const) {
      const length = 50;
      const sparsifier = new Sparsifier(length, { kind, ratio: 0.1, seed: 9 });
      const random = mulberry32(11);
      const totalGrad = new Float64Array(length);
      const totalSent = new Float64Array(length);
      for (let step = 0; step < 20; step++) {
        // Dyadic values keep float sums exact.
        const grad = Float32Array.from({ length }, () => Math.round((random() - 0.5) * 64) / 8);
        grad.forEach((g, i) => (totalGrad[i] += g));
        const sent = sparsifier.compress(grad, step);
        expect(sent.indices).toHaveLength(5);
        sent.indices.forEach((index, i) => (totalSent[index] += sent.values[i]));
      }
      totalGrad.forEach((g, i) => expect(totalSent[i] + sparsifier.residual[i]).toBe(g));
    }
  });

  it('top-k sends the largest accumulated entries and zeroes them in the residual', () => {
    const sparsifier = new Sparsifier(4, { kind: 'topk', ratio: 0.5 });
    const first = sparsifier.compress(Float32Array.of(1, -5, 2, 0.5));
    expect(Array.from(first.indices)).toEqual([1, 2]);
    expect(Array.from(first.values)).toEqual([-5, 2]);
    expect(Array.from(sparsifier.residual)).toEqual([1, 0, 0, 0.5]);
    // Small but persistent entries accumulate until they are sent.
    const second = sparsifier.compress(Float32Array.of(1, 0, 0, 0.5));
    expect(Array.from(second.indices)).toEqual([0, 3]);
    expect(Array.from(second.values)).toEqual([2, 1]);
  });

  it('accumulates momentum locally and masks it where entries were sent (DGC)', () => {
    const sparsifier = new Sparsifier(2, { kind: 'topk', ratio: 0.5, momentum: 0.5 });
    sparsifier.compress(Float32Array.of(4, 1)); // u = [4, 1], v = [4, 1] -> send index 0
    expect(Array.from(sparsifier.velocity!)).toEqual([0, 1]);
    expect(Array.from(sparsifier.residual)).toEqual([0, 1]);
    const sent = sparsifier.compress(Float32Array.of(0, 1)); // u = [0, 1.5], v = [0, 2.5]
    expect(Array.from(sent.indices)).toEqual([1]);
    expect(Array.from(sent.values)).toEqual([2.5]);
    expect(() => new Sparsifier(2, { kind: 'topk', ratio: 0.5, momentum: 1 })).toThrow(/momentum/);
    expect(() => sparsifier.compress(new Float32Array(3))).toThrow(/3 elements/);
  });
});

// Written to kill mutants that survived `npm run mutate` (docs/testing.md).
describe('sparse codecs and the sparsifier, at their edges', () => {
  it('a gap of exactly 128 takes two varint bytes: sizes and round trip agree', () => {
    const indices = Uint32Array.of(128, 256, 384, 512);
    // 4 count + 4 x 4 values + 4 gaps x 2 bytes = 28 (a one-byte count would say 24).
    expect(compactSparseBytes(indices)).toBe(28);
    const encoded = encodeSparseCompact({ indices, values: Float32Array.of(1, 2, 3, 4) });
    expect(encoded.length).toBe(28);
    expect(Array.from(decodeSparseCompact(encoded, 600).indices)).toEqual([128, 256, 384, 512]);
  });

  it('Random-K draws from its seed, not by magnitude: one seed, one draw on every rank; another seed, another draw', () => {
    const grad = Float32Array.from({ length: 1000 }, (_, i) => (i === 7 ? 100 : 0.001 * (i % 13)));
    const draw = (seed: number) => new Sparsifier(1000, { kind: 'randomk', ratio: 0.01, seed }).compress(grad, 0).indices;
    expect(Array.from(draw(5))).toEqual(Array.from(draw(5)));
    expect(Array.from(draw(5))).not.toEqual(Array.from(draw(6)));
    // Top-K would always take the huge entry 7 first; ten seeds of Random-K do not all take it.
    const tookLargest = Array.from({ length: 10 }, (_, s) => Array.from(draw(s + 1)).includes(7));
    expect(tookLargest.filter(Boolean).length).toBeLessThan(10);
  });

  it('Random-K draws from (seed, step) alone: a sparsifier built afresh at step 5 (a re-formed ring rebuilds it) draws what one that ran from step 0 draws at 5', () => {
    const grad = new Float32Array(1000).fill(1);
    const through = new Sparsifier(1000, { kind: 'randomk', ratio: 0.05, seed: 3 });
    const draws = Array.from({ length: 6 }, (_, step) => Array.from(through.compress(grad, step).indices));
    const rebuilt = new Sparsifier(1000, { kind: 'randomk', ratio: 0.05, seed: 3 });
    expect(Array.from(rebuilt.compress(grad, 5).indices)).toEqual(draws[5]);
    // Each step its own draw (a stream restarted at the rebuild would have drawn step 0's again).
    expect(draws[5]).not.toEqual(draws[0]);
    expect(new Set(draws.map((d) => d.join())).size).toBe(6);
    expect(() => rebuilt.compress(grad)).toThrow(/Random-K draws its indices from \(seed, step\): give the step/);
    expect(() => rebuilt.compress(grad, -1)).toThrow(/give the step/);
  });

  it('refuses a momentum outside [0, 1)', () => {
    for (const momentum of [-0.1, 1, Number.NaN]) expect(() => new Sparsifier(10, { kind: 'topk', ratio: 0.5, momentum })).toThrow(/momentum must be in \[0, 1\)/);
  });
});
