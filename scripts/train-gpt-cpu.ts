// Node-only: trains the default SOTU character-model recipe on the CPU reference backend (with the fast
// matmul) and prints validation loss against the bigram baseline, in nats/char, to measure the defaults
// in src/train/defaults.ts. Overrides: --steps N --lr X --batch N --embd N --layers N --block N.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { bigramNll, fitBigram } from '../src/data/bigram';
import { decodeTokens, encodeText, SOTU_TRAIN_FILE, SOTU_VAL_FILE, textDataFromSplits } from '../src/data/text';
import { defaults, type CharLmRecipe } from '../src/train/defaults';
import { charLmRun } from '../src/train/recipes';
import { FastCpuBackend } from './fast-cpu-backend';

function arg(name: string): number | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : undefined;
}

const base = defaults.sotu;
const recipe: CharLmRecipe = {
  ...base,
  steps: arg('steps') ?? base.steps,
  globalBatch: arg('batch') ?? base.globalBatch,
  model: {
    ...base.model,
    nEmbd: arg('embd') ?? base.model.nEmbd,
    nLayer: arg('layers') ?? base.model.nLayer,
    blockSize: arg('block') ?? base.model.blockSize,
  },
  optimizer: { ...base.optimizer, lr: arg('lr') ?? base.optimizer.lr },
};
const dir = join(process.cwd(), 'public', 'data');
const data = textDataFromSplits('sotu', readFileSync(join(dir, SOTU_TRAIN_FILE), 'utf8'), readFileSync(join(dir, SOTU_VAL_FILE), 'utf8'));
const bigram = bigramNll(fitBigram(data.train, data.vocab.length), data.val);
const backend = new FastCpuBackend();
const run = charLmRun(backend, data, recipe);
console.log(`SOTU ${data.train.length} train / ${data.val.length} val chars, vocab ${data.vocab.length}; bigram val ${bigram.toFixed(4)} nats/char`);
console.log(`recipe ${JSON.stringify(recipe)}; ${run.model.layout.paramCount} parameters`);
const t0 = performance.now();
for (let s = 1; s <= recipe.steps; s++) {
  await run.trainer.trainStep();
  if (s % recipe.evalEvery === 0 || s === recipe.steps) {
    const loss = await run.trainer.lastLoss();
    const ev = await run.trainer.evaluate(run.evalBatches);
    console.log(`step ${s} train ${loss.toFixed(4)} val ${ev.loss.toFixed(4)} nats/char (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
  }
}
const sample = await run.model.sample(encodeText('The ', data.vocab), recipe.sampleLength, { temperature: recipe.temperature, seed: 1 });
console.log(`sample: The ${decodeTokens(sample, data.vocab)}`);
