// Loads the fast CPU backend's WebAssembly kernels (built from wasm/kernels.ts into
// src/engine/generated/kernels.wasm by `npm run build:wasm`) and lays out their linear memory for one
// matmul at a time. Guarantees: it instantiates only where WebAssembly SIMD validates (the answer is a
// clear error otherwise, so the caller can fall back to the reference backend), and `matmul` reads its
// inputs before it writes its output, so `out` may alias `a` or `b`.

/** The kernels' exports (see wasm/kernels.ts). Addresses are byte offsets into `memory`. */
interface KernelExports {
  readonly memory: WebAssembly.Memory;
  heapBase(): number;
  paddedRows(M: number): number;
  paddedCols(N: number): number;
  packA(src: number, dst: number, M: number, K: number, trans: number): void;
  packB(src: number, dst: number, K: number, N: number, trans: number): void;
  gemmPacked(ap: number, bp: number, cp: number, M: number, K: number, N: number, rowFrom: number, rowTo: number): void;
  unpad(cp: number, out: number, M: number, N: number, accumulate: number): void;
  attention(out: number, att: number, qkv: number, B: number, T: number, C: number, nHead: number): void;
  attentionBackward(dQkv: number, dOut: number, qkv: number, att: number, scratch: number, B: number, T: number, C: number, nHead: number): void;
  gelu(out: number, x: number, n: number): void;
  geluBackward(dx: number, x: number, dy: number, n: number): void;
  layerNorm(out: number, mean: number, rstd: number, x: number, gamma: number, beta: number, rows: number, cols: number): void;
  layerNormBackward(dx: number, dGamma: number, dBeta: number, dy: number, x: number, mean: number, rstd: number, gamma: number, rows: number, cols: number): void;
  adamw(p: number, g: number, m: number, v: number, n: number, lr: number, beta1: number, beta2: number, eps: number, wd: number, c1: number, c2: number): void;
}

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

export class WasmKernels {
  private constructor(private readonly k: KernelExports) {}

  static async load(bytes?: BufferSource): Promise<WasmKernels> {
    if (!wasmSimdSupported()) throw new Error('this browser has no WebAssembly SIMD');
    const source = bytes ?? (await fetchKernelBytes());
    const module = await WebAssembly.compile(source as BufferSource);
    const instance = await WebAssembly.instantiate(module, {
      env: {
        abort: () => {
          throw new Error('WASM kernel aborted');
        },
      },
    });
    return new WasmKernels(instance.exports as unknown as KernelExports);
  }

  /** Bytes of linear memory the kernels hold now (it grows to the largest matmul seen, never shrinks). */
  memoryBytes(): number {
    return this.k.memory.buffer.byteLength;
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
    k.packA(aAt, apAt, M, K, transA ? 1 : 0);
    k.packB(bAt, bpAt, K, N, transB ? 1 : 0);
    k.gemmPacked(apAt, bpAt, cpAt, M, K, N, 0, Mp);
    k.unpad(cpAt, outAt, M, N, accumulate ? 1 : 0);
    out.set(result);
  }

  /** Causal self-attention forward (see Backend.attention); shapes are the caller's to check. */
  attention(out: Float32Array, att: Float32Array, qkv: Float32Array, B: number, T: number, C: number, nHead: number): void {
    const k = this.k;
    const qkvAt = alignUp(k.heapBase());
    const attAt = alignUp(qkvAt + qkv.length * 4);
    const outAt = alignUp(attAt + att.length * 4);
    this.reserve(outAt + out.length * 4);
    const mem = k.memory.buffer;
    new Float32Array(mem, qkvAt, qkv.length).set(qkv);
    k.attention(outAt, attAt, qkvAt, B, T, C, nHead);
    att.set(new Float32Array(mem, attAt, att.length));
    out.set(new Float32Array(mem, outAt, out.length));
  }

  /** Attention backward (see Backend.attentionBackward): dQkv is overwritten. */
  attentionBackward(dQkv: Float32Array, dOut: Float32Array, qkv: Float32Array, att: Float32Array, B: number, T: number, C: number, nHead: number): void {
    const k = this.k;
    const qkvAt = alignUp(k.heapBase());
    const attAt = alignUp(qkvAt + qkv.length * 4);
    const dOutAt = alignUp(attAt + att.length * 4);
    const scratchAt = alignUp(dOutAt + dOut.length * 4);
    const dQkvAt = alignUp(scratchAt + T * 4);
    this.reserve(dQkvAt + dQkv.length * 4);
    const mem = k.memory.buffer;
    new Float32Array(mem, qkvAt, qkv.length).set(qkv);
    new Float32Array(mem, attAt, att.length).set(att);
    new Float32Array(mem, dOutAt, dOut.length).set(dOut);
    k.attentionBackward(dQkvAt, dOutAt, qkvAt, attAt, scratchAt, B, T, C, nHead);
    dQkv.set(new Float32Array(mem, dQkvAt, dQkv.length));
  }

  /** GELU forward (see Backend.gelu); lengths are the caller's to check. */
  gelu(out: Float32Array, x: Float32Array): void {
    const xAt = alignUp(this.k.heapBase());
    this.reserve(xAt + x.length * 4);
    const inside = new Float32Array(this.k.memory.buffer, xAt, x.length);
    inside.set(x);
    this.k.gelu(xAt, xAt, x.length);
    out.set(inside);
  }

  /** GELU backward (see Backend.geluBackward). */
  geluBackward(dx: Float32Array, x: Float32Array, dy: Float32Array): void {
    const xAt = alignUp(this.k.heapBase());
    const dyAt = alignUp(xAt + x.length * 4);
    this.reserve(dyAt + dy.length * 4);
    const mem = this.k.memory.buffer;
    new Float32Array(mem, xAt, x.length).set(x);
    const grad = new Float32Array(mem, dyAt, dy.length);
    grad.set(dy);
    this.k.geluBackward(dyAt, xAt, dyAt, x.length);
    dx.set(grad);
  }

  /**
   * Copies `inputs` into linear memory one after the other, runs `kernel` with their addresses, then
   * copies each of `outputs` back from the address of the input at the same index (an output is also an
   * input when the kernel reads it, as accumulated gradients are).
   */
  private run(inputs: Float32Array[], outputs: Float32Array[], kernel: (at: number[]) => void): void {
    const at: number[] = [];
    let next = alignUp(this.k.heapBase());
    for (const array of inputs) {
      at.push(next);
      next = alignUp(next + array.length * 4);
    }
    this.reserve(next);
    const mem = this.k.memory.buffer;
    inputs.forEach((array, i) => new Float32Array(mem, at[i], array.length).set(array));
    kernel(at);
    outputs.forEach((array, i) => array.set(new Float32Array(mem, at[i], array.length)));
  }

  /** Layer norm forward (see Backend.layerNorm). */
  layerNorm(out: Float32Array, mean: Float32Array, rstd: Float32Array, x: Float32Array, gamma: Float32Array, beta: Float32Array, rows: number, cols: number): void {
    this.run([out, mean, rstd, x, gamma, beta], [out, mean, rstd], ([o, m, s, xs, g, b]) => this.k.layerNorm(o, m, s, xs, g, b, rows, cols));
  }

  /** Layer norm backward (see Backend.layerNormBackward): dx overwritten, dGamma and dBeta accumulated. */
  layerNormBackward(dx: Float32Array, dGamma: Float32Array, dBeta: Float32Array, dy: Float32Array, x: Float32Array, mean: Float32Array, rstd: Float32Array, gamma: Float32Array, rows: number, cols: number): void {
    this.run([dx, dGamma, dBeta, dy, x, mean, rstd, gamma], [dx, dGamma, dBeta], ([d, dg, db, up, xs, m, s, g]) =>
      this.k.layerNormBackward(d, dg, db, up, xs, m, s, g, rows, cols),
    );
  }

  /** AdamW in place on p, m and v (see f32-update.ts adamwF32); `u` holds the float32 uniforms. */
  adamw(p: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, u: { lr: number; beta1: number; beta2: number; eps: number; wd: number; c1: number; c2: number }): void {
    this.run([p, m, v, g], [p, m, v], ([pa, ma, va, ga]) => this.k.adamw(pa, ga, ma, va, p.length, u.lr, u.beta1, u.beta2, u.eps, u.wd, u.c1, u.c2));
  }

  private reserve(bytes: number): void {
    const have = this.k.memory.buffer.byteLength;
    if (bytes > have) this.k.memory.grow(Math.ceil((bytes - have) / PAGE));
  }
}
