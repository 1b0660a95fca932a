import { describe, expect, it } from 'vitest';
import { encodeFp16 } from '../collective/codecs';
import { firstNonFiniteF16, firstNonFiniteF32, finiteModelDataCheck } from './payload-checks';

const bytesOf = (a: Float32Array | Uint16Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

describe('payload checks', () => {
  it('finds the first NaN or Infinity in float32 and float16 data', () => {
    const f = Float32Array.from([1, -2, 3e38, 0, -0, 1e-45]);
    expect(firstNonFiniteF32(bytesOf(f))).toBe(-1);
    for (const bad of [Number.NaN, Infinity, -Infinity]) {
      f[4] = bad;
      expect(firstNonFiniteF32(bytesOf(f))).toBe(4);
      // unaligned views are read too
      const shifted = new Uint8Array(f.byteLength + 1);
      shifted.set(bytesOf(f), 1);
      expect(firstNonFiniteF32(shifted.subarray(1))).toBe(4);
    }
    const h = encodeFp16(Float32Array.from([1, 2, 65504, -3]));
    expect(firstNonFiniteF16(bytesOf(h))).toBe(-1);
    h[2] = 0x7c00; // +Infinity
    expect(firstNonFiniteF16(bytesOf(h))).toBe(2);
    h[2] = 0xfe01; // NaN
    expect(firstNonFiniteF16(bytesOf(h))).toBe(2);
  });

  it('checks model-data collectives only, in the codec of the run', () => {
    const check = finiteModelDataCheck('none', 16)!;
    const nan = bytesOf(Float32Array.from([0, Number.NaN]));
    expect(check({ round: 1, collective: 16, chunk: 0 }, nan)).toMatch(/non-finite float32 at element 1/);
    expect(check({ round: 1, collective: 1, chunk: 0 }, nan)).toBeUndefined(); // hash exchange: text
    expect(check({ round: 1, collective: 17, chunk: 0 }, bytesOf(Float32Array.from([1, 2])))).toBeUndefined();
    expect(finiteModelDataCheck('fp16', 16)!({ round: 0, collective: 16, chunk: 0 }, bytesOf(Uint16Array.of(0x3c00, 0x7c00)))).toMatch(/float16 at element 1/);
    expect(finiteModelDataCheck('topk', 16)).toBeUndefined();
  });
});
