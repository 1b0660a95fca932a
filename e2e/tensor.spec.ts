// Tensor parallelism with real tabs (WebGPU on SwiftShader, WebRTC data channels): T tabs each hold
// one shard of the MLP's column/row pair (and the replicated last layer whole), the partial sums of
// the pair's output are all-reduced between them every micro-batch, and the room ends where one tab
// ends on the same global batch with the same micro-batches (within float tolerance, relative to the
// distance trained), for 2 tabs (tensor=2) and two tensor groups side by side (TP2 x DP2: each shard's
// replicas bitwise equal after every step, checked by the room's hash exchange; the replicated layer
// bitwise equal on every tab), and the sotu GPT on 2 tabs (heads split, MLP columns then rows). A tab
// that vanishes stops the room with a message naming its shard.
import { expect, test } from '@playwright/test';
import type { TensorFigures } from '../src/lab/partitioned-run';
import { gptLayout } from '../src/model/gpt';
import { initialParams } from '../src/model/init';
import { mlpLayout } from '../src/model/mlp';
import { gptSplitPlan } from '../src/model/tensor-gpt';
import { mlpSplitPlan } from '../src/model/tensor-mlp';
import { gatherShards } from '../src/model/tensor-split';
import { errorAfterLosingRank1, expectModelParallelRoom, mlpInitialParams, relativeError, trainInNewContext } from './training';

// A small MLP on spirals: one column/row pair of width 16 and a replicated output layer; a few steps.
const SIZES = [2, 16, 16, 3];
const RUN = { model: 'mlp', dataset: 'spirals', hidden: SIZES.slice(1, -1).join(','), steps: 4, batch: 16, seed: 3, accum: 2 };
const START = mlpInitialParams(SIZES, RUN.seed);
// Relative to the distance trained, as the data-parallel spec; measured here 2.5e-7 (tensor=2), 4.8e-7
// (TP2 x DP2), 4.3e-6 (the GPT); the unit tests measure 2e-7 to 2e-6 on the CPU backend (src/lab/tensor-run.test.ts).
const TOLERANCE = 1e-5;

const ROOMS = [
  { name: 'tensor=2', tabs: 2, tensor: 2 },
  { name: 'TP2 x DP2', tabs: 4, tensor: 2 },
] as const;

test(`tensor-parallel rooms end where one tab ends within ${TOLERANCE.toExponential()} of the distance trained; shards' replicas and replicated layers hash-equal`, async ({ browser }) => {
  test.setTimeout(600_000);
  const [reference] = await trainInNewContext(browser, 1, RUN);
  const layout = mlpLayout({ sizes: SIZES });
  const plan = mlpSplitPlan({ sizes: SIZES });
  for (const room of ROOMS) {
    const results = await trainInNewContext(browser, room.tabs, { ...RUN, tensor: room.tensor, dashboard: 0 });
    const groups = room.tabs / room.tensor;
    expectModelParallelRoom<TensorFigures>(results, { steps: RUN.steps, groupSize: room.tensor, part: 'shard', placeOf: (f) => [f.tensorRank, f.group] });
    for (let d = 0; d < groups; d++) {
      const shards = results.slice(d * room.tensor, (d + 1) * room.tensor).map((r) => Float32Array.from(r.params));
      const gathered = gatherShards(layout, plan, shards);
      expect(gathered.replicasEqual, `group ${d}'s replicated layer`).toBe(true);
      const error = relativeError(gathered.values, reference.params, START);
      console.log(`${room.name}, group ${d}: relative error ${error.toExponential(2)} of the distance trained`);
      expect(error).toBeLessThan(TOLERANCE);
    }
  }
});

test(`the GPT on 2 tensor-parallel tabs ends where one tab ends within ${TOLERANCE.toExponential()} of the distance trained`, async ({ browser }) => {
  test.setTimeout(600_000);
  const gpt = { model: 'gpt', dataset: 'sotu', steps: 3, batch: 4, seed: 3 };
  const [reference] = await trainInNewContext(browser, 1, gpt);
  const results = await trainInNewContext(browser, 2, { ...gpt, tensor: 2, dashboard: 0 });
  const figures = results[0].metrics.partition as TensorFigures;
  if (figures.model.kind !== 'gpt') throw new Error('the room did not report a GPT');
  const layout = gptLayout(figures.model.config);
  const gathered = gatherShards(layout, gptSplitPlan(figures.model.config), results.map((r) => Float32Array.from(r.params)));
  expect(gathered.replicasEqual, 'the replicated embeddings, norms and head').toBe(true);
  for (const r of results) expect((r.metrics.partition as TensorFigures).wireBytesPerStep).toBe(figures.wireFormulaBytesPerStep);
  const error = relativeError(gathered.values, reference.params, initialParams(layout, gpt.seed));
  console.log(`GPT tensor=2: relative error ${error.toExponential(2)} of the distance trained`);
  expect(error).toBeLessThan(TOLERANCE);
});

test('a tensor tab that vanishes stops the room with a message naming its shard', async ({ browser }) => {
  test.setTimeout(240_000);
  const error = await errorAfterLosingRank1(browser, 2, { ...RUN, tensor: 2 });
  expect(error).toMatch(/the tab holding tensor shard 1 of 2 \(rank 1\) left the room .* resume=1 restarts every tab from its part's last autosave/);
});
