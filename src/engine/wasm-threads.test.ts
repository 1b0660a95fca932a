// The fast CPU backend on several threads (a pool of worker_threads over one shared WebAssembly memory)
// against the reference CPU backend on awkward shapes, and bit for bit against itself on one thread
// (each output element is made by one thread in the single-thread order): matmul with its packing,
// attention forward and backward, layer norm forward and backward (its gain and bias gradients split by
// columns), GELU, softmax cross-entropy, the bias add and its gradient (by columns), the residual add
// and the embedding; the fallback to one thread where shared memory is missing,
// and the pool's failures as clear errors.
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { type Backend, viewOf } from './backend';
import { CpuBackend } from './cpu-backend';
import { randomUniform } from './gradcheck';
import { KernelThreadPool } from './kernel-threads';
import { wasmAdapter, WasmCpuBackend } from './wasm-backend';
import { defaultKernelThreads, fetchKernelBytes, THREADED_KERNELS_URL } from './wasm-kernels';
import { aliasedMatmulDiff, MATMUL_CHECKS, matmulCases, matmulOn, maxDiff, layerNormCase, softmaxCase, upload } from './wasm-test-support';
import { buildWasm } from '../../scripts/build-wasm';

await buildWasm();

const reference = new CpuBackend();
const single = await WasmCpuBackend.create(undefined, { threads: 1 });
// Every op threaded, however small, in chunks as small as one row, so that the awkward shapes exercise the split.
const threaded = await WasmCpuBackend.create(undefined, { threads: 3, threadedMinMacs: 0, threadedMinElements: 0 });
const threadedDefault = await WasmCpuBackend.create(undefined, { threads: 2 });
afterAll(() => {
  threaded.close();
  threadedDefault.close();
});

const bits = (a: Float32Array) => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));

// [M, K, N]: fewer 4-row panels than threads (M = 1, 5), panels not divisible by 3, primes, K past one
// 256-deep K block, M past one 64-row M block, and one product past the default threshold.
const SHAPES: [number, number, number][] = [
  [1, 1, 1], [5, 3, 7], [7, 1, 5], [13, 17, 11], [31, 37, 41], [67, 70, 9], [2, 513, 3], [97, 257, 89], [131, 300, 67],
];

describe('threaded matmul: |threads - reference| <= 1e-6 * K per element, inputs in [-1, 1], and the same bits as one thread', () => {
  it('runs on 3 threads and its adapter says so', () => {
    expect(threaded.threads).toBe(3);
    expect(threaded.info.adapter).toBe(wasmAdapter(3));
    expect(threaded.info.adapter).toMatch(/threads: 3/);
  });

  MATMUL_CHECKS.forEach(([layoutName, title, opts], i) => {
    it(`${title} on ${SHAPES.length} awkward shapes`, async () => {
      for (const c of matmulCases(SHAPES, layoutName, opts, 3000 + 100 * i)) {
        const got = await c.on(threaded);
        expect(maxDiff(got, await c.on(reference)), c.label).toBeLessThanOrEqual(1e-6 * c.K);
        expect(bits(got), c.label).toEqual(bits(await c.on(single)));
      }
    });
  });

  it('past the default threshold (MNIST layer 1, 128x784x256) on 2 threads: the same bits as one thread, within 1e-6 * K of the reference', async () => {
    const [M, K, N] = [128, 784, 256];
    const a = randomUniform(M * K, 1);
    const b = randomUniform(K * N, 2);
    const zero = new Float32Array(M * N);
    const got = await matmulOn(threadedDefault, a, b, zero, M, K, N, {});
    expect(bits(got)).toEqual(bits(await matmulOn(single, a, b, zero, M, K, N, {})));
    expect(maxDiff(got, await matmulOn(reference, a, b, zero, M, K, N, {}))).toBeLessThanOrEqual(1e-6 * K);
  });

  it('out may alias an input on threads too (within 1e-6 * 37)', async () => {
    expect(await aliasedMatmulDiff(reference, threaded)).toBeLessThanOrEqual(1e-6 * 37);
  });
});

/** The ops a helper thread was given a share of while `run` ran (the pool's job names). */
async function splitOps(run: () => Promise<void>): Promise<Set<string>> {
  const spy = vi.spyOn(KernelThreadPool.prototype, 'parallelFor');
  try {
    await run();
    return new Set(spy.mock.calls.map((call) => call[0]));
  } finally {
    spy.mockRestore();
  }
}

/** Runs `op` on the reference, one thread and three: the three results, each a list of outputs. */
async function onEach(op: (backend: Backend) => Promise<Float32Array[]>): Promise<{ want: Float32Array[]; one: Float32Array[]; three: Float32Array[] }> {
  const [want, one, three] = [await op(reference), await op(single), await op(threaded)];
  return { want, one, three };
}

/** Threaded outputs have the bits of one thread's, and each is within `tolerance(i)` of the reference's. */
function expectSplitExact(r: { want: Float32Array[]; one: Float32Array[]; three: Float32Array[] }, names: string[], label: string, tolerance: (i: number) => number): void {
  names.forEach((name, i) => {
    expect(bits(r.three[i]), `${name} ${label}: threads vs one thread`).toEqual(bits(r.one[i]));
    expect(maxDiff(r.three[i], r.want[i]), `${name} ${label}: threads vs reference`).toBeLessThanOrEqual(tolerance(i));
  });
}

// [B, T, C, nHead]: one (batch, head) pair, pairs not divisible by 3, head sizes 1, 3, 4, 5, 8 and 14 (SIMD lanes and tails), T up to 33.
const ATTENTION_SHAPES: [number, number, number, number][] = [[1, 1, 1, 1], [1, 5, 3, 3], [2, 7, 15, 3], [5, 9, 20, 5], [2, 17, 24, 3], [3, 33, 28, 2], [4, 6, 12, 4], [2, 11, 42, 2]];

describe('threaded attention, split by (batch, head): the bits of one thread; vs the reference forward <= 1e-5, backward <= 1e-4, qkv in [-2, 2]', () => {
  it(`forward and backward on ${ATTENTION_SHAPES.length} awkward shapes, stale att, out and dQkv overwritten`, async () => {
    let seed = 4000;
    const ops = await splitOps(async () => {
      for (const [B, T, C, nHead] of ATTENTION_SHAPES) {
        const qkv = randomUniform(B * T * 3 * C, seed++).map((x) => 2 * x);
        const dOut = randomUniform(B * T * C, seed++);
        const stale = seed++;
        const r = await onEach(async (backend) => {
          const att = upload(backend, randomUniform(B * nHead * T * T, stale));
          const out = upload(backend, randomUniform(B * T * C, stale + 1));
          const qv = upload(backend, qkv);
          backend.attention(out, att, qv, B, T, C, nHead);
          const dQkv = upload(backend, randomUniform(B * T * 3 * C, stale + 2));
          backend.attentionBackward(dQkv, upload(backend, dOut), qv, att, B, T, C, nHead);
          return Promise.all([att, out, dQkv].map((v) => backend.read(v)));
        });
        expectSplitExact(r, ['att', 'out', 'dQkv'], `B=${B} T=${T} C=${C} nHead=${nHead}`, (i) => (i < 2 ? 1e-5 : 1e-4));
      }
    });
    expect([...ops]).toEqual(expect.arrayContaining(['attention', 'attentionBackward']));
  });
});

// [rows, cols]: one row, one column, fewer rows than threads, columns past one and several 16-column chunks with tails, 1,000 columns.
const LAYER_NORM_SHAPES: [number, number][] = [[1, 1], [2, 3], [7, 37], [13, 70], [33, 17], [3, 1000], [64, 65], [100, 16]];

describe('threaded layer norm: rows split, gain and bias gradients split by columns (each summed over the rows in row order); the bits of one thread; vs the reference forward <= 1e-5 (rstd relative to its size), backward <= 1e-4', () => {
  it(`on ${LAYER_NORM_SHAPES.length} awkward shapes; dGamma and dBeta accumulate onto what was there`, async () => {
    let seed = 4500;
    const ops = await splitOps(async () => {
      for (const [rows, cols] of LAYER_NORM_SHAPES) {
        const r = await onEach(layerNormCase(rows, cols, seed).on);
        seed += 6;
        // rstd can be large for a 1-column row (variance 0): against the reference it is compared relative to its size.
        const rstdScale = Math.max(1, ...r.want[2].map(Math.abs));
        expectSplitExact(r, ['out', 'mean', 'rstd', 'dx', 'dGamma', 'dBeta'], `rows=${rows} cols=${cols}`, (i) => (i === 2 ? 1e-5 * rstdScale : i < 2 ? 1e-5 : 1e-4));
      }
    });
    expect([...ops]).toEqual(expect.arrayContaining(['layerNorm', 'layerNormBackwardRows', 'layerNormParamGrads']));
  });
});

describe('threaded GELU, split by elements: the bits of one thread; vs the reference <= 1e-6, x in [-6, 6]', () => {
  it('forward, backward (dx aliasing dy) and in place on 1, 7, 1,031 and 100,003 elements', async () => {
    let seed = 5000;
    const ops = await splitOps(async () => {
      for (const n of [1, 7, 1031, 100_003]) {
        const x = randomUniform(n, seed++).map((v) => 6 * v);
        const dy = randomUniform(n, seed++);
        const r = await onEach(async (backend) => {
          const [xv, out, dx, inPlace] = [upload(backend, x), upload(backend, new Float32Array(n)), upload(backend, dy), upload(backend, x)];
          backend.gelu(out, xv);
          backend.geluBackward(dx, xv, dx);
          backend.gelu(inPlace, inPlace);
          return Promise.all([out, dx, inPlace].map((v) => backend.read(v)));
        });
        expectSplitExact(r, ['gelu', 'geluBackward', 'gelu in place'], `n=${n}`, () => 1e-6);
      }
    });
    expect([...ops]).toEqual(expect.arrayContaining(['gelu', 'geluBackward']));
  });
});

describe('threaded bias add (rows), bias gradient (columns, each summed in row order), residual add (elements) and embedding (rows): the bits of one thread and of the reference', () => {
  it('on rows x cols 1x1, 3x5, 7x9, 37x13, 64x65 and 300x200; adds of 1 to 100,003 elements; embeddings with repeated tokens', async () => {
    let seed = 5200;
    const ops = await splitOps(async () => {
      for (const [rows, cols] of [[1, 1], [3, 5], [7, 9], [37, 13], [64, 65], [300, 200]]) {
        const [x, bias, dOut, start] = [randomUniform(rows * cols, seed++), randomUniform(cols, seed++), randomUniform(rows * cols, seed++), randomUniform(cols, seed++)];
        const r = await onEach(async (backend) => {
          const [out, db] = [upload(backend, new Float32Array(rows * cols)), upload(backend, start)];
          backend.biasAdd(out, upload(backend, x), upload(backend, bias), rows, cols);
          backend.biasBackward(db, upload(backend, dOut), rows, cols);
          return Promise.all([out, db].map((v) => backend.read(v)));
        });
        expectSplitExact(r, ['biasAdd', 'biasBackward'], `${rows}x${cols}`, () => 0);
      }
      for (const n of [1, 7, 1031, 100_003]) {
        const [a, b] = [randomUniform(n, seed++), randomUniform(n, seed++)];
        const r = await onEach(async (backend) => {
          const [out, av, bv] = [upload(backend, new Float32Array(n)), upload(backend, a), upload(backend, b)];
          backend.add(out, av, bv);
          backend.addInPlace(av, bv);
          return Promise.all([out, av].map((v) => backend.read(v)));
        });
        expectSplitExact(r, ['add', 'addInPlace'], `n=${n}`, () => 0);
      }
      for (const [B, T, C, vocab] of [[1, 1, 1, 1], [3, 7, 13, 9], [16, 64, 64, 65]]) {
        const tokens = Uint32Array.from(randomUniform(B * T, seed++, 0, 1), (u) => Math.min(vocab - 1, Math.floor(u * vocab)));
        const [wte, wpe] = [randomUniform(vocab * C, seed++), randomUniform(T * C, seed++)];
        const r = await onEach(async (backend) => {
          const tok = viewOf(backend.alloc(B * T, 'tokens', 'data', 'u32'));
          backend.write(tok, tokens);
          const out = upload(backend, new Float32Array(B * T * C));
          backend.embedding(out, tok, upload(backend, wte), upload(backend, wpe), B, T, C);
          return [await backend.read(out)];
        });
        expectSplitExact(r, ['embedding'], `B=${B} T=${T} C=${C}`, () => 0);
      }
    });
    expect([...ops]).toEqual(expect.arrayContaining(['biasAdd', 'biasBackward', 'add', 'embedding']));
  });
});

describe('threaded softmax cross-entropy, split by rows: the bits of one thread; vs the reference probs and dLogits within 2e-7 * (1 + |x|), losses 2e-6 * (1 + |x|), logits in [-40, 40]', () => {
  it('on rows x cols 1x1, 3x2, 7x10, 37x13, 64x65 and 3x1,000', async () => {
    let seed = 5500;
    const ops = await splitOps(async () => {
      for (const [rows, cols] of [[1, 1], [3, 2], [7, 10], [37, 13], [64, 65], [3, 1000]]) {
        const r = await onEach(softmaxCase(rows, cols, seed++).on);
        const label = `rows=${rows} cols=${cols}`;
        ['losses', 'probs', 'dLogits'].forEach((name, i) => {
          expect(bits(r.three[i]), `${name} ${label}: threads vs one thread`).toEqual(bits(r.one[i]));
          const bound = i === 0 ? 2e-6 : 2e-7;
          r.want[i].forEach((w, j) => expect(Math.abs(r.three[i][j] - w), `${name} ${label} at ${j}`).toBeLessThanOrEqual(bound * (1 + Math.abs(w))));
        });
      }
    });
    expect(ops.has('softmaxCrossEntropyRows')).toBe(true);
  });
});

describe('threaded packing: both packings of a matmul as one job', () => {
  it('the awkward-shape products above split their packing too; threadedOps limits the split to the product', async () => {
    const [M, K, N] = [37, 29, 19];
    const a = randomUniform(M * K, 31);
    const b = randomUniform(K * N, 32);
    const zero = new Float32Array(M * N);
    let got: Float32Array = new Float32Array(0);
    expect(await splitOps(async () => void (got = await matmulOn(threaded, a, b, zero, M, K, N, { transA: true })))).toEqual(new Set(['packPanels', 'gemmPacked']));
    expect(bits(got)).toEqual(bits(await matmulOn(single, a, b, zero, M, K, N, { transA: true })));
    const productOnly = await WasmCpuBackend.create(undefined, { threads: 2, threadedMinMacs: 0, threadedMinElements: 0, threadedOps: ['matmul'] });
    try {
      const x = upload(productOnly, randomUniform(64 * 40, 33));
      const ops = await splitOps(async () => {
        expect(bits(await matmulOn(productOnly, a, b, zero, M, K, N, { transA: true }))).toEqual(bits(got));
        productOnly.gelu(x, x);
      });
      expect(ops).toEqual(new Set(['gemmPacked']));
    } finally {
      productOnly.close();
    }
    // @ts-expect-error: an op kind that does not exist
    await expect(WasmCpuBackend.create(undefined, { threads: 2, threadedOps: ['conv'] })).rejects.toThrow(/unknown op kind conv/);
  });
});

describe('threads: where they run and where they do not', () => {
  afterEach(() => {
    vi.unstubAllGlobals();
  });

  it('a page that is not cross-origin isolated gets one thread and says why; an isolated one gets its cores (at most 8)', () => {
    vi.stubGlobal('crossOriginIsolated', false);
    expect(defaultKernelThreads()).toEqual({ threads: 1, why: 'not cross-origin isolated' });
    vi.stubGlobal('crossOriginIsolated', true);
    vi.stubGlobal('navigator', { hardwareConcurrency: 2 });
    expect(defaultKernelThreads()).toEqual({ threads: 2, why: null });
    vi.stubGlobal('navigator', { hardwareConcurrency: 64 });
    expect(defaultKernelThreads()).toEqual({ threads: 8, why: null });
  });

  it('without SharedArrayBuffer, threads=3 falls back to one thread, says why, and still matches the reference', async () => {
    vi.stubGlobal('SharedArrayBuffer', undefined);
    const fallback = await WasmCpuBackend.create(undefined, { threads: 3 });
    expect(fallback.threads).toBe(1);
    expect(fallback.info.adapter).toBe(wasmAdapter(1, 'threads unavailable: no SharedArrayBuffer'));
    const a = randomUniform(6 * 5, 11);
    const b = randomUniform(5 * 4, 12);
    const zero = new Float32Array(6 * 4);
    expect(maxDiff(await matmulOn(fallback, a, b, zero, 6, 5, 4, {}), await matmulOn(reference, a, b, zero, 6, 5, 4, {}))).toBeLessThanOrEqual(5e-6);
  });

  it('threads=0 is a clear error', async () => {
    await expect(WasmCpuBackend.create(undefined, { threads: 0 })).rejects.toThrow(/whole number >= 1/);
  });
});

describe('KernelThreadPool', () => {
  const threadedModule = async () => WebAssembly.compile((await fetchKernelBytes(THREADED_KERNELS_URL)) as BufferSource);

  interface Gemm {
    gemmPacked(...args: number[]): void;
    packA(...args: number[]): void;
    packB(...args: number[]): void;
  }

  /** A packed 37x29x19 product laid out in `memory`: its arguments, and C as one call computes it. */
  function packedProduct(k: Gemm, memory: WebAssembly.Memory): { args: number[]; Mp: number; c: () => number[]; oneCall: number[] } {
    const [M, K, N, Mp, Np] = [37, 29, 19, 40, 24];
    const [aAt, bAt, apAt, bpAt, cpAt] = [4096, 12288, 20480, 28672, 36864];
    new Float32Array(memory.buffer, aAt, M * K).set(randomUniform(M * K, 21));
    new Float32Array(memory.buffer, bAt, K * N).set(randomUniform(K * N, 22));
    k.packA(aAt, apAt, M, K, 0);
    k.packB(bAt, bpAt, K, N, 0);
    const c = () => Array.from(new Uint32Array(memory.buffer, cpAt, Mp * Np));
    k.gemmPacked(apAt, bpAt, cpAt, M, K, N, 0, Mp);
    const oneCall = c();
    new Float32Array(memory.buffer, cpAt, Mp * Np).fill(0);
    return { args: [apAt, bpAt, cpAt, M, K, N, 0, 0], Mp, c, oneCall };
  }

  it('covers every chunk of the range: a product split in 4-row chunks between 2 helpers alone, then with the caller, has the bits of one call', async () => {
    const module = await threadedModule();
    const memory = new WebAssembly.Memory({ initial: 1, maximum: 16, shared: true });
    const k = (await WebAssembly.instantiate(module, { env: { memory } })).exports as unknown as Gemm;
    const pool = await KernelThreadPool.start(module, memory, 2, ['gemmPacked']);
    try {
      const { args, Mp, c, oneCall } = packedProduct(k, memory);
      expect(oneCall.some((bitsOf) => bitsOf !== 0)).toBe(true);
      pool.parallelFor('gemmPacked', args, 6, Mp, 4, null);
      expect(c()).toEqual(oneCall);
      new Uint32Array(memory.buffer, args[2], oneCall.length).fill(0);
      const mine: number[] = [];
      pool.parallelFor('gemmPacked', args, 6, Mp, 4, (from, to) => {
        mine.push(from);
        k.gemmPacked(...args.slice(0, 6), from, to);
      });
      expect(c()).toEqual(oneCall);
      expect(new Set(mine).size).toBe(mine.length);
    } finally {
      pool.close();
    }
  });

  it('a kernel that traps in a helper (an address past the memory) makes the job throw, and the pool runs the next job', async () => {
    const module = await threadedModule();
    const memory = new WebAssembly.Memory({ initial: 1, maximum: 16, shared: true });
    const k = (await WebAssembly.instantiate(module, { env: { memory } })).exports as unknown as Gemm;
    const pool = await KernelThreadPool.start(module, memory, 1, ['gemmPacked']);
    try {
      expect(pool.size).toBe(1);
      expect(() => pool.parallelFor('gemmPacked', [1 << 30, 1 << 30, 1 << 30, 8, 8, 8, 0, 0], 6, 8, 4, null)).toThrow(/a kernel failed in a helper thread/);
      const { args, Mp, c, oneCall } = packedProduct(k, memory);
      pool.parallelFor('gemmPacked', args, 6, Mp, 8, null);
      expect(c()).toEqual(oneCall);
      expect(() => pool.parallelFor('softmax', [0, 0], 0, 1, 1, null)).toThrow(/unknown op softmax/);
      expect(() => pool.parallelFor('gemmPacked', args, 6, Mp, 0, null)).toThrow(/bad range/);
    } finally {
      pool.close();
    }
    expect(() => pool.parallelFor('gemmPacked', [0, 0], 0, 1, 1, null)).toThrow(/closed/);
  });

  it('an unshared memory is refused before any thread starts', async () => {
    await expect(KernelThreadPool.start(await threadedModule(), new WebAssembly.Memory({ initial: 1 }), 1, ['gelu'])).rejects.toThrow(/not shared/);
  });
});
