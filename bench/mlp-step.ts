// Runs in the benchmark pages (bench/cpu-page.ts, bench/gpu-page.ts): one training step of the lab's
// MLP on this project's backend and the same network in TensorFlow.js (dense layers with ReLU, softmax
// cross-entropy, Adam), each timed by the page's own rule (`time`: the GPU page takes the median, the
// CPU page the best run), and the set-up of TensorFlow.js's WASM backend that both pages share. Each
// step ends with a read-back of 64 parameters so that both sides wait for the work to finish. The
// buffers and tensors a measurement makes are freed before it returns, also when it throws.
import * as tf from '@tensorflow/tfjs';
import { setThreadsCount, setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { type Backend, viewOf } from '../src/engine/backend';
import { Mlp } from '../src/model/mlp';
import { Optimizer } from '../src/train/optimizer';
import { seededRandom } from './bench-random';

/** Milliseconds that stand for `iterations` runs of `run` (after the page's warm-up). */
export type TimeRun = (run: () => Promise<void>, iterations: number) => Promise<number>;

export interface MlpStepInputs {
  sizes: number[];
  batch: number;
  inputs: Float32Array;
  labels: Uint32Array;
}

/** Seeded inputs and cycling labels for a batch of `batch` rows of an MLP of `sizes`, the same for both sides. */
export function mlpStepInputs(sizes: number[], batch: number): MlpStepInputs {
  const random = seededRandom(7);
  const inputs = Float32Array.from({ length: batch * sizes[0] }, random);
  const labels = Uint32Array.from({ length: batch }, (_, i) => i % sizes[sizes.length - 1]);
  return { sizes, batch, inputs, labels };
}

/** One forward, backward and AdamW update of our MLP on `ours`. */
export async function oursMlpStep(ours: Backend, { sizes, batch, inputs, labels }: MlpStepInputs, iterations: number, time: TimeRun): Promise<number> {
  const mlp = new Mlp(ours, { sizes }, batch);
  mlp.init(1);
  const optimizer = new Optimizer(ours, mlp.layout, { kind: 'adamw', lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 });
  let step = 0;
  try {
    return await time(async () => {
      ours.fill(viewOf(mlp.grads), 0);
      mlp.forward({ inputs, targets: labels, rows: batch }, 1 / batch);
      mlp.backward();
      optimizer.update(mlp.params, mlp.grads, ++step);
      await ours.read(viewOf(mlp.params, 0, 64));
    }, iterations);
  } finally {
    mlp.dispose();
  }
}

/** The same step in TensorFlow.js, on whichever backend TensorFlow.js has current. */
export async function tfjsMlpStep({ sizes, batch, inputs, labels }: MlpStepInputs, iterations: number, time: TimeRun): Promise<number> {
  const weights = sizes.slice(1).map((out, i) => ({
    w: tf.variable(tf.randomNormal([sizes[i], out], 0, Math.sqrt(2 / sizes[i]))),
    b: tf.variable(tf.zeros([out])),
  }));
  const x = tf.tensor2d(inputs, [batch, sizes[0]]);
  const y = tf.oneHot(tf.tensor1d(Int32Array.from(labels), 'int32'), sizes[sizes.length - 1]);
  const optimizer = tf.train.adam(1e-3);
  try {
    return await time(async () => {
      const loss = optimizer.minimize(() => {
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
  } finally {
    optimizer.dispose();
    tf.dispose([x, y, ...weights.flatMap(({ w, b }) => [w, b])]);
  }
}

/** TensorFlow.js's WASM backend loads its .wasm files from node_modules (Vite serves it), with threads where the page is isolated. */
export function configureTfjsWasm(): void {
  setWasmPaths('/node_modules/@tensorflow/tfjs-backend-wasm/dist/');
  if (crossOriginIsolated) setThreadsCount(navigator.hardwareConcurrency);
}
