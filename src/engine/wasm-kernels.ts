// Loads the fast CPU backend's WebAssembly kernels (built from wasm/kernels.ts into
// src/engine/generated/kernels.wasm and kernels-threads.wasm by `npm run build:wasm`) and lays out their
// linear memory for one op at a time. Guarantees: it instantiates only where WebAssembly SIMD validates
// (the answer is a clear error otherwise, so the caller can fall back to the reference backend), and
// every op reads its inputs before it writes its output, so `out` may alias `a` or `b`.
// Threads: asked for more than one, it loads the threaded build on a shared memory and starts a pool of
// helper threads (kernel-threads.ts) that share a large op with the calling thread: a matmul's packing
// and product rows, attention's (batch, head) pairs, layer norm's rows (its gain and bias gradients by
// columns), GELU's elements, softmax cross-entropy's rows, the bias add's rows (its gradient by
// columns), the residual add's elements and the embedding's rows. Every output element is made by one thread
// in the same order as on one thread, so the bits do not depend on the thread count. Where shared memory is unavailable (a page that is not cross-origin isolated) or the pool
// cannot start, it runs on one thread and says why (`threadNote`).
import { KernelThreadPool } from './kernel-threads';

/** The kernels' exports (see wasm/kernels.ts). Addresses are byte offsets into `memory`. */
interface KernelExports {
  readonly memory: WebAssembly.Memory;
  heapBase(): number;
  paddedRows(M: number): number;
  paddedCols(N: number): number;
  packPanels(aSrc: number, aDst: number, M: number, K: number, transA: number, bSrc: number, bDst: number, N: number, transB: number, from: number, to: number): void;
  gemmPacked(ap: number, bp: number, cp: number, M: number, K: number, N: number, rowFrom: number, rowTo: number): void;
  unpad(cp: number, out: number, M: number, N: number, accumulate: number): void;
  attention(out: number, att: number, qkv: number, B: number, T: number, C: number, nHead: number, from: number, to: number): void;
  attentionBackward(dQkv: number, dOut: number, qkv: number, att: number, scratch: number, B: number, T: number, C: number, nHead: number, from: number, to: number): void;
  gelu(out: number, x: number, from: number, to: number): void;
  geluBackward(dx: number, x: number, dy: number, from: number, to: number): void;
  layerNorm(out: number, mean: number, rstd: number, x: number, gamma: number, beta: number, cols: number, from: number, to: number): void;
  layerNormBackwardRows(dx: number, dy: number, x: number, mean: number, rstd: number, gamma: number, cols: number, from: number, to: number): void;
  layerNormParamGrads(dGamma: number, dBeta: number, dy: number, x: number, mean: number, rstd: number, rows: number, cols: number, from: number, to: number): void;
  adamw(p: number, g: number, m: number, v: number, n: number, lr: number, beta1: number, beta2: number, eps: number, wd: number, c1: number, c2: number): void;
  softmaxCrossEntropyRows(losses: number, probs: number, dLogits: number, logits: number, targets: number, cols: number, gradScaleBits: number, from: number, to: number): void;
  tanh(out: number, x: number, from: number, to: number): void;
  biasAdd(out: number, x: number, bias: number, cols: number, from: number, to: number): void;
  biasBackward(dBias: number, dOut: number, rows: number, cols: number, from: number, to: number): void;
  add(out: number, a: number, b: number, from: number, to: number): void;
  embedding(out: number, tokens: number, wte: number, wpe: number, T: number, C: number, from: number, to: number): void;
  embeddingBackward(dWte: number, dWpe: number, dOut: number, tokens: number, BT: number, T: number, C: number): void;
}

/**
 * Every function KernelExports names, looked for when a build is loaded: a kernels.wasm built before a
 * kernel was added lacks it, and the first call would fail far from the cause ("apply was called on
 * undefined"). `satisfies` keeps this list and the interface the same set of names.
 */
const KERNEL_FUNCTIONS = {
  heapBase: true,
  paddedRows: true,
  paddedCols: true,
  packPanels: true,
  gemmPacked: true,
  unpad: true,
  attention: true,
  attentionBackward: true,
  gelu: true,
  geluBackward: true,
  layerNorm: true,
  layerNormBackwardRows: true,
  layerNormParamGrads: true,
  adamw: true,
  softmaxCrossEntropyRows: true,
  tanh: true,
  biasAdd: true,
  biasBackward: true,
  add: true,
  embedding: true,
  embeddingBackward: true,
} satisfies Record<Exclude<keyof KernelExports, 'memory'>, true>;

/** The instance's exports as KernelExports, or an error naming what a stale build lacks and how to rebuild it. */
export function kernelExportsOf(instance: WebAssembly.Instance, build: string): KernelExports {
  const missing = Object.keys(KERNEL_FUNCTIONS).filter((name) => typeof instance.exports[name] !== 'function');
  if (missing.length > 0) {
    throw new Error(`${build} is older than the code that calls it (no ${missing.join(', ')}): rebuild it with \`npm run build:wasm\` (npm start and npm test do it first)`);
  }
  return instance.exports as unknown as KernelExports;
}

/** The kernels a helper thread may run: each takes a range [from, to) as its last two arguments. */
type RangeKernel =
  | 'gemmPacked' | 'packPanels' | 'attention' | 'attentionBackward' | 'gelu' | 'geluBackward' | 'layerNorm' | 'layerNormBackwardRows'
  | 'layerNormParamGrads' | 'softmaxCrossEntropyRows' | 'biasAdd' | 'biasBackward' | 'add' | 'embedding';
const THREAD_OPS: readonly RangeKernel[] = [
  'gemmPacked', 'packPanels', 'attention', 'attentionBackward', 'gelu', 'geluBackward', 'layerNorm', 'layerNormBackwardRows',
  'layerNormParamGrads', 'softmaxCrossEntropyRows', 'biasAdd', 'biasBackward', 'add', 'embedding',
];

/** The op kinds that may run on several threads; KernelLoadOptions.threadedOps picks among them. */
export const THREADED_OPS = ['matmul', 'packing', 'attention', 'layerNorm', 'gelu', 'softmaxCrossEntropy', 'bias', 'add', 'embedding'] as const;
export type ThreadedOp = (typeof THREADED_OPS)[number];

// i32.const 0; i8x16.splat; i8x16.popcnt: the smallest function that needs SIMD (wasm-feature-detect's).
const SIMD_PROBE = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 10, 1, 8, 0, 65, 0, 253, 15, 253, 98, 11]);

export function wasmSimdSupported(): boolean {
  try {
    return typeof WebAssembly === 'object' && WebAssembly.validate(SIMD_PROBE);
  } catch {
    return false;
  }
}

export const KERNELS_URL = new URL('./generated/kernels.wasm', import.meta.url);
export const THREADED_KERNELS_URL = new URL('./generated/kernels-threads.wasm', import.meta.url);
/**
 * The threaded build's shared memory maximum in 64 KiB pages (a shared memory must declare one; the
 * build, scripts/build-wasm.ts, declares this one): 2 GiB, far past the lab's largest step.
 */
export const SHARED_MAXIMUM_PAGES = 32768;
/** More threads than this gain little for the lab's sizes and cost memory bandwidth. */
export const MAX_KERNEL_THREADS = 8;
/** A matmul of fewer multiply-adds runs on one thread: waking the helpers costs more than it saves. */
export const THREADED_MATMUL_MIN_MACS = 1 << 20;
/**
 * Chunks of a threaded matmul per thread: enough that a thread the OS holds back (a busy machine) costs
 * the others little; each chunk at least MIN_CHUNK_ROWS rows, so that B's packed panels, streamed once
 * per chunk, stay a small part of the work.
 */
const CHUNKS_PER_THREAD = 8;
const MIN_CHUNK_ROWS = 16;
/**
 * An op over fewer elements than this (rows x cols, or a matmul's packed panels) runs on one thread.
 * Small on purpose: chunks go to whichever thread is free, so the caller never waits for a helper that
 * has not woken, and the cost of a split is one wake-up plus at most one chunk's wait.
 */
export const THREADED_MIN_ELEMENTS = 1 << 14;
/** Elements per chunk of a row-wise or elementwise op at least (a chunk's own cost stays above its claim). */
const MIN_CHUNK_ELEMENTS = 2048;

/**
 * The threads a page's kernels should use: every core (up to MAX_KERNEL_THREADS) where the page is
 * cross-origin isolated (so SharedArrayBuffer exists), else one, with the reason.
 */
export function defaultKernelThreads(): { threads: number; why: string | null } {
  const g = globalThis as { crossOriginIsolated?: boolean; navigator?: { hardwareConcurrency?: number } };
  // Outside a page (Node: tools, tests) there is no such flag: one thread unless asked for more.
  if (g.crossOriginIsolated === undefined) return { threads: 1, why: null };
  if (!g.crossOriginIsolated) return { threads: 1, why: 'not cross-origin isolated' };
  const cores = g.navigator?.hardwareConcurrency ?? 1;
  return { threads: Math.max(1, Math.min(MAX_KERNEL_THREADS, cores)), why: null };
}

export interface KernelLoadOptions {
  /** Threads in all, the caller's included (default: defaultKernelThreads()). 1: no helpers. */
  threads?: number;
  /** The threaded build's bytes (default: fetched from THREADED_KERNELS_URL). */
  threadedBytes?: BufferSource;
  /** Matmuls and attention of at least this many multiply-adds use the helpers (default THREADED_MATMUL_MIN_MACS; tests use 0). */
  threadedMinMacs?: number;
  /**
   * Row-wise and elementwise ops and packings of at least this many elements use them, in chunks of at
   * least min(this, MIN_CHUNK_ELEMENTS) elements (default THREADED_MIN_ELEMENTS; tests use 0: every op
   * split, in chunks as small as one row, so that awkward shapes exercise the split).
   */
  threadedMinElements?: number;
  /** The op kinds split between threads (default all of THREADED_OPS; `['matmul']` is the product alone, for comparisons). */
  threadedOps?: readonly ThreadedOp[];
}

/** When an op runs on several threads. */
interface SplitRule {
  minMacs: number;
  minElements: number;
  ops: ReadonlySet<ThreadedOp>;
}

/** The kernels' bytes: fetched in a browser, read from disk under Node (tests, tools). */
export async function fetchKernelBytes(url: URL = KERNELS_URL): Promise<ArrayBuffer | Uint8Array> {
  if (url.protocol === 'file:') {
    const fs = 'node:fs/promises';
    const { readFile } = (await import(/* @vite-ignore */ fs)) as typeof import('node:fs/promises');
    try {
      return await readFile(url);
    } catch (error) {
      throw new Error(`WASM kernels missing at ${url.pathname}: run \`npm run build:wasm\` (${error instanceof Error ? error.message : error})`);
    }
  }
  const response = await fetch(url);
  if (!response.ok) throw new Error(`WASM kernels: ${url.href} answered ${response.status}`);
  return response.arrayBuffer();
}

const ALIGN = 16; // v128 loads are fastest 16-byte aligned
const PAGE = 65536;

function alignUp(n: number): number {
  return Math.ceil(n / ALIGN) * ALIGN;
}

const ABORT = () => {
  throw new Error('WASM kernel aborted');
};

export class WasmKernels {
  private constructor(
    private readonly k: KernelExports,
    private readonly pool: KernelThreadPool | null,
    /** Why only one thread runs when more were possible or asked for; null when all asked for run. */
    readonly threadNote: string | null,
    private readonly split: SplitRule,
  ) {}

  /**
   * The kernels on one thread (`bytes`: the single-thread build, fetched when absent), or on
   * `options.threads` where shared memory and workers allow (else one thread, and `threadNote` says why).
   */
  static async load(bytes?: BufferSource, options: KernelLoadOptions = {}): Promise<WasmKernels> {
    if (!wasmSimdSupported()) throw new Error('this browser has no WebAssembly SIMD');
    const asked = options.threads === undefined ? defaultKernelThreads() : { threads: options.threads, why: null };
    if (!Number.isInteger(asked.threads) || asked.threads < 1) throw new RangeError(`kernel threads must be a whole number >= 1, got ${asked.threads}`);
    const unknown = (options.threadedOps ?? []).filter((op) => !(THREADED_OPS as readonly string[]).includes(op));
    if (unknown.length > 0) throw new RangeError(`threadedOps: unknown op kind ${unknown.join(', ')} (known: ${THREADED_OPS.join(', ')})`);
    let note = asked.why;
    if (asked.threads > 1) {
      const split: SplitRule = {
        minMacs: options.threadedMinMacs ?? THREADED_MATMUL_MIN_MACS,
        minElements: options.threadedMinElements ?? THREADED_MIN_ELEMENTS,
        ops: new Set(options.threadedOps ?? THREADED_OPS),
      };
      try {
        return await WasmKernels.loadThreaded(asked.threads, options.threadedBytes, split);
      } catch (error) {
        note = `threads unavailable: ${error instanceof Error ? error.message : String(error)}`;
      }
    }
    const module = await WebAssembly.compile((bytes ?? (await fetchKernelBytes())) as BufferSource);
    const instance = await WebAssembly.instantiate(module, { env: { abort: ABORT } });
    return new WasmKernels(kernelExportsOf(instance, 'the WebAssembly kernels (kernels.wasm)'), null, note, { minMacs: Infinity, minElements: Infinity, ops: new Set() });
  }

  private static async loadThreaded(threads: number, bytes: BufferSource | undefined, split: SplitRule): Promise<WasmKernels> {
    if (typeof SharedArrayBuffer !== 'function') throw new Error('no SharedArrayBuffer');
    const module = await WebAssembly.compile((bytes ?? (await fetchKernelBytes(THREADED_KERNELS_URL))) as BufferSource);
    const memory = new WebAssembly.Memory({ initial: 1, maximum: SHARED_MAXIMUM_PAGES, shared: true });
    const instance = await WebAssembly.instantiate(module, { env: { memory, abort: ABORT } });
    const exports = kernelExportsOf(instance, 'the threaded WebAssembly kernels (kernels-threads.wasm)');
    const pool = await KernelThreadPool.start(module, memory, threads - 1, THREAD_OPS);
    return new WasmKernels(exports, pool, null, split);
  }

  /** Threads that run a large op, the caller's included. */
  get threads(): number {
    return 1 + (this.pool?.size ?? 0);
  }

  /** Stops the helper threads (the kernels then run on one thread). */
  close(): void {
    this.pool?.close();
  }

  /** Bytes of linear memory the kernels hold now (it grows to the largest matmul seen, never shrinks). */
  memoryBytes(): number {
    return this.k.memory.buffer.byteLength;
  }

  /**
   * Runs range kernel `kernel` over [0, units) with `args` (its range, the last two arguments, filled
   * in): on every thread when `op` is split and the op is large enough (`big`), in chunks of `step`
   * units (from whichever thread is free), else in one call here. The kernels make every output
   * element in one call, in the single-thread order, so the bits do not depend on the split.
   */
  private ranges(op: ThreadedOp, kernel: RangeKernel, args: number[], units: number, step: number, big: boolean): void {
    const run = this.k[kernel] as (...a: number[]) => void;
    const at = args.length;
    if (this.pool === null || !big || !this.split.ops.has(op) || step >= units) {
      run(...args, 0, units);
      return;
    }
    this.pool.parallelFor(kernel, [...args, 0, 0], at, units, step, (from, to) => run(...args, from, to));
  }

  /** A chunk size for `units` of `unitElements` elements each: CHUNKS_PER_THREAD per thread, at least MIN_CHUNK_ELEMENTS, a multiple of `multiple`. */
  private chunk(units: number, unitElements: number, multiple = 1): number {
    const fair = Math.ceil(units / (this.threads * CHUNKS_PER_THREAD));
    const least = Math.ceil(Math.min(MIN_CHUNK_ELEMENTS, this.split.minElements) / Math.max(1, unitElements));
    return Math.ceil(Math.max(fair, least) / multiple) * multiple;
  }

  /** Whether a row-wise or elementwise op over `elements` elements is worth splitting. */
  private bigEnough(elements: number): boolean {
    return elements >= this.split.minElements;
  }

  /**
   * out[M,N] (= or +=) op(a)[M,K] @ op(b)[K,N], with a stored [K,M] when transA and b stored [N,K] when
   * transB. Shapes are the caller's to check (op-checks.ts).
   */
  matmul(out: Float32Array, a: Float32Array, b: Float32Array, M: number, K: number, N: number, transA: boolean, transB: boolean, accumulate: boolean): void {
    const k = this.k;
    const Mp = k.paddedRows(M);
    const Np = k.paddedCols(N);
    const aAt = alignUp(k.heapBase());
    const bAt = alignUp(aAt + M * K * 4);
    const apAt = alignUp(bAt + K * N * 4);
    const bpAt = alignUp(apAt + Mp * K * 4);
    const cpAt = alignUp(bpAt + Np * K * 4);
    const outAt = alignUp(cpAt + Mp * Np * 4);
    this.reserve(outAt + M * N * 4);
    const mem = k.memory.buffer;
    new Float32Array(mem, aAt, M * K).set(a);
    new Float32Array(mem, bAt, K * N).set(b);
    const result = new Float32Array(mem, outAt, M * N);
    if (accumulate) result.set(out);
    // A's 4-row panels, then B's 8-column panels, as one range: one wake-up for both packings.
    const panels = Mp / 4 + Np / 8;
    const packed = (Mp + Np) * K;
    const big = this.bigEnough(packed) && M * K * N >= this.split.minMacs;
    this.ranges('packing', 'packPanels', [aAt, apAt, M, K, transA ? 1 : 0, bAt, bpAt, N, transB ? 1 : 0], panels, this.chunk(panels, 6 * K), big);
    this.gemm(apAt, bpAt, cpAt, M, K, N, Mp);
    k.unpad(cpAt, outAt, M, N, accumulate ? 1 : 0);
    out.set(result);
  }

  /**
   * The packed product on every thread: rows [0, Mp) cut into chunks (multiples of the panel height,
   * CHUNKS_PER_THREAD per thread, so that a thread the OS holds back delays the rest by one chunk at most),
   * taken by whichever thread is free. Each C element is summed by one thread in the single-thread
   * order, so the result is bit-identical to one thread's.
   */
  private gemm(ap: number, bp: number, cp: number, M: number, K: number, N: number, Mp: number): void {
    const panels = Mp / 4;
    const step = Math.max(MIN_CHUNK_ROWS, Math.ceil(panels / (this.threads * CHUNKS_PER_THREAD)) * 4);
    this.ranges('matmul', 'gemmPacked', [ap, bp, cp, M, K, N], Mp, step, panels >= 2 && M * K * N >= this.split.minMacs);
  }

  /** Causal self-attention forward (see Backend.attention), split by (batch, head); shapes are the caller's to check. */
  attention(out: Float32Array, att: Float32Array, qkv: Float32Array, B: number, T: number, C: number, nHead: number): void {
    const k = this.k;
    const qkvAt = alignUp(k.heapBase());
    const attAt = alignUp(qkvAt + qkv.length * 4);
    const outAt = alignUp(attAt + att.length * 4);
    this.reserve(outAt + out.length * 4);
    const mem = k.memory.buffer;
    new Float32Array(mem, qkvAt, qkv.length).set(qkv);
    const pairs = B * nHead;
    this.ranges('attention', 'attention', [outAt, attAt, qkvAt, B, T, C, nHead], pairs, this.chunk(pairs, T * T), pairs >= 2 && this.attentionBig(B, T, C));
    att.set(new Float32Array(mem, attAt, att.length));
    out.set(new Float32Array(mem, outAt, out.length));
  }

  /** Attention backward (see Backend.attentionBackward), split by (batch, head): dQkv is overwritten. */
  attentionBackward(dQkv: Float32Array, dOut: Float32Array, qkv: Float32Array, att: Float32Array, B: number, T: number, C: number, nHead: number): void {
    const k = this.k;
    const pairs = B * nHead;
    const qkvAt = alignUp(k.heapBase());
    const attAt = alignUp(qkvAt + qkv.length * 4);
    const dOutAt = alignUp(attAt + att.length * 4);
    const scratchAt = alignUp(dOutAt + dOut.length * 4);
    const dQkvAt = alignUp(scratchAt + pairs * T * T * 4); // each pair's dScore matrix
    this.reserve(dQkvAt + dQkv.length * 4);
    const mem = k.memory.buffer;
    new Float32Array(mem, qkvAt, qkv.length).set(qkv);
    new Float32Array(mem, attAt, att.length).set(att);
    new Float32Array(mem, dOutAt, dOut.length).set(dOut);
    const args = [dQkvAt, dOutAt, qkvAt, attAt, scratchAt, B, T, C, nHead];
    this.ranges('attention', 'attentionBackward', args, pairs, this.chunk(pairs, T * T), pairs >= 2 && this.attentionBig(B, T, C));
    dQkv.set(new Float32Array(mem, dQkvAt, dQkv.length));
  }

  /** Attention's multiply-adds (about B T^2 C for the scores and as many for the weighted sum) against the split threshold. */
  private attentionBig(B: number, T: number, C: number): boolean {
    return B * T * T * C >= this.split.minMacs;
  }

  /** GELU forward (see Backend.gelu), split by elements; lengths are the caller's to check. */
  gelu(out: Float32Array, x: Float32Array): void {
    const xAt = alignUp(this.k.heapBase());
    this.reserve(xAt + x.length * 4);
    const inside = new Float32Array(this.k.memory.buffer, xAt, x.length);
    inside.set(x);
    this.ranges('gelu', 'gelu', [xAt, xAt], x.length, this.chunk(x.length, 1, 4), this.bigEnough(x.length));
    out.set(inside);
  }

  /** GELU backward (see Backend.geluBackward), split by elements. */
  geluBackward(dx: Float32Array, x: Float32Array, dy: Float32Array): void {
    const xAt = alignUp(this.k.heapBase());
    const dyAt = alignUp(xAt + x.length * 4);
    this.reserve(dyAt + dy.length * 4);
    const mem = this.k.memory.buffer;
    new Float32Array(mem, xAt, x.length).set(x);
    const grad = new Float32Array(mem, dyAt, dy.length);
    grad.set(dy);
    this.ranges('gelu', 'geluBackward', [dyAt, xAt, dyAt], x.length, this.chunk(x.length, 1, 4), this.bigEnough(x.length));
    dx.set(grad);
  }

  /** out = tanh(x) on one thread: the float32 lanes GELU uses (its error is swept in the tests). */
  tanh(out: Float32Array, x: Float32Array): void {
    this.run([x], [out], ([xs]) => this.k.tanh(xs, xs, 0, x.length));
  }

  /** out = x + bias per row (see Backend.biasAdd), split by rows: out and x hold exactly rows x cols. */
  biasAdd(out: Float32Array, x: Float32Array, bias: Float32Array, rows: number, cols: number): void {
    this.run([x, bias], [out], ([xs, b]) => this.ranges('bias', 'biasAdd', [xs, xs, b, cols], rows, this.chunk(rows, cols), this.bigEnough(rows * cols)));
  }

  /**
   * dBias += the column sums of dOut (see Backend.biasBackward), split by columns (8 at a time: each
   * column summed over the rows in row order by one thread); dBias holds exactly cols, dOut rows x cols.
   */
  biasBackward(dBias: Float32Array, dOut: Float32Array, rows: number, cols: number): void {
    this.run([dBias, dOut], [dBias], ([db, dy]) => this.ranges('bias', 'biasBackward', [db, dy, rows, cols], cols, this.chunk(cols, rows, 8), this.bigEnough(rows * cols)));
  }

  /** out = a + b elementwise (all three the same length), split by elements; addInPlace is add(out, out, a). */
  add(out: Float32Array, a: Float32Array, b: Float32Array): void {
    this.run([a, b], [out], ([x, y]) => this.ranges('add', 'add', [x, x, y], a.length, this.chunk(a.length, 1, 4), this.bigEnough(a.length)));
  }

  /**
   * out[bt, :] = wte[tokens[bt], :] + wpe[bt % T, :] (see Backend.embedding), split by rows; out holds
   * exactly tokens.length x C, and every token must already be checked below the vocabulary.
   */
  embedding(out: Float32Array, tokens: Uint32Array, wte: Float32Array, wpe: Float32Array, T: number, C: number): void {
    const rows = tokens.length;
    this.run([out.length, tokens, wte, wpe], [out], ([o, tok, te, pe]) =>
      this.ranges('embedding', 'embedding', [o, tok, te, pe, T, C], rows, this.chunk(rows, C), this.bigEnough(rows * C)),
    );
  }

  /**
   * dWte[tokens[bt], :] += dOut[bt, :], dWpe[bt % T, :] += dOut[bt, :] (see Backend.embeddingBackward), on
   * one thread in row order (rows with the same token add into one row); tokens already checked.
   */
  embeddingBackward(dWte: Float32Array, dWpe: Float32Array, dOut: Float32Array, tokens: Uint32Array, T: number, C: number): void {
    this.run([dWte, dWpe, dOut, tokens], [dWte, dWpe], ([te, pe, dy, tok]) => this.k.embeddingBackward(te, pe, dy, tok, tokens.length, T, C));
  }

  /**
   * Copies `inputs` into linear memory one after the other (a number is a slot of that many floats that
   * the kernel only writes: nothing is copied in), runs `kernel` with their addresses, then copies each
   * of `outputs` back from the address of the input at the same index (an output is also an input when
   * the kernel reads it, as accumulated gradients are).
   */
  private run(inputs: (Float32Array | Uint32Array | number)[], outputs: Float32Array[], kernel: (at: number[]) => void): void {
    const at: number[] = [];
    let next = alignUp(this.k.heapBase());
    for (const array of inputs) {
      at.push(next);
      next = alignUp(next + (typeof array === 'number' ? array : array.length) * 4);
    }
    this.reserve(next);
    const mem = this.k.memory.buffer;
    inputs.forEach((array, i) => {
      if (typeof array !== 'number') new Uint8Array(mem, at[i], array.byteLength).set(new Uint8Array(array.buffer, array.byteOffset, array.byteLength));
    });
    kernel(at);
    outputs.forEach((array, i) => array.set(new Float32Array(mem, at[i], array.length)));
  }

  /** Layer norm forward (see Backend.layerNorm), split by rows. */
  layerNorm(out: Float32Array, mean: Float32Array, rstd: Float32Array, x: Float32Array, gamma: Float32Array, beta: Float32Array, rows: number, cols: number): void {
    this.run([out, mean, rstd, x, gamma, beta], [out, mean, rstd], ([o, m, s, xs, g, b]) =>
      this.ranges('layerNorm', 'layerNorm', [o, m, s, xs, g, b, cols], rows, this.chunk(rows, cols), this.bigEnough(rows * cols)),
    );
  }

  /**
   * Layer norm backward (see Backend.layerNormBackward): dx overwritten, split by rows; dGamma and dBeta
   * accumulated, split by columns (each column summed over the rows in row order by one thread, as on
   * one thread).
   */
  layerNormBackward(dx: Float32Array, dGamma: Float32Array, dBeta: Float32Array, dy: Float32Array, x: Float32Array, mean: Float32Array, rstd: Float32Array, gamma: Float32Array, rows: number, cols: number): void {
    this.run([dx, dGamma, dBeta, dy, x, mean, rstd, gamma], [dx, dGamma, dBeta], ([d, dg, db, up, xs, m, s, g]) => {
      const big = this.bigEnough(rows * cols);
      this.ranges('layerNorm', 'layerNormBackwardRows', [d, up, xs, m, s, g, cols], rows, this.chunk(rows, cols), big);
      // Columns in multiples of 16 (a cache line of x and dy per row and chunk).
      this.ranges('layerNorm', 'layerNormParamGrads', [dg, db, up, xs, m, s, rows, cols], cols, this.chunk(cols, rows, 16), big);
    });
  }

  /** AdamW in place on p, m and v (see f32-update.ts adamwF32); `u` holds the float32 uniforms. */
  adamw(p: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, u: { lr: number; beta1: number; beta2: number; eps: number; wd: number; c1: number; c2: number }): void {
    this.run([p, m, v, g], [p, m, v], ([pa, ma, va, ga]) => this.k.adamw(pa, ga, ma, va, p.length, u.lr, u.beta1, u.beta2, u.eps, u.wd, u.c1, u.c2));
  }

  /**
   * Fused softmax + cross-entropy (see Backend.softmaxCrossEntropy), split by rows; targets must already
   * be checked below cols (the kernel reads logits at the target's index unchecked).
   */
  softmaxCrossEntropy(losses: Float32Array, probs: Float32Array, dLogits: Float32Array, logits: Float32Array, targets: Uint32Array, rows: number, cols: number, gradScale: number): void {
    const scaleBits = new Int32Array(Float32Array.of(gradScale).buffer)[0];
    this.run([losses, probs, dLogits, logits, targets], [losses, probs, dLogits], ([l, p, d, z, t]) =>
      this.ranges('softmaxCrossEntropy', 'softmaxCrossEntropyRows', [l, p, d, z, t, cols, scaleBits], rows, this.chunk(rows, cols), this.bigEnough(rows * cols)),
    );
  }

  private reserve(bytes: number): void {
    const have = this.k.memory.buffer.byteLength;
    if (bytes > have) this.k.memory.grow(Math.ceil((bytes - have) / PAGE));
  }
}
