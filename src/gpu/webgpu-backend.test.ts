import { beforeAll, describe, expect, it } from 'vitest';
import { type Backend, type DeviceBuffer, VIEW_ALIGNMENT, type View, viewOf } from '../engine/backend';
import { CpuBackend } from '../engine/cpu-backend';
import { randomUniform } from '../engine/gradcheck';
import { isSwiftShader } from './device';
import { deviceProblems, testDevice } from './test-device';
import { WebGpuBackend, chooseMatmulVariant } from './webgpu-backend';

let blocked: WebGpuBackend;
let tiled: WebGpuBackend;

beforeAll(async () => {
  const ctx = await testDevice();
  blocked = await WebGpuBackend.fromContext(ctx, { matmul: 'blocked' });
  tiled = await WebGpuBackend.fromContext(ctx, { matmul: 'tiled' });
}, 120_000); // building ~36 pipelines takes seconds on SwiftShader

type Input = (data: Float32Array | Uint32Array) => View;
/** An op under test: receives a backend and an uploader, records the op, returns the views to compare. */
type Op = (b: Backend, input: Input) => View[];

const PAD = VIEW_ALIGNMENT;
const SENTINEL = 7.25;

/**
 * Runs `op` on the CPU reference and on a WebGPU backend with the same inputs, and compares every
 * output element within atol + rtol * |cpu|. Each input sits at a non-zero (aligned) offset between
 * sentinel padding, and whole buffers are compared, so a kernel that writes outside its view fails.
 */
async function expectGpuMatchesCpu(op: Op, tol: { atol?: number; rtol?: number } = {}, gpu: WebGpuBackend = blocked): Promise<void> {
  const atol = tol.atol ?? 1e-5;
  const rtol = tol.rtol ?? 1e-4;
  const results: Float32Array[][] = [];
  for (const b of [new CpuBackend(), gpu] as Backend[]) {
    const owned: DeviceBuffer[] = [];
    const input: Input = (data) => {
      const buf = b.alloc(PAD + data.length + PAD, 'input', 'workspace', data instanceof Uint32Array ? 'u32' : 'f32');
      owned.push(buf);
      if (data instanceof Float32Array) b.fill(viewOf(buf), SENTINEL);
      const v = viewOf(buf, PAD, data.length);
      b.write(v, data);
      return v;
    };
    const outs = op(b, input);
    results.push(await Promise.all(outs.map((v) => b.read(viewOf(v.buf)))));
    for (const buf of owned) b.free(buf);
  }
  const [cpu, gpuOut] = results;
  for (let o = 0; o < cpu.length; o++) {
    let worst = { i: -1, cpu: 0, gpu: 0 };
    for (let i = 0; i < cpu[o].length; i++) {
      const [want, got] = [cpu[o][i], gpuOut[o][i]];
      const ok = Math.abs(got - want) <= atol + rtol * Math.abs(want) || (Number.isNaN(want) && Number.isNaN(got));
      if (!ok && worst.i < 0) worst = { i, cpu: want, gpu: got };
    }
    expect(worst, `output ${o}: first mismatch (index in the padded buffer)`).toEqual({ i: -1, cpu: 0, gpu: 0 });
  }
  expect(deviceProblems).toEqual([]);
}

const rand = (n: number, seed: number, lo = -1, hi = 1) => randomUniform(n, seed, lo, hi);
const zeros = (n: number) => new Float32Array(n);

describe('WebGpuBackend vs CpuBackend: matmul (atol 1e-4, rtol 1e-4)', () => {
  // [3, 4, 4], [6, 8, 12], [64, 64, 64] and [70, 16, 132] take the blocked variant's vec4 kernels where
  // the transposition allows (webgpu-backend.ts vec4Matmul).
  const shapes: [number, number, number][] = [[1, 1, 1], [1, 7, 5], [5, 3, 1], [3, 4, 4], [6, 8, 12], [17, 33, 65], [64, 64, 64], [70, 16, 130], [70, 16, 132]];
  for (const variant of ['blocked', 'tiled'] as const) {
    for (const [transA, transB] of [[false, false], [false, true], [true, false], [true, true]]) {
      it(`${variant} ${transA ? 'T' : 'N'}${transB ? 'T' : 'N'} on ${shapes.length} shapes, with and without accumulate`, async () => {
        for (const [M, K, N] of shapes) {
          for (const accumulate of [false, true]) {
            await expectGpuMatchesCpu(
              (b, input) => {
                const out = input(rand(M * N, 1));
                b.matmul(out, input(rand(M * K, 2)), input(rand(K * N, 3)), M, K, N, { transA, transB, accumulate });
                return [out];
              },
              { atol: 1e-4 },
              variant === 'blocked' ? blocked : tiled,
            );
          }
        }
      });
    }
  }

  it('blocked with vec4 loads (NN, NT, TN; 8x8 and 4x4 blocks) is bit-identical to the scalar blocked kernel (same fma order)', async () => {
    const scalar = await WebGpuBackend.fromContext(await testDevice(), { matmul: 'blocked', matmulVec4: false });
    const blocks4 = await WebGpuBackend.fromContext(await testDevice(), { matmul: 'blocked', matmulBlocks8: false });
    // [33, 784, 256]: the MLP's forward with a clamped last block of rows; [256, 33, 128]: a weight
    // gradient; [33, 64, 10] NT: clamped rows and columns; [64, 16, 64] NT: attention scores. For the
    // 8x8 blocks: [36, 12, 44] NN and [20, 7, 12] TN clamp a half block of rows and of columns (a last
    // group of four), [4, 8, 8] NN and [8, 5, 4] TN are below 8x8 (4x4 blocks).
    const cases: [number, number, number, boolean, boolean][] = [
      [33, 784, 256, false, false],
      [36, 64, 40, false, false],
      [36, 12, 44, false, false],
      [4, 8, 8, false, false],
      [256, 33, 128, true, false],
      [36, 64, 40, true, false],
      [20, 7, 12, true, false],
      [8, 5, 4, true, false],
      [33, 64, 10, false, true],
      [64, 16, 64, false, true],
    ];
    for (const [M, K, N, transA, transB] of cases) {
      const [a, bData, init] = [rand(M * K, 11), rand(K * N, 12), rand(M * N, 13)];
      const results: Uint32Array[] = [];
      for (const b of [blocked, scalar, blocks4]) {
        const [out, av, bv] = [b.alloc(M * N, 'out', 'workspace'), b.alloc(M * K, 'a', 'workspace'), b.alloc(K * N, 'b', 'workspace')];
        b.write(viewOf(out), init);
        b.write(viewOf(av), a);
        b.write(viewOf(bv), bData);
        b.matmul(viewOf(out), viewOf(av), viewOf(bv), M, K, N, { transA, transB, accumulate: true });
        results.push(new Uint32Array((await b.read(viewOf(out))).buffer));
        for (const buf of [out, av, bv]) b.free(buf);
      }
      const shape = `${M}x${K}x${N} ${transA ? 'T' : 'N'}${transB ? 'T' : 'N'}`;
      expect(results[0], shape).toEqual(results[1]);
      expect(results[2], `${shape}, 4x4 blocks`).toEqual(results[1]);
    }
    expect(deviceProblems).toEqual([]);
  }, 120_000);

  it('picks the matmul variant from the adapter by default (blocked on SwiftShader, tiled on a GPU), on any adapter', async () => {
    const ctx = await testDevice();
    const auto = await WebGpuBackend.fromContext(ctx);
    expect(auto.matmulVariant).toBe(isSwiftShader(ctx.adapter) ? 'blocked' : 'tiled');
    // The backend's description says which adapter it is, SwiftShader included.
    expect(/swiftshader/i.test(auto.info.adapter)).toBe(isSwiftShader(ctx.adapter));
    // The rule itself, for the adapter this test is not running on as well.
    const swiftShader = { vendor: 'google', architecture: 'swiftshader', device: '', description: '' };
    const gpu = { vendor: 'nvidia', architecture: 'hopper', device: '', description: '' };
    expect([chooseMatmulVariant(swiftShader), chooseMatmulVariant(gpu), chooseMatmulVariant(swiftShader, 'tiled')]).toEqual(['blocked', 'tiled', 'tiled']);
  });
});

describe('WebGpuBackend vs CpuBackend: every other op (atol 1e-5, rtol 1e-4 unless stated)', () => {
  const n = 1000; // not a multiple of the workgroup size

  it('add (separate, out = a, out = b, out = a = b), addInPlace, scale', () =>
    expectGpuMatchesCpu((b, input) => {
      const [x, y, z] = [input(rand(n, 4)), input(rand(n, 5)), input(zeros(n))];
      b.add(z, x, y);
      b.add(x, x, y);
      b.add(y, z, y);
      b.addInPlace(z, x);
      b.scale(z, -0.5);
      const w = input(rand(n, 6));
      b.add(w, w, w);
      return [x, y, z, w];
    }));

  it('fill (f32 and u32) and copy (between buffers and within one)', () =>
    expectGpuMatchesCpu((b, input) => {
      const f = input(rand(n, 7));
      b.fill(f, -3.5);
      const u = input(new Uint32Array(n));
      b.fill(u, 0xdeadbeef);
      const two = input(rand(3 * PAD, 8));
      b.copy(viewOf(two.buf, two.offset + 2 * PAD, PAD), viewOf(two.buf, two.offset, PAD));
      const dst = input(zeros(77));
      b.copy(dst, input(rand(77, 9)));
      return [f, u, two, dst];
    }));

  it('biasAdd (and in place), biasBackward', () =>
    expectGpuMatchesCpu((b, input) => {
      const [rows, cols] = [13, 70];
      const [x, bias, out, dBias] = [input(rand(rows * cols, 10)), input(rand(cols, 11)), input(zeros(rows * cols)), input(rand(cols, 12))];
      b.biasAdd(out, x, bias, rows, cols);
      b.biasAdd(x, x, bias, rows, cols);
      b.biasBackward(dBias, out, rows, cols);
      return [out, x, dBias];
    }));

  it('relu, gelu, and their backward passes (also in place)', () =>
    expectGpuMatchesCpu((b, input) => {
      const x = input(rand(n, 13, -6, 6));
      const dy = input(rand(n, 14));
      const [r, g, dr, dg] = [input(zeros(n)), input(zeros(n)), input(zeros(n)), input(zeros(n))];
      b.relu(r, x);
      b.gelu(g, x);
      b.reluBackward(dr, x, dy);
      b.geluBackward(dg, x, dy);
      const [inPlaceR, inPlaceG] = [input(rand(n, 15, -3, 3)), input(rand(n, 16, -3, 3))];
      b.relu(inPlaceR, inPlaceR);
      b.gelu(inPlaceG, inPlaceG);
      const [dyR, dyG] = [input(rand(n, 17)), input(rand(n, 18))];
      b.reluBackward(dyR, x, dyR);
      b.geluBackward(dyG, x, dyG);
      return [r, g, dr, dg, inPlaceR, inPlaceG, dyR, dyG];
    }));

  it('softmaxCrossEntropy, with huge logits in one row (atol 1e-5, rtol 1e-4)', () =>
    expectGpuMatchesCpu((b, input) => {
      const [rows, cols] = [37, 65];
      const logits = rand(rows * cols, 19, -4, 4);
      logits[5] = 1000;
      logits[6] = -1000;
      const targets = new Uint32Array(rows).map((_, r) => (r * 7) % cols);
      const [losses, probs, dLogits] = [input(zeros(rows)), input(zeros(rows * cols)), input(zeros(rows * cols))];
      b.softmaxCrossEntropy(losses, probs, dLogits, input(logits), input(targets), rows, cols, 1 / rows);
      return [losses, probs, dLogits];
    }));

  it('layerNorm forward and backward', () =>
    expectGpuMatchesCpu((b, input) => {
      const [rows, cols] = [19, 48];
      const x = input(rand(rows * cols, 20, -3, 5));
      const [gamma, beta] = [input(rand(cols, 21, 0.5, 1.5)), input(rand(cols, 22))];
      const [out, mean, rstd] = [input(zeros(rows * cols)), input(zeros(rows)), input(zeros(rows))];
      b.layerNorm(out, mean, rstd, x, gamma, beta, rows, cols);
      const [dx, dGamma, dBeta] = [input(rand(rows * cols, 23)), input(rand(cols, 24)), input(rand(cols, 25))];
      b.layerNormBackward(dx, dGamma, dBeta, input(rand(rows * cols, 26)), x, mean, rstd, gamma, rows, cols);
      return [out, mean, rstd, dx, dGamma, dBeta];
    }, { atol: 2e-5, rtol: 2e-4 }));

  it('embedding forward and deterministic backward (repeated tokens)', () =>
    expectGpuMatchesCpu((b, input) => {
      const [B, T, C, vocab] = [3, 5, 12, 11];
      const tokens = input(new Uint32Array(B * T).map((_, i) => (i * 5) % 7));
      const [wte, wpe] = [input(rand(vocab * C, 27)), input(rand(T * C, 28))];
      const out = input(zeros(B * T * C));
      b.embedding(out, tokens, wte, wpe, B, T, C);
      const [dWte, dWpe] = [input(rand(vocab * C, 29)), input(rand(T * C, 30))];
      b.embeddingBackward(dWte, dWpe, input(rand(B * T * C, 31)), tokens, B, T, C, vocab);
      return [out, dWte, dWpe];
    }));

  for (const [B, T, C, nHead] of [[1, 1, 4, 1], [2, 5, 12, 3], [2, 17, 32, 4]]) {
    it(`attention forward and backward, B=${B} T=${T} C=${C} nHead=${nHead} (atol 2e-5, rtol 2e-4)`, () =>
      expectGpuMatchesCpu((b, input) => {
        const qkv = input(rand(B * T * 3 * C, 32, -2, 2));
        const [out, att] = [input(zeros(B * T * C)), input(rand(B * nHead * T * T, 33))];
        b.attention(out, att, qkv, B, T, C, nHead);
        const dQkv = input(rand(B * T * 3 * C, 34));
        b.attentionBackward(dQkv, input(rand(B * T * C, 35)), qkv, att, B, T, C, nHead);
        return [out, att, dQkv];
      }, { atol: 2e-5, rtol: 2e-4 }));
  }

  it('sumSquares (n = 1 and n = 5000) and clipByNorm (clipping and not)', () =>
    expectGpuMatchesCpu((b, input) => {
      const g = input(rand(5000, 36));
      const [sumSq, one] = [input(zeros(1)), input(zeros(1))];
      b.sumSquares(sumSq, g);
      b.sumSquares(one, input(new Float32Array([3])));
      b.clipByNorm(g, sumSq, 2);
      const h = input(rand(100, 37));
      const hSq = input(zeros(1));
      b.sumSquares(hSq, h);
      b.clipByNorm(h, hSq, 100);
      return [sumSq, one, g, h];
    }, { atol: 1e-5, rtol: 1e-5 }));

  it('sumSquares of 300,000 elements at an offset (two levels across workgroups) matches the CPU', () =>
    expectGpuMatchesCpu((b, input) => {
      const g = input(rand(300_064, 43));
      const sumSq = input(zeros(1));
      b.sumSquares(sumSq, { ...g, offset: g.offset + 64, length: 300_000 });
      b.clipByNorm(g, sumSq, 50);
      return [sumSq, g];
    }, { atol: 1e-5, rtol: 1e-5 }));

  it('sumSquares adds in the same order every time (replicas must agree bit for bit)', async () => {
    const gpu = blocked;
    const x = viewOf(gpu.alloc(123_457, 'x', 'workspace'));
    gpu.write(x, rand(123_457, 44, -3, 3));
    const sums = gpu.alloc(65, 'sums', 'workspace');
    gpu.sumSquares(viewOf(sums, 0, 1), x);
    gpu.sumSquares(viewOf(sums, 64, 1), x);
    const [first, second] = [(await gpu.read(viewOf(sums, 0, 1)))[0], (await gpu.read(viewOf(sums, 64, 1)))[0]];
    gpu.free(x.buf);
    gpu.free(sums);
    expect(first).toBeGreaterThan(100_000);
    expect(second).toBe(first);
  });

  it('sgd and adamw, three steps each', () =>
    expectGpuMatchesCpu((b, input) => {
      const [p, g, buf] = [input(rand(n, 38)), input(rand(n, 39)), input(zeros(n))];
      const [q, m, v] = [input(rand(n, 40)), input(zeros(n)), input(zeros(n))];
      for (let step = 1; step <= 3; step++) {
        b.sgd(p, g, buf, { lr: 0.1, momentum: 0.9, weightDecay: 0.01 });
        b.adamw(q, g, m, v, { lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.1, step });
      }
      return [p, buf, q, m, v];
    }));

  it('elementwise ops past 65535 workgroups use a 2-D dispatch', async () => {
    const big = 65535 * 256 + 300;
    const gpu = blocked;
    const buf = gpu.alloc(big, 'big', 'workspace');
    gpu.fill(viewOf(buf), 2);
    gpu.scale(viewOf(buf), 1.5);
    const tail = await gpu.read(viewOf(buf, big - 300 - 20, 320));
    gpu.free(buf);
    expect(Array.from(new Set(tail))).toEqual([3]);
  });
});

describe('WebGpuBackend: buffers, batching and bad input', () => {
  it('readMany reads views of several buffers (f32 and u32, at offsets) in one round trip, equal to one read each', async () => {
    const b = blocked;
    const f = b.alloc(PAD + 37, 'f', 'workspace');
    const u = b.alloc(PAD + 11, 'u', 'workspace', 'u32');
    const floats = rand(37, 43);
    const words = Uint32Array.from({ length: 11 }, (_, i) => 0xffff_0000 + i * 977);
    b.write(viewOf(f, PAD, 37), floats);
    b.write(viewOf(u, PAD, 11), words);
    b.scale(viewOf(f, PAD, 37), 2); // recorded, not yet submitted: readMany must see it
    const views = [viewOf(f, PAD, 37), viewOf(u, PAD, 11), viewOf(f, PAD + 5, 3), viewOf(f, 0, 0)];
    const many = await b.readMany(views);
    const one = await Promise.all(views.map((v) => b.read(v)));
    b.free(f);
    b.free(u);
    expect(many.map((r) => Array.from(r))).toEqual(one.map((r) => Array.from(r)));
    expect(Array.from(many[0])).toEqual(Array.from(floats, (x) => x * 2));
    expect(Array.from(new Uint32Array(many[1].buffer))).toEqual(Array.from(words));
    expect(many[3].length).toBe(0);
  });

  it('repeating a training-step-like sequence allocates no GPU buffer the second time', async () => {
    const b = blocked;
    const [rows, cols, hidden] = [9, 13, 70];
    const x = viewOf(b.alloc(rows * cols, 'x', 'data'));
    b.write(x, rand(rows * cols, 41));
    const targets = viewOf(b.alloc(rows, 'y', 'data', 'u32'));
    b.write(targets, new Uint32Array(rows).map((_, i) => i % hidden));
    const w = viewOf(b.alloc(cols * hidden, 'w', 'params'));
    b.write(w, rand(cols * hidden, 42));
    const [dw, m, v] = ['dw', 'm', 'v'].map((name) => viewOf(b.alloc(cols * hidden, name, name === 'dw' ? 'grads' : 'optimizer')));
    const [h, probs, dh] = ['h', 'probs', 'dh'].map((name) => viewOf(b.alloc(rows * hidden, name, 'activations')));
    const losses = viewOf(b.alloc(rows, 'losses', 'activations'));
    const step = async (t: number) => {
      b.fill(dw, 0);
      b.matmul(h, x, w, rows, cols, hidden);
      b.softmaxCrossEntropy(losses, probs, dh, h, targets, rows, hidden, 1 / rows);
      b.matmul(dw, x, dh, cols, rows, hidden, { transA: true, accumulate: true });
      b.adamw(w, dw, m, v, { lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, step: t });
      return (await b.read(losses)).reduce((s, l) => s + l, 0);
    };
    const first = await step(1);
    const count = b.bufferCount();
    const memory = b.memory();
    const second = await step(2);
    expect(b.bufferCount()).toBe(count);
    expect(b.memory()).toEqual(memory);
    expect(second).toBeLessThan(first); // the step really trains
    for (const buf of [x, targets, w, dw, m, v, h, probs, dh, losses]) b.free(buf.buf);
  });

  it('keeps one read-back buffer per read size for reuse, and trimCaches drops the idle ones', async () => {
    const b = blocked;
    const x = b.alloc(1000, 'x', 'workspace');
    b.fill(viewOf(x), 2);
    const before = b.bufferCount();
    const sizes = [7, 13, 29];
    for (const n of sizes) expect(Array.from(await b.read(viewOf(x, 0, n)))).toEqual(new Array(n).fill(2));
    expect(b.bufferCount()).toBe(before + sizes.length);
    await b.read(viewOf(x, 0, 13)); // reused, not a new one
    expect(b.bufferCount()).toBe(before + sizes.length);
    b.trimCaches();
    expect(b.bufferCount()).toBeLessThanOrEqual(before);
    expect(Array.from(await b.read(viewOf(x, 0, 7)))).toEqual(new Array(7).fill(2));
    b.free(x);
  });

  it('counts memory by kind and frees', () => {
    const b = blocked;
    const before = b.memory();
    const count = b.bufferCount();
    const p = b.alloc(1000, 'p', 'params');
    expect(b.memory().params - before.params).toBe(4000);
    expect(b.bufferCount()).toBe(count + 1);
    b.free(p);
    expect(b.memory()).toEqual(before);
    expect(() => b.scale(viewOf(p), 2)).toThrow(/freed/);
  });

  it('the same op on the same views with new scalars in one batch keeps each call its own values', async () => {
    const b = blocked;
    const x = viewOf(b.alloc(10, 'x', 'workspace'));
    b.fill(x, 1);
    b.scale(x, 2);
    b.scale(x, 3); // same bind group, other uniform: must not overwrite the first call's 2
    b.write(viewOf(x.buf, 0, 1), new Float32Array([5])); // a write after recorded ops lands after them
    b.scale(x, 10);
    const out = await b.read(x);
    b.free(x.buf);
    expect(Array.from(out)).toEqual([50, ...new Array(9).fill(60)]);
  });

  it('rejects a misaligned view, overlapping operands and a read-only input beside a written one with clear errors', () => {
    const b = blocked;
    const buf = b.alloc(4 * PAD, 'acts', 'activations');
    expect(() => b.relu(viewOf(buf, 3, 10), viewOf(buf, PAD, 10))).toThrow(/starts at element 3, not a multiple of VIEW_ALIGNMENT/);
    expect(() => b.relu(viewOf(buf, 0, 2 * PAD), viewOf(buf, PAD, 2 * PAD))).toThrow(/overlap in acts/);
    // A read-only input (the gradients) in the buffer of a read_write binding, even in disjoint ranges.
    const [p, g, m, v] = [0, 1, 2, 3].map((i) => viewOf(buf, i * PAD, PAD));
    const adam = { lr: 0.1, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, step: 1 };
    expect(() => b.adamw(p, g, m, v, adam)).toThrow(/adamw: grads \(bound read-only\) and params \(bound read_write\) are both views of acts/);
    b.free(buf);
    expect(deviceProblems).toEqual([]);
  });
});
