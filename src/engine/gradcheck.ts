// Finite-difference check of a backward op, on any Backend (tinygrad's helper_test_op idea: one call
// per op in the tests). The scalar under test is L = sum(out * dOut) for a fixed random dOut, so the
// backward op, fed dOut, must return dL/dinput; the numerical side perturbs each input element by
// +-eps and differences L, summed in float64 on the host.
import { type Backend, type DeviceBuffer, type View, viewOf } from './backend';

export interface BackwardCase {
  /** Differentiable inputs, by name: host values (they are uploaded, never modified). */
  inputs: Record<string, Float32Array>;
  /** Number of elements the forward op writes to `v.out`. */
  outLength: number;
  /** Records the forward op: reads `v[name]` for each input, writes `v.out`. */
  forward(b: Backend, v: Record<string, View>): void;
  /**
   * Records the backward op(s): reads `v.dOut` (and the inputs, and whatever the forward saved),
   * writes the gradient of each input into `g[name]`.
   */
  backward(b: Backend, v: Record<string, View>, g: Record<string, View>): void;
  /**
   * Inputs whose gradient the op ACCUMULATES (+=) rather than overwrites (parameter gradients, by the
   * Backend contract). Their gradient buffers start at a known value that is subtracted afterwards;
   * the others start at garbage, so an op that forgets to overwrite fails.
   */
  accumulates?: string[];
  /** Upstream gradient; random in [-1, 1) by default. Fixed values suit ops like the fused loss. */
  dOut?: Float32Array;
  /** Finite-difference step (default 1e-2: float32 forward passes are too noisy for smaller steps). */
  eps?: number;
  /** |analytic - numeric| <= atol + rtol * |numeric| per element (defaults 1e-3 and 1e-2). */
  atol?: number;
  rtol?: number;
}

export interface GradMismatch {
  input: string;
  index: number;
  analytic: number;
  numeric: number;
}

const ACCUMULATE_START = 0.25;
const OVERWRITE_GARBAGE = 1e3;

/** Returns the mismatching elements (empty when the backward op agrees with finite differences). */
export async function checkBackward(b: Backend, c: BackwardCase, seed = 1): Promise<GradMismatch[]> {
  const eps = c.eps ?? 1e-2;
  const atol = c.atol ?? 1e-3;
  const rtol = c.rtol ?? 1e-2;
  const names = Object.keys(c.inputs);
  const owned: DeviceBuffer[] = [];
  const upload = (data: Float32Array, label: string): View => {
    const buf = b.alloc(data.length, label, 'workspace');
    owned.push(buf);
    const v = viewOf(buf);
    b.write(v, data);
    return v;
  };
  try {
    const v: Record<string, View> = {};
    const g: Record<string, View> = {};
    for (const name of names) {
      v[name] = upload(c.inputs[name], `gradcheck ${name}`);
      g[name] = upload(new Float32Array(c.inputs[name].length), `gradcheck d${name}`);
    }
    v.out = upload(new Float32Array(c.outLength), 'gradcheck out');
    const dOut = c.dOut ?? randomUniform(c.outLength, seed, -1, 1);
    if (dOut.length !== c.outLength) throw new RangeError(`gradcheck: dOut has ${dOut.length} elements, not ${c.outLength}`);
    v.dOut = upload(dOut, 'gradcheck dOut');

    const loss = async (): Promise<number> => {
      c.forward(b, v);
      const out = await b.read(v.out);
      let sum = 0;
      for (let i = 0; i < out.length; i++) sum += out[i] * dOut[i];
      return sum;
    };

    const numeric: Record<string, Float64Array> = {};
    for (const name of names) {
      const x = c.inputs[name].slice();
      const grad = new Float64Array(x.length);
      for (let i = 0; i < x.length; i++) {
        const original = x[i];
        x[i] = original + eps;
        b.write(v[name], x);
        const plus = await loss();
        x[i] = original - eps;
        b.write(v[name], x);
        const minus = await loss();
        x[i] = original;
        b.write(v[name], x);
        grad[i] = (plus - minus) / (2 * eps);
      }
      numeric[name] = grad;
    }

    // The backward pass runs at the unperturbed point, after a forward that saved its state there.
    c.forward(b, v);
    const accumulates = new Set(c.accumulates ?? []);
    for (const name of names) b.fill(g[name], accumulates.has(name) ? ACCUMULATE_START : OVERWRITE_GARBAGE);
    c.backward(b, v, g);

    const mismatches: GradMismatch[] = [];
    for (const name of names) {
      const got = await b.read(g[name]);
      const offset = accumulates.has(name) ? ACCUMULATE_START : 0;
      for (let i = 0; i < got.length; i++) {
        const analytic = got[i] - offset;
        const want = numeric[name][i];
        if (!(Math.abs(analytic - want) <= atol + rtol * Math.abs(want))) {
          mismatches.push({ input: name, index: i, analytic, numeric: want });
        }
      }
    }
    return mismatches;
  } finally {
    for (const buf of owned) b.free(buf);
  }
}

/** Deterministic uniform values in [lo, hi) (mulberry32), so failures reproduce. */
export function randomUniform(n: number, seed: number, lo = -1, hi = 1): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    const u = ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    out[i] = lo + (hi - lo) * u;
  }
  return out;
}
