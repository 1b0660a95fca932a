// Node-only: trains the default MNIST recipe on the CPU reference backend and prints held-out
// accuracy, to measure the defaults in src/train/defaults.ts. Overrides: --steps N --lr X --hidden N
// --batch N --shift N --seed N. --norms also prints the largest global gradient norm so far (what a
// clipNorm would be compared with).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseMnist, MNIST_FILE } from '../src/data/mnist';
import { FastCpuBackend } from './fast-cpu-backend';
import { defaults, type ClassifierRecipe } from '../src/train/defaults';
import { classifierRun } from '../src/train/recipes';
import { viewOf } from '../src/engine/backend';

function arg(name: string): number | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : undefined;
}

const base = defaults.mnist;
const hidden = arg('hidden');
const recipe: ClassifierRecipe = {
  ...base,
  steps: arg('steps') ?? base.steps,
  globalBatch: arg('batch') ?? base.globalBatch,
  maxShift: arg('shift') ?? base.maxShift,
  seed: arg('seed') ?? base.seed,
  model: hidden ? { sizes: [784, hidden, 10] } : base.model,
  optimizer: { ...base.optimizer, lr: arg('lr') ?? base.optimizer.lr },
};
const data = parseMnist(new Uint8Array(readFileSync(join(process.cwd(), 'public', 'data', MNIST_FILE))));
const backend = new FastCpuBackend();
const run = classifierRun(backend, data, recipe);
console.log(`MNIST ${data.train.count} train / ${data.test.count} test; recipe ${JSON.stringify({ ...recipe, optimizer: recipe.optimizer })}`);
const t0 = performance.now();
const showNorms = process.argv.includes('--norms');
const sumSq = backend.alloc(64, 'norms.sumSq', 'workspace');
let largestNorm = 0;
for (let s = 1; s <= recipe.steps; s++) {
  await run.trainer.trainStep();
  if (showNorms) {
    // The step's gradient (clipped, if the recipe clips) is still in the buffer after the update.
    backend.sumSquares(viewOf(sumSq, 0, 1), viewOf(run.model.grads));
    const [squares] = await backend.read(viewOf(sumSq, 0, 1));
    largestNorm = Math.max(largestNorm, Math.sqrt(squares));
  }
  if (s % recipe.evalEvery === 0 || s === recipe.steps) {
    const loss = await run.trainer.lastLoss();
    const ev = await run.trainer.evaluate(run.evalBatches);
    console.log(
      `step ${s} train loss ${loss.toFixed(4)} test loss ${ev.loss.toFixed(4)} test acc ${((ev.accuracy ?? 0) * 100).toFixed(2)}% ` +
        `(${((performance.now() - t0) / 1000).toFixed(1)} s)` +
        (showNorms ? `; largest gradient norm so far ${largestNorm.toFixed(3)}` : ''),
    );
  }
}
