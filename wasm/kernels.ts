// AssemblyScript source of the fast CPU backend's WebAssembly kernels (built by `npm run build:wasm`
// into src/engine/generated/kernels.wasm; loaded by src/engine/wasm-kernels.ts). Every function works
// on raw byte addresses in this module's linear memory, which the JavaScript side lays out: nothing here
// allocates, so the module runs with AssemblyScript's stub runtime and no garbage collector.
//
// Matmul is the GotoBLAS shape: op(a) is packed into 4-row panels and op(b) into 8-column panels
// (zero-padded, so the micro-kernel never tests an edge), a 4x8 micro-kernel keeps its tile of C in
// eight f32x4 registers over a K block, and K/M blocking keeps one B micro-panel in L1 and an A block
// in L2. The summation order is per K block in f32, so results differ from the float64 reference in
// the last bits (the tests bound it).

import { addFloats } from './elementwise';
import { expLanes } from './lanes';

// GELU, tanh, bias, residual add and the embedding: elementwise kernels in their own file.
export { gelu, geluBackward, tanh, biasAdd, biasBackward, add, embedding, embeddingBackward } from './elementwise';
// Causal self-attention forward and backward, softmax rows on f32x4 lanes: its own file.
export { attention, attentionBackward } from './attention';

const MR: i32 = 4; // rows per A panel (micro-kernel height)
const NR: i32 = 8; // columns per B panel (micro-kernel width: two f32x4)
const KC: i32 = 256; // K block: a B micro-panel of KC x NR floats is 8 KiB
const MC: i32 = 64; // M block: an A block of MC x KC floats is 64 KiB

/** First free byte after this module's static data: the JavaScript side lays its buffers out from here. */
export function heapBase(): usize {
  return __heap_base;
}

/** Rows of op(a) rounded up to the panel height. */
export function paddedRows(M: i32): i32 {
  return ((M + MR - 1) / MR) * MR;
}

/** Columns of op(b) rounded up to the panel width. */
export function paddedCols(N: i32): i32 {
  return ((N + NR - 1) / NR) * NR;
}

/** dst[ib][k][r] = op(a)[ib*4 + r][k], zero for rows past M. a is [M,K], or [K,M] when transposed. */
export function packA(src: usize, dst: usize, M: i32, K: i32, trans: bool): void {
  packAPanels(src, dst, M, K, trans, 0, paddedRows(M) / MR);
}

/** packA's panels [panelFrom, panelTo) only: each panel is written by one call, whichever thread makes it. */
function packAPanels(src: usize, dst: usize, M: i32, K: i32, trans: bool, panelFrom: i32, panelTo: i32): void {
  let out = dst + ((<usize>panelFrom * MR * K) << 2);
  for (let i0 = panelFrom * MR; i0 < panelTo * MR; i0 += MR) {
    if (trans && i0 + MR <= M) {
      // A full panel of a transposed a: its 4 values at each k are contiguous, one v128 copy.
      for (let k = 0; k < K; k++) {
        v128.store(out, v128.load(src + ((<usize>k * M + i0) << 2)));
        out += MR << 2;
      }
      continue;
    }
    for (let k = 0; k < K; k++) {
      for (let r = 0; r < MR; r++) {
        const i = i0 + r;
        let v: f32 = 0;
        if (i < M) v = trans ? load<f32>(src + ((<usize>k * M + i) << 2)) : load<f32>(src + ((<usize>i * K + k) << 2));
        store<f32>(out, v);
        out += 4;
      }
    }
  }
}

/** dst[jb][k][c] = op(b)[k][jb*8 + c], zero for columns past N. b is [K,N], or [N,K] when transposed. */
export function packB(src: usize, dst: usize, K: i32, N: i32, trans: bool): void {
  packBPanels(src, dst, K, N, trans, 0, paddedCols(N) / NR);
}

/** packB's panels [panelFrom, panelTo) only. */
function packBPanels(src: usize, dst: usize, K: i32, N: i32, trans: bool, panelFrom: i32, panelTo: i32): void {
  let out = dst + ((<usize>panelFrom * NR * K) << 2);
  for (let j0 = panelFrom * NR; j0 < panelTo * NR; j0 += NR) {
    const full = j0 + NR <= N;
    for (let k = 0; k < K; k++) {
      if (full && !trans) {
        const from = src + ((<usize>k * N + j0) << 2);
        v128.store(out, v128.load(from));
        v128.store(out, v128.load(from, 16), 16);
      } else {
        for (let c = 0; c < NR; c++) {
          const j = j0 + c;
          let v: f32 = 0;
          if (j < N) v = trans ? load<f32>(src + ((<usize>j * K + k) << 2)) : load<f32>(src + ((<usize>k * N + j) << 2));
          store<f32>(out + (c << 2), v);
        }
      }
      out += NR << 2;
    }
  }
}

/**
 * Both packings of one matmul as one range of panels, so that threads can share them in one job:
 * units [0, paddedRows(M) / 4) are A's panels, the next paddedCols(N) / 8 are B's; units [from, to) only.
 * Every panel is copied, not summed, so the result does not depend on who packs which.
 */
export function packPanels(aSrc: usize, aDst: usize, M: i32, K: i32, transA: bool, bSrc: usize, bDst: usize, N: i32, transB: bool, from: i32, to: i32): void {
  const aPanels = paddedRows(M) / MR;
  if (from < aPanels) packAPanels(aSrc, aDst, M, K, transA, from, min(to, aPanels));
  if (to > aPanels) packBPanels(bSrc, bDst, K, N, transB, max(from, aPanels) - aPanels, to - aPanels);
}

/**
 * One 4x8 tile of C (row stride ldc floats) over kl steps: C (= or +=) A panel x B panel.
 * ap advances 4 floats per k, bp 8 floats per k.
 */
// @ts-ignore: decorator
@inline
function microKernel(ap: usize, bp: usize, c: usize, ldc: i32, kl: i32, add: bool): void {
  let c00 = f32x4.splat(0), c01 = f32x4.splat(0);
  let c10 = f32x4.splat(0), c11 = f32x4.splat(0);
  let c20 = f32x4.splat(0), c21 = f32x4.splat(0);
  let c30 = f32x4.splat(0), c31 = f32x4.splat(0);
  for (let k = 0; k < kl; k++) {
    const b0 = v128.load(bp);
    const b1 = v128.load(bp, 16);
    let a = v128.load32_splat(ap);
    c00 = f32x4.add(c00, f32x4.mul(a, b0));
    c01 = f32x4.add(c01, f32x4.mul(a, b1));
    a = v128.load32_splat(ap, 4);
    c10 = f32x4.add(c10, f32x4.mul(a, b0));
    c11 = f32x4.add(c11, f32x4.mul(a, b1));
    a = v128.load32_splat(ap, 8);
    c20 = f32x4.add(c20, f32x4.mul(a, b0));
    c21 = f32x4.add(c21, f32x4.mul(a, b1));
    a = v128.load32_splat(ap, 12);
    c30 = f32x4.add(c30, f32x4.mul(a, b0));
    c31 = f32x4.add(c31, f32x4.mul(a, b1));
    ap += MR << 2;
    bp += NR << 2;
  }
  const stride = <usize>ldc << 2;
  let row = c;
  if (add) {
    v128.store(row, f32x4.add(v128.load(row), c00));
    v128.store(row, f32x4.add(v128.load(row, 16), c01), 16);
    row += stride;
    v128.store(row, f32x4.add(v128.load(row), c10));
    v128.store(row, f32x4.add(v128.load(row, 16), c11), 16);
    row += stride;
    v128.store(row, f32x4.add(v128.load(row), c20));
    v128.store(row, f32x4.add(v128.load(row, 16), c21), 16);
    row += stride;
    v128.store(row, f32x4.add(v128.load(row), c30));
    v128.store(row, f32x4.add(v128.load(row, 16), c31), 16);
  } else {
    v128.store(row, c00);
    v128.store(row, c01, 16);
    row += stride;
    v128.store(row, c10);
    v128.store(row, c11, 16);
    row += stride;
    v128.store(row, c20);
    v128.store(row, c21, 16);
    row += stride;
    v128.store(row, c30);
    v128.store(row, c31, 16);
  }
}

/**
 * cp[Mp, Np] = packed A x packed B, where Mp and Np are M and N padded (paddedRows, paddedCols).
 * Rows [rowFrom, rowTo) of C only (multiples of 4), so that workers can split M between them.
 */
export function gemmPacked(ap: usize, bp: usize, cp: usize, M: i32, K: i32, N: i32, rowFrom: i32, rowTo: i32): void {
  const Np = paddedCols(N);
  for (let k0 = 0; k0 < K; k0 += KC) {
    const kl = min(KC, K - k0);
    for (let i0 = rowFrom; i0 < rowTo; i0 += MC) {
      const i1 = min(i0 + MC, rowTo);
      for (let j0 = 0; j0 < Np; j0 += NR) {
        const bPanel = bp + ((<usize>j0 * K + <usize>k0 * NR) << 2);
        for (let i = i0; i < i1; i += MR) {
          const aPanel = ap + ((<usize>i * K + <usize>k0 * MR) << 2);
          microKernel(aPanel, bPanel, cp + ((<usize>i * Np + j0) << 2), Np, kl, k0 > 0);
        }
      }
    }
  }
}

/** out[M,N] (= or +=) the top-left M x N corner of cp[., Np]. */
export function unpad(cp: usize, out: usize, M: i32, N: i32, accumulate: bool): void {
  const Np = paddedCols(N);
  for (let i = 0; i < M; i++) {
    const from = cp + ((<usize>i * Np) << 2);
    const to = out + ((<usize>i * N) << 2);
    if (accumulate) {
      addFloats(to, to, from, N);
    } else {
      memory.copy(to, from, <usize>N << 2);
    }
  }
}

const LAYER_NORM_EPS: f32 = 1e-5;

/** Horizontal sum of an f32x4. */
// @ts-ignore: decorator
@inline
function hsum(v: v128): f32 {
  return f32x4.extract_lane(v, 0) + f32x4.extract_lane(v, 1) + f32x4.extract_lane(v, 2) + f32x4.extract_lane(v, 3);
}

/** Layer norm forward, the reference's math: per row out = (x - mean) * rstd * gamma + beta; rows [from, to) only. */
export function layerNorm(out: usize, mean: usize, rstd: usize, x: usize, gamma: usize, beta: usize, cols: i32, from: i32, to: i32): void {
  const n = <f32>cols;
  for (let r = from; r < to; r++) {
    const xr = x + ((<usize>r * cols) << 2);
    const or = out + ((<usize>r * cols) << 2);
    let acc = f32x4.splat(0);
    let c = 0;
    for (; c + 4 <= cols; c += 4) acc = f32x4.add(acc, v128.load(xr + (<usize>c << 2)));
    let sum = hsum(acc);
    for (; c < cols; c++) sum += load<f32>(xr + (<usize>c << 2));
    const m = sum / n;
    const ms = f32x4.splat(m);
    acc = f32x4.splat(0);
    c = 0;
    for (; c + 4 <= cols; c += 4) {
      const d = f32x4.sub(v128.load(xr + (<usize>c << 2)), ms);
      acc = f32x4.add(acc, f32x4.mul(d, d));
    }
    let variance = hsum(acc);
    for (; c < cols; c++) {
      const d = load<f32>(xr + (<usize>c << 2)) - m;
      variance += d * d;
    }
    const s: f32 = 1 / Mathf.sqrt(variance / n + LAYER_NORM_EPS);
    const ss = f32x4.splat(s);
    c = 0;
    for (; c + 4 <= cols; c += 4) {
      const at = <usize>c << 2;
      const norm = f32x4.mul(f32x4.sub(v128.load(xr + at), ms), ss);
      v128.store(or + at, f32x4.add(f32x4.mul(norm, v128.load(gamma + at)), v128.load(beta + at)));
    }
    for (; c < cols; c++) {
      const at = <usize>c << 2;
      store<f32>(or + at, (load<f32>(xr + at) - m) * s * load<f32>(gamma + at) + load<f32>(beta + at));
    }
    store<f32>(mean + (<usize>r << 2), m);
    store<f32>(rstd + (<usize>r << 2), s);
  }
}

/**
 * Layer norm backward, the reference's math, for dx (overwritten) on rows [from, to): each row is its
 * own. dx = rstd * (dnorm - mean(dnorm) - norm * mean(dnorm * norm)), dnorm = dy * gamma: the two
 * means summed on f32x4 lanes (then across them), dx on lanes, a scalar tail for cols % 4.
 */
export function layerNormBackwardRows(dx: usize, dy: usize, x: usize, mean: usize, rstd: usize, gamma: usize, cols: i32, from: i32, to: i32): void {
  const n = <f32>cols;
  for (let r = from; r < to; r++) {
    const off = (<usize>r * cols) << 2;
    const mu = load<f32>(mean + (<usize>r << 2));
    const rs = load<f32>(rstd + (<usize>r << 2));
    const mus = f32x4.splat(mu);
    const rss = f32x4.splat(rs);
    let sumDnorm = f32x4.splat(0);
    let sumDnormNorm = f32x4.splat(0);
    let c = 0;
    for (; c + 4 <= cols; c += 4) {
      const at = <usize>c << 2;
      const norm = f32x4.mul(f32x4.sub(v128.load(x + off + at), mus), rss);
      const dnorm = f32x4.mul(v128.load(dy + off + at), v128.load(gamma + at));
      sumDnorm = f32x4.add(sumDnorm, dnorm);
      sumDnormNorm = f32x4.add(sumDnormNorm, f32x4.mul(dnorm, norm));
    }
    let meanDnorm = hsum(sumDnorm);
    let meanDnormNorm = hsum(sumDnormNorm);
    for (; c < cols; c++) {
      const at = <usize>c << 2;
      const norm = (load<f32>(x + off + at) - mu) * rs;
      const dnorm = load<f32>(dy + off + at) * load<f32>(gamma + at);
      meanDnorm += dnorm;
      meanDnormNorm += dnorm * norm;
    }
    meanDnorm /= n;
    meanDnormNorm /= n;
    const md = f32x4.splat(meanDnorm);
    const mdn = f32x4.splat(meanDnormNorm);
    c = 0;
    for (; c + 4 <= cols; c += 4) {
      const at = <usize>c << 2;
      const norm = f32x4.mul(f32x4.sub(v128.load(x + off + at), mus), rss);
      const dnorm = f32x4.mul(v128.load(dy + off + at), v128.load(gamma + at));
      v128.store(dx + off + at, f32x4.mul(rss, f32x4.sub(f32x4.sub(dnorm, md), f32x4.mul(norm, mdn))));
    }
    for (; c < cols; c++) {
      const at = <usize>c << 2;
      const norm = (load<f32>(x + off + at) - mu) * rs;
      const dnorm = load<f32>(dy + off + at) * load<f32>(gamma + at);
      store<f32>(dx + off + at, rs * (dnorm - meanDnorm - norm * meanDnormNorm));
    }
  }
}

/**
 * Layer norm backward's parameter gradients, accumulated (+=): dGamma[c] += norm * dy and dBeta[c] += dy
 * over every row, in row order, for columns [from, to) only. The sums run across rows, so threads split
 * the columns: each column is summed by one thread in the single-thread order, and the bits do not
 * depend on the thread count (f32x4 lanes do each column's own float32 operations).
 */
export function layerNormParamGrads(dGamma: usize, dBeta: usize, dy: usize, x: usize, mean: usize, rstd: usize, rows: i32, cols: i32, from: i32, to: i32): void {
  for (let r = 0; r < rows; r++) {
    const off = (<usize>r * cols) << 2;
    const mu = load<f32>(mean + (<usize>r << 2));
    const rs = load<f32>(rstd + (<usize>r << 2));
    const mus = f32x4.splat(mu);
    const rss = f32x4.splat(rs);
    let c = from;
    for (; c + 4 <= to; c += 4) {
      const at = <usize>c << 2;
      const up = v128.load(dy + off + at);
      const norm = f32x4.mul(f32x4.sub(v128.load(x + off + at), mus), rss);
      v128.store(dGamma + at, f32x4.add(v128.load(dGamma + at), f32x4.mul(norm, up)));
      v128.store(dBeta + at, f32x4.add(v128.load(dBeta + at), up));
    }
    for (; c < to; c++) {
      const at = <usize>c << 2;
      const up = load<f32>(dy + off + at);
      const norm = (load<f32>(x + off + at) - mu) * rs;
      store<f32>(dGamma + at, load<f32>(dGamma + at) + norm * up);
      store<f32>(dBeta + at, load<f32>(dBeta + at) + up);
    }
  }
}

/**
 * Decoupled AdamW with bias correction, in place on p, m and v over n floats: shaders/optimizer.wgsl's
 * `adamw` operation for operation in float32 (f32x4 lanes, then a scalar tail). Every f32 and f32x4
 * add, sub, mul, div and sqrt is correctly rounded and nothing is fused, so the bits equal the WGSL
 * kernel's and src/engine/f32-update.ts's. The hyperparameters arrive as float32 already (the uniforms).
 */
export function adamw(p: usize, g: usize, m: usize, v: usize, n: i32, lr: f32, beta1: f32, beta2: f32, eps: f32, wd: f32, c1: f32, c2: f32): void {
  const oneMinusBeta1: f32 = <f32>1 - beta1;
  const oneMinusBeta2: f32 = <f32>1 - beta2;
  const vb1 = f32x4.splat(beta1);
  const vb2 = f32x4.splat(beta2);
  const vo1 = f32x4.splat(oneMinusBeta1);
  const vo2 = f32x4.splat(oneMinusBeta2);
  const vc1 = f32x4.splat(c1);
  const vc2 = f32x4.splat(c2);
  const veps = f32x4.splat(eps);
  const vwd = f32x4.splat(wd);
  const vlr = f32x4.splat(lr);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const at = <usize>i << 2;
    const gi = v128.load(g + at);
    const mNew = f32x4.add(f32x4.mul(vb1, v128.load(m + at)), f32x4.mul(vo1, gi));
    const vNew = f32x4.add(f32x4.mul(vb2, v128.load(v + at)), f32x4.mul(f32x4.mul(vo2, gi), gi));
    v128.store(m + at, mNew);
    v128.store(v + at, vNew);
    const mHat = f32x4.div(mNew, vc1);
    const vHat = f32x4.div(vNew, vc2);
    const pi = v128.load(p + at);
    const step = f32x4.add(f32x4.div(mHat, f32x4.add(f32x4.sqrt(vHat), veps)), f32x4.mul(vwd, pi));
    v128.store(p + at, f32x4.sub(pi, f32x4.mul(vlr, step)));
  }
  for (; i < n; i++) {
    const at = <usize>i << 2;
    const gi = load<f32>(g + at);
    const mNew: f32 = beta1 * load<f32>(m + at) + oneMinusBeta1 * gi;
    const vNew: f32 = beta2 * load<f32>(v + at) + oneMinusBeta2 * gi * gi;
    store<f32>(m + at, mNew);
    store<f32>(v + at, vNew);
    const mHat: f32 = mNew / c1;
    const vHat: f32 = vNew / c2;
    const pi = load<f32>(p + at);
    store<f32>(p + at, pi - lr * (mHat / (Mathf.sqrt(vHat) + eps) + wd * pi));
  }
}

/**
 * Fused softmax + cross-entropy over rows of cols logits, the reference's math (cpu-backend.ts):
 * losses[r] = log(sum) - (z[t] - max), probs = e / sum, dLogits = (probs - onehot(t)) * gradScale.
 * Targets are u32 and already checked below cols by the caller. The exponentials are float32 (expLanes);
 * the row's sum and the loss are accumulated in float64 as the reference does.
 */
export function softmaxCrossEntropy(losses: usize, probs: usize, dLogits: usize, logits: usize, targets: usize, rows: i32, cols: i32, gradScale: f32): void {
  softmaxCrossEntropyRows(losses, probs, dLogits, logits, targets, cols, reinterpret<i32>(gradScale), 0, rows);
}

/**
 * softmaxCrossEntropy on rows [from, to) only, each row its own; gradScale arrives as its float32 bits
 * (a thread pool passes int32 arguments).
 */
export function softmaxCrossEntropyRows(losses: usize, probs: usize, dLogits: usize, logits: usize, targets: usize, cols: i32, gradScaleBits: i32, from: i32, to: i32): void {
  const gradScale = reinterpret<f32>(gradScaleBits);
  const vScale = f32x4.splat(gradScale);
  for (let r = from; r < to; r++) {
    const z = logits + ((<usize>r * cols) << 2);
    const p = probs + ((<usize>r * cols) << 2);
    const d = dLogits + ((<usize>r * cols) << 2);
    let c = 0;
    let vmax = f32x4.splat(-Infinity);
    for (; c + 4 <= cols; c += 4) vmax = f32x4.max(vmax, v128.load(z + (<usize>c << 2)));
    let top: f32 = max(max(f32x4.extract_lane(vmax, 0), f32x4.extract_lane(vmax, 1)), max(f32x4.extract_lane(vmax, 2), f32x4.extract_lane(vmax, 3)));
    for (; c < cols; c++) top = max(top, load<f32>(z + (<usize>c << 2)));
    const vm = f32x4.splat(top);
    let sum: f64 = 0;
    c = 0;
    for (; c + 4 <= cols; c += 4) {
      const at = <usize>c << 2;
      const e = expLanes(f32x4.sub(v128.load(z + at), vm));
      v128.store(p + at, e);
      sum += <f64>f32x4.extract_lane(e, 0) + <f64>f32x4.extract_lane(e, 1) + <f64>f32x4.extract_lane(e, 2) + <f64>f32x4.extract_lane(e, 3);
    }
    for (; c < cols; c++) {
      const at = <usize>c << 2;
      const e = f32x4.extract_lane(expLanes(f32x4.splat(load<f32>(z + at) - top)), 0);
      store<f32>(p + at, e);
      sum += <f64>e;
    }
    const target = load<u32>(targets + (<usize>r << 2));
    store<f32>(losses + (<usize>r << 2), <f32>(Math.log(sum) - (<f64>load<f32>(z + (<usize>target << 2)) - <f64>top)));
    const inv = f32x4.splat(<f32>(1 / sum));
    c = 0;
    for (; c + 4 <= cols; c += 4) {
      const at = <usize>c << 2;
      const prob = f32x4.mul(v128.load(p + at), inv);
      v128.store(p + at, prob);
      v128.store(d + at, f32x4.mul(prob, vScale));
    }
    for (; c < cols; c++) {
      const at = <usize>c << 2;
      const prob = load<f32>(p + at) * <f32>(1 / sum);
      store<f32>(p + at, prob);
      store<f32>(d + at, prob * gradScale);
    }
    const t = d + (<usize>target << 2);
    store<f32>(t, (load<f32>(p + (<usize>target << 2)) - 1) * gradScale);
  }
}
