// Transcendental functions on f32x4 lanes for the kernels (wasm/kernels.ts, wasm/elementwise.ts), so
// that softmax and GELU vectorise instead of calling the scalar Mathf.exp / Mathf.tanh per element.
// Both are pure functions of each lane: a value gives the same bits in any lane, in a SIMD body or in a
// scalar tail (which splats the value and takes lane 0), so a kernel's result does not depend on where
// an element falls in its loop or on how threads split the range.

// exp (Cephes expf): x = n ln2 + r with |r| <= ln2 / 2, e^r by a degree-7 polynomial, 2^n put straight
// into the exponent bits. Within 2 ulp of float32 exp over [-87.3, 0], which is all its callers give it
// (softmax: z - max <= 0; tanh: -2|x|); below that it returns 2^-126 instead of underflowing.
const EXP_LOWEST: f32 = -87.33654;
const LOG2E: f32 = 1.44269504088896341;
const LN2_HI: f32 = 0.693359375;
const LN2_LO: f32 = -2.12194440e-4;

// @ts-ignore: decorator
@inline
export function expLanes(x: v128): v128 {
  x = f32x4.max(x, f32x4.splat(EXP_LOWEST));
  const n = f32x4.floor(f32x4.add(f32x4.mul(x, f32x4.splat(LOG2E)), f32x4.splat(0.5)));
  let r = f32x4.sub(x, f32x4.mul(n, f32x4.splat(LN2_HI)));
  r = f32x4.sub(r, f32x4.mul(n, f32x4.splat(LN2_LO)));
  let y = f32x4.splat(1.9875691500e-4);
  y = f32x4.add(f32x4.mul(y, r), f32x4.splat(1.3981999507e-3));
  y = f32x4.add(f32x4.mul(y, r), f32x4.splat(8.3334519073e-3));
  y = f32x4.add(f32x4.mul(y, r), f32x4.splat(4.1665795894e-2));
  y = f32x4.add(f32x4.mul(y, r), f32x4.splat(1.6666665459e-1));
  y = f32x4.add(f32x4.mul(y, r), f32x4.splat(5.0000001201e-1));
  y = f32x4.add(f32x4.add(f32x4.mul(f32x4.mul(y, r), r), r), f32x4.splat(1));
  const pow2n = i32x4.shl(i32x4.add(i32x4.trunc_sat_f32x4_s(n), i32x4.splat(127)), 23);
  return f32x4.mul(y, pow2n);
}

// tanh (Cephes tanhf's split): below |x| = 0.625 the odd polynomial x + x^3 P(x^2) (no cancellation
// near 0, where 1 - e^-2|x| would lose the low bits); from there (1 - e) / (1 + e) with e = e^-2|x|, a
// quotient of two well-conditioned terms (e <= 0.29) that reaches exactly 1 once e is below half an
// ulp of 1 (|x| >= 9.01). The sign is copied back from x (tanh is odd). Both branches are computed and
// one selected per lane. NaN stays NaN; +-Infinity gives +-1. Its error against float64 Math.tanh is
// measured by a dense sweep in src/engine/wasm-elementwise.test.ts.
export const TANH_POLY_BELOW: f32 = 0.625;

/** tanh(ax) for 0 <= ax < TANH_POLY_BELOW: Cephes tanhf's odd polynomial. */
// @ts-ignore: decorator
@inline
export function tanhNear(ax: v128): v128 {
  const z = f32x4.mul(ax, ax);
  let p = f32x4.splat(-5.70498872745e-3);
  p = f32x4.add(f32x4.mul(p, z), f32x4.splat(2.06390887954e-2));
  p = f32x4.add(f32x4.mul(p, z), f32x4.splat(-5.37397155531e-2));
  p = f32x4.add(f32x4.mul(p, z), f32x4.splat(1.33314422036e-1));
  p = f32x4.add(f32x4.mul(p, z), f32x4.splat(-3.33332819422e-1));
  return f32x4.add(f32x4.mul(f32x4.mul(p, z), ax), ax);
}

/** e^-2ax for ax >= 0: tanh(ax) = (1 - e) / (1 + e) and 1 - tanh(ax)^2 = 4e / (1 + e)^2. */
// @ts-ignore: decorator
@inline
export function tanhExp(ax: v128): v128 {
  return expLanes(f32x4.mul(ax, f32x4.splat(-2)));
}

/** x's sign bit alone (tanh is odd: its result takes x's sign). */
// @ts-ignore: decorator
@inline
export function signBit(x: v128): v128 {
  return v128.and(x, i32x4.splat(0x80000000));
}

// @ts-ignore: decorator
@inline
export function tanhLanes(x: v128): v128 {
  const ax = f32x4.abs(x);
  const one = f32x4.splat(1);
  const e = tanhExp(ax);
  const far = f32x4.div(f32x4.sub(one, e), f32x4.add(one, e));
  return v128.or(v128.bitselect(tanhNear(ax), far, f32x4.lt(ax, f32x4.splat(TANH_POLY_BELOW))), signBit(x));
}
