// The one interface that models, optimizers and the trainer are written against. Two implementations:
// WebGPU (src/gpu/webgpu-backend.ts, WGSL kernels in shaders/) and the CPU reference
// (src/engine/cpu-backend.ts), which is every kernel's twin in the tests.
//
// Conventions shared by every op (llm.c's, so that the model code reads like the math):
// - Row-major. A matrix "[M, K]" is M rows of K contiguous floats.
// - Weights are stored [in, out]: a linear layer is y = x @ W + b.
// - Backward ops OVERWRITE activation gradients (dx) and ACCUMULATE (+=) into parameter gradients
//   (dW, db, dgamma, dwte...). The trainer zeroes the flat gradient buffer once per optimizer step, so
//   gradient accumulation over micro-batches and tied weights come for free.
// - Integer inputs (tokens, class targets) live in 'u32' buffers; everything else is 'f32'.
// - Ops only record work. Nothing is read back unless `read` is called; `flush` waits for the queue.

export type DType = 'f32' | 'u32';

/** What a buffer holds, for memory accounting (ZeRO issue: every byte held is counted by kind). */
export type MemoryKind = 'params' | 'grads' | 'optimizer' | 'activations' | 'workspace' | 'data';

export interface DeviceBuffer {
  readonly id: number;
  readonly label: string;
  readonly dtype: DType;
  /** Length in elements (4 bytes each). */
  readonly length: number;
  readonly kind: MemoryKind;
}

/**
 * A contiguous range of a buffer, in elements. On WebGPU a view's offset must be a multiple of
 * VIEW_ALIGNMENT elements (storage-buffer binding offsets are 256-byte aligned); parameter layouts pad
 * every tensor to it.
 */
export interface View {
  readonly buf: DeviceBuffer;
  readonly offset: number;
  readonly length: number;
}

/** 64 floats = 256 bytes: WebGPU's minStorageBufferOffsetAlignment on every adapter we know. */
export const VIEW_ALIGNMENT = 64;

export function alignUp(n: number, to: number = VIEW_ALIGNMENT): number {
  return Math.ceil(n / to) * to;
}

export interface MatmulOptions {
  /** Use a^T: a is stored [K, M]. */
  transA?: boolean;
  /** Use b^T: b is stored [N, K]. */
  transB?: boolean;
  /** out += result instead of out = result. */
  accumulate?: boolean;
}

export interface AdamWHyper {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** 1-based optimizer step, for bias correction. */
  step: number;
}

export interface SgdHyper {
  lr: number;
  momentum: number;
  weightDecay: number;
}

export interface BackendInfo {
  kind: 'webgpu' | 'cpu';
  /** Human-readable adapter description, e.g. "google swiftshader" or "CPU reference (no WebGPU)". */
  adapter: string;
}

/** A mixture-of-experts routing's sizes (src/engine/moe-reference.ts says what each op computes). */
export interface MoeShape {
  tokens: number;
  experts: number;
  topk: number;
  /** Capacity groups: the tokens are `groups` equal consecutive runs, each with its own capacity. */
  groups: number;
  /** Slots per expert per group. */
  capacity: number;
  /** The stride between experts in the slot buffer (>= groups * capacity; the rest stay empty). */
  slotsPerExpert: number;
}

/** The views `moeRoute` writes. */
export interface MoeRouting {
  /** [tokens, experts] router probabilities. */
  probs: View;
  /** u32 [tokens, topk]: the expert of each assignment (also for dropped ones). */
  choice: View;
  /** u32 [tokens, topk]: the slot row of each assignment, or MOE_NONE when it was dropped. */
  slot: View;
  /** [tokens, topk] gate values (also for dropped assignments; they contribute nothing). */
  gates: View;
  /** u32 [experts * slotsPerExpert]: the assignment (token * topk + choice) in each slot, or MOE_NONE. */
  slotToken: View;
  /** [groups, experts]: f, the fraction of each group's tokens whose first choice is each expert. */
  fractions: View;
  /** The auxiliary loss goes to element `auxIndex` of this view (one element per MoE layer). */
  aux: View;
}

export interface Backend {
  readonly info: BackendInfo;

  // --- memory -------------------------------------------------------------------------------------
  alloc(length: number, label: string, kind: MemoryKind, dtype?: DType): DeviceBuffer;
  free(buf: DeviceBuffer): void;
  /** Bytes currently allocated, per kind (real allocations, not estimates). */
  memory(): Record<MemoryKind, number>;
  /** Number of live device buffers (soak test: must not grow). */
  bufferCount(): number;
  /**
   * Drops idle read-back buffers kept for reuse. Their sizes follow the run's shapes, so a run rebuilt
   * for another world size (an elastic ring) would otherwise keep the old shapes' buffers for good.
   */
  trimCaches(): void;

  write(dst: View, data: Float32Array | Uint32Array): void;
  /** Copies the view back to the host. The only way data leaves the device. */
  read(src: View): Promise<Float32Array>;
  /** Copies several views back in one round trip (one wait for the device, not one per view); u32 views come back as their bits, like `read`. */
  readMany(srcs: readonly View[]): Promise<Float32Array[]>;
  fill(dst: View, value: number): void;
  copy(dst: View, src: View): void;
  /** Wait until every recorded op has executed (tests, benchmarks, step boundaries). */
  flush(): Promise<void>;

  // --- elementwise ------------------------------------------------------------------------------
  /** out = a + b (residual add). out may alias a or b. */
  add(out: View, a: View, b: View): void;
  /** out += a (residual backward, gradient accumulation). */
  addInPlace(out: View, a: View): void;
  /** x *= s. */
  scale(x: View, s: number): void;

  // --- linear -----------------------------------------------------------------------------------
  /** out[M,N] (=|+=) op(a)[M,K] @ op(b)[K,N]. */
  matmul(out: View, a: View, b: View, M: number, K: number, N: number, opts?: MatmulOptions): void;
  /** out[r, c] = x[r, c] + bias[c]; out may alias x. */
  biasAdd(out: View, x: View, bias: View, rows: number, cols: number): void;
  /** dBias[c] += sum_r dOut[r, c]. */
  biasBackward(dBias: View, dOut: View, rows: number, cols: number): void;

  // --- activations ------------------------------------------------------------------------------
  relu(out: View, x: View): void;
  /** dx = dy * (x > 0). */
  reluBackward(dx: View, x: View, dy: View): void;
  /** GELU, tanh approximation (GPT-2's). */
  gelu(out: View, x: View): void;
  geluBackward(dx: View, x: View, dy: View): void;

  // --- loss -------------------------------------------------------------------------------------
  /**
   * Fused, numerically stable softmax + cross-entropy, forward and backward in one op:
   * losses[r] = -log softmax(logits[r])[targets[r]], probs written to `probs` (may alias nothing),
   * dLogits[r, c] = (probs[r, c] - 1[c == targets[r]]) * gradScale.
   * The trainer passes gradScale = 1 / (rows * microBatches) so that gradients are of the mean loss.
   */
  softmaxCrossEntropy(
    losses: View,
    probs: View,
    dLogits: View,
    logits: View,
    targets: View,
    rows: number,
    cols: number,
    gradScale: number,
  ): void;

  // --- normalisation ----------------------------------------------------------------------------
  /** out = (x - mean) * rstd * gamma + beta per row; saves mean[rows] and rstd[rows]. eps = 1e-5. */
  layerNorm(out: View, mean: View, rstd: View, x: View, gamma: View, beta: View, rows: number, cols: number): void;
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
  ): void;

  // --- GPT pieces -------------------------------------------------------------------------------
  /** out[b, t, :] = wte[tokens[b, t], :] + wpe[t, :]. tokens is u32 [B, T]. */
  embedding(out: View, tokens: View, wte: View, wpe: View, B: number, T: number, C: number): void;
  /** dWte[tokens[b,t], :] += dOut[b,t,:]; dWpe[t, :] += sum_b dOut[b,t,:]. Deterministic (no atomics). */
  embeddingBackward(dWte: View, dWpe: View, dOut: View, tokens: View, B: number, T: number, C: number, vocab: number): void;
  /**
   * Multi-head causal self-attention. qkv is [B, T, 3C] (q, k, v concatenated), out is [B, T, C],
   * att holds the softmaxed probabilities [B, nHead, T, T] for the backward pass.
   */
  attention(out: View, att: View, qkv: View, B: number, T: number, C: number, nHead: number): void;
  /** dQkv = d(out)/d(qkv) (overwritten). */
  attentionBackward(dQkv: View, dOut: View, qkv: View, att: View, B: number, T: number, C: number, nHead: number): void;

  // --- mixture of experts (shapes and semantics: src/engine/moe-reference.ts) ----------------------
  /** Router softmax, top-k choice, gates, capacity slots, first-choice fractions and the aux loss. */
  moeRoute(r: MoeRouting, logits: View, shape: MoeShape, auxWeight: number, auxIndex: number): void;
  /** out[slot, :] = x[its token, :], zero for an empty slot. */
  moeDispatch(out: View, x: View, slotToken: View, shape: MoeShape, C: number): void;
  /** dx[t, :] = sum of dOut over t's kept slots (overwrites). */
  moeDispatchBackward(dx: View, dOut: View, slot: View, shape: MoeShape, C: number): void;
  /** y[t, :] = sum over t's kept assignments of gate * expertOut[slot, :]. */
  moeCombine(y: View, expertOut: View, slot: View, gates: View, shape: MoeShape, C: number): void;
  /** dExpertOut (per slot) and dGates (per assignment), both overwritten. */
  moeCombineBackward(dExpertOut: View, dGates: View, dy: View, expertOut: View, slot: View, slotToken: View, gates: View, shape: MoeShape, C: number): void;
  /** dLogits (overwritten) through the gates and the load-balancing loss (scaled by auxScale). */
  moeRouteBackward(dLogits: View, dGates: View, probs: View, choice: View, fractions: View, shape: MoeShape, auxWeight: number, auxScale: number): void;

  // --- optimisers and clipping (all on flat ranges, so that ZeRO can update one slice) -------------
  /** partial[0] = sum(x^2). `partial` is a 1-element view. */
  sumSquares(partial: View, x: View): void;
  /**
   * Global-norm clipping: norm = sqrt(sumSq[0]); if norm > maxNorm then g *= maxNorm / norm.
   * Reads the norm on the device: no readback.
   */
  clipByNorm(g: View, sumSq: View, maxNorm: number): void;
  /** PyTorch's SGD: buf = momentum*buf + (g + wd*p); p -= lr*buf. */
  sgd(params: View, grads: View, momentum: View, h: SgdHyper): void;
  /** Decoupled AdamW with bias correction (PyTorch's AdamW). */
  adamw(params: View, grads: View, m: View, v: View, h: AdamWHyper): void;
}

export function viewOf(buf: DeviceBuffer, offset = 0, length = buf.length - offset): View {
  if (offset < 0 || length < 0 || offset + length > buf.length) {
    throw new RangeError(`view [${offset}, ${offset + length}) outside ${buf.label} (${buf.length})`);
  }
  return { buf, offset, length };
}
