// The update path of a data-parallel step, on WebGPU and on both CPU backends, compared bit for bit
// (tolerance: none). After the all-reduce every rank of a room applies the same averaged gradient to the
// same parameters; a room that mixes WebGPU and CPU tabs keeps bitwise-equal replicas only if the
// optimizer step, the sum of squares and the clip give the same float32 bits on every backend
// (src/engine/f32-update.ts).
import { beforeAll, describe, expect, it } from 'vitest';
import { type Backend, type View, viewOf } from '../engine/backend';
import { CpuBackend } from '../engine/cpu-backend';
import { randomUniform } from '../engine/gradcheck';
import { WasmCpuBackend } from '../engine/wasm-backend';
import { deviceProblems, testDevice } from './test-device';
import { WebGpuBackend } from './webgpu-backend';

let gpu: WebGpuBackend;
let wasm: WasmCpuBackend;

beforeAll(async () => {
  gpu = await WebGpuBackend.fromContext(await testDevice());
  wasm = await WasmCpuBackend.create();
}, 120_000);

/** Sizes that are not multiples of a workgroup, of 4 or of the reduction's levels, and both reduction paths. */
const SIZES = [1, 3, 255, 257, 1000, 4 * 4096, 4 * 4096 + 1, 100_003];

type Op = (b: Backend, input: (data: Float32Array) => View) => View[];

/** Runs `op` on each backend with the same inputs and returns every output's bits, backend by backend. */
async function bitsOn(backends: Backend[], op: Op): Promise<Uint32Array[][]> {
  const out: Uint32Array[][] = [];
  for (const b of backends) {
    const views: View[] = [];
    const input = (data: Float32Array) => {
      const v = viewOf(b.alloc(data.length, 'input', 'workspace'));
      b.write(v, data);
      views.push(v);
      return v;
    };
    const outputs = op(b, input);
    out.push(await Promise.all(outputs.map(async (v) => new Uint32Array((await b.read(v)).slice().buffer))));
    for (const v of views) b.free(v.buf);
  }
  return out;
}

/** Index and values of the first element whose bits differ, or null. */
function firstDifference(want: Uint32Array, got: Uint32Array): { i: number; want: number; got: number } | null {
  const f = (bits: Uint32Array, i: number) => new Float32Array(bits.buffer)[i];
  for (let i = 0; i < want.length; i++) if (want[i] !== got[i]) return { i, want: f(want, i), got: f(got, i) };
  return null;
}

async function expectSameBits(op: Op): Promise<void> {
  const [onGpu, ...onCpus] = await bitsOn([gpu, new CpuBackend(), wasm], op);
  onCpus.forEach((cpuOutputs, backend) =>
    cpuOutputs.forEach((bits, output) => expect(firstDifference(onGpu[output], bits), `backend ${backend}, output ${output}`).toBeNull()),
  );
  expect(deviceProblems).toEqual([]);
}

describe('the update path gives the same float32 bits on WebGPU, the CPU reference and WASM (exact)', () => {
  for (const n of SIZES) {
    it(`adamw, 5 steps with a schedule-like learning rate, n = ${n}`, () =>
      expectSameBits((b, input) => {
        const [p, m, v] = [input(randomUniform(n, 1, -1, 1)), input(new Float32Array(n)), input(new Float32Array(n))];
        for (let step = 1; step <= 5; step++) {
          // Gradients spanning tiny to large magnitudes: eps and the square root both matter.
          const g = input(randomUniform(n, 10 + step, -1, 1).map((x, i) => x * 10 ** ((i % 7) - 5)));
          b.adamw(p, g, m, v, { lr: 2e-3 * (1 - step / 7), beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 1e-4, step });
        }
        return [p, m, v];
      }));
  }

  it('adamw with the GPT recipe hyperparameters (beta2 0.99, decay 0.01), n = 1000', () =>
    expectSameBits((b, input) => {
      const [p, m, v] = [input(randomUniform(1000, 2, -1, 1)), input(new Float32Array(1000)), input(new Float32Array(1000))];
      for (let step = 1; step <= 3; step++) b.adamw(p, input(randomUniform(1000, 20 + step, -3, 3)), m, v, { lr: 3e-3, beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0.01, step });
      return [p, m, v];
    }));

  for (const n of [1, 257, 100_003]) {
    it(`sgd with momentum and weight decay, 3 steps, n = ${n}`, () =>
      expectSameBits((b, input) => {
        const [p, buf] = [input(randomUniform(n, 3, -1, 1)), input(new Float32Array(n))];
        for (let step = 1; step <= 3; step++) b.sgd(p, input(randomUniform(n, 30 + step, -1, 1)), buf, { lr: 0.1, momentum: 0.9, weightDecay: 0.01 });
        return [p, buf];
      }));
  }

  for (const n of SIZES) {
    it(`sumSquares then clipByNorm (clipping on), n = ${n}`, () =>
      expectSameBits((b, input) => {
        const g = input(randomUniform(n, 4, -3, 3));
        const sumSq = input(new Float32Array(1));
        b.sumSquares(sumSq, g);
        b.clipByNorm(g, sumSq, 0.5);
        return [sumSq, g];
      }));
  }
});
