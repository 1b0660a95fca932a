// Node-only: measures the communication-efficient strategies on MNIST with N simulated ranks in this one
// process (a CPU backend each, the in-memory ring; not browser tabs, so no wall-clock figures): dense
// data parallelism (the lab's bucketed ring), PowerSGD rank 1/2/4 and DiLoCo H=10/50, each at the same
// samples (same global batch and steps), printing held-out accuracy of rank 0's replica and the bytes
// each rank sent per step, with the reduction against dense.
//
//   npm run prepare-data && npx tsx scripts/comm-sim.ts [--steps 300] [--world 4] [--only dense,powersgd2,diloco50] [--seed 1]
//                                                   [--min-rate 1] [--dense-steps 0]
//
// The recipe is the lab's MNIST default (src/train/defaults.ts: 784-256-10, AdamW, global batch 128);
// DiLoCo's inner optimizer is that AdamW, its outer one Nesterov (lr 0.7, momentum 0.9). --steps must be
// a multiple of 50 so that every DiLoCo run ends on an outer step (its replicas then agree). The default
// 300 steps (the recipe's schedule compressed to them) keep the six rows near ten minutes on two busy
// cores; --steps 1000 is the lab's full recipe (about three times as long).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { MNIST_FILE, parseMnist } from '../src/data/mnist';
import { denseStrategy, dilocoStrategy, powerSgdStrategy, trainCommRoom, type Strategy } from '../src/parallel/comm-room';
import { defaults, type ClassifierRecipe } from '../src/train/defaults';
import { FastCpuBackend } from './fast-cpu-backend';
import { integer, option } from './cli-options';


const steps = integer('steps', 300, 50);
if (steps % 50 !== 0) throw new RangeError(`--steps must be a multiple of 50 (DiLoCo H=50 must end on an outer step), got ${steps}`);
const world = integer('world', 4, 2);
const seed = integer('seed', defaults.mnist.seed, 0);
const recipe: ClassifierRecipe = { ...defaults.mnist, steps, seed };
// PowerSGD's plan and warm-up (PowerSgdSync): --min-rate keeps matrices that gain less dense,
// --dense-steps all-reduces the whole gradient for that many first steps (their bytes count).
const minCompressionRate = Number(option('min-rate', '1'));
const denseSteps = integer('dense-steps', 0, 0);
const powerSgd = (rank: number) => powerSgdStrategy({ rank, seed, minCompressionRate, denseSteps });

const STRATEGIES: Record<string, Strategy> = {
  dense: denseStrategy(recipe),
  powersgd1: powerSgd(1),
  powersgd2: powerSgd(2),
  powersgd4: powerSgd(4),
  diloco10: dilocoStrategy({ innerSteps: 10 }),
  diloco50: dilocoStrategy({ innerSteps: 50 }),
};
const only = option('only', Object.keys(STRATEGIES).join(',')).split(',');
for (const name of only) if (!(name in STRATEGIES)) throw new RangeError(`--only: unknown strategy ${name}; known: ${Object.keys(STRATEGIES).join(', ')}`);

const data = parseMnist(new Uint8Array(readFileSync(join(process.cwd(), 'public', 'data', MNIST_FILE))));
console.log(
  `comm-sim: MNIST ${data.train.count} train / ${data.test.count} held-out, ${world} simulated ranks in one process (not tabs), ` +
    `${steps} steps of global batch ${recipe.globalBatch} (same samples for every row), seed ${seed}, ` +
    `PowerSGD min compression rate ${minCompressionRate}, ${denseSteps} dense warm-up steps\n`,
);
const rows: string[][] = [['strategy', 'held-out acc', 'vs dense', 'bytes/step/rank', 'reduction', 'sim time']];
let denseAccuracy: number | undefined;
let denseBytes: number | undefined;
for (const name of only) {
  const t0 = performance.now();
  const room = await trainCommRoom({ world, data, recipe, strategy: STRATEGIES[name], makeBackend: () => new FastCpuBackend() });
  const hashes = new Set((await room.params()).map((p) => p.join()));
  if (hashes.size !== 1) throw new Error(`${name}: the replicas differ at the end`);
  const { accuracy } = await room.evaluate();
  const perStep = room.ranks[0].bytesSent / steps;
  if (name === 'dense') [denseAccuracy, denseBytes] = [accuracy, perStep];
  rows.push([
    name,
    `${(accuracy * 100).toFixed(2)}%`,
    denseAccuracy === undefined ? '' : `${((accuracy - denseAccuracy) * 100).toFixed(2)} pt`,
    perStep.toFixed(0),
    denseBytes === undefined ? '' : `${(denseBytes / perStep).toFixed(1)}x`,
    `${((performance.now() - t0) / 1000).toFixed(0)} s`,
  ]);
  console.log(rows[rows.length - 1].join('  '));
}
const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
console.log('\n' + rows.map((r) => r.map((cell, c) => cell.padEnd(widths[c])).join('  ')).join('\n'));
