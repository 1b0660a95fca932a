// The parameter update and gradient clipping in float32, operation for operation as the WGSL kernels do
// them (shaders/optimizer.wgsl, shaders/reduce.wgsl, shaders/clip.wgsl). After a data-parallel
// all-reduce every rank holds the same averaged gradient bytes and then updates its own replica on its
// own backend; replicas stay bitwise equal across a room that mixes WebGPU and CPU tabs only if this
// update gives the GPU's bits. So every intermediate is rounded to float32 (Math.fround) in the
// kernel's order, hyperparameters are rounded as the uniform buffer rounds them, and the sum of squares
// adds in the reduction tree's order. One float32 +, -, *, / or sqrt computed in doubles and then
// rounded is the correctly rounded float32 result (53 >= 2 * 24 + 2 bits), which is what the GPU
// gives when it does not fuse a multiply-add or approximate a division; the WebGPU-vs-CPU test
// (src/gpu/f32-update.test.ts) checks that the adapter in use does exactly that.
import type { AdamWHyper, SgdHyper } from './backend';

const fr = Math.fround;

/** sumSquares' first level on a GPU: this many invocations (16 workgroups), each summing a strided slice. */
export const SUM_SQUARES_PARTIALS = 4096;
/** Invocations per workgroup of the reduction kernels. */
const WORKGROUP = 256;

/** AdamW's uniforms as the WGSL kernel sees them: every hyperparameter rounded to float32. */
export function adamwUniformsF32(h: AdamWHyper): { lr: number; beta1: number; beta2: number; eps: number; wd: number; c1: number; c2: number } {
  // The host computes the corrections in float64 and the uniform buffer stores them as float32.
  return { lr: fr(h.lr), beta1: fr(h.beta1), beta2: fr(h.beta2), eps: fr(h.eps), wd: fr(h.weightDecay), c1: fr(1 - h.beta1 ** h.step), c2: fr(1 - h.beta2 ** h.step) };
}

/** optimizer.wgsl `adamw`: decoupled AdamW with bias correction, in place on p, m and v. */
export function adamwF32(p: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, h: AdamWHyper): void {
  const { lr, beta1, beta2, eps, wd, c1, c2 } = adamwUniformsF32(h);
  const oneMinusBeta1 = fr(1 - beta1);
  const oneMinusBeta2 = fr(1 - beta2);
  for (let i = 0; i < p.length; i++) {
    const gi = g[i];
    const mNew = fr(fr(beta1 * m[i]) + fr(oneMinusBeta1 * gi));
    const vNew = fr(fr(beta2 * v[i]) + fr(fr(oneMinusBeta2 * gi) * gi));
    m[i] = mNew;
    v[i] = vNew;
    const mHat = fr(mNew / c1);
    const vHat = fr(vNew / c2);
    const pi = p[i];
    p[i] = fr(pi - fr(lr * fr(fr(mHat / fr(fr(Math.sqrt(vHat)) + eps)) + fr(wd * pi))));
  }
}

/** optimizer.wgsl `sgd`: PyTorch's SGD with momentum and (coupled) weight decay, in place on p and buf. */
export function sgdF32(p: Float32Array, g: Float32Array, buf: Float32Array, h: SgdHyper): void {
  const [lr, momentum, wd] = [fr(h.lr), fr(h.momentum), fr(h.weightDecay)];
  for (let i = 0; i < p.length; i++) {
    const b = fr(fr(momentum * buf[i]) + fr(g[i] + fr(wd * p[i])));
    buf[i] = b;
    p[i] = fr(p[i] - fr(lr * b));
  }
}

/** reduce.wgsl `tree_sum`: one workgroup's 256 lanes halved pairwise down to lane 0. */
function treeSum(lanes: Float32Array): number {
  for (let stride = WORKGROUP / 2; stride > 0; stride >>= 1) {
    for (let l = 0; l < stride; l++) lanes[l] = lanes[l] + lanes[l + stride];
  }
  return lanes[0];
}

/**
 * The sum of squares of x in reduce.wgsl's order: one workgroup of 256 lanes (lane l adds x[l]^2,
 * x[l + 256]^2, ...) for up to 4 * SUM_SQUARES_PARTIALS elements; beyond, SUM_SQUARES_PARTIALS strided
 * partial sums first, then the same one-workgroup sum over them.
 */
export function sumSquaresF32(x: Float32Array): number {
  const lanes = new Float32Array(WORKGROUP);
  if (x.length <= 4 * SUM_SQUARES_PARTIALS) {
    for (let l = 0; l < WORKGROUP; l++) {
      let acc = 0;
      for (let i = l; i < x.length; i += WORKGROUP) acc = fr(acc + fr(x[i] * x[i]));
      lanes[l] = acc;
    }
    return treeSum(lanes);
  }
  const partials = new Float32Array(SUM_SQUARES_PARTIALS);
  for (let j = 0; j < SUM_SQUARES_PARTIALS; j++) {
    let acc = 0;
    for (let i = j; i < x.length; i += SUM_SQUARES_PARTIALS) acc = fr(acc + fr(x[i] * x[i]));
    partials[j] = acc;
  }
  for (let l = 0; l < WORKGROUP; l++) {
    let acc = 0;
    for (let i = l; i < SUM_SQUARES_PARTIALS; i += WORKGROUP) acc = fr(acc + partials[i]);
    lanes[l] = acc;
  }
  return treeSum(lanes);
}

/** clip.wgsl `clip_by_norm`: g *= maxNorm / norm when norm = sqrt(sumSq) exceeds maxNorm. */
export function clipByNormF32(g: Float32Array, sumSq: number, maxNorm: number): void {
  const norm = fr(Math.sqrt(fr(sumSq)));
  const max = fr(maxNorm);
  if (!(norm > max)) return;
  const factor = fr(max / norm);
  for (let i = 0; i < g.length; i++) g[i] = g[i] * factor;
}
