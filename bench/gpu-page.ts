// Runs in the benchmark page: this project's WebGPU kernels and TensorFlow.js's WebGPU backend on the
// same adapter, in the same page, on the same inputs. Results go to `window.benchResult` for
// bench/gpu.ts to print. TensorFlow.js is a dev dependency used only here.
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-webgpu';
import { viewOf } from '../src/engine/backend';
import { WebGpuBackend } from '../src/gpu/webgpu-backend';
import { Mlp } from '../src/model/mlp';
import { Optimizer } from '../src/train/optimizer';
import { defaults } from '../src/train/defaults';
import { seededRandom } from './bench-random';

export interface BenchRow {
  name: string;
  /** Median milliseconds per iteration. */
  oursMs: number;
  tfjsMs: number;
  /** tfjsMs / oursMs: above 1 means this project is faster. */
  speedup: number;
}

export interface BenchResult {
  adapter: string;
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

  const ta = tf.tensor2d(a, [n, n]);
  const tb = tf.tensor2d(b, [n, n]);
  const tfjsMs = await time(async () => {
    const c = tf.matMul(ta, tb);
    const head = c.slice([0, 0], [1, 64]);
    await head.data();
    tf.dispose([c, head]);
  }, iterations);
  tf.dispose([ta, tb]);
  return { name: `matmul ${n}x${n}x${n}`, oursMs, tfjsMs, speedup: tfjsMs / oursMs };
}

async function benchMlpStep(ours: WebGpuBackend, sizes: number[], batch: number, iterations: number): Promise<BenchRow> {
  const random = seededRandom(7);
  const inputs = Float32Array.from({ length: batch * sizes[0] }, random);
  const labels = Uint32Array.from({ length: batch }, (_, i) => i % sizes[sizes.length - 1]);
  const adam = { kind: 'adamw' as const, lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 };

  const mlp = new Mlp(ours, { sizes }, batch);
  mlp.init(1);
  const optimizer = new Optimizer(ours, mlp.layout, adam);
  let step = 0;
  const oursMs = await time(async () => {
    ours.fill(viewOf(mlp.grads), 0);
    mlp.forward({ inputs, targets: labels, rows: batch }, 1 / batch);
    mlp.backward();
    optimizer.update(mlp.params, mlp.grads, ++step);
    await ours.read(viewOf(mlp.params, 0, 64));
  }, iterations);
  mlp.dispose();

  // The same network in TensorFlow.js: dense layers with ReLU, softmax cross-entropy, Adam.
  const weights = sizes.slice(1).map((out, i) => ({
    w: tf.variable(tf.randomNormal([sizes[i], out], 0, Math.sqrt(2 / sizes[i]))),
    b: tf.variable(tf.zeros([out])),
  }));
  const x = tf.tensor2d(inputs, [batch, sizes[0]]);
  const y = tf.oneHot(tf.tensor1d(Int32Array.from(labels), 'int32'), sizes[sizes.length - 1]);
  const tfOptimizer = tf.train.adam(1e-3);
  const tfjsMs = await time(async () => {
    const loss = tfOptimizer.minimize(() => {
      let h: tf.Tensor2D = x;
      weights.forEach(({ w, b }, i) => {
        h = tf.add(tf.matMul(h, w), b);
        if (i < weights.length - 1) h = tf.relu(h);
      });
      return tf.losses.softmaxCrossEntropy(y, h);
    }, true);
    const head = weights[0].w.slice([0, 0], [1, Math.min(64, sizes[1])]);
    await head.data();
    tf.dispose(loss ? [loss, head] : [head]);
  }, iterations);
  tf.dispose([x, y, ...weights.flatMap(({ w, b }) => [w, b])]);
  return { name: `MLP step ${sizes.join('-')} batch ${batch} (fwd+bwd+AdamW)`, oursMs, tfjsMs, speedup: tfjsMs / oursMs };
}

async function main(): Promise<void> {
  const params = new URLSearchParams(location.search);
  const quick = params.get('quick') === '1';
  const ours = await WebGpuBackend.create(navigator.gpu);
  if (!(await tf.setBackend('webgpu'))) throw new Error('TensorFlow.js could not start its WebGPU backend');
  await tf.ready();
  const rows: BenchRow[] = [];
  const sizes = quick ? [256] : [256, 512, 1024];
  for (const n of sizes) rows.push(await benchMatmul(ours, n, n >= 1024 ? 3 : 5));
  // The lab's own MNIST MLP and batch (src/train/defaults.ts).
  rows.push(await benchMlpStep(ours, defaults.mnist.model.sizes, defaults.mnist.globalBatch, quick ? 3 : 10));
  window.benchResult = { adapter: ours.info.adapter, matmulVariant: ours.matmulVariant, rows };
}

main().catch((error: unknown) => {
  window.benchResult = { error: error instanceof Error ? `${error.name}: ${error.message}` : String(error) };
});
