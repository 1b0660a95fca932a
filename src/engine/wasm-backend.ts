// The fast CPU backend: the reference CPU backend (cpu-backend.ts) with its hot ops replaced by
// WebAssembly SIMD kernels (wasm-kernels.ts, built from wasm/kernels.ts). Every op it does not
// accelerate is the reference's own code, so the two differ only where a kernel is swapped in, and each
// swapped kernel is tested against the reference on awkward shapes (wasm-backend.test.ts).
// Results are not bit-identical to the reference: matmul and attention sum in float32 where the
// reference sums in float64, so an element differs by a few float32 roundings per summed term; GELU
// uses float32 tanh where the reference uses float64, layer norm float32 sums. AdamW is bit-identical
// to the reference (both float32 in the WGSL kernel's order), and so are the bias add and its
// gradient, the residual adds and the embedding forward and backward (the same float32 adds, and the
// bias gradient's column sums in float64, in the reference's order). Softmax cross-entropy takes its
// exponentials in float32 (a SIMD polynomial) where the reference uses float64 Math.exp, and GELU its
// tanh in float32 lanes (wasm/lanes.ts) where the reference uses float64 Math.tanh.
import type { AdamWHyper, BackendInfo, MatmulOptions, View } from './backend';
import { adamwUniformsF32 } from './f32-update';
import { CpuBackend } from './cpu-backend';
import { checkAttention, checkBiasAdd, checkBiasBackward, checkEmbedding, checkEmbeddingBackward, checkMatmul, needDType, needLength, needPositive, needSameLength } from './op-checks';
import { type KernelLoadOptions, WasmKernels } from './wasm-kernels';

/** The adapter string of a tab on this backend (presence and metrics show it): how many threads run, and why one. */
export function wasmAdapter(threads: number, why: string | null = null): string {
  return `CPU, WebAssembly SIMD, threads: ${threads}${why ? ` (${why})` : ''} (no WebGPU)`.slice(0, 120);
}

export const WASM_ADAPTER = wasmAdapter(1);

/** Every token below `vocab`, checked before anything is written (the kernels index rows by token unchecked). */
function needTokensBelow(op: string, tokens: Uint32Array, vocab: number): void {
  for (let i = 0; i < tokens.length; i++) {
    if (tokens[i] >= vocab) throw new RangeError(`${op}: token ${tokens[i]} at ${i} is not below vocab ${vocab}`);
  }
}

export class WasmCpuBackend extends CpuBackend {
  override readonly info: BackendInfo;

  private constructor(private readonly kernels: WasmKernels) {
    super();
    this.info = { kind: 'cpu', adapter: wasmAdapter(kernels.threads, kernels.threadNote) };
  }

  /**
   * Rejects (with the reason) where WebAssembly SIMD is missing or the kernels cannot be loaded. Threads:
   * every core where the page is cross-origin isolated, else one (options.threads overrides).
   */
  static async create(wasmBytes?: BufferSource, options: KernelLoadOptions = {}): Promise<WasmCpuBackend> {
    return new WasmCpuBackend(await WasmKernels.load(wasmBytes, options));
  }

  /** Threads that run the large kernels, this one included. */
  get threads(): number {
    return this.kernels.threads;
  }

  /** Stops the kernels' helper threads. */
  close(): void {
    this.kernels.close();
  }

  override matmul(out: View, a: View, b: View, M: number, K: number, N: number, opts: MatmulOptions = {}): void {
    checkMatmul(out, a, b, M, K, N);
    this.kernels.matmul(
      this.f(out, 'matmul'),
      this.f(a, 'matmul'),
      this.f(b, 'matmul'),
      M,
      K,
      N,
      opts.transA === true,
      opts.transB === true,
      opts.accumulate === true,
    );
  }

  // The same float32 bits as the reference's and the WGSL kernel's (f32-update.ts): rooms that mix
  // backends keep bitwise-equal replicas.
  override adamw(params: View, grads: View, m: View, v: View, h: AdamWHyper): void {
    needSameLength('adamw', { params, grads, m, v });
    if (!(h.step >= 1)) throw new RangeError(`adamw: step is 1-based, got ${h.step}`);
    this.kernels.adamw(this.f(params, 'adamw'), this.f(grads, 'adamw'), this.f(m, 'adamw'), this.f(v, 'adamw'), adamwUniformsF32(h));
  }

  override softmaxCrossEntropy(losses: View, probs: View, dLogits: View, logits: View, targets: View, rows: number, cols: number, gradScale: number): void {
    const op = 'softmaxCrossEntropy';
    needPositive(op, { rows, cols });
    needLength(op, 'losses', losses, rows);
    for (const [name, v] of Object.entries({ probs, dLogits, logits })) needLength(op, name, v, rows * cols);
    needLength(op, 'targets', targets, rows);
    needDType(op, 'targets', targets, 'u32');
    const tg = this.u(targets, op);
    // Every target checked before anything is written: a bad one loses nothing.
    for (let r = 0; r < rows; r++) if (tg[r] >= cols) throw new RangeError(`${op}: target ${tg[r]} in row ${r} is not below ${cols}`);
    this.kernels.softmaxCrossEntropy(this.f(losses, op), this.f(probs, op), this.f(dLogits, op), this.f(logits, op), tg, rows, cols, gradScale);
  }

  override add(out: View, a: View, b: View): void {
    needSameLength('add', { out, a, b });
    this.kernels.add(this.f(out, 'add'), this.f(a, 'add'), this.f(b, 'add'));
  }

  override addInPlace(out: View, a: View): void {
    needSameLength('addInPlace', { out, a });
    const o = this.f(out, 'addInPlace');
    this.kernels.add(o, o, this.f(a, 'addInPlace'));
  }

  override biasAdd(out: View, x: View, bias: View, rows: number, cols: number): void {
    const op = 'biasAdd';
    checkBiasAdd(out, x, bias, rows, cols);
    // Views may be longer than the call needs: the kernel sees exactly its elements, the rest stay as they were.
    const n = rows * cols;
    this.kernels.biasAdd(this.f(out, op).subarray(0, n), this.f(x, op).subarray(0, n), this.f(bias, op).subarray(0, cols), rows, cols);
  }

  override biasBackward(dBias: View, dOut: View, rows: number, cols: number): void {
    const op = 'biasBackward';
    checkBiasBackward(dBias, dOut, rows, cols);
    this.kernels.biasBackward(this.f(dBias, op).subarray(0, cols), this.f(dOut, op).subarray(0, rows * cols), rows, cols);
  }

  override embedding(out: View, tokens: View, wte: View, wpe: View, B: number, T: number, C: number): void {
    const op = 'embedding';
    const vocab = checkEmbedding(out, tokens, wte, wpe, B, T, C);
    const tok = this.u(tokens, op).subarray(0, B * T);
    needTokensBelow(op, tok, vocab);
    this.kernels.embedding(this.f(out, op).subarray(0, B * T * C), tok, this.f(wte, op).subarray(0, vocab * C), this.f(wpe, op).subarray(0, T * C), T, C);
  }

  override embeddingBackward(dWte: View, dWpe: View, dOut: View, tokens: View, B: number, T: number, C: number, vocab: number): void {
    const op = 'embeddingBackward';
    checkEmbeddingBackward(dWte, dWpe, dOut, tokens, B, T, C, vocab);
    const tok = this.u(tokens, op).subarray(0, B * T);
    needTokensBelow(op, tok, vocab);
    this.kernels.embeddingBackward(this.f(dWte, op).subarray(0, vocab * C), this.f(dWpe, op).subarray(0, T * C), this.f(dOut, op).subarray(0, B * T * C), tok, T, C);
  }

  override gelu(out: View, x: View): void {
    needSameLength('gelu', { out, x });
    this.kernels.gelu(this.f(out, 'gelu'), this.f(x, 'gelu'));
  }

  override geluBackward(dx: View, x: View, dy: View): void {
    needSameLength('geluBackward', { dx, x, dy });
    this.kernels.geluBackward(this.f(dx, 'geluBackward'), this.f(x, 'geluBackward'), this.f(dy, 'geluBackward'));
  }

  override layerNorm(out: View, mean: View, rstd: View, x: View, gamma: View, beta: View, rows: number, cols: number): void {
    const op = 'layerNorm';
    needPositive(op, { rows, cols });
    for (const [name, v] of Object.entries({ out, x })) needLength(op, name, v, rows * cols);
    for (const [name, v] of Object.entries({ mean, rstd })) needLength(op, name, v, rows);
    for (const [name, v] of Object.entries({ gamma, beta })) needLength(op, name, v, cols);
    const [o, m, s, xs, g, b] = [out, mean, rstd, x, gamma, beta].map((v) => this.f(v, op));
    this.kernels.layerNorm(o, m, s, xs, g, b, rows, cols);
  }

  override layerNormBackward(dx: View, dGamma: View, dBeta: View, dy: View, x: View, mean: View, rstd: View, gamma: View, rows: number, cols: number): void {
    const op = 'layerNormBackward';
    needPositive(op, { rows, cols });
    for (const [name, v] of Object.entries({ dx, dy, x })) needLength(op, name, v, rows * cols);
    for (const [name, v] of Object.entries({ mean, rstd })) needLength(op, name, v, rows);
    for (const [name, v] of Object.entries({ dGamma, dBeta, gamma })) needLength(op, name, v, cols);
    const [d, dg, db, up, xs, m, s, g] = [dx, dGamma, dBeta, dy, x, mean, rstd, gamma].map((v) => this.f(v, op));
    this.kernels.layerNormBackward(d, dg, db, up, xs, m, s, g, rows, cols);
  }

  override attention(out: View, att: View, qkv: View, B: number, T: number, C: number, nHead: number): void {
    checkAttention(qkv, att, out, B, T, C, nHead, 'attention');
    this.kernels.attention(this.f(out, 'attention'), this.f(att, 'attention'), this.f(qkv, 'attention'), B, T, C, nHead);
  }

  override attentionBackward(dQkv: View, dOut: View, qkv: View, att: View, B: number, T: number, C: number, nHead: number): void {
    const op = 'attentionBackward';
    checkAttention(qkv, att, dOut, B, T, C, nHead, op);
    needLength(op, 'dQkv', dQkv, B * T * 3 * C);
    this.kernels.attentionBackward(this.f(dQkv, op), this.f(dOut, op), this.f(qkv, op), this.f(att, op), B, T, C, nHead);
  }
}
