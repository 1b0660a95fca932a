// The fast CPU backend's attention (wasm/attention.ts: softmax rows on f32x4 lanes, four keys per
// block, a row's last partial block on its own lanes) and layer norm backward (f32x4 lanes) against the
// reference CPU backend: every causal row length from 1 to 12 (each partial-block size on many rows),
// sharp rows whose scores spread past float32 exp's range, rows of att above the diagonal that the
// backward must not read, and both backwards by finite differences on the fast backend itself.
// wasm-backend.test.ts and wasm-threads.test.ts hold the broader shape sweeps and the thread checks.
import { describe, expect, it } from 'vitest';
import type { Backend } from './backend';
import { CpuBackend } from './cpu-backend';
import { checkBackward, randomUniform } from './gradcheck';
import { WasmCpuBackend } from './wasm-backend';
import { maxDiff, upload } from './wasm-test-support';
import { buildWasm } from '../../scripts/build-wasm';

await buildWasm();

const reference = new CpuBackend();
const fast = await WasmCpuBackend.create(undefined, { threads: 1 });

const bits = (a: Float32Array) => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));

async function forward(backend: Backend, qkv: Float32Array, B: number, T: number, C: number, nHead: number): Promise<{ att: Float32Array; out: Float32Array }> {
  const att = upload(backend, randomUniform(B * nHead * T * T, 3)); // stale values must be overwritten
  const out = upload(backend, randomUniform(B * T * C, 4));
  backend.attention(out, att, upload(backend, qkv), B, T, C, nHead);
  return { att: await backend.read(att), out: await backend.read(out) };
}

/**
 * Runs both forwards on qkv and expects att within 1e-5 of the reference, out within outTolerance,
 * every entry above the diagonal exactly 0 and every row summing to 1 within 1e-6. Returns our att.
 */
async function expectForwardMatches(qkv: Float32Array, [B, T, C, nHead]: number[], outTolerance: number): Promise<Float32Array> {
  const [want, got] = [await forward(reference, qkv, B, T, C, nHead), await forward(fast, qkv, B, T, C, nHead)];
  const shape = `B=${B} T=${T} C=${C} nHead=${nHead}`;
  expect(maxDiff(got.att, want.att), `att ${shape}`).toBeLessThanOrEqual(1e-5);
  expect(maxDiff(got.out, want.out), `out ${shape}`).toBeLessThanOrEqual(outTolerance);
  let worstSum = 0;
  for (let r = 0; r < B * nHead * T; r++) {
    const t = r % T;
    let sum = 0;
    for (let t2 = 0; t2 <= t; t2++) sum += got.att[r * T + t2];
    worstSum = Math.max(worstSum, Math.abs(sum - 1));
    expect(got.att.subarray(r * T + t + 1, (r + 1) * T).every((p) => p === 0), `causal zeros, row ${r} ${shape}`).toBe(true);
  }
  expect(worstSum, `row sums ${shape}`).toBeLessThanOrEqual(1e-6);
  return got.att;
}

// [B, T, C, nHead]: head sizes 1, 2, 3, 4, 5, 7, 16 (the GPT's: the sixteen-column blocks) and 21 (a
// block, a lane group and a tail), T 1..12, so every row length 1..12 appears, with 1, 2, 3 and 4 keys
// in a row's last block.
const ROW_SHAPES: [number, number, number, number][] = [
  [1, 1, 4, 1], [2, 2, 4, 2], [1, 3, 9, 3], [2, 4, 8, 2], [1, 5, 20, 4], [3, 6, 7, 1], [1, 7, 10, 2], [2, 8, 64, 4], [1, 9, 15, 3], [1, 10, 42, 2], [1, 12, 32, 2],
];

describe('attention on softmax lanes vs the reference: att and out within 1e-5 (qkv in [-2, 2]), rows summing to 1 within 1e-6, causal entries exactly 0', () => {
  it(`every row length from 1 to 12 (${ROW_SHAPES.length} shapes, head sizes 1 to 21)`, async () => {
    let seed = 900;
    for (const [B, T, C, nHead] of ROW_SHAPES) {
      await expectForwardMatches(randomUniform(B * T * 3 * C, seed++, -2, 2), [B, T, C, nHead], 1e-5);
    }
  });

  it('sharp rows (qkv in [-12, 12]: scores spread by up to ~1,000, most exponentials below float32 range): att within 1e-5, out within 1e-5 * 12', async () => {
    let seed = 950;
    for (const [B, T, C, nHead] of [[1, 9, 16, 1], [2, 13, 28, 2], [1, 33, 64, 4]]) {
      // The reference's float64 exp underflows to exactly 0 far below the max; ours clamps at e^-87.3, a
      // probability of ~1e-38 at most: invisible at this tolerance. Scores near 1,000 carry float32
      // rounding of ~1e-4 (measured when written: att 1.0e-6 off at most).
      const att = await expectForwardMatches(randomUniform(B * T * 3 * C, seed++, -12, 12), [B, T, C, nHead], 1.2e-4);
      // Sharp indeed: some row of 8 or more keys puts more than 0.999 on one key.
      const rowMaxima = Array.from({ length: B * nHead * T }, (_, r) => (r % T >= 7 ? Math.max(...att.subarray(r * T, r * T + (r % T) + 1)) : 0));
      expect(Math.max(...rowMaxima)).toBeGreaterThan(0.999);
    }
  });
});

describe('attention backward on softmax lanes vs the reference: dQkv within 1e-4 (qkv in [-2, 2])', () => {
  it('every row length from 1 to 12, from the reference forward\'s att; entries above the diagonal are never read (NaN there changes no bit)', async () => {
    let seed = 1000;
    for (const [B, T, C, nHead] of ROW_SHAPES) {
      const qkv = randomUniform(B * T * 3 * C, seed++, -2, 2);
      const dOut = randomUniform(B * T * C, seed++);
      const probs = (await forward(reference, qkv, B, T, C, nHead)).att;
      const poisoned = probs.map((p, i) => ((i % T) > Math.floor(i / T) % T ? NaN : p));
      const backward = async (backend: Backend, att: Float32Array) => {
        const dQkv = upload(backend, randomUniform(B * T * 3 * C, seed)); // stale values must be overwritten
        backend.attentionBackward(dQkv, upload(backend, dOut), upload(backend, qkv), upload(backend, att), B, T, C, nHead);
        return backend.read(dQkv);
      };
      const [want, got, gotPoisoned] = [await backward(reference, probs), await backward(fast, probs), await backward(fast, poisoned)];
      const shape = `B=${B} T=${T} C=${C} nHead=${nHead}`;
      expect(maxDiff(got, want), `dQkv ${shape}`).toBeLessThanOrEqual(1e-4);
      expect(bits(gotPoisoned), `NaN above the diagonal ${shape}`).toEqual(bits(got));
    }
  });

  it('agrees with finite differences on the fast backend (eps 1e-2, atol 1e-3, rtol 1e-2): T 4 and 7, head sizes 3 and 5', async () => {
    for (const [B, T, C, nHead, seed] of [[2, 4, 6, 2, 18], [1, 7, 10, 2, 19]]) {
      const att = upload(fast, new Float32Array(B * nHead * T * T));
      expect(
        await checkBackward(fast, {
          inputs: { qkv: randomUniform(B * T * 3 * C, seed, -1.5, 1.5) },
          outLength: B * T * C,
          forward: (b, v) => b.attention(v.out, att, v.qkv, B, T, C, nHead),
          backward: (b, v, g) => b.attentionBackward(g.qkv, v.dOut, v.qkv, att, B, T, C, nHead),
        }),
        `B=${B} T=${T} C=${C} nHead=${nHead}`,
      ).toEqual([]);
    }
  });
});

describe('layer norm backward on f32x4 lanes', () => {
  it('agrees with finite differences on the fast backend (eps 1e-2, atol 1e-3, rtol 1e-2): 3x7 and 2x9 (lanes and tails), dGamma and dBeta accumulating', async () => {
    for (const [rows, cols, seed] of [[3, 7, 13], [2, 9, 23]]) {
      const [mean, rstd] = [upload(fast, new Float32Array(rows)), upload(fast, new Float32Array(rows))];
      expect(
        await checkBackward(fast, {
          inputs: { x: randomUniform(rows * cols, seed, -2, 2), gamma: randomUniform(cols, seed + 1, 0.5, 1.5), beta: randomUniform(cols, seed + 2) },
          outLength: rows * cols,
          forward: (b, v) => b.layerNorm(v.out, mean, rstd, v.x, v.gamma, v.beta, rows, cols),
          backward: (b, v, g) => b.layerNormBackward(g.x, g.gamma, g.beta, v.dOut, v.x, mean, rstd, v.gamma, rows, cols),
          accumulates: ['gamma', 'beta'],
        }),
        `${rows}x${cols}`,
      ).toEqual([]);
    }
  });
});
