// Over 400 lines because it is one CPU twin per Backend op, in the order of the Backend interface, each a short loop.
// The CPU reference of every kernel: plain loops over Float32Arrays, written to be obviously right
// rather than fast. It is each WGSL kernel's twin in the tests and the fallback where there is no
// WebGPU. Math runs in JavaScript doubles and rounds to float32 when stored, like the GPU's f32 storage,
// except the optimizer update and the gradient clip, which are float32 throughout (f32-update.ts).
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
} from './backend';
import { adamwF32, clipByNormF32, sgdF32, sumSquaresF32 } from './f32-update';
import {
  checkMoeCombineBackward,
  checkMoeRoute,
  checkMoeRouteBackward,
  checkMoeRows,
  moeCombineBackwardReference,
  moeCombineReference,
  moeDispatchBackwardReference,
  moeDispatchReference,
  moeRouteBackwardReference,
  moeRouteReference,
} from './moe-reference';
import { checkAttention, checkBiasAdd, checkBiasBackward, checkEmbedding, checkEmbeddingBackward, checkMatmul, needDType, needLength, needPositive, needSameLength } from './op-checks';

export const LAYER_NORM_EPS = 1e-5;
const GELU_SCALE = Math.sqrt(2 / Math.PI);

interface CpuBuffer extends DeviceBuffer {
  /** Float and integer windows onto the same bytes, so that `write`/`read` move raw bits, as on a GPU. */
  readonly f32: Float32Array;
  readonly u32: Uint32Array;
  freed: boolean;
}

export function emptyMemory(): Record<MemoryKind, number> {
  return { params: 0, grads: 0, optimizer: 0, activations: 0, workspace: 0, data: 0 };
}

export class CpuBackend implements Backend {
  readonly info: BackendInfo = { kind: 'cpu', adapter: 'CPU reference (no WebGPU)' };
  private nextId = 1;
  private readonly live = new Map<number, CpuBuffer>();

  // --- memory -------------------------------------------------------------------------------------

  alloc(length: number, label: string, kind: MemoryKind, dtype: DType = 'f32'): DeviceBuffer {
    if (!Number.isInteger(length) || length <= 0) throw new RangeError(`alloc ${label}: bad length ${length}`);
    const bytes = new ArrayBuffer(length * 4);
    const buf: CpuBuffer = {
      id: this.nextId++,
      label,
      dtype,
      length,
      kind,
      f32: new Float32Array(bytes),
      u32: new Uint32Array(bytes),
      freed: false,
    };
    this.live.set(buf.id, buf);
    return buf;
  }

  free(buf: DeviceBuffer): void {
    const own = this.own(buf, 'free');
    own.freed = true;
    this.live.delete(own.id);
  }

  memory(): Record<MemoryKind, number> {
    const bytes = emptyMemory();
    for (const b of this.live.values()) bytes[b.kind] += b.length * 4;
    return bytes;
  }

  trimCaches(): void {
    // Nothing is cached between reads on the CPU.
  }

  bufferCount(): number {
    return this.live.size;
  }

  write(dst: View, data: Float32Array | Uint32Array): void {
    needLength('write', 'dst', dst, data.length);
    const bits = new Uint32Array(data.buffer, data.byteOffset, data.length);
    this.u(dst, 'write').set(bits);
  }

  /** A copy of the view's bytes as float32 (for a u32 buffer: `new Uint32Array(result.buffer)`). */
  async read(src: View): Promise<Float32Array> {
    return this.f(src, 'read').slice();
  }

  async readMany(srcs: readonly View[]): Promise<Float32Array[]> {
    return srcs.map((src) => this.f(src, 'read').slice());
  }

  fill(dst: View, value: number): void {
    if (dst.buf.dtype === 'u32') this.u(dst, 'fill').fill(value);
    else this.f(dst, 'fill').fill(value);
  }

  copy(dst: View, src: View): void {
    needSameLength('copy', { dst, src });
    this.u(dst, 'copy').set(this.u(src, 'copy'));
  }

  async flush(): Promise<void> {
    // Every op already ran synchronously.
  }

  // --- elementwise ------------------------------------------------------------------------------

  add(out: View, a: View, b: View): void {
    const n = needSameLength('add', { out, a, b });
    const [o, x, y] = [this.f(out, 'add'), this.f(a, 'add'), this.f(b, 'add')];
    for (let i = 0; i < n; i++) o[i] = x[i] + y[i];
  }

  addInPlace(out: View, a: View): void {
    const n = needSameLength('addInPlace', { out, a });
    const [o, x] = [this.f(out, 'addInPlace'), this.f(a, 'addInPlace')];
    for (let i = 0; i < n; i++) o[i] += x[i];
  }

  scale(x: View, s: number): void {
    const v = this.f(x, 'scale');
    for (let i = 0; i < v.length; i++) v[i] *= s;
  }

  // --- linear -----------------------------------------------------------------------------------

  matmul(out: View, a: View, b: View, M: number, K: number, N: number, opts: MatmulOptions = {}): void {
    checkMatmul(out, a, b, M, K, N);
    const [o, A, Bm] = [this.f(out, 'matmul'), this.f(a, 'matmul'), this.f(b, 'matmul')];
    // Element (i, k) of op(a) and (k, j) of op(b), whatever the storage order.
    const aAt = opts.transA ? (i: number, k: number) => A[k * M + i] : (i: number, k: number) => A[i * K + k];
    const bAt = opts.transB ? (k: number, j: number) => Bm[j * K + k] : (k: number, j: number) => Bm[k * N + j];
    // Compute into a temporary first: `out` may share a buffer with an input.
    const result = new Float64Array(M * N);
    for (let i = 0; i < M; i++) {
      for (let j = 0; j < N; j++) {
        let sum = 0;
        for (let k = 0; k < K; k++) sum += aAt(i, k) * bAt(k, j);
        result[i * N + j] = sum;
      }
    }
    for (let i = 0; i < M * N; i++) o[i] = opts.accumulate ? o[i] + result[i] : result[i];
  }

  biasAdd(out: View, x: View, bias: View, rows: number, cols: number): void {
    checkBiasAdd(out, x, bias, rows, cols);
    const [o, xs, b] = [this.f(out, 'biasAdd'), this.f(x, 'biasAdd'), this.f(bias, 'biasAdd')];
    for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) o[r * cols + c] = xs[r * cols + c] + b[c];
  }

  biasBackward(dBias: View, dOut: View, rows: number, cols: number): void {
    checkBiasBackward(dBias, dOut, rows, cols);
    const [db, dy] = [this.f(dBias, 'biasBackward'), this.f(dOut, 'biasBackward')];
    for (let c = 0; c < cols; c++) {
      let sum = 0;
      for (let r = 0; r < rows; r++) sum += dy[r * cols + c];
      db[c] += sum;
    }
  }

  // --- activations ------------------------------------------------------------------------------

  relu(out: View, x: View): void {
    const n = needSameLength('relu', { out, x });
    const [o, xs] = [this.f(out, 'relu'), this.f(x, 'relu')];
    for (let i = 0; i < n; i++) o[i] = xs[i] > 0 ? xs[i] : 0;
  }

  reluBackward(dx: View, x: View, dy: View): void {
    const n = needSameLength('reluBackward', { dx, x, dy });
    const [d, xs, g] = [this.f(dx, 'reluBackward'), this.f(x, 'reluBackward'), this.f(dy, 'reluBackward')];
    for (let i = 0; i < n; i++) d[i] = xs[i] > 0 ? g[i] : 0;
  }

  gelu(out: View, x: View): void {
    const n = needSameLength('gelu', { out, x });
    const [o, xs] = [this.f(out, 'gelu'), this.f(x, 'gelu')];
    for (let i = 0; i < n; i++) {
      const v = xs[i];
      o[i] = 0.5 * v * (1 + Math.tanh(GELU_SCALE * (v + 0.044715 * v * v * v)));
    }
  }

  geluBackward(dx: View, x: View, dy: View): void {
    const n = needSameLength('geluBackward', { dx, x, dy });
    const [d, xs, g] = [this.f(dx, 'geluBackward'), this.f(x, 'geluBackward'), this.f(dy, 'geluBackward')];
    for (let i = 0; i < n; i++) {
      const v = xs[i];
      const th = Math.tanh(GELU_SCALE * (v + 0.044715 * v * v * v));
      const sech2 = 1 - th * th;
      const local = 0.5 * (1 + th) + 0.5 * v * sech2 * GELU_SCALE * (1 + 3 * 0.044715 * v * v);
      d[i] = local * g[i];
    }
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
    needLength(op, 'losses', losses, rows);
    needLength(op, 'probs', probs, rows * cols);
    needLength(op, 'dLogits', dLogits, rows * cols);
    needLength(op, 'logits', logits, rows * cols);
    needLength(op, 'targets', targets, rows);
    needDType(op, 'targets', targets, 'u32');
    const [loss, p, dl, z, tg] = [this.f(losses, op), this.f(probs, op), this.f(dLogits, op), this.f(logits, op), this.u(targets, op)];
    for (let r = 0; r < rows; r++) {
      const target = tg[r];
      if (target >= cols) throw new RangeError(`${op}: target ${target} in row ${r} is not below ${cols}`);
      const row = r * cols;
      let max = -Infinity;
      for (let c = 0; c < cols; c++) max = Math.max(max, z[row + c]);
      let sum = 0;
      for (let c = 0; c < cols; c++) sum += Math.exp(z[row + c] - max);
      // -log(exp(z_t - max) / sum), computed without forming the (possibly underflowing) probability.
      loss[r] = Math.log(sum) - (z[row + target] - max);
      for (let c = 0; c < cols; c++) {
        const prob = Math.exp(z[row + c] - max) / sum;
        p[row + c] = prob;
        dl[row + c] = (prob - (c === target ? 1 : 0)) * gradScale;
      }
    }
  }

  // --- normalisation ----------------------------------------------------------------------------

  layerNorm(out: View, mean: View, rstd: View, x: View, gamma: View, beta: View, rows: number, cols: number): void {
    const op = 'layerNorm';
    needPositive(op, { rows, cols });
    for (const [name, v] of Object.entries({ out, x })) needLength(op, name, v, rows * cols);
    for (const [name, v] of Object.entries({ mean, rstd })) needLength(op, name, v, rows);
    for (const [name, v] of Object.entries({ gamma, beta })) needLength(op, name, v, cols);
    const [o, mu, rs, xs, g, b] = [this.f(out, op), this.f(mean, op), this.f(rstd, op), this.f(x, op), this.f(gamma, op), this.f(beta, op)];
    for (let r = 0; r < rows; r++) {
      const row = r * cols;
      let m = 0;
      for (let c = 0; c < cols; c++) m += xs[row + c];
      m /= cols;
      let variance = 0;
      for (let c = 0; c < cols; c++) variance += (xs[row + c] - m) ** 2;
      variance /= cols; // biased, as PyTorch and llm.c
      const s = 1 / Math.sqrt(variance + LAYER_NORM_EPS);
      for (let c = 0; c < cols; c++) o[row + c] = (xs[row + c] - m) * s * g[c] + b[c];
      mu[r] = m;
      rs[r] = s;
    }
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
    for (const [name, v] of Object.entries({ dx, dy, x })) needLength(op, name, v, rows * cols);
    for (const [name, v] of Object.entries({ mean, rstd })) needLength(op, name, v, rows);
    for (const [name, v] of Object.entries({ dGamma, dBeta, gamma })) needLength(op, name, v, cols);
    const [d, dg, db, up, xs, mu, rs, gm] = [
      this.f(dx, op), this.f(dGamma, op), this.f(dBeta, op), this.f(dy, op),
      this.f(x, op), this.f(mean, op), this.f(rstd, op), this.f(gamma, op),
    ];
    for (let r = 0; r < rows; r++) {
      const row = r * cols;
      // dx = rstd * (dnorm - mean(dnorm) - norm * mean(dnorm * norm)), with dnorm = dy * gamma.
      let meanDnorm = 0;
      let meanDnormNorm = 0;
      for (let c = 0; c < cols; c++) {
        const norm = (xs[row + c] - mu[r]) * rs[r];
        const dnorm = up[row + c] * gm[c];
        meanDnorm += dnorm;
        meanDnormNorm += dnorm * norm;
      }
      meanDnorm /= cols;
      meanDnormNorm /= cols;
      for (let c = 0; c < cols; c++) {
        const norm = (xs[row + c] - mu[r]) * rs[r];
        const dnorm = up[row + c] * gm[c];
        dg[c] += norm * up[row + c];
        db[c] += up[row + c];
        d[row + c] = rs[r] * (dnorm - meanDnorm - norm * meanDnormNorm);
      }
    }
  }

  // --- GPT pieces -------------------------------------------------------------------------------

  embedding(out: View, tokens: View, wte: View, wpe: View, B: number, T: number, C: number): void {
    const op = 'embedding';
    const vocab = checkEmbedding(out, tokens, wte, wpe, B, T, C);
    const [o, tok, te, pe] = [this.f(out, op), this.u(tokens, op), this.f(wte, op), this.f(wpe, op)];
    for (let bt = 0; bt < B * T; bt++) {
      const id = tok[bt];
      if (id >= vocab) throw new RangeError(`${op}: token ${id} at ${bt} is not below vocab ${vocab}`);
      const t = bt % T;
      for (let c = 0; c < C; c++) o[bt * C + c] = te[id * C + c] + pe[t * C + c];
    }
  }

  embeddingBackward(dWte: View, dWpe: View, dOut: View, tokens: View, B: number, T: number, C: number, vocab: number): void {
    const op = 'embeddingBackward';
    checkEmbeddingBackward(dWte, dWpe, dOut, tokens, B, T, C, vocab);
    const [dte, dpe, dy, tok] = [this.f(dWte, op), this.f(dWpe, op), this.f(dOut, op), this.u(tokens, op)];
    for (let bt = 0; bt < B * T; bt++) {
      const id = tok[bt];
      if (id >= vocab) throw new RangeError(`${op}: token ${id} at ${bt} is not below vocab ${vocab}`);
      const t = bt % T;
      for (let c = 0; c < C; c++) {
        dte[id * C + c] += dy[bt * C + c];
        dpe[t * C + c] += dy[bt * C + c];
      }
    }
  }

  attention(out: View, att: View, qkv: View, B: number, T: number, C: number, nHead: number): void {
    const op = 'attention';
    checkAttention(qkv, att, out, B, T, C, nHead, op);
    const [o, a, x] = [this.f(out, op), this.f(att, op), this.f(qkv, op)];
    const hs = C / nHead;
    const scale = 1 / Math.sqrt(hs);
    const C3 = 3 * C;
    for (let b = 0; b < B; b++) {
      for (let h = 0; h < nHead; h++) {
        for (let t = 0; t < T; t++) {
          const q = (b * T + t) * C3 + h * hs;
          const row = ((b * nHead + h) * T + t) * T;
          let max = -Infinity;
          const scores = new Float64Array(t + 1);
          for (let t2 = 0; t2 <= t; t2++) {
            const k = (b * T + t2) * C3 + C + h * hs;
            let dot = 0;
            for (let i = 0; i < hs; i++) dot += x[q + i] * x[k + i];
            scores[t2] = dot * scale;
            max = Math.max(max, scores[t2]);
          }
          let sum = 0;
          for (let t2 = 0; t2 <= t; t2++) sum += (scores[t2] = Math.exp(scores[t2] - max));
          // Causal mask: positions after t get probability 0, stored so the buffer is fully defined.
          for (let t2 = 0; t2 < T; t2++) a[row + t2] = t2 <= t ? scores[t2] / sum : 0;
          for (let i = 0; i < hs; i++) {
            let acc = 0;
            for (let t2 = 0; t2 <= t; t2++) acc += a[row + t2] * x[(b * T + t2) * C3 + 2 * C + h * hs + i];
            o[(b * T + t) * C + h * hs + i] = acc;
          }
        }
      }
    }
  }

  attentionBackward(dQkv: View, dOut: View, qkv: View, att: View, B: number, T: number, C: number, nHead: number): void {
    const op = 'attentionBackward';
    checkAttention(qkv, att, dOut, B, T, C, nHead, op);
    needLength(op, 'dQkv', dQkv, B * T * 3 * C);
    const [dx, dy, x, a] = [this.f(dQkv, op), this.f(dOut, op), this.f(qkv, op), this.f(att, op)];
    const hs = C / nHead;
    const scale = 1 / Math.sqrt(hs);
    const C3 = 3 * C;
    const grad = new Float64Array(B * T * C3); // accumulate in doubles, then overwrite dQkv once
    for (let b = 0; b < B; b++) {
      for (let h = 0; h < nHead; h++) {
        for (let t = 0; t < T; t++) {
          const row = ((b * nHead + h) * T + t) * T;
          const dyRow = (b * T + t) * C + h * hs;
          const q = (b * T + t) * C3 + h * hs;
          // d(att[t2]) = dOut[t] . v[t2]; dv[t2] += att[t2] * dOut[t].
          const dAtt = new Float64Array(t + 1);
          for (let t2 = 0; t2 <= t; t2++) {
            const v = (b * T + t2) * C3 + 2 * C + h * hs;
            let dot = 0;
            for (let i = 0; i < hs; i++) {
              dot += dy[dyRow + i] * x[v + i];
              grad[v + i] += a[row + t2] * dy[dyRow + i];
            }
            dAtt[t2] = dot;
          }
          // Softmax backward: dScore[t2] = att[t2] * (dAtt[t2] - sum_j att[j] dAtt[j]).
          let weighted = 0;
          for (let t2 = 0; t2 <= t; t2++) weighted += a[row + t2] * dAtt[t2];
          for (let t2 = 0; t2 <= t; t2++) {
            const dScore = a[row + t2] * (dAtt[t2] - weighted) * scale;
            const k = (b * T + t2) * C3 + C + h * hs;
            for (let i = 0; i < hs; i++) {
              grad[q + i] += dScore * x[k + i];
              grad[k + i] += dScore * x[q + i];
            }
          }
        }
      }
    }
    for (let i = 0; i < grad.length; i++) dx[i] = grad[i];
  }

  // --- mixture of experts (the loops are in moe-reference.ts) ------------------------------------

  moeRoute(r: MoeRouting, logits: View, shape: MoeShape, auxWeight: number, auxIndex: number): void {
    const op = 'moeRoute';
    checkMoeRoute(op, r, logits, shape, auxIndex);
    const arrays = {
      probs: this.f(r.probs, op),
      choice: this.u(r.choice, op),
      slot: this.u(r.slot, op),
      gates: this.f(r.gates, op),
      slotToken: this.u(r.slotToken, op),
      fractions: this.f(r.fractions, op),
      aux: this.f(r.aux, op),
    };
    moeRouteReference(arrays, this.f(logits, op), shape, auxWeight, auxIndex);
  }

  moeDispatch(out: View, x: View, slotToken: View, shape: MoeShape, C: number): void {
    const op = 'moeDispatch';
    checkMoeRows(op, shape, C, { out: [out, 'slots', 'f32'], x: [x, 'tokens', 'f32'], slotToken: [slotToken, 'slots', 'u32'] });
    moeDispatchReference(this.f(out, op), this.f(x, op), this.u(slotToken, op), shape, C);
  }

  moeDispatchBackward(dx: View, dOut: View, slot: View, shape: MoeShape, C: number): void {
    const op = 'moeDispatchBackward';
    checkMoeRows(op, shape, C, { dx: [dx, 'tokens', 'f32'], dOut: [dOut, 'slots', 'f32'], slot: [slot, 'assignments', 'u32'] });
    moeDispatchBackwardReference(this.f(dx, op), this.f(dOut, op), this.u(slot, op), shape, C);
  }

  moeCombine(y: View, expertOut: View, slot: View, gates: View, shape: MoeShape, C: number): void {
    const op = 'moeCombine';
    checkMoeRows(op, shape, C, { y: [y, 'tokens', 'f32'], expertOut: [expertOut, 'slots', 'f32'], slot: [slot, 'assignments', 'u32'], gates: [gates, 'assignments', 'f32'] });
    moeCombineReference(this.f(y, op), this.f(expertOut, op), this.u(slot, op), this.f(gates, op), shape, C);
  }

  moeCombineBackward(dExpertOut: View, dGates: View, dy: View, expertOut: View, slot: View, slotToken: View, gates: View, shape: MoeShape, C: number): void {
    const op = 'moeCombineBackward';
    checkMoeCombineBackward(op, { dExpertOut, dGates, dy, expertOut, slot, slotToken, gates }, shape, C);
    const f = (v: View) => this.f(v, op);
    moeCombineBackwardReference(f(dExpertOut), f(dGates), f(dy), f(expertOut), this.u(slot, op), this.u(slotToken, op), f(gates), shape, C);
  }

  moeRouteBackward(dLogits: View, dGates: View, probs: View, choice: View, fractions: View, shape: MoeShape, auxWeight: number, auxScale: number): void {
    const op = 'moeRouteBackward';
    checkMoeRouteBackward(op, { dLogits, dGates, probs, choice, fractions }, shape);
    const f = (v: View) => this.f(v, op);
    moeRouteBackwardReference(f(dLogits), f(dGates), f(probs), this.u(choice, op), f(fractions), shape, auxWeight, auxScale);
  }

  // --- optimisers and clipping ------------------------------------------------------------------

  // The update and the clip compute in float32 in the WGSL kernels' order (f32-update.ts): after an
  // all-reduce, a CPU tab and a WebGPU tab of one room must update their replicas to the same bits.
  sumSquares(partial: View, x: View): void {
    needLength('sumSquares', 'partial', partial, 1);
    this.f(partial, 'sumSquares')[0] = sumSquaresF32(this.f(x, 'sumSquares'));
  }

  clipByNorm(g: View, sumSq: View, maxNorm: number): void {
    needLength('clipByNorm', 'sumSq', sumSq, 1);
    clipByNormF32(this.f(g, 'clipByNorm'), this.f(sumSq, 'clipByNorm')[0], maxNorm);
  }

  sgd(params: View, grads: View, momentum: View, h: SgdHyper): void {
    needSameLength('sgd', { params, grads, momentum });
    sgdF32(this.f(params, 'sgd'), this.f(grads, 'sgd'), this.f(momentum, 'sgd'), h);
  }

  adamw(params: View, grads: View, m: View, v: View, h: AdamWHyper): void {
    needSameLength('adamw', { params, grads, m, v });
    if (!(h.step >= 1)) throw new RangeError(`adamw: step is 1-based, got ${h.step}`);
    adamwF32(this.f(params, 'adamw'), this.f(grads, 'adamw'), this.f(m, 'adamw'), this.f(v, 'adamw'), h);
  }

  // --- internals --------------------------------------------------------------------------------

  private own(buf: DeviceBuffer, op: string): CpuBuffer {
    const own = this.live.get(buf.id);
    if (!own || own !== buf) {
      throw new Error(`${op}: buffer ${buf.label} (#${buf.id}) is freed or belongs to another backend`);
    }
    return own;
  }

  protected f(v: View, op: string): Float32Array {
    return this.own(v.buf, op).f32.subarray(v.offset, v.offset + v.length);
  }

  protected u(v: View, op: string): Uint32Array {
    return this.own(v.buf, op).u32.subarray(v.offset, v.offset + v.length);
  }
}
