// Runs in the benchmark page: this project's WebGPU kernels against TensorFlow.js's WebGPU, WebGL and
// WASM backends (the first two on the same adapter), in the same page, on the same inputs, and against
// the fastest of the three per benchmark. Results go to `window.benchResult` for bench/gpu.ts to print.
// TensorFlow.js is a dev dependency used only in the benchmarks.
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-webgpu';
import { viewOf } from '../src/engine/backend';
import { WebGpuBackend } from '../src/gpu/webgpu-backend';
import { defaults } from '../src/train/defaults';
import { seededRandom } from './bench-random';
import { configureTfjsWasm, mlpStepInputs, oursMlpStep, tfjsMlpStep } from './mlp-step';
import { TFJS_BACKENDS, type TfjsBackend } from './tfjs-backends';

export interface BenchRow {
  name: string;
  /** Median milliseconds per iteration. */
  oursMs: number;
  /** Median milliseconds per iteration of each TensorFlow.js backend that started. */
  tfjsMs: Partial<Record<TfjsBackend, number>>;
  /** The fastest TensorFlow.js backend on this benchmark, and its time. */
  fastest: TfjsBackend;
  fastestMs: number;
  /** fastestMs / oursMs: above 1 means this project is faster than every TensorFlow.js backend. */
  speedup: number;
}

export interface BenchResult {
  adapter: string;
  /** TensorFlow.js backends that could not start here, with the reason. */
  tfjsMissing: Partial<Record<TfjsBackend, string>>;
  matmulVariant: string;
  rows: BenchRow[];
}

declare global {
  interface Window {
    benchResult?: BenchResult | { error: string };
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Times `iterations` runs of `run` (each awaited to completion), after one warm-up; median ms. */
async function time(run: () => Promise<void>, iterations: number): Promise<number> {
  await run();
  const samples: number[] = [];
  for (let i = 0; i < iterations; i++) {
    const t0 = performance.now();
    await run();
    samples.push(performance.now() - t0);
  }
  return median(samples);
}

async function benchMatmul(ours: WebGpuBackend, n: number, iterations: number): Promise<BenchRow> {
  const random = seededRandom(n);
  const a = Float32Array.from({ length: n * n }, random);
  const b = Float32Array.from({ length: n * n }, random);
  const bufA = ours.alloc(n * n, 'bench.a', 'workspace');
  const bufB = ours.alloc(n * n, 'bench.b', 'workspace');
  const bufC = ours.alloc(n * n, 'bench.c', 'workspace');
  ours.write(viewOf(bufA), a);
  ours.write(viewOf(bufB), b);
  // Both sides end each iteration with the product read back to the page, so both pay one readback.
  const oursMs = await time(async () => {
    ours.matmul(viewOf(bufC), viewOf(bufA), viewOf(bufB), n, n, n);
    await ours.read(viewOf(bufC, 0, 64));
  }, iterations);
  for (const buf of [bufA, bufB, bufC]) ours.free(buf);

  const tfjsMs = await perTfjsBackend(async () => {
    const ta = tf.tensor2d(a, [n, n]);
    const tb = tf.tensor2d(b, [n, n]);
    const ms = await time(async () => {
      const c = tf.matMul(ta, tb);
      const head = c.slice([0, 0], [1, 64]);
      await head.data();
      tf.dispose([c, head]);
    }, iterations);
    tf.dispose([ta, tb]);
    return ms;
  });
  return row(`matmul ${n}x${n}x${n}`, oursMs, tfjsMs);
}

/** TensorFlow.js backends that started (set by main). */
const tfjsBackends: TfjsBackend[] = [];

/** Runs `measure` once on every TensorFlow.js backend that started. */
async function perTfjsBackend(measure: () => Promise<number>): Promise<Partial<Record<TfjsBackend, number>>> {
  const result: Partial<Record<TfjsBackend, number>> = {};
  for (const backend of tfjsBackends) {
    await tf.setBackend(backend);
    result[backend] = await measure();
  }
  return result;
}

function row(name: string, oursMs: number, tfjsMs: Partial<Record<TfjsBackend, number>>): BenchRow {
  const [fastest, fastestMs] = (Object.entries(tfjsMs) as [TfjsBackend, number][]).reduce((best, entry) => (entry[1] < best[1] ? entry : best));
  return { name, oursMs, tfjsMs, fastest, fastestMs, speedup: fastestMs / oursMs };
}

async function benchMlpStep(ours: WebGpuBackend, sizes: number[], batch: number, iterations: number): Promise<BenchRow> {
  const step = mlpStepInputs(sizes, batch);
  const oursMs = await oursMlpStep(ours, step, iterations, time);
  const tfjsMs = await perTfjsBackend(() => tfjsMlpStep(step, iterations, time));
  return row(`MLP step ${sizes.join('-')} batch ${batch} (fwd+bwd+AdamW)`, oursMs, tfjsMs);
}

async function main(): Promise<void> {
  const params = new URLSearchParams(location.search);
  const quick = params.get('quick') === '1';
  const ours = await WebGpuBackend.create(navigator.gpu);
  configureTfjsWasm();
  const tfjsMissing: Partial<Record<TfjsBackend, string>> = {};
  for (const backend of TFJS_BACKENDS) {
    const started = await tf.setBackend(backend).catch(() => false);
    if (started) tfjsBackends.push(backend);
    else tfjsMissing[backend] = 'did not start in this page';
  }
  if (!tfjsBackends.includes('webgpu')) throw new Error('TensorFlow.js could not start its WebGPU backend');
  const rows: BenchRow[] = [];
  const sizes = quick ? [256] : [256, 512, 1024];
  for (const n of sizes) rows.push(await benchMatmul(ours, n, n >= 1024 ? 3 : 5));
  // The lab's own MNIST MLP and batch (src/train/defaults.ts).
  rows.push(await benchMlpStep(ours, defaults.mnist.model.sizes, defaults.mnist.globalBatch, quick ? 3 : 10));
  window.benchResult = { adapter: ours.info.adapter, tfjsMissing, matmulVariant: ours.matmulVariant, rows };
}

main().catch((error: unknown) => {
  window.benchResult = { error: error instanceof Error ? `${error.name}: ${error.message}` : String(error) };
});
