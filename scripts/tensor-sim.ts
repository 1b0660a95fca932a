// Prints the tensor-parallel figures: the parity of T ranks (in this process, a CPU backend each, the
// in-memory transport) with one tab on the same batches, for T = 2 and 4 and TP2 x DP2, with SGD and
// AdamW, on the tiny MLP and GPT of the unit tests; the bytes each rank sends per step beside the
// formula (GPT: 2 all-reduces of B·S·C floats per block per pass, a ring sending 2(T-1)/T of each);
// parameter and AdamW bytes per rank (real allocations) beside replicated + split/T for the MNIST MLP
// and a GPT of width 64; expert parallelism (E = 4 experts on N = 2 and 4 ranks, top-1 and top-2): parity
// with one rank holding every expert, dropped tokens, the tokens each rank sent each expert, the
// load-balancing loss, and the bytes of the four all-to-alls beside the volume the router's real
// assignment implies; and, with --lesson R, the two-layer textbook example op by op on R ranks.
//
//   npx tsx scripts/tensor-sim.ts [--steps 3] [--rows 8] [--lesson 2]
import { CpuBackend } from '../src/engine/cpu-backend';
import type { StageModelSpec } from '../src/model/pipeline-stage';
import { TensorGpt } from '../src/model/tensor-gpt';
import type { TensorParallelModel } from '../src/model/tensor-model';
import { TensorMlp } from '../src/model/tensor-mlp';
import { shardParamCount } from '../src/model/tensor-split';
import { ADAMW, maxRelativeDifference, SGD, trainOneTab } from '../src/parallel/pipeline-test-support';
import { formatLesson, twoLayerLesson } from '../src/parallel/tensor-lesson';
import { TP_GPT, TP_MLP, trainTensor } from '../src/parallel/tensor-test-support';
import { Optimizer } from '../src/train/optimizer';

function integer(name: string, fallback: number, min: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const raw = i >= 0 ? process.argv[i + 1] : String(fallback);
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min) throw new RangeError(`--${name} must be an integer >= ${min}, got ${raw}`);
  return value;
}

const steps = integer('steps', 3, 1);
const rows = integer('rows', 8, 1);
const lessonRanks = integer('lesson', 0, 0);
if (rows % 2 !== 0) throw new RangeError('--rows must be even (TP2 x DP2 halves the batch)');

const models: [string, StageModelSpec][] = [['mlp', TP_MLP], ['gpt', TP_GPT]];
const optimizers = [['sgd', SGD], ['adamw', ADAMW]] as const;

console.log(`## Parity: max |param - one tab| / max |param|, ${steps} steps, batch ${rows}`);
console.log('| model | optimizer | T=2 | T=4 | TP2 x DP2 | replicated tensors equal | shard replicas equal | parameters moved |');
console.log('| --- | --- | --- | --- | --- | --- | --- | --- |');
for (const [name, spec] of models) {
  for (const [optName, opt] of optimizers) {
    const one = await trainOneTab(spec, opt, rows, 1, steps);
    const start = await trainOneTab(spec, opt, rows, 1, 0);
    const runs = [await trainTensor(spec, opt, 2, rows, 1, { steps }), await trainTensor(spec, opt, 4, rows, 1, { steps }), await trainTensor(spec, opt, 2, rows, 1, { steps, replicas: 2 })];
    const diffs = runs.map((r) => maxRelativeDifference(r.params, one).toExponential(2));
    const replicated = runs.every((r) => r.replicatedEqual);
    const shards = runs[2].replicaHashes.every((h) => new Set(h).size === 1);
    console.log(`| ${name} | ${optName} | ${diffs.join(' | ')} | ${replicated} | ${shards} | ${maxRelativeDifference(start, one).toExponential(2)} |`);
  }
}

console.log('\n## Bytes sent per rank per step (tensor collectives)');
console.log('| model | T | collectives fwd/bwd | bytes sent | formula | DP bytes (TP2 x DP2) |');
console.log('| --- | --- | --- | --- | --- | --- |');
for (const [name, spec] of models) {
  for (const T of [2, 4]) {
    const run = await trainTensor(spec, SGD, T, rows, 1, { steps: 1 });
    const events = run.collectives[0];
    const sent = events.reduce((s, e) => s + e.bytesSent, 0);
    // Every collective is a ring all-reduce: 2(T-1)/T of its floats leave each rank.
    const formula = events.reduce((s, e) => s + ((2 * (T - 1)) / T) * e.elements * 4, 0);
    const gptFormula = spec.kind === 'gpt' ? ` = 4·L·2(T-1)/T·B·S·C·4 = ${4 * spec.config.nLayer * ((2 * (T - 1)) / T) * rows * spec.config.blockSize * spec.config.nEmbd * 4}` : '';
    const dp = T === 2 ? (await trainTensor(spec, SGD, 2, rows, 1, { steps: 1, replicas: 2 })).dataParallelBytes[0] : '';
    console.log(`| ${name} | ${T} | ${events.filter((e) => e.pass === 'forward').length}/${events.filter((e) => e.pass === 'backward').length} | ${sent} | ${formula}${gptFormula} | ${dp} |`);
  }
}

console.log('\n## Parameter and AdamW bytes per rank (real allocations) vs replicated + split/T');
console.log('| model | T | parameter bytes | formula | AdamW bytes | formula | off by |');
console.log('| --- | --- | --- | --- | --- | --- | --- |');
const sized: [string, (backend: CpuBackend, rank: number, T: number) => TensorParallelModel][] = [
  ['mlp [784, 128, 10]', (b, rank, T) => new TensorMlp(b, { sizes: [784, 128, 10] }, 1, { rank, ranks: T })],
  ['gpt V=65 S=32 L=2 NH=4 C=64', (b, rank, T) => new TensorGpt(b, { vocabSize: 65, blockSize: 32, nLayer: 2, nHead: 4, nEmbd: 64 }, 1, { rank, ranks: T })],
];
for (const [name, build] of sized) {
  for (const T of [1, 2, 4]) {
    const backend = new CpuBackend();
    const model = build(backend, 0, T);
    const opt = new Optimizer(backend, model.layout, ADAMW);
    const { params, optimizer } = backend.memory();
    const perRank = shardParamCount(model.wholeLayout, model.plan, T).perRank;
    const off = Math.max(Math.abs(params / (4 * perRank) - 1), Math.abs(optimizer / (8 * perRank) - 1));
    console.log(`| ${name} | ${T} | ${params} | ${4 * perRank} | ${optimizer} | ${8 * perRank} | ${(100 * off).toFixed(2)}% |`);
    opt.dispose();
    model.dispose();
  }
}

if (lessonRanks > 0) {
  console.log(`\n## The two-layer example on ${lessonRanks} ranks`);
  console.log(formatLesson(twoLayerLesson({ batch: 2, input: 3, hidden: 4, output: 2, ranks: lessonRanks })));
}

console.log('\n## Expert parallelism: E = 4 experts (width 4, hidden 6), 8 tokens per rank, capacity factor 1.25');
console.log('| N | top-k | parity vs one rank (y, dx, expert grads) | router grad rel. diff | dropped | tokens kept [rank][expert] | aux loss | bytes sent per rank: dispatch / return / grad dispatch / grad return | rows·C·4 + header·4 + count all-gather (N-1)·N·4 |');
console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- |');
{
  const { createMemoryMesh } = await import('../src/collective/memory-transport');
  const { Rng } = await import('../src/data/random');
  const { expertParallelStep } = await import('../src/parallel/moe-expert-parallel');
  const { initMoeParams, moeReference } = await import('../src/parallel/moe-layer');
  const tokens = (n: number, seed: number) => {
    const rng = new Rng(seed);
    return Float32Array.from({ length: n * 4 }, () => rng.normal());
  };
  for (const N of [2, 4]) {
    for (const topK of [1, 2] as const) {
      const c = { width: 4, hidden: 6, experts: 4, topK, capacityFactor: 1.25, auxWeight: 0.01 };
      const params = initMoeParams(c, 7);
      const xs = Array.from({ length: N }, (_, g) => tokens(8, 10 + g));
      const dys = Array.from({ length: N }, (_, g) => tokens(8, 20 + g));
      const reference = moeReference(c, params, xs, dys);
      const El = c.experts / N;
      const steps = await Promise.all(createMemoryMesh(N).map((t) => expertParallelStep(c, t, params.router, params.experts.slice(t.rank * El, (t.rank + 1) * El), xs[t.rank], dys[t.rank], { round: 0, collective: 0 })));
      const same = (a: Float32Array, b: Float32Array) => a.length === b.length && a.every((v, i) => Object.is(v, b[i]));
      const exact = steps.every((s, g) => same(s.y, reference.y[g]) && same(s.dx, reference.dx[g]) && s.expertGrads.every((e, k) => (['w1', 'b1', 'w2', 'b2'] as const).every((key) => same(e[key], reference.grads.experts[g * El + k][key]))));
      const router = new Float32Array(params.router.length);
      for (const s of steps) s.routerGrad.forEach((v, i) => (router[i] += v));
      const routerDiff = maxRelativeDifference(router, reference.grads.router);
      const s0 = steps[0];
      const formula = s0.dispatchedElements * 4 + (N - 1) * El * 4 + (N - 1) * N * 4;
      console.log(`| ${N} | ${topK} | ${exact ? 'bitwise' : 'DIFFERS'} | ${routerDiff.toExponential(2)} | ${reference.dropped} | ${JSON.stringify(reference.tokens)} | ${reference.auxLoss.toFixed(5)} | ${s0.bytesSent.join(' / ')} | ${formula} / - / ${s0.dispatchedElements * 4} / - |`);
    }
  }
}
