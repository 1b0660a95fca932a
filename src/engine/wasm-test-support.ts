// Test helpers shared by the fast CPU backend's tests (wasm-backend.test.ts, wasm-threads.test.ts):
// upload host data to any backend, run one matmul there, compare element by element, and the cases
// both files check against the reference (every layout, overwriting and accumulating, on awkward shapes).
import { expect } from 'vitest';
import { type Backend, type MatmulOptions, type View, viewOf } from './backend';
import { randomUniform } from './gradcheck';

export function upload(backend: Backend, data: Float32Array): View {
  const v = viewOf(backend.alloc(data.length, 'test', 'workspace'));
  backend.write(v, data);
  return v;
}

/** op(a) @ op(b) on one backend, out starting at `start` (it matters when accumulating). */
export async function matmulOn(backend: Backend, a: Float32Array, b: Float32Array, start: Float32Array, M: number, K: number, N: number, opts: MatmulOptions): Promise<Float32Array> {
  const out = upload(backend, start);
  backend.matmul(out, upload(backend, a), upload(backend, b), M, K, N, opts);
  return backend.read(out);
}

/** Largest |x - y| over the elements. */
export function maxDiff(x: Float32Array, y: Float32Array): number {
  expect(x.length).toBe(y.length);
  let worst = 0;
  for (let i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(x[i] - y[i]));
  return worst;
}

export const LAYOUTS: [string, MatmulOptions][] = [
  ['NN', {}], ['NT', { transB: true }], ['TN', { transA: true }], ['TT', { transA: true, transB: true }],
];

/** A 37x37 matmul written over its own `a` (out aliasing an input) on `fast` and on `reference`: the largest difference. */
export async function aliasedMatmulDiff(reference: Backend, fast: Backend): Promise<number> {
  const n = 37;
  const a = randomUniform(n * n, 7);
  const b = randomUniform(n * n, 8);
  const [want, got] = await Promise.all(
    [reference, fast].map(async (backend) => {
      const av = upload(backend, a);
      backend.matmul(av, av, upload(backend, b), n, n, n, { transB: true });
      return backend.read(av);
    }),
  );
  return maxDiff(got, want);
}

/** One product of an awkward-shapes check: its inputs are fixed, `on` runs it on any backend. */
export interface MatmulCase {
  M: number;
  K: number;
  N: number;
  /** Names the layout and shape in a failure message. */
  label: string;
  on(backend: Backend): Promise<Float32Array>;
}

/**
 * The products of `shapes` in one layout, each on its own random a, b and starting out (in [-1, 1]),
 * drawn from seeds `seed`, `seed + 1`, ... in that order.
 */
export function matmulCases(shapes: [number, number, number][], layoutName: string, opts: MatmulOptions, seed: number): MatmulCase[] {
  return shapes.map(([M, K, N], i) => {
    const s = seed + 3 * i;
    const [a, b, start] = [randomUniform(M * K, s), randomUniform(K * N, s + 1), randomUniform(M * N, s + 2)];
    return { M, K, N, label: `${layoutName} M=${M} K=${K} N=${N}`, on: (backend) => matmulOn(backend, a, b, start, M, K, N, opts) };
  });
}

/** Every layout, overwriting and accumulating: the name of each check and its options. */
export const MATMUL_CHECKS: [string, string, MatmulOptions][] = LAYOUTS.flatMap(([name, layout]) =>
  [false, true].map((accumulate): [string, string, MatmulOptions] => [name, `${name}${accumulate ? ' accumulate' : ''}`, { ...layout, accumulate }]),
);

/** One softmax cross-entropy check: logits in [-40, 40] (every third) and [-4, 4], targets on the first and last class. */
export interface SoftmaxCase {
  rows: number;
  cols: number;
  /** Runs it on any backend: losses, probs and dLogits (each starting from stale values). */
  on(backend: Backend): Promise<Float32Array[]>;
}

export function softmaxCase(rows: number, cols: number, seed: number): SoftmaxCase {
  const logits = randomUniform(rows * cols, seed).map((x, i) => (i % 3 === 0 ? 40 : 4) * x);
  const targets = Uint32Array.from({ length: rows }, (_, r) => (r === 0 ? 0 : r === 1 ? cols - 1 : (r * 7) % cols));
  const gradScale = 1 / (rows * 3);
  return {
    rows,
    cols,
    on: async (backend) => {
      const [losses, probs, d] = [upload(backend, randomUniform(rows, 1)), upload(backend, randomUniform(rows * cols, 2)), upload(backend, randomUniform(rows * cols, 3))];
      const t: View = viewOf(backend.alloc(rows, 'targets', 'workspace', 'u32'));
      backend.write(t, targets);
      backend.softmaxCrossEntropy(losses, probs, d, upload(backend, logits), t, rows, cols, gradScale);
      return Promise.all([losses, probs, d].map((v) => backend.read(v)));
    },
  };
}

/**
 * One layer norm check, x in [-2.5, 3.5], gamma in [0, 2]: forward, then backward with dGamma and dBeta
 * accumulating onto random values. `on` gives out, mean, rstd, dx, dGamma and dBeta.
 */
export function layerNormCase(rows: number, cols: number, seed: number): { on(backend: Backend): Promise<Float32Array[]> } {
  const x = randomUniform(rows * cols, seed).map((v) => 3 * v + 0.5);
  const gamma = randomUniform(cols, seed + 1).map((v) => 1 + v);
  const beta = randomUniform(cols, seed + 2);
  const dy = randomUniform(rows * cols, seed + 3);
  const startGamma = randomUniform(cols, seed + 4);
  const startBeta = randomUniform(cols, seed + 5);
  return {
    on: async (backend) => {
      const [out, mean, rstd] = [upload(backend, new Float32Array(rows * cols)), upload(backend, new Float32Array(rows)), upload(backend, new Float32Array(rows))];
      const [xv, g] = [upload(backend, x), upload(backend, gamma)];
      backend.layerNorm(out, mean, rstd, xv, g, upload(backend, beta), rows, cols);
      const [dx, dg, db] = [upload(backend, randomUniform(rows * cols, 1)), upload(backend, startGamma), upload(backend, startBeta)];
      backend.layerNormBackward(dx, dg, db, upload(backend, dy), xv, mean, rstd, g, rows, cols);
      return Promise.all([out, mean, rstd, dx, dg, db].map((v) => backend.read(v)));
    },
  };
}
