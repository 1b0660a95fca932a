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
