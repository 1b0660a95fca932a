// The fast CPU backend against its twin, the reference CPU backend, on awkward shapes: sizes of 1,
// primes, non-multiples of the kernel's 4x8 tile and 16-byte vectors, K past one 256-deep K block, M past
// one 64-row M block, in every layout, overwriting and accumulating, with `out` aliasing an input.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { viewOf } from './backend';
import { CpuBackend } from './cpu-backend';
import { randomUniform } from './gradcheck';
import { WASM_ADAPTER, WasmCpuBackend } from './wasm-backend';
import { wasmSimdSupported } from './wasm-kernels';
import { aliasedMatmulDiff, MATMUL_CHECKS, matmulCases, matmulOn, maxDiff, layerNormCase, softmaxCase, upload } from './wasm-test-support';
import { buildWasm } from '../../scripts/build-wasm';

// The kernels are a build product (npm run build:wasm); build them here too when missing or stale.
await buildWasm();

const reference = new CpuBackend();
const fast = await WasmCpuBackend.create();

// [M, K, N]: 1s, primes, K = 1, non-multiples of 4/8/16, K past one K block (256), M past one M block (64).
const SHAPES: [number, number, number][] = [
  [1, 1, 1], [1, 7, 1], [7, 1, 5], [3, 5, 4], [5, 3, 7], [13, 17, 11], [17, 1, 9], [4, 8, 16],
  [31, 37, 41], [64, 33, 65], [3, 300, 5], [67, 70, 9], [2, 513, 3], [97, 257, 89],
];

describe('WasmCpuBackend matmul vs the reference: |ours - reference| <= 1e-6 * K per element, inputs in [-1, 1]', () => {
  MATMUL_CHECKS.forEach(([layoutName, title, opts], i) => {
    it(`${title} on ${SHAPES.length} awkward shapes`, async () => {
      for (const c of matmulCases(SHAPES, layoutName, opts, 100 + 100 * i)) {
        expect(maxDiff(await c.on(fast), await c.on(reference)), c.label).toBeLessThanOrEqual(1e-6 * c.K);
      }
    });
  });

  it('out may alias an input: a square matmul written over its own a, like the reference (within 1e-6 * 37)', async () => {
    expect(await aliasedMatmulDiff(reference, fast)).toBeLessThanOrEqual(1e-6 * 37);
  });

  it('an all-zero row and column stay exactly zero, a K=1 product is exact', async () => {
    const [M, K, N] = [5, 1, 6];
    const a = randomUniform(M * K, 9);
    const b = randomUniform(K * N, 10);
    const got = await matmulOn(fast, a, b, new Float32Array(M * N), M, K, N, {});
    for (let i = 0; i < M; i++) for (let j = 0; j < N; j++) expect(got[i * N + j]).toBe(Math.fround(a[i] * b[j]));
  });

  it('keeps the reference checks: a wrong length is a clear error and the output is untouched', async () => {
    const out = upload(fast, new Float32Array([1, 2, 3, 4]));
    expect(() => fast.matmul(out, upload(fast, new Float32Array(3)), upload(fast, new Float32Array(4)), 2, 2, 2)).toThrow(/matmul/);
    expect(Array.from(await fast.read(out))).toEqual([1, 2, 3, 4]);
  });

  it('names itself as the WebAssembly CPU backend', () => {
    expect(fast.info).toEqual({ kind: 'cpu', adapter: WASM_ADAPTER });
  });
});

// [B, T, C, nHead]: T = 1, head sizes 1, 3, 4, 5, 8, 14 (below, at and past one f32x4, with tails).
const ATTENTION_SHAPES: [number, number, number, number][] = [
  [1, 1, 1, 1], [2, 5, 6, 2], [1, 7, 12, 3], [3, 9, 20, 4], [2, 17, 40, 5], [1, 33, 28, 2],
];

describe('WasmCpuBackend attention vs the reference: |ours - reference| <= 1e-5 on att and out, qkv in [-2, 2]', () => {
  it(`on ${ATTENTION_SHAPES.length} awkward shapes, causal entries exactly 0`, async () => {
    let seed = 500;
    for (const [B, T, C, nHead] of ATTENTION_SHAPES) {
      const qkv = randomUniform(B * T * 3 * C, seed++).map((x) => 2 * x);
      const results = await Promise.all(
        [reference, fast].map(async (backend) => {
          const att = upload(backend, randomUniform(B * nHead * T * T, seed)); // stale values must be overwritten
          const out = upload(backend, randomUniform(B * T * C, seed + 1));
          backend.attention(out, att, upload(backend, qkv), B, T, C, nHead);
          return { att: await backend.read(att), out: await backend.read(out) };
        }),
      );
      const shape = `B=${B} T=${T} C=${C} nHead=${nHead}`;
      expect(maxDiff(results[1].att, results[0].att), `att ${shape}`).toBeLessThanOrEqual(1e-5);
      expect(maxDiff(results[1].out, results[0].out), `out ${shape}`).toBeLessThanOrEqual(1e-5);
      const att = results[1].att;
      for (let row = 0; row < B * nHead * T; row++) for (let t2 = (row % T) + 1; t2 < T; t2++) expect(att[row * T + t2]).toBe(0);
    }
  });

  it(`backward on the same shapes: |ours - reference| <= 1e-4 on dQkv (stale dQkv overwritten)`, async () => {
    let seed = 700;
    for (const [B, T, C, nHead] of ATTENTION_SHAPES) {
      const qkv = randomUniform(B * T * 3 * C, seed++).map((x) => 2 * x);
      const dOut = randomUniform(B * T * C, seed++);
      // The forward's att comes from the reference, so both backwards start from the same probabilities.
      const att = upload(reference, new Float32Array(B * nHead * T * T));
      reference.attention(upload(reference, new Float32Array(B * T * C)), att, upload(reference, qkv), B, T, C, nHead);
      const probs = await reference.read(att);
      const results = await Promise.all(
        [reference, fast].map(async (backend) => {
          const dQkv = upload(backend, randomUniform(B * T * 3 * C, seed));
          backend.attentionBackward(dQkv, upload(backend, dOut), upload(backend, qkv), upload(backend, probs), B, T, C, nHead);
          return backend.read(dQkv);
        }),
      );
      expect(maxDiff(results[1], results[0]), `dQkv B=${B} T=${T} C=${C} nHead=${nHead}`).toBeLessThanOrEqual(1e-4);
    }
  });

  it('keeps the reference checks: C not a multiple of nHead is a clear error', () => {
    const v = (n: number) => upload(fast, new Float32Array(n));
    expect(() => fast.attention(v(2 * 6), v(2 * 4 * 4), v(2 * 18), 1, 2, 6, 4)).toThrow(/multiple of nHead/);
  });
});

describe('WasmCpuBackend GELU vs the reference: |ours - reference| <= 1e-6, x in [-6, 6]', () => {
  it('forward and backward on 1, 7 and 1,031 elements, and in place', async () => {
    let seed = 900;
    for (const n of [1, 7, 1031]) {
      const x = randomUniform(n, seed++).map((v) => 6 * v);
      const dy = randomUniform(n, seed++);
      const results = await Promise.all(
        [reference, fast].map(async (backend) => {
          const [xv, out, dx] = [upload(backend, x), upload(backend, new Float32Array(n)), upload(backend, dy)];
          backend.gelu(out, xv);
          backend.geluBackward(dx, xv, dx); // dx aliases dy, as the model's backward may do
          const inPlace = upload(backend, x);
          backend.gelu(inPlace, inPlace);
          return { out: await backend.read(out), dx: await backend.read(dx), inPlace: await backend.read(inPlace) };
        }),
      );
      expect(maxDiff(results[1].out, results[0].out), `gelu n=${n}`).toBeLessThanOrEqual(1e-6);
      expect(maxDiff(results[1].dx, results[0].dx), `geluBackward n=${n}`).toBeLessThanOrEqual(1e-6);
      expect(maxDiff(results[1].inPlace, results[0].out), `gelu in place n=${n}`).toBeLessThanOrEqual(1e-6);
    }
  });
});

describe('WasmCpuBackend AdamW vs the reference: the same float32 bits (exact)', () => {
  it('five steps on 1, 3, 4, 7, 1,031 and 100,003 elements (SIMD lanes and the scalar tail), gradients from 1e-5 to 1', async () => {
    let seed = 1200;
    for (const n of [1, 3, 4, 7, 1031, 100_003]) {
      const p0 = randomUniform(n, seed++);
      const grads = [1, 2, 3, 4, 5].map(() => randomUniform(n, seed++).map((x, i) => x * 10 ** ((i % 6) - 5)));
      const results = await Promise.all(
        [reference, fast].map(async (backend) => {
          const [p, m, v] = [upload(backend, p0), upload(backend, new Float32Array(n)), upload(backend, new Float32Array(n))];
          grads.forEach((g, i) => backend.adamw(p, upload(backend, g), m, v, { lr: 2e-3 / (i + 1), beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 1e-4, step: i + 1 }));
          return Promise.all([p, m, v].map((view) => backend.read(view)));
        }),
      );
      const bits = (a: Float32Array) => new Uint32Array(a.buffer, a.byteOffset, a.length);
      results[0].forEach((want, k) => expect(bits(results[1][k]), `n=${n}, output ${k}`).toEqual(bits(want)));
    }
  });
});

describe('WasmCpuBackend layer norm vs the reference: forward <= 1e-5, backward <= 1e-4, x in [-3, 3]', () => {
  it('on rows x cols 1x1, 3x7, 5x64, 2x129, 9x33; dGamma and dBeta accumulate onto what was there', async () => {
    let seed = 1200;
    for (const [rows, cols] of [[1, 1], [3, 7], [5, 64], [2, 129], [9, 33]]) {
      const c = layerNormCase(rows, cols, seed);
      seed += 6;
      const results = [await c.on(reference), await c.on(fast)];
      const names = ['out', 'mean', 'rstd', 'dx', 'dGamma', 'dBeta'];
      names.forEach((name, i) => {
        const tolerance = i < 3 ? 1e-5 : 1e-4;
        // rstd can be large for a 1-column row (variance 0): compare it relative to its size.
        const scale = name === 'rstd' ? Math.max(1, ...results[0][i].map(Math.abs)) : 1;
        expect(maxDiff(results[1][i], results[0][i]) / scale, `${name} rows=${rows} cols=${cols}`).toBeLessThanOrEqual(tolerance);
      });
    }
  });
});

describe('WasmCpuBackend softmax cross-entropy vs the reference: probs and dLogits within 2e-7 * (1 + |x|) abs, losses within 2e-6, logits in [-40, 40]', () => {

  it('on rows x cols 1x1, 3x2, 5x4, 7x10, 2x13, 64x65 and 3x1,000 (f32x4 lanes and the tail), targets on the first and last class', async () => {
    let seed = 1500;
    for (const [rows, cols] of [[1, 1], [3, 2], [5, 4], [7, 10], [2, 13], [64, 65], [3, 1000]]) {
      const c = softmaxCase(rows, cols, seed++);
      const [want, got] = [await c.on(reference), await c.on(fast)];
      const shape = `rows=${rows} cols=${cols}`;
      for (let i = 0; i < rows; i++) expect(Math.abs(got[0][i] - want[0][i]), `loss ${shape} row ${i}`).toBeLessThanOrEqual(2e-6 * (1 + Math.abs(want[0][i])));
      for (const k of [1, 2]) {
        for (let i = 0; i < rows * cols; i++) expect(Math.abs(got[k][i] - want[k][i]), `${k === 1 ? 'probs' : 'dLogits'} ${shape} at ${i}`).toBeLessThanOrEqual(2e-7 * (1 + Math.abs(want[k][i])));
      }
    }
  });

  it('a target not below cols is a clear error, and nothing is written', async () => {
    const [rows, cols] = [3, 4];
    const targets = viewOf(fast.alloc(rows, 'targets', 'workspace', 'u32'));
    fast.write(targets, Uint32Array.from([0, 1, 4]));
    const losses = upload(fast, new Float32Array([7, 7, 7]));
    const v = (n: number) => upload(fast, new Float32Array(n));
    expect(() => fast.softmaxCrossEntropy(losses, v(12), v(12), v(12), targets, rows, cols, 1)).toThrow(/target 4 in row 2 is not below 4/);
    expect(Array.from(await fast.read(losses))).toEqual([7, 7, 7]);
  });
});

describe('WasmCpuBackend feature detection', () => {
  afterEach(() => vi.restoreAllMocks());

  it('this Node has WebAssembly SIMD, and without it create() rejects with the reason', async () => {
    expect(wasmSimdSupported()).toBe(true);
    vi.spyOn(WebAssembly, 'validate').mockReturnValue(false);
    expect(wasmSimdSupported()).toBe(false);
    await expect(WasmCpuBackend.create()).rejects.toThrow(/no WebAssembly SIMD/);
  });
});
