// Causal multi-head self-attention forward and backward (re-exported by wasm/kernels.ts), the
// reference's math (src/engine/cpu-backend.ts) in float32 with every softmax row on f32x4 lanes.
//
// A row's keys go four at a time: one pass computes four query-key dot products at once (four f32x4
// accumulators over the head dimension, summed across lanes by two shuffles into one f32x4 of four
// scores), the softmax's exponentials are wasm/lanes.ts `expLanes` on those lanes, and the sums, the
// normalisation and the softmax backward's weighted sum run on the same lanes. A row's last block of
// fewer than four keys repeats its last key in the spare lanes (so every lane holds a real score),
// loads and stores only its own lanes (a row may end at the end of a buffer, or where another
// thread's row begins) and masks the spare lanes out of the sums. Every weighted sum of rows (the
// output; dq, dk and dv) keeps its f32x4 accumulators in registers and adds its terms in order.
//
// Each call covers the (batch, head) pairs bh in [from, to) (b = bh / nHead, h = bh % nHead): a pair
// writes only its own att rows, its head's columns of out or of dQkv (in its own sequence) and its
// own T * T floats of scratch, so threads can share the pairs and every value is computed by one call in
// the same order whoever makes it.

import { expLanes } from './lanes';

/** All ones in the lanes below `count`, zeros in the others: masks a partial block's spare lanes. */
// @ts-ignore: decorator
@inline
function lanesBelow(count: i32): v128 {
  return i32x4.lt_s(i32x4(0, 1, 2, 3), i32x4.splat(count));
}

/** The first `count` (1 to 4) floats at p in lanes 0..count-1, zeros in the others; reads nothing past them. */
// @ts-ignore: decorator
@inline
function loadLanes(p: usize, count: i32): v128 {
  if (count >= 4) return v128.load(p);
  let v = f32x4.splat(0);
  v = f32x4.replace_lane(v, 0, load<f32>(p));
  if (count > 1) v = f32x4.replace_lane(v, 1, load<f32>(p, 4));
  if (count > 2) v = f32x4.replace_lane(v, 2, load<f32>(p, 8));
  return v;
}

/** Lanes 0..count-1 of v into the first `count` (1 to 4) floats at p; writes nothing past them. */
// @ts-ignore: decorator
@inline
function storeLanes(p: usize, v: v128, count: i32): void {
  if (count >= 4) {
    v128.store(p, v);
    return;
  }
  store<f32>(p, f32x4.extract_lane(v, 0));
  if (count > 1) store<f32>(p, f32x4.extract_lane(v, 1), 4);
  if (count > 2) store<f32>(p, f32x4.extract_lane(v, 2), 8);
}

/** (sum of a's lanes, of b's, of c's, of d's) as one f32x4: two rounds of shuffles and adds. */
// @ts-ignore: decorator
@inline
function sumLanes4(a: v128, b: v128, c: v128, d: v128): v128 {
  const ab = f32x4.add(v128.shuffle<f32>(a, b, 0, 4, 1, 5), v128.shuffle<f32>(a, b, 2, 6, 3, 7));
  const cd = f32x4.add(v128.shuffle<f32>(c, d, 0, 4, 1, 5), v128.shuffle<f32>(c, d, 2, 6, 3, 7));
  return f32x4.add(v128.shuffle<f32>(ab, cd, 0, 1, 4, 5), v128.shuffle<f32>(ab, cd, 2, 3, 6, 7));
}

/**
 * The dot products of x with the four rows y0..y3 (n floats each) as one f32x4: lanes of four over n,
 * then the n % 4 tail elements added per lane in order.
 */
// @ts-ignore: decorator
@inline
function dot4(x: usize, y0: usize, y1: usize, y2: usize, y3: usize, n: i32): v128 {
  let a0 = f32x4.splat(0);
  let a1 = f32x4.splat(0);
  let a2 = f32x4.splat(0);
  let a3 = f32x4.splat(0);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const at = <usize>i << 2;
    const xv = v128.load(x + at);
    a0 = f32x4.add(a0, f32x4.mul(xv, v128.load(y0 + at)));
    a1 = f32x4.add(a1, f32x4.mul(xv, v128.load(y1 + at)));
    a2 = f32x4.add(a2, f32x4.mul(xv, v128.load(y2 + at)));
    a3 = f32x4.add(a3, f32x4.mul(xv, v128.load(y3 + at)));
  }
  let sums = sumLanes4(a0, a1, a2, a3);
  for (; i < n; i++) {
    const at = <usize>i << 2;
    let ys = f32x4.splat(load<f32>(y0 + at));
    ys = f32x4.replace_lane(ys, 1, load<f32>(y1 + at));
    ys = f32x4.replace_lane(ys, 2, load<f32>(y2 + at));
    ys = f32x4.replace_lane(ys, 3, load<f32>(y3 + at));
    sums = f32x4.add(sums, f32x4.mul(f32x4.splat(load<f32>(x + at)), ys));
  }
  return sums;
}

/**
 * x . y[t2] for the four keys t2 = t0 .. t0 + 3 of a row whose keys run to `last` (later ones repeat
 * key `last`), where key t2's row starts at y + t2 * stride bytes.
 */
// @ts-ignore: decorator
@inline
function dotKeys(x: usize, y: usize, stride: usize, t0: i32, last: i32, n: i32): v128 {
  const k1 = min(t0 + 1, last);
  const k2 = min(t0 + 2, last);
  const k3 = min(t0 + 3, last);
  return dot4(x, y + <usize>t0 * stride, y + <usize>k1 * stride, y + <usize>k2 * stride, y + <usize>k3 * stride, n);
}

/** The largest of v's four lanes. */
// @ts-ignore: decorator
@inline
function maxLanes(v: v128): f32 {
  return max(max(f32x4.extract_lane(v, 0), f32x4.extract_lane(v, 1)), max(f32x4.extract_lane(v, 2), f32x4.extract_lane(v, 3)));
}

/** The sum of v's four lanes. */
// @ts-ignore: decorator
@inline
function sumLanes(v: v128): f32 {
  return f32x4.extract_lane(v, 0) + f32x4.extract_lane(v, 1) + f32x4.extract_lane(v, 2) + f32x4.extract_lane(v, 3);
}

/**
 * out[i] = sum over rows r in [from, to) of w[r] * x[r][i] for i < hs (overwritten), in row order:
 * weight r at w + r * wStride bytes, row r of x at x + r * xStride. One f32x4 accumulator per four
 * columns, kept in a register over the rows.
 */
// @ts-ignore: decorator
@inline
function weightedRows(out: usize, w: usize, wStride: usize, x: usize, xStride: usize, from: i32, to: i32, hs: i32): void {
  let i = 0;
  // Sixteen columns at a time (the GPT's head size): one weight load and splat feeds four accumulators.
  for (; i + 16 <= hs; i += 16) {
    const at = <usize>i << 2;
    let a0 = f32x4.splat(0);
    let a1 = f32x4.splat(0);
    let a2 = f32x4.splat(0);
    let a3 = f32x4.splat(0);
    for (let r = from; r < to; r++) {
      const wr = f32x4.splat(load<f32>(w + <usize>r * wStride));
      const xr = x + <usize>r * xStride + at;
      a0 = f32x4.add(a0, f32x4.mul(wr, v128.load(xr)));
      a1 = f32x4.add(a1, f32x4.mul(wr, v128.load(xr, 16)));
      a2 = f32x4.add(a2, f32x4.mul(wr, v128.load(xr, 32)));
      a3 = f32x4.add(a3, f32x4.mul(wr, v128.load(xr, 48)));
    }
    v128.store(out + at, a0);
    v128.store(out + at, a1, 16);
    v128.store(out + at, a2, 32);
    v128.store(out + at, a3, 48);
  }
  for (; i + 4 <= hs; i += 4) {
    const at = <usize>i << 2;
    let acc = f32x4.splat(0);
    for (let r = from; r < to; r++) acc = f32x4.add(acc, f32x4.mul(f32x4.splat(load<f32>(w + <usize>r * wStride)), v128.load(x + <usize>r * xStride + at)));
    v128.store(out + at, acc);
  }
  for (; i < hs; i++) {
    const at = <usize>i << 2;
    let acc: f32 = 0;
    for (let r = from; r < to; r++) acc += load<f32>(w + <usize>r * wStride) * load<f32>(x + <usize>r * xStride + at);
    store<f32>(out + at, acc);
  }
}

/**
 * Causal attention forward: qkv [B, T, 3C] (q, k, v), att [B, nHead, T, T] (softmaxed scores, exactly
 * 0 above the diagonal), out [B, T, C]; pairs bh in [from, to) only.
 */
export function attention(out: usize, att: usize, qkv: usize, B: i32, T: i32, C: i32, nHead: i32, from: i32, to: i32): void {
  const hs = C / nHead;
  const scale = f32x4.splat(<f32>(1 / Math.sqrt(<f64>hs)));
  const stride = <usize>(3 * C) << 2; // bytes from one position's qkv row to the next
  for (let bh = from; bh < to; bh++) {
    const b = bh / nHead;
    const h = bh % nHead;
    const seq = qkv + <usize>(b * T) * stride + ((<usize>h * hs) << 2); // this head's q at position 0
    const keys = seq + (<usize>C << 2);
    const values = seq + (<usize>(2 * C) << 2);
    for (let t = 0; t < T; t++) {
      const q = seq + <usize>t * stride;
      const row = att + ((<usize>(bh * T + t) * T) << 2);
      const n = t + 1;
      let vmax = f32x4.splat(-Infinity);
      for (let t2 = 0; t2 < n; t2 += 4) {
        // Spare lanes hold key t's score again: harmless to the max.
        const s = f32x4.mul(dotKeys(q, keys, stride, t2, t, hs), scale);
        storeLanes(row + (<usize>t2 << 2), s, n - t2);
        vmax = f32x4.max(vmax, s);
      }
      const top = f32x4.splat(maxLanes(vmax));
      let vsum = f32x4.splat(0);
      for (let t2 = 0; t2 < n; t2 += 4) {
        const at = row + (<usize>t2 << 2);
        const count = min(n - t2, 4);
        const e = v128.and(expLanes(f32x4.sub(loadLanes(at, count), top)), lanesBelow(count));
        storeLanes(at, e, count);
        vsum = f32x4.add(vsum, e);
      }
      const inv = f32x4.splat(<f32>1 / sumLanes(vsum));
      for (let t2 = 0; t2 < n; t2 += 4) {
        const at = row + (<usize>t2 << 2);
        const count = min(n - t2, 4);
        storeLanes(at, f32x4.mul(loadLanes(at, count), inv), count);
      }
      if (n < T) memory.fill(row + (<usize>n << 2), 0, <usize>(T - n) << 2); // causal mask
      weightedRows(out + ((<usize>(b * T + t) * C + h * hs) << 2), row, 4, values, stride, 0, n, hs);
    }
  }
}

/**
 * Attention backward: dQkv [B, T, 3C] is overwritten with d(out)/d(qkv) given dOut [B, T, C], qkv and
 * the forward's att (entries above the diagonal are not read); scratch holds T * T floats per pair
 * (the pair's dScore matrix). Pairs bh in [from, to) only.
 *
 * First each row's dScore[t][t2] = att[t][t2] * (dAtt[t][t2] - sum_j att[t][j] dAtt[t][j]) * scale,
 * dAtt[t][t2] = dOut[t] . v[t2], on lanes of four keys; then every gradient row is one weighted sum
 * kept in registers: dq[t] = sum_t2 dScore[t][t2] k[t2], dk[t2] = sum_(t >= t2) dScore[t][t2] q[t],
 * dv[t2] = sum_(t >= t2) att[t][t2] dOut[t] (the last two down a column, t in order).
 */
export function attentionBackward(dQkv: usize, dOut: usize, qkv: usize, att: usize, scratch: usize, B: i32, T: i32, C: i32, nHead: i32, from: i32, to: i32): void {
  const hs = C / nHead;
  const scale = f32x4.splat(<f32>(1 / Math.sqrt(<f64>hs)));
  const stride = <usize>(3 * C) << 2;
  const dyStride = <usize>C << 2;
  const rowBytes = <usize>T << 2; // one row of att or of dScore; the step down a column
  const kOffset = <usize>C << 2;
  const vOffset = <usize>(2 * C) << 2;
  for (let bh = from; bh < to; bh++) {
    const b = bh / nHead;
    const h = bh % nHead;
    const headOffset = <usize>(b * T) * stride + ((<usize>h * hs) << 2);
    const seq = qkv + headOffset; // this head's q at position 0
    const dSeq = dQkv + headOffset;
    const dys = dOut + ((<usize>(b * T) * C + h * hs) << 2);
    const attPair = att + <usize>(bh * T) * rowBytes;
    const dScores = scratch + <usize>(bh * T) * rowBytes;
    for (let t = 0; t < T; t++) {
      const row = attPair + <usize>t * rowBytes;
      const ds = dScores + <usize>t * rowBytes;
      const dy = dys + <usize>t * dyStride;
      const n = t + 1;
      let vweighted = f32x4.splat(0);
      for (let t2 = 0; t2 < n; t2 += 4) {
        const count = min(n - t2, 4);
        const dAtt = dotKeys(dy, seq + vOffset, stride, t2, t, hs);
        storeLanes(ds + (<usize>t2 << 2), dAtt, count);
        vweighted = f32x4.add(vweighted, f32x4.mul(loadLanes(row + (<usize>t2 << 2), count), dAtt));
      }
      const weighted = f32x4.splat(sumLanes(vweighted));
      for (let t2 = 0; t2 < n; t2 += 4) {
        const count = min(n - t2, 4);
        const at = ds + (<usize>t2 << 2);
        storeLanes(at, f32x4.mul(f32x4.mul(loadLanes(row + (<usize>t2 << 2), count), f32x4.sub(loadLanes(at, count), weighted)), scale), count);
      }
    }
    for (let t = 0; t < T; t++) {
      const dRow = dSeq + <usize>t * stride;
      weightedRows(dRow, dScores + <usize>t * rowBytes, 4, seq + kOffset, stride, 0, t + 1, hs);
      weightedRows(dRow + kOffset, dScores + (<usize>t << 2), rowBytes, seq, stride, t, T, hs);
      weightedRows(dRow + vOffset, attPair + (<usize>t << 2), rowBytes, dys, dyStride, t, T, hs);
    }
  }
}
