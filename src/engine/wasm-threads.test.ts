// The fast CPU backend on several threads (a pool of worker_threads over one shared WebAssembly memory)
// against the reference CPU backend on awkward shapes, and bit for bit against itself on one thread
// (each result row is summed by one thread in the single-thread order); the fallback to one thread
// where shared memory is missing, and the pool's failures as clear errors.
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { CpuBackend } from './cpu-backend';
import { randomUniform } from './gradcheck';
import { KernelThreadPool } from './kernel-threads';
import { wasmAdapter, WasmCpuBackend } from './wasm-backend';
import { defaultKernelThreads, fetchKernelBytes, THREADED_KERNELS_URL } from './wasm-kernels';
import { aliasedMatmulDiff, MATMUL_CHECKS, matmulCases, matmulOn, maxDiff } from './wasm-test-support';
import { buildWasm } from '../../scripts/build-wasm';

await buildWasm();

const reference = new CpuBackend();
const single = await WasmCpuBackend.create(undefined, { threads: 1 });
// Every matmul threaded, however small, so that the awkward shapes exercise the split.
const threaded = await WasmCpuBackend.create(undefined, { threads: 3, threadedMinMacs: 0 });
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
