// The fast CPU backend's elementwise and row-wise kernels (re-exported by wasm/kernels.ts): GELU forward
// and backward on a vectorised tanh, tanh itself, the bias add and its column sums, the residual add and
// the GPT embedding forward and backward. f32x4 lanes with a scalar tail; each range kernel takes its
// range [from, to) last, so that threads can share it (src/engine/wasm-kernels.ts), and every output
// element is made by one call in the same order whoever makes it.
// Against the reference (src/engine/cpu-backend.ts): the bias add, the residual add and the embedding
// forward and backward give the same bits (one float32 add per element, or float32 adds in the same
// order; an add computed in doubles and rounded is the correctly rounded float32 add), and the bias
// gradient too (its column sums are float64 in row order, as the reference's). GELU and tanh differ in
// the last bits (float32 against float64 Math.tanh); the tests bound it.

import { signBit, TANH_POLY_BELOW, tanhExp, tanhLanes, tanhNear } from './lanes';

const GELU_SCALE: f32 = <f32>Math.sqrt(2 / Math.PI);
const GELU_CUBIC: f32 = 0.044715;

/** tanh(sqrt(2 / pi) * (v + 0.044715 v^3)), the inner term of GELU's tanh approximation, on lanes. */
// @ts-ignore: decorator
@inline
function geluTanh(v: v128): v128 {
  return tanhLanes(geluInner(v));
}

// @ts-ignore: decorator
@inline
function geluLanes(v: v128): v128 {
  return f32x4.mul(f32x4.mul(f32x4.splat(0.5), v), f32x4.add(f32x4.splat(1), geluTanh(v)));
}

/** sqrt(2 / pi) * (v + 0.044715 v^3), the argument of GELU's tanh, on lanes. */
// @ts-ignore: decorator
@inline
function geluInner(v: v128): v128 {
  const cubic = f32x4.mul(f32x4.mul(f32x4.mul(f32x4.splat(GELU_CUBIC), v), v), v);
  return f32x4.mul(f32x4.splat(GELU_SCALE), f32x4.add(v, cubic));
}

/**
 * d gelu(v) / dv times dy, on lanes: 0.5 (1 + th) + 0.5 v sech^2 sqrt(2 / pi) (1 + 3 * 0.044715 v^2),
 * th = tanh(u). sech^2 = 1 - th^2 loses its low bits to cancellation once th is near +-1 (at v = 5 one
 * ulp of th is 1e-6 of the result), so where tanh takes its exponential branch it is 4e / (1 + e)^2 from
 * the same e = e^-2|u|, which has no cancellation; below that, 1 - th^2 (th <= 0.56).
 */
// @ts-ignore: decorator
@inline
function geluBackwardLanes(v: v128, dy: v128): v128 {
  const half = f32x4.splat(0.5);
  const one = f32x4.splat(1);
  const u = geluInner(v);
  const au = f32x4.abs(u);
  const e = tanhExp(au);
  const onePlusE = f32x4.add(one, e);
  const near = tanhNear(au);
  const isNear = f32x4.lt(au, f32x4.splat(TANH_POLY_BELOW));
  const th = v128.or(v128.bitselect(near, f32x4.div(f32x4.sub(one, e), onePlusE), isNear), signBit(u));
  const sech2 = v128.bitselect(f32x4.sub(one, f32x4.mul(near, near)), f32x4.div(f32x4.mul(f32x4.splat(4), e), f32x4.mul(onePlusE, onePlusE)), isNear);
  const slope = f32x4.add(one, f32x4.mul(f32x4.mul(f32x4.splat(<f32>(3 * 0.044715)), v), v));
  const local = f32x4.add(f32x4.mul(half, f32x4.add(one, th)), f32x4.mul(f32x4.mul(f32x4.mul(f32x4.mul(half, v), sech2), f32x4.splat(GELU_SCALE)), slope));
  return f32x4.mul(local, dy);
}

/** GELU, tanh approximation (GPT-2's), on elements [from, to): out may alias x. */
export function gelu(out: usize, x: usize, from: i32, to: i32): void {
  let i = from;
  for (; i + 4 <= to; i += 4) {
    const at = <usize>i << 2;
    v128.store(out + at, geluLanes(v128.load(x + at)));
  }
  for (; i < to; i++) {
    const at = <usize>i << 2;
    store<f32>(out + at, f32x4.extract_lane(geluLanes(f32x4.splat(load<f32>(x + at))), 0));
  }
}

/** dx = gelu'(x) * dy on elements [from, to): dx may alias dy. */
export function geluBackward(dx: usize, x: usize, dy: usize, from: i32, to: i32): void {
  let i = from;
  for (; i + 4 <= to; i += 4) {
    const at = <usize>i << 2;
    v128.store(dx + at, geluBackwardLanes(v128.load(x + at), v128.load(dy + at)));
  }
  for (; i < to; i++) {
    const at = <usize>i << 2;
    store<f32>(dx + at, f32x4.extract_lane(geluBackwardLanes(f32x4.splat(load<f32>(x + at)), f32x4.splat(load<f32>(dy + at))), 0));
  }
}

/** out = tanh(x) on elements [from, to) (the lanes GELU uses; the tests sweep its error). */
export function tanh(out: usize, x: usize, from: i32, to: i32): void {
  let i = from;
  for (; i + 4 <= to; i += 4) {
    const at = <usize>i << 2;
    v128.store(out + at, tanhLanes(v128.load(x + at)));
  }
  for (; i < to; i++) {
    const at = <usize>i << 2;
    store<f32>(out + at, f32x4.extract_lane(tanhLanes(f32x4.splat(load<f32>(x + at))), 0));
  }
}

/** y[i] = a[i] + b[i] over n floats (y may alias a or b); the matmul's accumulating unpad uses it too. */
// @ts-ignore: decorator
@inline
export function addFloats(y: usize, a: usize, b: usize, n: i32): void {
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const at = <usize>i << 2;
    v128.store(y + at, f32x4.add(v128.load(a + at), v128.load(b + at)));
  }
  for (; i < n; i++) {
    const at = <usize>i << 2;
    store<f32>(y + at, load<f32>(a + at) + load<f32>(b + at));
  }
}

/** out[r, c] = x[r, c] + bias[c] on rows [from, to); out may alias x. */
export function biasAdd(out: usize, x: usize, bias: usize, cols: i32, from: i32, to: i32): void {
  for (let r = from; r < to; r++) {
    const off = (<usize>r * cols) << 2;
    addFloats(out + off, x + off, bias, cols);
  }
}

/** dBias[c] += the float64 sum of one column's lanes, rounded once (the reference's `db[c] += sum`). */
// @ts-ignore: decorator
@inline
function addColumnSums(dBias: usize, sums: v128): void {
  store<f32>(dBias, <f32>(<f64>load<f32>(dBias) + f64x2.extract_lane(sums, 0)));
  store<f32>(dBias, <f32>(<f64>load<f32>(dBias, 4) + f64x2.extract_lane(sums, 1)), 4);
}

/**
 * dBias[c] += sum over rows of dOut[r, c], for columns [from, to): each column summed in float64 in row
 * order (f64x2 lanes, 8 columns at a time: a 32-byte piece of each row), then added to dBias once, as
 * the reference does, so the bits are the reference's whatever the split.
 */
export function biasBackward(dBias: usize, dOut: usize, rows: i32, cols: i32, from: i32, to: i32): void {
  const stride = <usize>cols << 2;
  let c = from;
  for (; c + 8 <= to; c += 8) {
    let s0 = f64x2.splat(0), s1 = f64x2.splat(0), s2 = f64x2.splat(0), s3 = f64x2.splat(0);
    let row = dOut + (<usize>c << 2);
    for (let r = 0; r < rows; r++) {
      const lo = v128.load(row);
      const hi = v128.load(row, 16);
      s0 = f64x2.add(s0, f64x2.promote_low_f32x4(lo));
      s1 = f64x2.add(s1, f64x2.promote_low_f32x4(f32x4.shuffle(lo, lo, 2, 3, 0, 1)));
      s2 = f64x2.add(s2, f64x2.promote_low_f32x4(hi));
      s3 = f64x2.add(s3, f64x2.promote_low_f32x4(f32x4.shuffle(hi, hi, 2, 3, 0, 1)));
      row += stride;
    }
    const at = dBias + (<usize>c << 2);
    addColumnSums(at, s0);
    addColumnSums(at + 8, s1);
    addColumnSums(at + 16, s2);
    addColumnSums(at + 24, s3);
  }
  for (; c < to; c++) {
    let sum: f64 = 0;
    let at = dOut + (<usize>c << 2);
    for (let r = 0; r < rows; r++) {
      sum += <f64>load<f32>(at);
      at += stride;
    }
    const d = dBias + (<usize>c << 2);
    store<f32>(d, <f32>(<f64>load<f32>(d) + sum));
  }
}

/** out = a + b on elements [from, to); out may alias a or b (addInPlace is add(out, out, a)). */
export function add(out: usize, a: usize, b: usize, from: i32, to: i32): void {
  const at = <usize>from << 2;
  addFloats(out + at, a + at, b + at, to - from);
}

/**
 * out[bt, :] = wte[tokens[bt], :] + wpe[bt % T, :] for rows bt in [from, to). Tokens are u32, already
 * checked below the vocabulary by the caller.
 */
export function embedding(out: usize, tokens: usize, wte: usize, wpe: usize, T: i32, C: i32, from: i32, to: i32): void {
  for (let bt = from; bt < to; bt++) {
    const id = load<u32>(tokens + (<usize>bt << 2));
    addFloats(out + ((<usize>bt * C) << 2), wte + ((<usize>id * C) << 2), wpe + ((<usize>(bt % T) * C) << 2), C);
  }
}

/**
 * dWte[tokens[bt], :] += dOut[bt, :] and dWpe[bt % T, :] += dOut[bt, :] over the BT rows in order (one
 * thread: two rows with the same token add into one row of dWte, in the reference's order). Tokens are
 * already checked by the caller.
 */
export function embeddingBackward(dWte: usize, dWpe: usize, dOut: usize, tokens: usize, BT: i32, T: i32, C: i32): void {
  for (let bt = 0; bt < BT; bt++) {
    const id = load<u32>(tokens + (<usize>bt << 2));
    const dy = dOut + ((<usize>bt * C) << 2);
    const te = dWte + ((<usize>id * C) << 2);
    const pe = dWpe + ((<usize>(bt % T) * C) << 2);
    addFloats(te, te, dy, C);
    addFloats(pe, pe, dy, C);
  }
}
