// Whole-model finite-difference check (test helper): the analytic gradient of the mean loss from
// `backward` against central differences of the loss on a few coordinates of every tensor.
import { type Backend, viewOf } from '../engine/backend';
import type { Batch, Model } from './model';
import { Rng } from '../data/random';

export interface ModelGradMismatch {
  tensor: string;
  index: number;
  analytic: number;
  numeric: number;
}

async function meanLoss(backend: Backend, model: Model, batch: Batch): Promise<number> {
  const r = model.forward(batch, 0);
  const losses = await backend.read(r.losses);
  let sum = 0;
  for (const l of losses) sum += l;
  return sum / r.lossRows;
}

/**
 * Checks `coordsPerTensor` random coordinates of every tensor. Passes when
 * |analytic - numeric| <= atol + rtol * |numeric|; returns the failures.
 */
export async function checkModelGradients(
  backend: Backend,
  model: Model,
  batch: Batch,
  options: { coordsPerTensor?: number; eps?: number; atol?: number; rtol?: number; seed?: number } = {},
): Promise<{ checked: number; mismatches: ModelGradMismatch[] }> {
  const { coordsPerTensor = 3, eps = 1e-2, atol = 1e-4, rtol = 3e-2, seed = 9 } = options;
  backend.fill(viewOf(model.grads), 0);
  const r = model.forward(batch, 1);
  model.backward();
  const gradScale = 1 / r.lossRows;
  const grads = await backend.read(viewOf(model.grads));
  const params = await backend.read(viewOf(model.params));
  const rng = new Rng(seed);
  const mismatches: ModelGradMismatch[] = [];
  let checked = 0;
  for (const e of model.layout.entries) {
    for (let c = 0; c < Math.min(coordsPerTensor, e.length); c++) {
      const index = rng.int(e.length);
      const at = e.offset + index;
      const original = params[at];
      const probe = async (value: number) => {
        backend.write(viewOf(model.params, at, 1), Float32Array.of(value));
        return meanLoss(backend, model, batch);
      };
      // Difference the actual float32 values written, not the intended ones.
      const up = Math.fround(original + eps);
      const down = Math.fround(original - eps);
      const numeric = ((await probe(up)) - (await probe(down))) / (up - down);
      backend.write(viewOf(model.params, at, 1), Float32Array.of(original));
      const analytic = grads[at] * gradScale;
      checked++;
      if (!(Math.abs(analytic - numeric) <= atol + rtol * Math.abs(numeric))) {
        mismatches.push({ tensor: e.name, index, analytic, numeric });
      }
    }
  }
  return { checked, mismatches };
}
