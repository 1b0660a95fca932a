// The per-message checks refuse NaN and Infinity in every codec's payload (dense float32, fp16, Top-K,
// Random-K), and nothing a real run sends: each codec's real messages from a 3-rank step pass.
import { describe, expect, it } from 'vitest';
import { encodeFp16, encodeSparseCompact } from '../collective/codecs';
import type { MessageTag, Transport } from '../collective/types';
import type { Compression } from '../lab/config';
import { FIRST_FLOAT_ID } from '../collective/collective-ids';
import { testConfig, trainRoom } from '../lab/parallel-test-support';
import { firstNonFiniteF16, firstNonFiniteF32, finiteModelDataCheck, topKPayloadProblem } from './payload-checks';

const bytesOf = (a: Float32Array | Uint16Array | Uint8Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
const tag: MessageTag = { round: 1, collective: FIRST_FLOAT_ID, chunk: 0 };
const BAD = [Number.NaN, Infinity, -Infinity];

describe('payload checks', () => {
  it('finds the first NaN or Infinity in float32 and float16 data', () => {
    const f = Float32Array.from([1, -2, 3e38, 0, -0, 1e-45]);
    expect(firstNonFiniteF32(bytesOf(f))).toBe(-1);
    for (const bad of BAD) {
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

  it.each(['none', 'randk'] as const)('%s (float32 on the wire): refuses NaN, +Inf and -Inf anywhere, passes finite data', (compression) => {
    const check = finiteModelDataCheck(compression, FIRST_FLOAT_ID);
    expect(check(tag, bytesOf(Float32Array.from([1, -2, 3e38])))).toBeUndefined();
    for (const bad of BAD) expect(check(tag, bytesOf(Float32Array.from([0, 1, bad])))).toMatch(/^non-finite float32 at element 2 /);
    // Collectives below the model-data ids (the hash exchange: text) are not float data.
    expect(check({ ...tag, collective: 1 }, bytesOf(Float32Array.from([Number.NaN])))).toBeUndefined();
  });

  it('fp16: refuses half-precision NaN and Infinity, passes 65504', () => {
    const check = finiteModelDataCheck('fp16', FIRST_FLOAT_ID);
    expect(check(tag, bytesOf(encodeFp16(Float32Array.from([65504, -1, 0]))))).toBeUndefined();
    for (const bad of BAD) expect(check(tag, bytesOf(encodeFp16(Float32Array.from([1, bad]))))).toMatch(/^non-finite float16 at element 1 /);
  });

  it('topk: refuses a non-finite value in a compact payload, checks values only (gap bytes that read as NaN pass), refuses a count the bytes cannot hold', () => {
    const check = finiteModelDataCheck('topk', FIRST_FLOAT_ID);
    const payload = (values: number[], indices: number[]) => encodeSparseCompact({ indices: Uint32Array.from(indices), values: Float32Array.from(values) });
    expect(check(tag, payload([0.5, -1], [3, 9]))).toBeUndefined();
    for (const bad of BAD) expect(check(tag, payload([0.5, bad, 2], [3, 9, 12]))).toMatch(/^non-finite float32 Top-K value at entry 1 /);
    // The index 0x0fffffff is the varint ff ff ff 7f: read as a float32, a NaN. It is a valid gap.
    const farIndex = payload([1], [0x0fffffff]);
    expect(firstNonFiniteF32(farIndex.subarray(8))).toBe(0);
    expect(check(tag, farIndex)).toBeUndefined();
    // A size word or an empty payload holds no floats.
    expect(check(tag, Uint8Array.of(0xff, 0xff, 0xff, 0x7f))).toBeUndefined();
    const lying = payload([1, 2], [3, 9]);
    new DataView(lying.buffer).setUint32(0, 1000, true);
    expect(topKPayloadProblem(lying)).toMatch(/^malformed Top-K payload: 1000 entries claimed in 16 bytes$/);
  });

  it('refuses to build a check for a codec it does not know', () => {
    expect(() => finiteModelDataCheck('zstd', FIRST_FLOAT_ID)).toThrow(/no payload check for compression "zstd"/);
  });

  // The checks must never refuse what an honest rank sends: every message of real 3-rank runs passes.
  it.each(['none', 'fp16', 'topk', 'randk'] as const)('%s: every message of a real 3-rank run passes the check', async (compression: Compression) => {
    const check = finiteModelDataCheck(compression, FIRST_FLOAT_ID);
    const checked: { collective: number; problem: string | undefined }[] = [];
    const wrap = (t: Transport): Transport => ({
      rank: t.rank,
      world: t.world,
      send: (to, tag, payload) => {
        checked.push({ collective: tag.collective, problem: check(tag, payload) });
        return t.send(to, tag, payload);
      },
      recv: (from, tag) => t.recv(from, tag),
    });
    await trainRoom(3, testConfig({ compression, steps: 3, ratio: 0.1 }), { wrapTransport: wrap });
    expect(checked.filter((c) => c.collective >= FIRST_FLOAT_ID).length).toBeGreaterThan(10);
    expect(checked.filter((c) => c.problem)).toEqual([]);
  });
});
