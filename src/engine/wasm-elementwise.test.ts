// The fast CPU backend's elementwise kernels (wasm/elementwise.ts, wasm/lanes.ts) against the reference
// CPU backend: the vectorised tanh swept densely against float64 Math.tanh, GELU forward and backward
// within the reference-twin tolerance on a dense sweep and on awkward lengths (0, 1, tails past f32x4
// lanes, views at odd offsets whose neighbours must stay untouched), the bias add, its gradient, the
// residual adds and the embedding forward and backward bit for bit, and every backward by finite
// differences on the fast backend itself.
import { describe, expect, it } from 'vitest';
import { type Backend, type View, viewOf } from './backend';
import { CpuBackend } from './cpu-backend';
import { checkBackward, randomUniform } from './gradcheck';
import { WasmCpuBackend } from './wasm-backend';
import { WasmKernels } from './wasm-kernels';
import { maxDiff, upload } from './wasm-test-support';
import { buildWasm } from '../../scripts/build-wasm';

await buildWasm();

const reference = new CpuBackend();
const fast = await WasmCpuBackend.create(undefined, { threads: 1 });
const kernels = await WasmKernels.load(undefined, { threads: 1 });

const bits = (a: Float32Array) => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));

/** Units in the last place of the float32 nearest `want` (a normal number), as a float64. */
function f32Ulp(want: number): number {
  return 2 ** (Math.floor(Math.log2(Math.abs(Math.fround(want)))) - 23);
}

/** n evenly spaced float32 values from `from` to `to`. */
function sweep(from: number, to: number, n: number): Float32Array {
  return Float32Array.from({ length: n }, (_, i) => from + ((to - from) * i) / (n - 1));
}

describe('tanh on f32x4 lanes against float64 Math.tanh: within 2 ulp of the float32 result everywhere, exact at 0, +-Infinity and NaN', () => {
  it('over 2,000,001 points in [-10, 10], every float32 in [0.62, 0.63] (the polynomial / exponential seam) and 1e-30..1 on a log scale', () => {
    // Measured when written: 1.5 ulp at most, 8.9e-8 absolute (at x = -1.56).
    const seam = Float32Array.from({ length: 1 << 18 }, (_, i) => new Float32Array(new Uint32Array([new Uint32Array(Float32Array.of(0.62).buffer)[0] + i]).buffer)[0]);
    const small = Float32Array.from({ length: 60_001 }, (_, i) => (i % 2 === 0 ? 1 : -1) * 10 ** (-30 + (30 * i) / 60_000));
    for (const x of [sweep(-10, 10, 2_000_001), seam, small]) {
      const out = new Float32Array(x.length);
      kernels.tanh(out, x);
      let worstUlps = 0;
      for (let i = 0; i < x.length; i++) {
        const want = Math.tanh(x[i]);
        if (want === 0) expect(out[i], `tanh(${x[i]})`).toBe(0);
        else worstUlps = Math.max(worstUlps, Math.abs(out[i] - want) / f32Ulp(want));
      }
      expect(worstUlps, `x from ${x[0]} to ${x[x.length - 1]}`).toBeLessThanOrEqual(2);
    }
    expect(seam[seam.length - 1]).toBeGreaterThan(0.63);
  });

  it('keeps the sign of zero, saturates to exactly +-1, passes NaN through; lengths 0, 1, 3 and 5 (the scalar tail) give the lanes\' bits', () => {
    const x = Float32Array.of(0, -0, 9.5, -9.5, 50, -50, Infinity, -Infinity, NaN);
    const out = new Float32Array(x.length);
    kernels.tanh(out, x);
    expect(Array.from(out)).toEqual([0, -0, 1, -1, 1, -1, 1, -1, NaN]);
    const lanes = new Float32Array(8);
    const y = sweep(-2, 2, 8);
    kernels.tanh(lanes, y);
    for (const n of [0, 1, 3, 5]) {
      const tail = new Float32Array(n);
      kernels.tanh(tail, y.slice(8 - n)); // the last n values of y, now all in the scalar tail (n < 4) or across lanes and tail
      expect(bits(tail), `n=${n}`).toEqual(bits(lanes.slice(8 - n)));
    }
  });
});

/** A view of `data` at offset 3 of a buffer with guard values on both sides, so that a write past the view shows. */
function guarded(backend: Backend, data: Float32Array): { view: View; whole: View } {
  const buf = backend.alloc(data.length + 6, 'guarded', 'workspace');
  const whole = viewOf(buf);
  backend.write(whole, Float32Array.from({ length: data.length + 6 }, (_, i) => (i >= 3 && i < data.length + 3 ? data[i - 3] : -7.5)));
  return { view: viewOf(buf, 3, data.length), whole };
}

async function expectGuardsKept(backend: Backend, whole: View, n: number): Promise<void> {
  const all = await backend.read(whole);
  expect([...all.slice(0, 3), ...all.slice(n + 3)]).toEqual(new Array(6).fill(-7.5));
}

describe('GELU on the vectorised tanh vs the reference: |ours - reference| <= 1e-6 forward and backward (the reference twin tolerance)', () => {
  it('on a dense sweep of 400,001 points in [-10, 10] (measured when written: 4.8e-7 forward, 2.4e-7 backward)', async () => {
    const x = sweep(-10, 10, 400_001);
    const dy = randomUniform(x.length, 3, -1, 1);
    const [want, got] = await Promise.all(
      [reference, fast].map(async (backend) => {
        const [xv, out, dx] = [upload(backend, x), upload(backend, new Float32Array(x.length)), upload(backend, dy)];
        backend.gelu(out, xv);
        backend.geluBackward(dx, xv, dx);
        return [await backend.read(out), await backend.read(dx)];
      }),
    );
    expect(maxDiff(got[0], want[0]), 'gelu').toBeLessThanOrEqual(1e-6);
    expect(maxDiff(got[1], want[1]), 'geluBackward').toBeLessThanOrEqual(1e-6);
  });

  it('on lengths 0, 1, 2, 3, 5, 7 and 1,031 at an odd offset: the view written, its neighbours not, in place too', async () => {
    let seed = 40;
    for (const n of [0, 1, 2, 3, 5, 7, 1031]) {
      const x = randomUniform(n, seed++, -6, 6);
      const dy = randomUniform(n, seed++, -1, 1);
      const results = await Promise.all(
        [reference, fast].map(async (backend) => {
          const [xv, out, dx] = [guarded(backend, x), guarded(backend, new Float32Array(n)), guarded(backend, dy)];
          backend.gelu(out.view, xv.view);
          backend.geluBackward(dx.view, xv.view, dx.view);
          backend.gelu(xv.view, xv.view);
          for (const g of [xv, out, dx]) await expectGuardsKept(backend, g.whole, n);
          return Promise.all([out.view, dx.view, xv.view].map((v) => backend.read(v)));
        }),
      );
      ['gelu', 'geluBackward', 'gelu in place'].forEach((name, i) => expect(maxDiff(results[1][i], results[0][i]), `${name} n=${n}`).toBeLessThanOrEqual(1e-6));
    }
  });

  it('backward agrees with finite differences on the fast backend (eps 1e-2, atol 1e-3, rtol 1e-2), x in [-3, 3]', async () => {
    const n = 23;
    expect(
      await checkBackward(fast, {
        inputs: { x: randomUniform(n, 11, -3, 3) },
        outLength: n,
        forward: (b, v) => b.gelu(v.out, v.x),
        backward: (b, v, g) => b.geluBackward(g.x, v.x, v.dOut),
      }),
    ).toEqual([]);
  });
});

// [rows, cols]: 1x1, tails past 4 and 8 columns, primes, a GPT layer's shapes (1,024 rows of 64 and 192).
const BIAS_SHAPES: [number, number][] = [[1, 1], [3, 5], [7, 9], [2, 13], [5, 8], [4, 17], [64, 65], [1024, 64], [1024, 192]];

describe('bias add and its gradient vs the reference: the same bits', () => {
  it(`on ${BIAS_SHAPES.length} shapes, out aliasing x, dBias accumulating onto what was there, views longer than the call needs left alone past it`, async () => {
    let seed = 60;
    for (const [rows, cols] of BIAS_SHAPES) {
      const [x, bias, dOut, start] = [randomUniform(rows * cols + 3, seed++, -2, 2), randomUniform(cols + 2, seed++), randomUniform(rows * cols + 5, seed++), randomUniform(cols + 2, seed++)];
      const results = await Promise.all(
        [reference, fast].map(async (backend) => {
          const [out, xv, b, dy, db] = [upload(backend, new Float32Array(rows * cols + 3)), upload(backend, x), upload(backend, bias), upload(backend, dOut), upload(backend, start)];
          backend.biasAdd(out, xv, b, rows, cols);
          backend.biasAdd(xv, xv, b, rows, cols);
          backend.biasBackward(db, dy, rows, cols);
          return Promise.all([out, xv, db].map((v) => backend.read(v)));
        }),
      );
      ['biasAdd', 'biasAdd in place', 'biasBackward'].forEach((name, i) => expect(bits(results[1][i]), `${name} ${rows}x${cols}`).toEqual(bits(results[0][i])));
    }
  });

  it('agree with finite differences on the fast backend (eps 1e-2, atol 1e-3, rtol 1e-2), 5x11', async () => {
    const [rows, cols] = [5, 11];
    const x = upload(fast, randomUniform(rows * cols, 8));
    expect(
      await checkBackward(fast, {
        inputs: { bias: randomUniform(cols, 9) },
        outLength: rows * cols,
        forward: (b, v) => b.biasAdd(v.out, x, v.bias, rows, cols),
        backward: (b, v, g) => b.biasBackward(g.bias, v.dOut, rows, cols),
        accumulates: ['bias'],
      }),
    ).toEqual([]);
  });

  it('keeps the reference checks: a short bias is a clear error and the output is untouched', async () => {
    const out = upload(fast, new Float32Array([1, 2, 3, 4]));
    expect(() => fast.biasAdd(out, upload(fast, new Float32Array(4)), upload(fast, new Float32Array(1)), 2, 2)).toThrow(/biasAdd: bias .* needs 2/);
    expect(Array.from(await fast.read(out))).toEqual([1, 2, 3, 4]);
  });
});

describe('residual add and addInPlace vs the reference: the same bits', () => {
  it('on lengths 0, 1, 3, 4, 7 and 1,031 at an odd offset, out aliasing a', async () => {
    let seed = 80;
    for (const n of [0, 1, 3, 4, 7, 1031]) {
      const [a, b] = [randomUniform(n, seed++, -3, 3), randomUniform(n, seed++, -3, 3)];
      const results = await Promise.all(
        [reference, fast].map(async (backend) => {
          const [av, bv, out] = [guarded(backend, a), guarded(backend, b), guarded(backend, new Float32Array(n))];
          backend.add(out.view, av.view, bv.view);
          backend.addInPlace(av.view, bv.view);
          backend.add(bv.view, bv.view, bv.view);
          for (const g of [av, bv, out]) await expectGuardsKept(backend, g.whole, n);
          return Promise.all([out.view, av.view, bv.view].map((v) => backend.read(v)));
        }),
      );
      ['add', 'addInPlace', 'add aliased'].forEach((name, i) => expect(bits(results[1][i]), `${name} n=${n}`).toEqual(bits(results[0][i])));
    }
  });

  it('keeps the reference checks: lengths that differ are a clear error', () => {
    expect(() => fast.add(upload(fast, new Float32Array(3)), upload(fast, new Float32Array(3)), upload(fast, new Float32Array(2)))).toThrow(/add: b .* has 2 elements, expected 3/);
  });
});

function tokensOn(backend: Backend, tokens: Uint32Array): View {
  const v = viewOf(backend.alloc(tokens.length, 'tokens', 'data', 'u32'));
  backend.write(v, tokens);
  return v;
}

// [B, T, C, vocab]: C = 1, tails past f32x4 lanes, a vocabulary of one, the GPT recipe's 16 x 64 x 64.
const EMBEDDING_SHAPES: [number, number, number, number][] = [[1, 1, 1, 1], [2, 3, 5, 4], [3, 7, 13, 9], [1, 5, 8, 3], [16, 64, 64, 65]];

describe('embedding forward and backward vs the reference: the same bits, repeated tokens accumulating in order', () => {
  it(`on ${EMBEDDING_SHAPES.length} shapes, dWte and dWpe accumulating onto what was there`, async () => {
    let seed = 100;
    for (const [B, T, C, vocab] of EMBEDDING_SHAPES) {
      const tokens = Uint32Array.from(randomUniform(B * T, seed++, 0, 1), (u, i) => (i % 3 === 0 ? 0 : Math.min(vocab - 1, Math.floor(u * vocab))));
      const [wte, wpe, dOut, startTe, startPe] = [randomUniform(vocab * C, seed++), randomUniform(T * C, seed++), randomUniform(B * T * C, seed++), randomUniform(vocab * C, seed++), randomUniform(T * C, seed++)];
      const results = await Promise.all(
        [reference, fast].map(async (backend) => {
          const tok = tokensOn(backend, tokens);
          const out = upload(backend, randomUniform(B * T * C, seed));
          backend.embedding(out, tok, upload(backend, wte), upload(backend, wpe), B, T, C);
          const [dte, dpe] = [upload(backend, startTe), upload(backend, startPe)];
          backend.embeddingBackward(dte, dpe, upload(backend, dOut), tok, B, T, C, vocab);
          return Promise.all([out, dte, dpe].map((v) => backend.read(v)));
        }),
      );
      ['embedding', 'dWte', 'dWpe'].forEach((name, i) => expect(bits(results[1][i]), `${name} B=${B} T=${T} C=${C} vocab=${vocab}`).toEqual(bits(results[0][i])));
    }
  });

  it('agree with finite differences on the fast backend (eps 1e-2, atol 1e-3, rtol 1e-2), repeated tokens', async () => {
    const [B, T, C, vocab] = [2, 3, 5, 5];
    const tokens = tokensOn(fast, new Uint32Array([1, 3, 1, 4, 1, 0]));
    expect(
      await checkBackward(fast, {
        inputs: { wte: randomUniform(vocab * C, 16), wpe: randomUniform(T * C, 17) },
        outLength: B * T * C,
        forward: (b, v) => b.embedding(v.out, tokens, v.wte, v.wpe, B, T, C),
        backward: (b, v, g) => b.embeddingBackward(g.wte, g.wpe, v.dOut, tokens, B, T, C, vocab),
        accumulates: ['wte', 'wpe'],
      }),
    ).toEqual([]);
  });

  it('a token not below the vocabulary is a clear error, and nothing is written (forward and backward)', async () => {
    const tokens = tokensOn(fast, new Uint32Array([0, 1, 3]));
    const out = upload(fast, new Float32Array(6).fill(5));
    const dWte = upload(fast, new Float32Array(6).fill(5));
    expect(() => fast.embedding(out, tokens, upload(fast, new Float32Array(6)), upload(fast, new Float32Array(6)), 1, 3, 2)).toThrow(/embedding: token 3 at 2 is not below vocab 3/);
    expect(() => fast.embeddingBackward(dWte, upload(fast, new Float32Array(6)), upload(fast, new Float32Array(6)), tokens, 1, 3, 2, 3)).toThrow(/embeddingBackward: token 3 at 2 is not below vocab 3/);
    expect(Array.from(await fast.read(out))).toEqual(new Array(6).fill(5));
    expect(Array.from(await fast.read(dWte))).toEqual(new Array(6).fill(5));
  });
});
