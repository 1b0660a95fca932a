// Node-only: trains the mixture-of-experts GPT and the dense GPT of the same active parameter count on
// the built-in SOTU text, same recipe (src/train/defaults.ts's sotu: AdamW, warmup, cosine, clipping),
// same seed, same batches, same steps, on the WebAssembly SIMD CPU backend, and prints both
// validation losses (cross-entropy only, in nats/char: the MoE model's reported loss also holds its
// load-balancing loss, which is subtracted here) with the routing's dropped fraction and aux loss.
// The dense MLP is C -> 4C -> C; each expert is C -> 4C/topk -> C, so a token's active MLP parameters
// are the dense block's (plus the router's C x E).
// Options: --steps N --experts E --topk 1|2 --capacity X --aux X --batch N --embd N --layers N --block N
//          --eval-every N --windows N --only dense|moe (one of the two; the runs are deterministic).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Backend } from '../src/engine/backend';
import { SOTU_TRAIN_FILE, SOTU_VAL_FILE, textDataFromSplits } from '../src/data/text';
import type { Gpt } from '../src/model/gpt';
import type { Batch } from '../src/model/model';
import { defaults, type CharLmRecipe } from '../src/train/defaults';
import { WasmCpuBackend } from '../src/engine/wasm-backend';
import { charLmRun } from '../src/train/recipes';
import { integer, option } from './cli-options';

const base = defaults.sotu;
const steps = integer('steps', 400, 1);
const experts = integer('experts', 4, 2);
const topk = integer('topk', 1, 1);
if (topk !== 1 && topk !== 2) throw new RangeError(`--topk must be 1 or 2, got ${topk}`);
const capacityFactor = Number(option('capacity', '1.25'));
const auxWeight = Number(option('aux', '0.01'));
const evalEvery = integer('eval-every', 100, 1);
const model = {
  ...base.model,
  nEmbd: integer('embd', base.model.nEmbd, 1),
  nLayer: integer('layers', base.model.nLayer, 1),
  blockSize: integer('block', base.model.blockSize, 1),
};
const recipe: CharLmRecipe = { ...base, steps, globalBatch: integer('batch', base.globalBatch, 1), evalWindows: integer('windows', base.evalWindows, 1), model };
const moeRecipe: CharLmRecipe = {
  ...recipe,
  model: { ...model, moe: { experts, topk, capacityFactor, auxWeight, hidden: (4 * model.nEmbd) / topk } },
};

const dir = join(process.cwd(), 'public', 'data');
const data = textDataFromSplits('sotu', readFileSync(join(dir, SOTU_TRAIN_FILE), 'utf8'), readFileSync(join(dir, SOTU_VAL_FILE), 'utf8'));

/** Mean validation cross-entropy (the aux losses taken out of every row) and the last routing's stats. */
async function validation(backend: Backend, gpt: Gpt, batches: Batch[]) {
  let sum = 0;
  let rows = 0;
  let dropped = 0;
  let assignments = 0;
  let aux = 0;
  for (const batch of batches) {
    const r = gpt.forward(batch, 0);
    const losses = await backend.read(r.losses);
    const stats = await gpt.moeStats();
    const auxTotal = stats.reduce((a, s) => a + s.aux, 0);
    for (let i = 0; i < r.lossRows; i++) sum += losses[i] - auxTotal;
    rows += r.lossRows;
    for (const s of stats) {
      dropped += s.dropped;
      assignments += s.dropped + s.tokensPerExpert.reduce((a, c) => a + c, 0);
    }
    aux += auxTotal;
  }
  return { loss: sum / rows, dropped: assignments > 0 ? dropped / assignments : 0, aux: aux / batches.length };
}

/** Parameters one token passes through: everything but the experts it is not routed to. */
function activeParams(gpt: Gpt): number {
  const perExpert = gpt.layout.entries.filter((e) => /^h0\.e0\./.test(e.name)).reduce((a, e) => a + e.length, 0);
  const inactive = gpt.config.moe ? gpt.config.nLayer * (gpt.config.moe.experts - gpt.config.moe.topk) * perExpert : 0;
  return gpt.layout.paramCount - inactive;
}

async function train(name: string, r: CharLmRecipe) {
  const backend = await WasmCpuBackend.create(readFileSync(join(process.cwd(), 'src', 'engine', 'generated', 'kernels.wasm')));
  const run = charLmRun(backend, data, r);
  const t0 = performance.now();
  console.log(`${name}: ${run.model.layout.paramCount} parameters, ${activeParams(run.model)} active per token`);
  let last = { loss: NaN, dropped: 0, aux: 0 };
  for (let s = 1; s <= r.steps; s++) {
    await run.trainer.trainStep();
    if (s % evalEvery === 0 || s === r.steps) {
      last = await validation(backend, run.model, run.evalBatches);
      const routing = run.model.config.moe ? `, dropped ${(100 * last.dropped).toFixed(1)}%, aux ${last.aux.toFixed(4)}` : '';
      console.log(`  step ${s} val ${last.loss.toFixed(4)} nats/char${routing} (${((performance.now() - t0) / 1000).toFixed(0)} s)`);
    }
  }
  return { ...last, params: run.model.layout.paramCount, active: activeParams(run.model) };
}

console.log(`SOTU ${data.train.length} train / ${data.val.length} val chars; ${steps} steps, batch ${recipe.globalBatch}, ${JSON.stringify(model)}`);
const only = option('only', 'both');
if (!['both', 'dense', 'moe'].includes(only)) throw new RangeError(`--only must be dense or moe, got ${only}`);
const dense = only === 'moe' ? undefined : await train('dense', recipe);
const moe = only === 'dense' ? undefined : await train(`moe E=${experts} top-${topk} capacity ${capacityFactor}`, moeRecipe);
console.log('\n| model | parameters | active | val loss (nats/char) |');
console.log('| --- | --- | --- | --- |');
if (dense) console.log(`| dense | ${dense.params} | ${dense.active} | ${dense.loss.toFixed(4)} |`);
if (moe) console.log(`| MoE E=${experts} top-${topk} cf ${capacityFactor} | ${moe.params} | ${moe.active} | ${moe.loss.toFixed(4)} |`);
if (dense && moe) {
  const gap = moe.loss - dense.loss;
  console.log(`MoE ${gap < 0 ? 'below' : 'above'} dense by ${Math.abs(gap).toFixed(4)} nats/char (${((100 * gap) / dense.loss).toFixed(2)}%)`);
}
