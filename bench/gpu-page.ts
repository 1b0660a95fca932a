// Runs in the benchmark page: this project's WebGPU kernels against TensorFlow.js's WebGPU, WebGL and
// WASM backends, in the same page, on the same inputs: against the fastest of the two that run on the
// same adapter (WebGPU, WebGL) per benchmark, and apart from them against WASM, the CPU reference. The
// matmuls are timed in turns (one iteration of each contender, then the next), so that on a shared
// machine a burst of load falls on all of them; the MLP step times one backend after the other. Results go to `window.benchResult` for bench/gpu.ts to print.
// TensorFlow.js is a dev dependency used only in the benchmarks.
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-webgpu';
import { viewOf } from '../src/engine/backend';
import { acquireDevice } from '../src/gpu/device';
import { WebGpuBackend } from '../src/gpu/webgpu-backend';
import { defaults } from '../src/train/defaults';
import { seededRandom } from './bench-random';
import { configureTfjsWasm, mlpStepInputs, oursMlpStep, tfjsMlpStep } from './mlp-step';
import { ADAPTER_BACKENDS, CPU_REFERENCE_BACKEND, TFJS_BACKENDS, type TfjsBackend } from './tfjs-backends';

export interface BenchRow {
  name: string;
  /** Median milliseconds per iteration. */
  oursMs: number;
  /** Matmuls on SwiftShader: ours with the 4x4-block kernels of before, timed in turns with the rest. */
  oursBlocks4Ms?: number;
  /** Floating-point operations per iteration (2MKN for a matmul); null where not counted. */
  flops: number | null;
  /** Median milliseconds per iteration of each TensorFlow.js backend that started. */
  tfjsMs: Partial<Record<TfjsBackend, number>>;
  /** The fastest TensorFlow.js backend on the same adapter (WebGPU or WebGL) on this benchmark, and its time. */
  fastest: TfjsBackend;
  fastestMs: number;
  /** fastestMs / oursMs: above 1 means this project is faster than TensorFlow.js on the same adapter. */
  speedup: number;
  /** TensorFlow.js WASM's time / ours: the CPU reference (it does not use the adapter); null if it did not start. */
  vsCpuReference: number | null;
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

/** One contender of a benchmark timed in turns: `enter` (untimed) makes it current, `run` is timed. */
interface Turn {
  enter?: () => Promise<void>;
  run: () => Promise<void>;
  free: () => void;
}

/**
 * Medians of the turns' runs, timed in turns (one iteration of each, then the next), after one warm-up
 * each, so that all of them see the same load on a shared machine.
 */
async function timeInTurns(turns: Turn[], iterations: number): Promise<number[]> {
  for (const turn of turns) {
    await turn.enter?.();
    await turn.run();
  }
  const samples: number[][] = turns.map(() => []);
  for (let i = 0; i < iterations; i++) {
    for (const [j, turn] of turns.entries()) {
      await turn.enter?.();
      const t0 = performance.now();
      await turn.run();
      samples[j].push(performance.now() - t0);
    }
  }
  for (const turn of turns) {
    await turn.enter?.();
    turn.free();
  }
  return samples.map(median);
}

/** `n`^3 on one of our backends; each iteration reads (the head of) the product back to the page. */
function oursMatmulTurn(ours: WebGpuBackend, a: Float32Array, b: Float32Array, n: number): Turn {
  const [bufA, bufB, bufC] = ['bench.a', 'bench.b', 'bench.c'].map((label) => ours.alloc(n * n, label, 'workspace'));
  ours.write(viewOf(bufA), a);
  ours.write(viewOf(bufB), b);
  return {
    run: async () => {
      ours.matmul(viewOf(bufC), viewOf(bufA), viewOf(bufB), n, n, n);
      await ours.read(viewOf(bufC, 0, 64));
    },
    free: () => [bufA, bufB, bufC].forEach((buf) => ours.free(buf)),
  };
}

/** `n`^3 on one TensorFlow.js backend, its inputs uploaded there; the head of the product is read back. */
async function tfjsMatmulTurn(backend: TfjsBackend, a: Float32Array, b: Float32Array, n: number): Promise<Turn> {
  const enter = async () => {
    if (tf.getBackend() !== backend) await tf.setBackend(backend);
  };
  await enter();
  const [ta, tb] = [tf.tensor2d(a, [n, n]), tf.tensor2d(b, [n, n])];
  return {
    enter,
    run: async () => {
      const c = tf.matMul(ta, tb);
      const head = c.slice([0, 0], [1, 64]);
      await head.data();
      tf.dispose([c, head]);
    },
    free: () => tf.dispose([ta, tb]),
  };
}

/**
 * Ours (and, on SwiftShader, ours with the 4x4 blocks of before) and every TensorFlow.js backend that
 * started, on the same inputs, timed in turns. Every side pays one readback per iteration.
 */
async function benchMatmul(ours: WebGpuBackend, blocks4: WebGpuBackend | null, n: number, iterations: number): Promise<BenchRow> {
  const random = seededRandom(n);
  const a = Float32Array.from({ length: n * n }, random);
  const b = Float32Array.from({ length: n * n }, random);
  const oursTurns = (blocks4 ? [ours, blocks4] : [ours]).map((backend) => oursMatmulTurn(backend, a, b, n));
  const tfjsTurns: Turn[] = [];
  for (const backend of tfjsBackends) tfjsTurns.push(await tfjsMatmulTurn(backend, a, b, n));
  const ms = await timeInTurns([...oursTurns, ...tfjsTurns], iterations);
  const [oursMs, oursBlocks4Ms] = blocks4 ? ms.slice(0, 2) : [ms[0], undefined];
  const tfjsMs = Object.fromEntries(tfjsBackends.map((backend, i) => [backend, ms[oursTurns.length + i]])) as Partial<Record<TfjsBackend, number>>;
  return { ...row(`matmul ${n}x${n}x${n}`, 2 * n ** 3, oursMs, tfjsMs), oursBlocks4Ms };
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

function row(name: string, flops: number | null, oursMs: number, tfjsMs: Partial<Record<TfjsBackend, number>>): BenchRow {
  const onAdapter = ADAPTER_BACKENDS.flatMap((backend): [TfjsBackend, number][] => (tfjsMs[backend] === undefined ? [] : [[backend, tfjsMs[backend]]]));
  const [fastest, fastestMs] = onAdapter.reduce((best, entry) => (entry[1] < best[1] ? entry : best));
  const cpuMs = tfjsMs[CPU_REFERENCE_BACKEND];
  return { name, flops, oursMs, tfjsMs, fastest, fastestMs, speedup: fastestMs / oursMs, vsCpuReference: cpuMs === undefined ? null : cpuMs / oursMs };
}

async function benchMlpStep(ours: WebGpuBackend, sizes: number[], batch: number, iterations: number): Promise<BenchRow> {
  const step = mlpStepInputs(sizes, batch);
  const oursMs = await oursMlpStep(ours, step, iterations, time);
  const tfjsMs = await perTfjsBackend(() => tfjsMlpStep(step, iterations, time));
  return row(`MLP step ${sizes.join('-')} batch ${batch} (fwd+bwd+AdamW)`, null, oursMs, tfjsMs);
}

async function main(): Promise<void> {
  const params = new URLSearchParams(location.search);
  const quick = params.get('quick') === '1';
  const context = await acquireDevice(navigator.gpu);
  const ours = await WebGpuBackend.fromContext(context);
  // On SwiftShader, the 4x4-block kernels of before beside the 8x8 ones, on the same device.
  const blocks4 = ours.matmulVariant === 'blocked' ? await WebGpuBackend.fromContext(context, { matmulBlocks8: false }) : null;
  configureTfjsWasm();
  const tfjsMissing: Partial<Record<TfjsBackend, string>> = {};
  for (const backend of TFJS_BACKENDS) {
    const started = await tf.setBackend(backend).catch(() => false);
    if (started) tfjsBackends.push(backend);
    else tfjsMissing[backend] = 'did not start in this page';
  }
  if (!ADAPTER_BACKENDS.some((backend) => tfjsBackends.includes(backend))) throw new Error(`TensorFlow.js could start none of its adapter backends (${ADAPTER_BACKENDS.join(', ')})`);
  const rows: BenchRow[] = [];
  const sizes = quick ? [256] : [256, 512, 1024];
  for (const n of sizes) rows.push(await benchMatmul(ours, blocks4, n, n >= 1024 ? 3 : 5));
  // The lab's own MNIST MLP and batch (src/train/defaults.ts).
  rows.push(await benchMlpStep(ours, defaults.mnist.model.sizes, defaults.mnist.globalBatch, quick ? 3 : 10));
  window.benchResult = { adapter: ours.info.adapter, tfjsMissing, matmulVariant: ours.matmulVariant, rows };
}

main().catch((error: unknown) => {
  window.benchResult = { error: error instanceof Error ? `${error.name}: ${error.message}` : String(error) };
});
