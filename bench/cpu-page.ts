// Runs in the CPU benchmark page: this project's fast CPU backend (WebAssembly SIMD, src/engine/
// wasm-backend.ts) against TensorFlow.js's WASM backend (XNNPACK; SIMD, and threads when the page is
// cross-origin isolated) and its plain-JavaScript CPU backend, in the same page on the same inputs.
// Results go to `window.cpuBenchResult` for bench/cpu.ts to print. TensorFlow.js is a dev dependency
// used only in the benchmarks.
import * as tf from '@tensorflow/tfjs';
import { type Backend, viewOf } from '../src/engine/backend';
import { WasmCpuBackend } from '../src/engine/wasm-backend';
import { defaults } from '../src/train/defaults';
import { seededRandom } from './bench-random';
import { configureTfjsWasm, mlpStepInputs, oursMlpStep, tfjsMlpStep } from './mlp-step';

/** Best milliseconds per iteration of each contender (see timePair); null where it was not run. */
export interface CpuBenchRow {
  name: string;
  /** Floating-point operations of one iteration (2MNK per matmul). */
  flops: number;
  oursMs: number;
  tfjsWasmMs: number;
  tfjsCpuMs: number | null;
}

export interface CpuBenchResult {
  ours: string;
  tfjsWasm: string;
  crossOriginIsolated: boolean;
  hardwareConcurrency: number;
  rows: CpuBenchRow[];
}

declare global {
  interface Window {
    cpuBenchResult?: CpuBenchResult | { error: string };
  }
}

/**
 * Times ours and TensorFlow.js's WASM backend in alternation (one warm-up each, then `iterations`
 * rounds of one run each), so that both see the same share of a machine shared with other work, and
 * keeps each one's best round: on a loaded machine the best is the run least slowed by others.
 */
async function timePair(ours: () => Promise<void>, theirs: () => Promise<void>, iterations: number): Promise<[number, number]> {
  await ours();
  await theirs();
  let [bestOurs, bestTheirs] = [Infinity, Infinity];
  for (let i = 0; i < iterations; i++) {
    let t0 = performance.now();
    await ours();
    bestOurs = Math.min(bestOurs, performance.now() - t0);
    t0 = performance.now();
    await theirs();
    bestTheirs = Math.min(bestTheirs, performance.now() - t0);
  }
  return [bestOurs, bestTheirs];
}

/** Best of `iterations` runs after one warm-up, in ms. */
async function time(run: () => Promise<void>, iterations: number): Promise<number> {
  const [best] = await timePair(run, async () => {}, iterations);
  return best;
}

/** One matmul of ours per call, product read back; `dispose` frees its buffers. */
function oursMatmul(ours: Backend, a: Float32Array, b: Float32Array, n: number): { run: () => Promise<void>; dispose: () => void } {
  const [bufA, bufB, bufC] = ['a', 'b', 'c'].map((name) => ours.alloc(n * n, `bench.${name}`, 'workspace'));
  ours.write(viewOf(bufA), a);
  ours.write(viewOf(bufB), b);
  return {
    run: async () => {
      ours.matmul(viewOf(bufC), viewOf(bufA), viewOf(bufB), n, n, n);
      await ours.read(viewOf(bufC));
    },
    dispose: () => [bufA, bufB, bufC].forEach((buf) => ours.free(buf)),
  };
}

/** One TensorFlow.js matmul per call on its current backend, product read back. */
function tfjsMatmul(a: Float32Array, b: Float32Array, n: number): { run: () => Promise<void>; dispose: () => void } {
  const ta = tf.tensor2d(a, [n, n]);
  const tb = tf.tensor2d(b, [n, n]);
  return {
    run: async () => {
      const c = tf.matMul(ta, tb);
      await c.data();
      c.dispose();
    },
    dispose: () => tf.dispose([ta, tb]),
  };
}

async function useBackend(backend: 'wasm' | 'cpu'): Promise<void> {
  if (!(await tf.setBackend(backend))) throw new Error(`TensorFlow.js could not start its ${backend} backend`);
}

async function benchMatmul(ours: Backend, n: number, iterations: number, withTfjsCpu: boolean): Promise<CpuBenchRow> {
  const random = seededRandom(n);
  const a = Float32Array.from({ length: n * n }, random);
  const b = Float32Array.from({ length: n * n }, random);
  await useBackend('wasm');
  const [mine, theirs] = [oursMatmul(ours, a, b, n), tfjsMatmul(a, b, n)];
  const [oursMs, tfjsWasmMs] = await timePair(mine.run, theirs.run, iterations).finally(() => (mine.dispose(), theirs.dispose()));
  let tfjsCpuMs: number | null = null;
  if (withTfjsCpu) {
    await useBackend('cpu');
    const slow = tfjsMatmul(a, b, n);
    tfjsCpuMs = await time(slow.run, n >= 1024 ? 1 : 3).finally(() => slow.dispose());
  }
  return { name: `matmul ${n}x${n}x${n}`, flops: 2 * n * n * n, oursMs, tfjsWasmMs, tfjsCpuMs };
}

async function main(): Promise<void> {
  const params = new URLSearchParams(location.search);
  const quick = params.get('quick') === '1';
  const skipTfjsCpuAbove = Number(params.get('tfjsCpuMax') ?? 1024);
  const ours = await WasmCpuBackend.create();
  configureTfjsWasm();
  if (!(await tf.setBackend('wasm'))) throw new Error('TensorFlow.js could not start its WASM backend');
  await tf.ready();
  const features = tf.env().features;
  const tfjsWasm = `XNNPACK, SIMD ${features.WASM_HAS_SIMD_SUPPORT ? 'on' : 'off'}, threads ${features.WASM_HAS_MULTITHREAD_SUPPORT ? `on (${navigator.hardwareConcurrency})` : 'off'}`;

  const rows: CpuBenchRow[] = [];
  for (const n of quick ? [256] : [256, 512, 1024]) rows.push(await benchMatmul(ours, n, n >= 1024 ? 7 : 15, n <= skipTfjsCpuAbove));
  // The lab's own MNIST MLP and batch (src/train/defaults.ts).
  const step = mlpStepInputs(defaults.mnist.model.sizes, defaults.mnist.globalBatch);
  const { sizes, batch } = step;
  const layerFlops = sizes.slice(1).reduce((sum, out, i) => sum + sizes[i] * out, 0) * batch;
  const steps = quick ? 3 : 15;
  rows.push({
    name: `MLP step ${sizes.join('-')} batch ${batch} (fwd+bwd+AdamW)`,
    // Forward 2 flops per weight and sample, backward 4 (dX and dW): the matmuls only.
    flops: 6 * layerFlops,
    oursMs: await oursMlpStep(ours, step, steps, time),
    tfjsWasmMs: await useBackend('wasm').then(() => tfjsMlpStep(step, steps, time)),
    tfjsCpuMs: await useBackend('cpu').then(() => tfjsMlpStep(step, quick ? 2 : 5, time)),
  });
  window.cpuBenchResult = { ours: ours.info.adapter, tfjsWasm, crossOriginIsolated, hardwareConcurrency: navigator.hardwareConcurrency, rows };
}

main().catch((error: unknown) => {
  window.cpuBenchResult = { error: error instanceof Error ? `${error.name}: ${error.message}` : String(error) };
});
