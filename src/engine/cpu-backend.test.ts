import { describe, expect, it } from 'vitest';
import { type View, viewOf } from './backend';
import { CpuBackend } from './cpu-backend';
import { type BackwardCase, checkBackward, randomUniform } from './gradcheck';

const cpu = new CpuBackend();

function upload(data: Float32Array | Uint32Array, label = 'test', dtype: 'f32' | 'u32' = data instanceof Uint32Array ? 'u32' : 'f32'): View {
  const v = viewOf(cpu.alloc(data.length, label, 'workspace', dtype));
  cpu.write(v, data);
  return v;
}

const zeros = (n: number) => upload(new Float32Array(n));
const get = (v: View) => cpu.read(v);

/** Every backward op is one line: the finite-difference check must find no mismatching element. */
async function expectGradientsMatch(c: BackwardCase): Promise<void> {
  expect(await checkBackward(cpu, c)).toEqual([]);
}

/** Uniform values kept away from 0 by `gap`, for ops with a kink there (ReLU). */
function awayFromZero(n: number, seed: number, gap: number): Float32Array {
  return randomUniform(n, seed).map((x) => (x >= 0 ? x + gap : x - gap));
}

describe('CpuBackend: backward ops agree with finite differences (eps 1e-2, atol 1e-3, rtol 1e-2)', () => {
  const [M, K, N] = [3, 5, 4];

  it('matmul NN: dA = dOut @ B^T (NT), dB += A^T @ dOut (TN, accumulate)', () =>
    expectGradientsMatch({
      inputs: { a: randomUniform(M * K, 2), b: randomUniform(K * N, 3) },
      outLength: M * N,
      forward: (b, v) => b.matmul(v.out, v.a, v.b, M, K, N),
      backward: (b, v, g) => {
        b.matmul(g.a, v.dOut, v.b, M, N, K, { transB: true });
        b.matmul(g.b, v.a, v.dOut, K, M, N, { transA: true, accumulate: true });
      },
      accumulates: ['b'],
    }));

  it('matmul NT (b stored [N, K]): dA = dOut @ B (NN), dB += dOut^T @ A (TN)', () =>
    expectGradientsMatch({
      inputs: { a: randomUniform(M * K, 4), b: randomUniform(N * K, 5) },
      outLength: M * N,
      forward: (b, v) => b.matmul(v.out, v.a, v.b, M, K, N, { transB: true }),
      backward: (b, v, g) => {
        b.matmul(g.a, v.dOut, v.b, M, N, K);
        b.matmul(g.b, v.dOut, v.a, N, M, K, { transA: true, accumulate: true });
      },
      accumulates: ['b'],
    }));

  it('matmul TN (a stored [K, M]): dA = B @ dOut^T (NT), dB = A @ dOut (NN)', () =>
    expectGradientsMatch({
      inputs: { a: randomUniform(K * M, 6), b: randomUniform(K * N, 7) },
      outLength: M * N,
      forward: (b, v) => b.matmul(v.out, v.a, v.b, M, K, N, { transA: true }),
      backward: (b, v, g) => {
        b.matmul(g.a, v.b, v.dOut, K, N, M, { transB: true });
        b.matmul(g.b, v.a, v.dOut, K, M, N);
      },
    }));

  it('biasAdd / biasBackward', () => {
    const [rows, cols] = [4, 3];
    const x = upload(randomUniform(rows * cols, 8));
    return expectGradientsMatch({
      inputs: { bias: randomUniform(cols, 9) },
      outLength: rows * cols,
      forward: (b, v) => b.biasAdd(v.out, x, v.bias, rows, cols),
      backward: (b, v, g) => b.biasBackward(g.bias, v.dOut, rows, cols),
      accumulates: ['bias'],
    });
  });

  it('relu / reluBackward', () =>
    expectGradientsMatch({
      inputs: { x: awayFromZero(20, 10, 0.05) },
      outLength: 20,
      forward: (b, v) => b.relu(v.out, v.x),
      backward: (b, v, g) => b.reluBackward(g.x, v.x, v.dOut),
    }));

  it('gelu / geluBackward', () =>
    expectGradientsMatch({
      inputs: { x: randomUniform(20, 11, -3, 3) },
      outLength: 20,
      forward: (b, v) => b.gelu(v.out, v.x),
      backward: (b, v, g) => b.geluBackward(g.x, v.x, v.dOut),
    }));

  it('softmaxCrossEntropy: dLogits is the gradient of gradScale * sum(losses)', () => {
    const [rows, cols, gradScale] = [3, 5, 1 / 3];
    const targets = upload(new Uint32Array([4, 0, 2]));
    const [probs, dLogits] = [zeros(rows * cols), zeros(rows * cols)];
    const losses = zeros(rows);
    return expectGradientsMatch({
      inputs: { logits: randomUniform(rows * cols, 12, -2, 2) },
      outLength: rows,
      forward: (b, v) => b.softmaxCrossEntropy(v.out, probs, dLogits, v.logits, targets, rows, cols, gradScale),
      backward: (b, v, g) => b.softmaxCrossEntropy(losses, probs, g.logits, v.logits, targets, rows, cols, gradScale),
      dOut: new Float32Array(rows).fill(gradScale),
    });
  });

  it('layerNorm / layerNormBackward (dx overwritten, dGamma and dBeta accumulated)', () => {
    const [rows, cols] = [3, 7];
    const [mean, rstd] = [zeros(rows), zeros(rows)];
    return expectGradientsMatch({
      inputs: { x: randomUniform(rows * cols, 13, -2, 2), gamma: randomUniform(cols, 14, 0.5, 1.5), beta: randomUniform(cols, 15) },
      outLength: rows * cols,
      forward: (b, v) => b.layerNorm(v.out, mean, rstd, v.x, v.gamma, v.beta, rows, cols),
      backward: (b, v, g) => b.layerNormBackward(g.x, g.gamma, g.beta, v.dOut, v.x, mean, rstd, v.gamma, rows, cols),
      accumulates: ['gamma', 'beta'],
    });
  });

  it('embedding / embeddingBackward (repeated tokens accumulate)', () => {
    const [B, T, C, vocab] = [2, 3, 4, 5];
    const tokens = upload(new Uint32Array([1, 3, 1, 4, 1, 0]));
    return expectGradientsMatch({
      inputs: { wte: randomUniform(vocab * C, 16), wpe: randomUniform(T * C, 17) },
      outLength: B * T * C,
      forward: (b, v) => b.embedding(v.out, tokens, v.wte, v.wpe, B, T, C),
      backward: (b, v, g) => b.embeddingBackward(g.wte, g.wpe, v.dOut, tokens, B, T, C, vocab),
      accumulates: ['wte', 'wpe'],
    });
  });

  it('attention / attentionBackward (2 heads, causal)', () => {
    const [B, T, C, nHead] = [2, 4, 6, 2];
    const att = zeros(B * nHead * T * T);
    return expectGradientsMatch({
      inputs: { qkv: randomUniform(B * T * 3 * C, 18, -1.5, 1.5) },
      outLength: B * T * C,
      forward: (b, v) => b.attention(v.out, att, v.qkv, B, T, C, nHead),
      backward: (b, v, g) => b.attentionBackward(g.qkv, v.dOut, v.qkv, att, B, T, C, nHead),
    });
  });

  it('the checker itself catches a wrong gradient and a gradient that forgets to overwrite', async () => {
    const wrongScale = await checkBackward(cpu, {
      inputs: { x: randomUniform(6, 19) },
      outLength: 6,
      forward: (b, v) => b.gelu(v.out, v.x),
      backward: (b, v, g) => {
        b.geluBackward(g.x, v.x, v.dOut);
        b.scale(g.x, 1.1);
      },
    });
    expect(wrongScale.length).toBeGreaterThan(0);
    const accumulatesInstead = await checkBackward(cpu, {
      inputs: { bias: randomUniform(3, 20) },
      outLength: 6,
      forward: (b, v) => b.biasAdd(v.out, upload(new Float32Array(6)), v.bias, 2, 3),
      backward: (b, v, g) => b.biasBackward(g.bias, v.dOut, 2, 3),
      // not declared as accumulating: the garbage it starts from must show
    });
    expect(accumulatesInstead.map((m) => m.input)).toEqual(['bias', 'bias', 'bias']);
  });
});

describe('CpuBackend: forward ops on hand-computed cases', () => {
  it('matmul: a 2x3 @ 3x2 product, every transpose, and accumulate', async () => {
    const a = [1, 2, 3, 4, 5, 6]; // [[1,2,3],[4,5,6]]
    const b = [7, 8, 9, 10, 11, 12]; // [[7,8],[9,10],[11,12]]
    const want = [58, 64, 139, 154];
    const out = zeros(4);
    cpu.matmul(out, upload(new Float32Array(a)), upload(new Float32Array(b)), 2, 3, 2);
    expect(Array.from(await get(out))).toEqual(want);
    const aT = [1, 4, 2, 5, 3, 6];
    const bT = [7, 9, 11, 8, 10, 12];
    cpu.matmul(out, upload(new Float32Array(aT)), upload(new Float32Array(bT)), 2, 3, 2, { transA: true, transB: true });
    expect(Array.from(await get(out))).toEqual(want);
    cpu.matmul(out, upload(new Float32Array(a)), upload(new Float32Array(bT)), 2, 3, 2, { transB: true, accumulate: true });
    expect(Array.from(await get(out))).toEqual(want.map((x) => 2 * x));
  });

  it('softmaxCrossEntropy: known logits, and no overflow at logits of 1000', async () => {
    const logits = upload(new Float32Array([1, 2, 3, 1000, 0, -1000]));
    const targets = upload(new Uint32Array([2, 1]));
    const [losses, probs, dLogits] = [zeros(2), zeros(6), zeros(6)];
    cpu.softmaxCrossEntropy(losses, probs, dLogits, logits, targets, 2, 3, 0.5);
    const sum = Math.exp(1) + Math.exp(2) + Math.exp(3);
    const l = await get(losses);
    expect(l[0]).toBeCloseTo(Math.log(sum) - 3, 6);
    expect(l[1]).toBeCloseTo(1000, 3);
    const p = await get(probs);
    expect(p[2]).toBeCloseTo(Math.exp(3) / sum, 6);
    expect(Array.from(p.slice(3))).toEqual([1, 0, 0]);
    const d = await get(dLogits);
    expect(d[2]).toBeCloseTo((Math.exp(3) / sum - 1) * 0.5, 6);
    expect(Array.from(d.slice(3))).toEqual([0.5, -0.5, 0]);
  });

  it('layerNorm with gamma 1, beta 0 gives rows of mean 0 and variance 1', async () => {
    const [rows, cols] = [3, 16];
    const x = upload(randomUniform(rows * cols, 21, -5, 20));
    const [out, mean, rstd] = [zeros(rows * cols), zeros(rows), zeros(rows)];
    cpu.layerNorm(out, mean, rstd, x, upload(new Float32Array(cols).fill(1)), zeros(cols), rows, cols);
    const y = await get(out);
    for (let r = 0; r < rows; r++) {
      const row = y.subarray(r * cols, (r + 1) * cols);
      const m = row.reduce((s, v) => s + v, 0) / cols;
      const variance = row.reduce((s, v) => s + (v - m) ** 2, 0) / cols;
      expect(Math.abs(m)).toBeLessThan(1e-6);
      expect(variance).toBeCloseTo(1, 4); // 1 - eps/var: eps = 1e-5 barely shows
    }
  });

  it('gelu matches the tanh approximation at known points; relu clamps', async () => {
    const x = upload(new Float32Array([-1, 0, 1, 3]));
    const out = zeros(4);
    cpu.gelu(out, x);
    const y = await get(out);
    expect(y[0]).toBeCloseTo(-0.158808, 5);
    expect(y[1]).toBe(0);
    expect(y[2]).toBeCloseTo(0.841192, 5);
    expect(y[3]).toBeCloseTo(2.996363, 5);
    cpu.relu(out, x);
    expect(Array.from(await get(out))).toEqual([0, 0, 1, 3]);
  });

  it('attention is causal: output at t=0 is v[0] per head, rows of att sum to 1, nothing above the diagonal', async () => {
    const [B, T, C, nHead] = [1, 3, 4, 2];
    const qkvData = randomUniform(B * T * 3 * C, 22, -2, 2);
    const [out, att] = [zeros(B * T * C), zeros(B * nHead * T * T)];
    cpu.attention(out, att, upload(qkvData), B, T, C, nHead);
    const y = await get(out);
    const v0 = qkvData.subarray(2 * C, 3 * C);
    for (let i = 0; i < C; i++) expect(y[i]).toBeCloseTo(v0[i], 6);
    const a = await get(att);
    for (let h = 0; h < nHead; h++) {
      for (let t = 0; t < T; t++) {
        const row = a.subarray((h * T + t) * T, (h * T + t + 1) * T);
        expect(row.reduce((s, p) => s + p, 0)).toBeCloseTo(1, 6);
        for (let t2 = t + 1; t2 < T; t2++) expect(row[t2]).toBe(0);
      }
    }
  });

  it('embedding adds the token row and the position row', async () => {
    const wte = upload(new Float32Array([0, 0, 10, 20, 30, 40])); // vocab 3, C 2
    const wpe = upload(new Float32Array([1, 2, 3, 4])); // T 2
    const out = zeros(8);
    cpu.embedding(out, upload(new Uint32Array([2, 1, 0, 2])), wte, wpe, 2, 2, 2);
    expect(Array.from(await get(out))).toEqual([31, 42, 13, 24, 1, 2, 33, 44]);
  });

  it('add, addInPlace (aliasing allowed), scale, fill, copy', async () => {
    const a = upload(new Float32Array([1, 2, 3]));
    const b = upload(new Float32Array([10, 20, 30]));
    cpu.add(a, a, b);
    expect(Array.from(await get(a))).toEqual([11, 22, 33]);
    cpu.addInPlace(a, b);
    cpu.scale(a, 0.5);
    expect(Array.from(await get(a))).toEqual([10.5, 21, 31.5]);
    cpu.copy(viewOf(b.buf, 1, 2), viewOf(a.buf, 0, 2));
    cpu.fill(viewOf(a.buf, 2, 1), -1);
    expect(Array.from(await get(b))).toEqual([10, 10.5, 21]);
    expect(Array.from(await get(a))).toEqual([10.5, 21, -1]);
  });

  it('sumSquares and clipByNorm: clips a norm-5 vector to 1, leaves it when under the limit', async () => {
    const g = upload(new Float32Array([3, 4]));
    const sumSq = zeros(1);
    cpu.sumSquares(sumSq, g);
    expect((await get(sumSq))[0]).toBe(25);
    cpu.clipByNorm(g, sumSq, 10);
    expect(Array.from(await get(g))).toEqual([3, 4]);
    cpu.clipByNorm(g, sumSq, 1);
    const clipped = await get(g);
    expect(clipped[0]).toBeCloseTo(0.6, 6);
    expect(clipped[1]).toBeCloseTo(0.8, 6);
  });

  it('sgd with momentum and weight decay, two steps by hand', async () => {
    const [p, g, buf] = [upload(new Float32Array([1])), upload(new Float32Array([0.5])), zeros(1)];
    const h = { lr: 0.1, momentum: 0.9, weightDecay: 0.1 };
    cpu.sgd(p, g, buf, h); // buf = 0.5 + 0.1 = 0.6; p = 1 - 0.06
    expect((await get(p))[0]).toBeCloseTo(0.94, 6);
    cpu.sgd(p, g, buf, h); // buf = 0.54 + 0.5 + 0.094 = 1.134; p = 0.94 - 0.1134
    expect((await get(buf))[0]).toBeCloseTo(1.134, 6);
    expect((await get(p))[0]).toBeCloseTo(0.8266, 6);
  });

  // Float32 arithmetic, as the WGSL kernel (f32-update.ts): a few float32 ulps from the exact values.
  it('adamw: bias-corrected first step moves by lr (sign of g), plus decoupled decay (within 5e-6)', async () => {
    const [p, g, m, v] = [upload(new Float32Array([1, -2])), upload(new Float32Array([0.5, -0.01])), zeros(2), zeros(2)];
    const h = { lr: 0.1, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, step: 1 };
    cpu.adamw(p, g, m, v, h);
    const after = await get(p);
    expect(after[0]).toBeCloseTo(1 - 0.1 * (1 + 0.01 * 1), 5);
    expect(after[1]).toBeCloseTo(-2 - 0.1 * (-1 + 0.01 * -2), 5);
    expect((await get(m))[0]).toBeCloseTo(0.05, 7);
    // beta2 is a float32 (the kernel's uniform): 1 - fround(0.999) is 1.00005e-3, not 1e-3.
    expect((await get(v))[0]).toBeCloseTo((1 - Math.fround(0.999)) * 0.25, 9);
    // Second step with the same gradient: mHat = g and vHat = g^2 still (constant gradient).
    cpu.adamw(p, g, m, v, { ...h, step: 2 });
    expect((await get(p))[0]).toBeCloseTo(after[0] - 0.1 * (1 + 0.01 * after[0]), 5);
  });
});

describe('CpuBackend: memory, buffers and bad input', () => {
  it('counts bytes by kind and live buffers, and frees', () => {
    const b = new CpuBackend();
    const p = b.alloc(100, 'p', 'params');
    b.alloc(10, 'g', 'grads');
    b.alloc(6, 'tok', 'data', 'u32');
    expect(b.memory()).toEqual({ params: 400, grads: 40, optimizer: 0, activations: 0, workspace: 0, data: 24 });
    expect(b.bufferCount()).toBe(3);
    b.free(p);
    expect(b.bufferCount()).toBe(2);
    expect(b.memory().params).toBe(0);
    expect(() => b.fill(viewOf(p), 0)).toThrow(/freed/);
  });

  it('read returns a copy; u32 data round-trips bit for bit', async () => {
    const v = upload(new Float32Array([1, 2]));
    const copy = await get(v);
    copy[0] = 99;
    expect((await get(v))[0]).toBe(1);
    const t = upload(new Uint32Array([0xffffffff, 7]));
    expect(Array.from(new Uint32Array((await get(t)).buffer))).toEqual([0xffffffff, 7]);
  });

  it('readMany returns a copy of each view, as read does (u32 views as their bits)', async () => {
    const v = upload(new Float32Array([1, 2, 3]));
    const t = upload(new Uint32Array([0xffffffff, 7]));
    const [floats, words, empty] = await cpu.readMany([v, t, { ...v, length: 0 }]);
    expect(Array.from(floats)).toEqual([1, 2, 3]);
    expect(Array.from(new Uint32Array(words.buffer))).toEqual([0xffffffff, 7]);
    expect(empty.length).toBe(0);
    floats[0] = 99;
    expect((await get(v))[0]).toBe(1);
  });

  it('rejects wrong shapes, float targets and out-of-range tokens with clear errors', () => {
    expect(() => cpu.matmul(zeros(3), zeros(6), zeros(6), 2, 3, 2)).toThrow(/matmul: out .* holds 3 elements, needs 4/);
    expect(() => cpu.matmul(zeros(4), zeros(5), zeros(6), 2, 3, 2)).toThrow(/matmul: a .* holds 5 elements, needs 6/);
    expect(() => cpu.add(zeros(3), zeros(3), zeros(4))).toThrow(/add: b/);
    expect(() => cpu.softmaxCrossEntropy(zeros(1), zeros(2), zeros(2), zeros(2), zeros(1), 1, 2, 1)).toThrow(/targets .* must be u32/);
    expect(() => cpu.embedding(zeros(2), upload(new Uint32Array([9])), zeros(4), zeros(2), 1, 1, 2)).toThrow(/token 9/);
    expect(() => cpu.attention(zeros(6), zeros(1), zeros(18), 1, 1, 6, 4)).toThrow(/not a multiple of nHead/);
  });
});
