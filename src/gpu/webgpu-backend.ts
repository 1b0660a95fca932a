// The WebGPU implementation of Backend: WGSL kernels from shaders/, one pipeline per kernel built at
// creation, ops recorded into one compute pass and submitted at flush/read/write or when a batch
// grows large. Repeating a step allocates nothing: bind groups and their uniform slots are cached per
// (kernel, bound views), staging buffers for reads are pooled.
// Over 400 lines: one short method per Backend op (checks, then one dispatch) beside the recording core.
import {
  type AdamWHyper,
  type Backend,
  type BackendInfo,
  type DType,
  type DeviceBuffer,
  type MatmulOptions,
  type MemoryKind,
  type MoeRouting,
  type MoeShape,
  type SgdHyper,
  type View,
  VIEW_ALIGNMENT,
  viewOf,
} from '../engine/backend';
import { emptyMemory } from '../engine/cpu-backend';
import { checkMoeCombineBackward, checkMoeRoute, checkMoeRouteBackward, checkMoeRows } from '../engine/moe-reference';
import { checkAttention, checkBiasAdd, checkBiasBackward, checkEmbedding, checkEmbeddingBackward, checkMatmul, needDType, needLength, needPositive, needSameLength } from '../engine/op-checks';
import { SUM_SQUARES_PARTIALS } from '../engine/f32-update';
import { type AcquireOptions, type AdapterDescription, type GpuContext, acquireDevice, isSwiftShader } from './device';
import { type Kernel, type KernelName, type MatmulVariant, type UniformsOf, type ViewsOf, buildKernels, kernelsFor } from './kernels';
import { UniformArena, type UniformSlot } from './uniform-arena';
import { packUniforms } from './uniforms';

export interface WebGpuBackendOptions extends AcquireOptions {
  /** Force a matmul kernel; by default 'blocked' on SwiftShader (a CPU), 'tiled' on real GPUs. */
  matmul?: MatmulVariant;
  /** Submit the recorded pass after this many dispatches (default 256). */
  maxBatch?: number;
  /** false: never use the blocked variant's vec4 kernels (tests compare them with the scalar ones). */
  matmulVec4?: boolean;
  /** false: the vec4 kernels keep 4x4 blocks instead of 8x8 (bench:gpu times both in one run). */
  matmulBlocks8?: boolean;
}

interface GpuBuf extends DeviceBuffer {
  readonly gpu: GPUBuffer;
}

interface CachedBinding {
  bindGroup: GPUBindGroup;
  slot: UniformSlot;
  bufIds: number[];
  /** The uniform words last written to the slot, and the batch that last used them. */
  words: Uint32Array<ArrayBuffer> | undefined;
  batch: number;
}

const WORKGROUPS_PER_DIM = 65535;

export function chooseMatmulVariant(adapter: AdapterDescription, override?: MatmulVariant): MatmulVariant {
  return override ?? (isSwiftShader(adapter) ? 'blocked' : 'tiled');
}

export class WebGpuBackend implements Backend {
  readonly info: BackendInfo;
  readonly matmulVariant: MatmulVariant;
  private readonly useVec4: boolean;
  private readonly useBlocks8: boolean;
  private readonly device: GPUDevice;
  private readonly maxBatch: number;
  private readonly uniforms: UniformArena;
  private readonly live = new Map<number, GpuBuf>();
  private readonly cache = new Map<string, CachedBinding>();
  private readonly staging = new Map<number, GPUBuffer[]>(); // free staging buffers by byte size
  private stagingCount = 0;
  private stagingBytes = 0;
  private nextId = 1;
  private encoder: GPUCommandEncoder | undefined;
  private pass: GPUComputePassEncoder | undefined;
  private batch = 0;
  private dispatches = 0;
  private attentionScratch: DeviceBuffer | undefined;
  private partialSums: DeviceBuffer | undefined;

  private constructor(
    readonly context: GpuContext,
    private readonly kernels: Partial<Record<KernelName, Kernel>>,
    opts: WebGpuBackendOptions,
  ) {
    this.device = context.device;
    const a = context.adapter;
    this.info = { kind: 'webgpu', adapter: [a.vendor, a.architecture, a.description].filter(Boolean).join(' ') || 'unknown adapter' };
    this.matmulVariant = chooseMatmulVariant(a, opts.matmul);
    this.useVec4 = opts.matmulVec4 ?? true;
    this.useBlocks8 = opts.matmulBlocks8 ?? true;
    this.maxBatch = opts.maxBatch ?? 256;
    this.uniforms = new UniformArena(this.device);
  }

  /** Acquires a device from `gpu` (navigator.gpu, or the `webgpu` package's create([]) in Node). */
  static async create(gpu: GPU | undefined | null, opts: WebGpuBackendOptions = {}): Promise<WebGpuBackend> {
    return WebGpuBackend.fromContext(await acquireDevice(gpu, opts), opts);
  }

  /** Builds a backend on a device that already exists (several backends may share one device). */
  static async fromContext(context: GpuContext, opts: WebGpuBackendOptions = {}): Promise<WebGpuBackend> {
    const variant = chooseMatmulVariant(context.adapter, opts.matmul);
    return new WebGpuBackend(context, await buildKernels(context.device, kernelsFor(variant)), opts);
  }

  // --- memory -------------------------------------------------------------------------------------

  alloc(length: number, label: string, kind: MemoryKind, dtype: DType = 'f32'): DeviceBuffer {
    if (!Number.isInteger(length) || length <= 0) throw new RangeError(`alloc ${label}: bad length ${length}`);
    const gpu = this.device.createBuffer({
      label,
      size: length * 4,
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
    });
    const buf: GpuBuf = { id: this.nextId++, label, dtype, length, kind, gpu };
    this.live.set(buf.id, buf);
    return buf;
  }

  free(buf: DeviceBuffer): void {
    const own = this.own(buf, 'free');
    // Recorded work may still use it: submit first (destroy then waits for the queue by itself).
    this.submit();
    for (const [key, entry] of this.cache) {
      if (entry.bufIds.includes(own.id)) {
        this.uniforms.release(entry.slot);
        this.cache.delete(key);
      }
    }
    this.live.delete(own.id);
    own.gpu.destroy();
  }

  memory(): Record<MemoryKind, number> {
    const bytes = emptyMemory();
    for (const b of this.live.values()) bytes[b.kind] += b.length * 4;
    bytes.workspace += this.uniforms.bytes() + this.stagingBytes;
    return bytes;
  }

  trimCaches(): void {
    // In-flight reads hold their staging buffer outside the pool and return it afterwards: unaffected.
    for (const list of this.staging.values()) {
      for (const s of list) {
        this.stagingCount--;
        this.stagingBytes -= s.size;
        s.destroy();
      }
    }
    this.staging.clear();
  }

  /** Live GPU buffers: the caller's, plus uniform arenas and pooled staging buffers. */
  bufferCount(): number {
    return this.live.size + this.uniforms.bufferCount() + this.stagingCount;
  }

  write(dst: View, data: Float32Array | Uint32Array): void {
    needLength('write', 'dst', dst, data.length);
    const own = this.own(dst.buf, 'write');
    // queue.writeBuffer runs before any not-yet-submitted pass: submit what was recorded first, so
    // that ops recorded before this write still see the old contents.
    this.submit();
    this.device.queue.writeBuffer(own.gpu, dst.offset * 4, data.buffer, data.byteOffset, data.byteLength);
  }

  async read(src: View): Promise<Float32Array> {
    return (await this.readMany([src]))[0];
  }

  /** One staging buffer for every view, one submit, one mapAsync. */
  async readMany(srcs: readonly View[]): Promise<Float32Array[]> {
    const owned = srcs.map((src) => this.own(src.buf, 'read'));
    const bytes = srcs.reduce((sum, src) => sum + src.length * 4, 0);
    if (bytes === 0) return srcs.map(() => new Float32Array(0));
    const staging = this.takeStaging(bytes);
    this.endPass();
    const encoder = (this.encoder ??= this.device.createCommandEncoder());
    let at = 0;
    srcs.forEach((src, i) => {
      encoder.copyBufferToBuffer(owned[i].gpu, src.offset * 4, staging, at, src.length * 4);
      at += src.length * 4;
    });
    this.submit();
    await staging.mapAsync(GPUMapMode.READ, 0, bytes);
    const mapped = staging.getMappedRange(0, bytes);
    at = 0;
    const out = srcs.map((src) => {
      const values = new Float32Array(mapped.slice(at, at + src.length * 4));
      at += src.length * 4;
      return values;
    });
    staging.unmap();
    let pool = this.staging.get(bytes);
    if (!pool) this.staging.set(bytes, (pool = []));
    pool.push(staging);
    return out;
  }

  fill(dst: View, value: number): void {
    const bits = dst.buf.dtype === 'u32' ? value >>> 0 : new Uint32Array(new Float32Array([value]).buffer)[0];
    this.run('fill', { n: dst.length, valueBits: bits }, { out: dst }, this.grid(dst.length, 256));
  }

  copy(dst: View, src: View): void {
    needSameLength('copy', { dst, src });
    if (dst.buf.id === src.buf.id) {
      this.run('copy', { n: dst.length }, { out: dst, src }, this.grid(dst.length, 256));
      return;
    }
    // Between buffers a plain copy command needs no alignment: record it between passes.
    const [d, s] = [this.own(dst.buf, 'copy'), this.own(src.buf, 'copy')];
    this.endPass();
    (this.encoder ??= this.device.createCommandEncoder()).copyBufferToBuffer(s.gpu, src.offset * 4, d.gpu, dst.offset * 4, dst.length * 4);
    this.countDispatch();
  }

  async flush(): Promise<void> {
    this.submit();
    await this.device.queue.onSubmittedWorkDone();
  }

  /** Frees every buffer and the device's resources this backend made (not the device itself). */
  destroy(): void {
    this.submit();
    for (const b of [...this.live.values()]) this.free(b);
    this.uniforms.destroy();
    for (const list of this.staging.values()) for (const s of list) s.destroy();
    this.staging.clear();
    this.stagingCount = 0;
    this.stagingBytes = 0;
  }

  // --- elementwise ------------------------------------------------------------------------------

  add(out: View, a: View, b: View): void {
    const n = needSameLength('add', { out, a, b });
    const [outIsA, outIsB] = [sameRange(out, a), sameRange(out, b)];
    if (outIsA && outIsB) this.scale(out, 2);
    else if (outIsA) this.run('add_in_place', { n }, { out, a: b }, this.grid(n, 256));
    else if (outIsB) this.run('add_in_place', { n }, { out, a }, this.grid(n, 256));
    else this.run('add', { n }, { out, a, b }, this.grid(n, 256));
  }

  addInPlace(out: View, a: View): void {
    const n = needSameLength('addInPlace', { out, a });
    this.run('add_in_place', { n }, { out, a }, this.grid(n, 256));
  }

  scale(x: View, s: number): void {
    this.run('scale', { n: x.length, factor: s }, { x }, this.grid(x.length, 256));
  }

  // --- linear -----------------------------------------------------------------------------------

  matmul(out: View, a: View, b: View, M: number, K: number, N: number, opts: MatmulOptions = {}): void {
    checkMatmul(out, a, b, M, K, N);
    const t = `${opts.transA ? 't' : 'n'}${opts.transB ? 't' : 'n'}` as const;
    const kernel = this.vec4Matmul(opts, M, K, N) ?? `matmul_${this.matmulVariant}_${t}`;
    // Output columns and rows per workgroup: 16x16 invocations of 4x4 (tiled), 8x8 of 4x4, or 8x4 of 8x8.
    const [perCol, perRow] = this.matmulVariant === 'tiled' ? [64, 64] : kernel.endsWith('8') ? [64, 32] : [32, 32];
    const groups: [number, number] = [Math.ceil(N / perCol), Math.ceil(M / perRow)];
    if (groups[0] > WORKGROUPS_PER_DIM || groups[1] > WORKGROUPS_PER_DIM) {
      throw new RangeError(`matmul: ${M}x${N} needs more than ${WORKGROUPS_PER_DIM} workgroups in a dimension`);
    }
    this.run(
      kernel,
      { M, K, N, accumulate: opts.accumulate ? 1 : 0 },
      { out: viewOf(out.buf, out.offset, M * N), a: viewOf(a.buf, a.offset, M * K), b: viewOf(b.buf, b.offset, K * N) },
      groups,
    );
  }

  /**
   * The blocked variant's vec4 kernel for this product, if there is one: NN with K and N multiples of 4
   * (forward passes, the MLP's first-layer blocks), NT with K a multiple of 4 (attention scores,
   * gradients through a weight) and TN with M and N multiples of 4 (weight gradients). NN and TN take
   * the 8x8-block kernels once the output is at least 8x8 (fewer loads per fma: faster on SwiftShader).
   */
  private vec4Matmul(opts: MatmulOptions, M: number, K: number, N: number): KernelName | null {
    if (this.matmulVariant !== 'blocked' || !this.useVec4) return null;
    if (opts.transA && opts.transB) return null;
    if (opts.transB) return K % 4 === 0 ? 'matmul_blocked_nt4' : null;
    const eightByEight = this.useBlocks8 && M >= 8 && N >= 8;
    if (opts.transA) return M % 4 === 0 && N % 4 === 0 ? (eightByEight ? 'matmul_blocked_tn8' : 'matmul_blocked_tn4') : null;
    return K % 4 === 0 && N % 4 === 0 ? (eightByEight ? 'matmul_blocked_nn8' : 'matmul_blocked_nn4') : null;
  }

  biasAdd(out: View, x: View, bias: View, rows: number, cols: number): void {
    checkBiasAdd(out, x, bias, rows, cols);
    const n = rows * cols;
    const [o, xs, b] = [prefix(out, n), prefix(x, n), prefix(bias, cols)];
    if (sameRange(o, xs)) this.run('bias_add_in_place', { rows, cols }, { out: o, bias: b }, this.grid(n, 256));
    else this.run('bias_add', { rows, cols }, { out: o, x: xs, bias: b }, this.grid(n, 256));
  }

  biasBackward(dBias: View, dOut: View, rows: number, cols: number): void {
    checkBiasBackward(dBias, dOut, rows, cols);
    this.run('bias_backward', { rows, cols }, { dBias: prefix(dBias, cols), dOut: prefix(dOut, rows * cols) }, this.grid(cols, 64));
  }

  // --- activations ------------------------------------------------------------------------------

  relu(out: View, x: View): void {
    this.unary('relu', out, x);
  }

  reluBackward(dx: View, x: View, dy: View): void {
    this.unaryBackward('relu', dx, x, dy);
  }

  gelu(out: View, x: View): void {
    this.unary('gelu', out, x);
  }

  geluBackward(dx: View, x: View, dy: View): void {
    this.unaryBackward('gelu', dx, x, dy);
  }

  // --- loss -------------------------------------------------------------------------------------

  softmaxCrossEntropy(
    losses: View,
    probs: View,
    dLogits: View,
    logits: View,
    targets: View,
    rows: number,
    cols: number,
    gradScale: number,
  ): void {
    const op = 'softmaxCrossEntropy';
    needPositive(op, { rows, cols });
    needDType(op, 'targets', targets, 'u32');
    const n = rows * cols;
    for (const [name, v] of Object.entries({ probs, dLogits, logits })) needLength(op, name, v, n);
    needLength(op, 'losses', losses, rows);
    needLength(op, 'targets', targets, rows);
    this.run(
      'softmax_cross_entropy',
      { rows, cols, gradScale },
      { losses: prefix(losses, rows), probs: prefix(probs, n), dLogits: prefix(dLogits, n), logits: prefix(logits, n), targets: prefix(targets, rows) },
      this.grid(rows, 64),
    );
  }

  // --- normalisation ----------------------------------------------------------------------------

  layerNorm(out: View, mean: View, rstd: View, x: View, gamma: View, beta: View, rows: number, cols: number): void {
    const op = 'layerNorm';
    needPositive(op, { rows, cols });
    const n = rows * cols;
    for (const [name, v] of Object.entries({ out, x })) needLength(op, name, v, n);
    for (const [name, v] of Object.entries({ mean, rstd })) needLength(op, name, v, rows);
    for (const [name, v] of Object.entries({ gamma, beta })) needLength(op, name, v, cols);
    this.run(
      'layernorm_forward',
      { rows, cols },
      { out: prefix(out, n), mean: prefix(mean, rows), rstd: prefix(rstd, rows), x: prefix(x, n), gamma: prefix(gamma, cols), beta: prefix(beta, cols) },
      this.grid(rows, 64),
    );
  }

  layerNormBackward(
    dx: View,
    dGamma: View,
    dBeta: View,
    dy: View,
    x: View,
    mean: View,
    rstd: View,
    gamma: View,
    rows: number,
    cols: number,
  ): void {
    const op = 'layerNormBackward';
    needPositive(op, { rows, cols });
    const n = rows * cols;
    for (const [name, v] of Object.entries({ dx, dy, x })) needLength(op, name, v, n);
    for (const [name, v] of Object.entries({ mean, rstd })) needLength(op, name, v, rows);
    for (const [name, v] of Object.entries({ dGamma, dBeta, gamma })) needLength(op, name, v, cols);
    const saved = { dy: prefix(dy, n), x: prefix(x, n), mean: prefix(mean, rows), rstd: prefix(rstd, rows) };
    this.run('layernorm_backward_params', { rows, cols }, { dGamma: prefix(dGamma, cols), dBeta: prefix(dBeta, cols), ...saved }, this.grid(cols, 64));
    this.run('layernorm_backward_dx', { rows, cols }, { dx: prefix(dx, n), gamma: prefix(gamma, cols), ...saved }, this.grid(rows, 64));
  }

  // --- GPT pieces -------------------------------------------------------------------------------

  embedding(out: View, tokens: View, wte: View, wpe: View, B: number, T: number, C: number): void {
    const op = 'embedding';
    const vocab = checkEmbedding(out, tokens, wte, wpe, B, T, C);
    needPositive(op, { vocab });
    this.run(
      'embedding_forward',
      { B, T, C, vocab },
      { out: prefix(out, B * T * C), tokens: prefix(tokens, B * T), wte: prefix(wte, vocab * C), wpe: prefix(wpe, T * C) },
      this.grid(B * T * C, 256),
    );
  }

  embeddingBackward(dWte: View, dWpe: View, dOut: View, tokens: View, B: number, T: number, C: number, vocab: number): void {
    checkEmbeddingBackward(dWte, dWpe, dOut, tokens, B, T, C, vocab);
    const [tok, dy] = [prefix(tokens, B * T), prefix(dOut, B * T * C)];
    const shape = { B, T, C, vocab };
    this.run('embedding_backward_wte', shape, { dWte: prefix(dWte, vocab * C), tokens: tok, dOut: dy }, this.grid(vocab * C, 256));
    this.run('embedding_backward_wpe', shape, { dWpe: prefix(dWpe, T * C), dOut: dy }, this.grid(T * C, 256));
  }

  attention(out: View, att: View, qkv: View, B: number, T: number, C: number, nHead: number): void {
    checkAttention(qkv, att, out, B, T, C, nHead, 'attention');
    this.run(
      'attention_forward',
      { B, T, C, nHead, scale: 1 / Math.sqrt(C / nHead) },
      { out: prefix(out, B * T * C), att: prefix(att, B * nHead * T * T), qkv: prefix(qkv, B * T * 3 * C) },
      this.grid(B * nHead * T, 64),
    );
  }

  attentionBackward(dQkv: View, dOut: View, qkv: View, att: View, B: number, T: number, C: number, nHead: number): void {
    const op = 'attentionBackward';
    checkAttention(qkv, att, dOut, B, T, C, nHead, op);
    needLength(op, 'dQkv', dQkv, B * T * 3 * C);
    const attLength = B * nHead * T * T;
    const scores = viewOf(this.scratch(attLength), 0, attLength);
    const shape = { B, T, C, nHead, scale: 1 / Math.sqrt(C / nHead) };
    const saved = { dOut: prefix(dOut, B * T * C), qkv: prefix(qkv, B * T * 3 * C), att: prefix(att, attLength) };
    const grid = this.grid(B * nHead * T, 64);
    this.run('attention_backward_scores', shape, { dScores: scores, ...saved }, grid);
    this.run('attention_backward_qkv', shape, { dQkv: prefix(dQkv, B * T * 3 * C), dScores: scores, ...saved }, grid);
  }

  // --- mixture of experts (semantics and CPU twins: src/engine/moe-reference.ts) --------------------

  moeRoute(r: MoeRouting, logits: View, shape: MoeShape, auxWeight: number, auxIndex: number): void {
    checkMoeRoute('moeRoute', r, logits, shape, auxIndex);
    const u = moeUniforms(shape, 0, auxWeight, 0, auxIndex);
    const { tokens: n, experts: E, topk: k, groups: G } = shape;
    const [probs, fractions] = [prefix(r.probs, n * E), prefix(r.fractions, G * E)];
    const [choice, slot, slotToken] = [prefix(r.choice, n * k), prefix(r.slot, n * k), prefix(r.slotToken, E * shape.slotsPerExpert)];
    this.run('moe_route_tokens', u, { logits: prefix(logits, n * E), probs, choice, gates: prefix(r.gates, n * k) }, this.grid(n, 64));
    this.run('moe_route_slots', u, { choice, slot, slotToken, fractions }, this.grid(G * E, 64));
    this.run('moe_route_aux', u, { probs, fractions, aux: prefix(r.aux, auxIndex + 1) }, [1, 1]);
  }

  moeDispatch(out: View, x: View, slotToken: View, shape: MoeShape, C: number): void {
    checkMoeRows('moeDispatch', shape, C, { out: [out, 'slots', 'f32'], x: [x, 'tokens', 'f32'], slotToken: [slotToken, 'slots', 'u32'] });
    const rows = shape.experts * shape.slotsPerExpert;
    const views = { out: prefix(out, rows * C), x: prefix(x, shape.tokens * C), slotToken: prefix(slotToken, rows) };
    this.run('moe_dispatch', moeUniforms(shape, C), views, this.grid(rows * C, 64));
  }

  moeDispatchBackward(dx: View, dOut: View, slot: View, shape: MoeShape, C: number): void {
    checkMoeRows('moeDispatchBackward', shape, C, { dx: [dx, 'tokens', 'f32'], dOut: [dOut, 'slots', 'f32'], slot: [slot, 'assignments', 'u32'] });
    const views = { dx: prefix(dx, shape.tokens * C), dOut: prefix(dOut, shape.experts * shape.slotsPerExpert * C), slot: prefix(slot, shape.tokens * shape.topk) };
    this.run('moe_dispatch_backward', moeUniforms(shape, C), views, this.grid(shape.tokens * C, 64));
  }

  moeCombine(y: View, expertOut: View, slot: View, gates: View, shape: MoeShape, C: number): void {
    checkMoeRows('moeCombine', shape, C, { y: [y, 'tokens', 'f32'], expertOut: [expertOut, 'slots', 'f32'], slot: [slot, 'assignments', 'u32'], gates: [gates, 'assignments', 'f32'] });
    const assignments = shape.tokens * shape.topk;
    const views = {
      y: prefix(y, shape.tokens * C),
      expertOut: prefix(expertOut, shape.experts * shape.slotsPerExpert * C),
      slot: prefix(slot, assignments),
      gates: prefix(gates, assignments),
    };
    this.run('moe_combine', moeUniforms(shape, C), views, this.grid(shape.tokens * C, 64));
  }

  moeCombineBackward(dExpertOut: View, dGates: View, dy: View, expertOut: View, slot: View, slotToken: View, gates: View, shape: MoeShape, C: number): void {
    checkMoeCombineBackward('moeCombineBackward', { dExpertOut, dGates, dy, expertOut, slot, slotToken, gates }, shape, C);
    const rows = shape.experts * shape.slotsPerExpert;
    const assignments = shape.tokens * shape.topk;
    const u = moeUniforms(shape, C);
    const [g, d] = [prefix(gates, assignments), prefix(dy, shape.tokens * C)];
    this.run('moe_combine_backward_rows', u, { dExpertOut: prefix(dExpertOut, rows * C), dy: d, slotToken: prefix(slotToken, rows), gates: g }, this.grid(rows * C, 64));
    const views = { dGates: prefix(dGates, assignments), dy: d, expertOut: prefix(expertOut, rows * C), slot: prefix(slot, assignments) };
    this.run('moe_combine_backward_gates', u, views, this.grid(assignments, 64));
  }

  moeRouteBackward(dLogits: View, dGates: View, probs: View, choice: View, fractions: View, shape: MoeShape, auxWeight: number, auxScale: number): void {
    checkMoeRouteBackward('moeRouteBackward', { dLogits, dGates, probs, choice, fractions }, shape);
    const { tokens: n, experts: E, topk: k, groups: G } = shape;
    const views = {
      dLogits: prefix(dLogits, n * E),
      dGates: prefix(dGates, n * k),
      probs: prefix(probs, n * E),
      choice: prefix(choice, n * k),
      fractions: prefix(fractions, G * E),
    };
    this.run('moe_route_backward', moeUniforms(shape, 0, auxWeight, auxScale), views, this.grid(n, 64));
  }

  // --- optimisers and clipping ------------------------------------------------------------------

  sumSquares(partial: View, x: View): void {
    needLength('sumSquares', 'partial', partial, 1);
    // Small inputs: one workgroup is already fast, and a second dispatch would cost more than it saves.
    if (x.length <= 4 * SUM_SQUARES_PARTIALS) {
      this.run('sum_squares', { n: x.length }, { total: prefix(partial, 1), x }, [1, 1]);
      return;
    }
    const partials = viewOf(this.reducePartials(), 0, SUM_SQUARES_PARTIALS);
    this.run('sum_squares_partials', { n: x.length, stride: SUM_SQUARES_PARTIALS }, { partials, x }, [SUM_SQUARES_PARTIALS / 256, 1]);
    this.run('sum_partials', { n: SUM_SQUARES_PARTIALS }, { total: prefix(partial, 1), x: partials }, [1, 1]);
  }

  clipByNorm(g: View, sumSq: View, maxNorm: number): void {
    needLength('clipByNorm', 'sumSq', sumSq, 1);
    this.run('clip_by_norm', { n: g.length, maxNorm }, { grads: g, sumSq: prefix(sumSq, 1) }, this.grid(g.length, 256));
  }

  sgd(params: View, grads: View, momentum: View, h: SgdHyper): void {
    const n = needSameLength('sgd', { params, grads, momentum });
    this.run('sgd', { n, lr: h.lr, momentum: h.momentum, weightDecay: h.weightDecay }, { params, grads, momentum }, this.grid(n, 256));
  }

  adamw(params: View, grads: View, m: View, v: View, h: AdamWHyper): void {
    const n = needSameLength('adamw', { params, grads, m, v });
    if (!(h.step >= 1)) throw new RangeError(`adamw: step is 1-based, got ${h.step}`);
    const { lr, beta1, beta2, eps, weightDecay, step } = h;
    const uniforms = { n, lr, beta1, beta2, eps, weightDecay, correction1: 1 - beta1 ** step, correction2: 1 - beta2 ** step };
    this.run('adamw', uniforms, { params, grads, m, v }, this.grid(n, 256));
  }

  // --- internals --------------------------------------------------------------------------------

  private unary(name: 'relu' | 'gelu', out: View, x: View): void {
    const n = needSameLength(name, { out, x });
    if (sameRange(out, x)) this.run(`${name}_in_place`, { n }, { out }, this.grid(n, 256));
    else this.run(name, { n }, { out, x }, this.grid(n, 256));
  }

  private unaryBackward(name: 'relu' | 'gelu', dx: View, x: View, dy: View): void {
    const n = needSameLength(`${name}Backward`, { dx, x, dy });
    if (sameRange(dx, dy)) this.run(`${name}_backward_in_place`, { n }, { dx, x }, this.grid(n, 256));
    else this.run(`${name}_backward`, { n }, { dx, x, dy }, this.grid(n, 256));
  }

  /** Workgroup counts for `n` invocations of `size`, folded into 2-D past the per-dimension limit. */
  private grid(n: number, size: number): [number, number] {
    const groups = Math.max(1, Math.ceil(n / size));
    if (groups <= WORKGROUPS_PER_DIM) return [groups, 1];
    const x = WORKGROUPS_PER_DIM;
    const y = Math.ceil(groups / x);
    if (y > WORKGROUPS_PER_DIM) throw new RangeError(`${n} elements is more than one dispatch can cover`);
    return [x, y];
  }

  /**
   * Records one dispatch of `name`: `uniforms` by field name (packed in the WGSL struct's order), one
   * view per storage role (bound to the role's binding number).
   */
  private run<N extends KernelName>(name: N, uniforms: UniformsOf<N>, views: ViewsOf<N, View>, groups: [number, number]): void {
    const kernel = this.kernels[name];
    if (!kernel) throw new Error(`kernel ${name} was not built for this backend`);
    const roles = kernel.roles;
    const bound = roles.map(([role]) => (views as Record<string, View>)[role]);
    const bufs = bound.map((v) => this.checkBinding(name, v));
    checkDisjoint(name, roles, bound);
    checkReadOnly(name, roles, bound);
    const key = `${name}|${bound.map((v) => `${v.buf.id}:${v.offset}:${v.length}`).join(',')}`;
    let entry = this.cache.get(key);
    if (!entry) {
      const slot = this.uniforms.take();
      entry = {
        slot,
        bufIds: bound.map((v) => v.buf.id),
        words: undefined,
        batch: -1,
        bindGroup: this.device.createBindGroup({
          label: key,
          layout: kernel.layout,
          entries: [
            { binding: 0, resource: { buffer: slot.buffer, offset: slot.offset, size: slot.size } },
            ...bound.map((v, i) => ({
              binding: roles[i][1].binding,
              resource: { buffer: bufs[i].gpu, offset: v.offset * 4, size: v.length * 4 },
            })),
          ],
        }),
      };
      this.cache.set(key, entry);
    }
    const words = packUniforms(kernel.spec.uniform, uniforms);
    if (!entry.words || !sameWords(entry.words, words)) {
      // A queue write lands before the pending pass runs: if that pass already used this slot with
      // other values, submit it first so that it keeps seeing them.
      if (entry.batch === this.batch) this.submit();
      this.device.queue.writeBuffer(entry.slot.buffer, entry.slot.offset, words);
      entry.words = words;
    }
    entry.batch = this.batch;
    this.encoder ??= this.device.createCommandEncoder();
    this.pass ??= this.encoder.beginComputePass();
    this.pass.setPipeline(kernel.pipeline);
    this.pass.setBindGroup(0, entry.bindGroup);
    this.pass.dispatchWorkgroups(groups[0], groups[1]);
    this.countDispatch();
  }

  private countDispatch(): void {
    if (++this.dispatches >= this.maxBatch) this.submit();
  }

  private endPass(): void {
    this.pass?.end();
    this.pass = undefined;
  }

  private submit(): void {
    this.endPass();
    if (this.encoder) {
      this.device.queue.submit([this.encoder.finish()]);
      this.encoder = undefined;
    }
    this.dispatches = 0;
    this.batch++;
  }

  private checkBinding(op: string, v: View): GpuBuf {
    const own = this.own(v.buf, op);
    if (v.offset % VIEW_ALIGNMENT !== 0) {
      throw new RangeError(
        `${op}: view of ${v.buf.label} starts at element ${v.offset}, not a multiple of VIEW_ALIGNMENT ` +
          `(${VIEW_ALIGNMENT} floats = 256 bytes, WebGPU's storage-binding offset alignment); pad the layout with alignUp()`,
      );
    }
    if (v.length <= 0) throw new RangeError(`${op}: empty view of ${v.buf.label}`);
    return own;
  }

  private own(buf: DeviceBuffer, op: string): GpuBuf {
    const own = this.live.get(buf.id);
    if (!own || own !== buf) throw new Error(`${op}: buffer ${buf.label} (#${buf.id}) is freed or belongs to another backend`);
    return own;
  }

  /** First-level sums of sumSquares (SUM_SQUARES_PARTIALS floats), allocated on first use. */
  private reducePartials(): DeviceBuffer {
    return (this.partialSums ??= this.alloc(SUM_SQUARES_PARTIALS, 'sum of squares partials', 'workspace'));
  }

  /** The attention backward's score-gradient scratch, grown (never shrunk) to the largest call. */
  private scratch(length: number): DeviceBuffer {
    if (!this.attentionScratch || this.attentionScratch.length < length) {
      if (this.attentionScratch) this.free(this.attentionScratch);
      this.attentionScratch = this.alloc(length, 'attention backward scratch', 'workspace');
    }
    return this.attentionScratch;
  }

  private takeStaging(bytes: number): GPUBuffer {
    let free = this.staging.get(bytes);
    if (!free) this.staging.set(bytes, (free = []));
    const reused = free.pop();
    if (reused) return reused;
    this.stagingCount++;
    this.stagingBytes += bytes;
    return this.device.createBuffer({ label: `staging ${bytes}`, size: bytes, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  }
}

function sameWords(a: Uint32Array, b: Uint32Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function sameRange(a: View, b: View): boolean {
  return a.buf.id === b.buf.id && a.offset === b.offset && a.length === b.length;
}

/** The first `n` elements of a view: bindings cover exactly what the kernel touches. */
function moeUniforms(s: MoeShape, channels: number, auxWeight = 0, auxScale = 0, auxIndex = 0) {
  const { tokens, experts, topk, groups, capacity, slotsPerExpert } = s;
  return { tokens, experts, topk, groups, capacity, slotsPerExpert, channels, auxIndex, auxWeight, auxScale };
}

function prefix(v: View, n: number): View {
  return n === v.length ? v : viewOf(v.buf, v.offset, n);
}

type Roles = Kernel['roles'];

/**
 * WebGPU refuses overlapping ranges of one buffer in a dispatch when a binding is writable: say so
 * clearly rather than as a validation error at submit time.
 */
function checkDisjoint(op: string, roles: Roles, views: View[]): void {
  for (let i = 0; i < views.length; i++) {
    for (let j = i + 1; j < views.length; j++) {
      const [a, b] = [views[i], views[j]];
      if (a.buf.id === b.buf.id && a.offset < b.offset + b.length && b.offset < a.offset + a.length) {
        throw new RangeError(
          `${op}: ${roles[i][0]} and ${roles[j][0]} overlap in ${a.buf.label} ([${a.offset}, ${a.offset + a.length}) and ` +
            `[${b.offset}, ${b.offset + b.length})); only the aliasing that the Backend contract allows is supported`,
        );
      }
    }
  }
}

/**
 * WebGPU also refuses a buffer bound read-only and read_write in one dispatch, even in disjoint ranges.
 * The kernels bind read-only only inputs that no caller keeps in the buffer of a read_write binding
 * (shaders/ says why each read_write input is one): a new caller that does gets this error rather
 * than a validation error at submit.
 */
function checkReadOnly(op: string, roles: Roles, views: View[]): void {
  roles.forEach(([role, { access }], i) => {
    if (access !== 'read') return;
    const j = roles.findIndex(([, other], k) => other.access === 'read_write' && views[k].buf.id === views[i].buf.id);
    if (j >= 0) {
      throw new RangeError(
        `${op}: ${role} (bound read-only) and ${roles[j][0]} (bound read_write) are both views of ${views[i].buf.label}; WebGPU ` +
          'refuses one buffer bound read-only and read_write in the same dispatch: give this input a buffer of its own',
      );
    }
  });
}
