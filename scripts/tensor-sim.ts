// Prints the tensor-parallel figures: the parity of T ranks (in this process, a CPU backend each, the
// in-memory transport) with one tab on the same batches, for T = 2 and 4 and TP2 x DP2, with SGD and
// AdamW, on the tiny MLP and GPT of the unit tests; the bytes each rank sends per step beside the
// formula (GPT: 2 all-reduces of B·S·C floats per block per pass, a ring sending 2(T-1)/T of each);
// parameter and AdamW bytes per rank (real allocations) beside replicated + split/T for the MNIST MLP
// and a GPT of width 64; expert parallelism (E = 4 experts on N = 2 and 4 ranks, top-1 and top-2): parity
// with one rank holding every expert, dropped tokens, the tokens each rank sent each expert, the
// load-balancing loss, and the bytes of the four all-to-alls beside the volume the router's real
// assignment implies; expert-parallel training (E = 4 on 2 and 4 ranks, EP2 x DP2, DP4) against one
// rank holding every expert, with the bytes of the router's and the expert replicas' all-reduces and the
// parameter bytes per rank beside their formulas; the MoE GPT on Backend ops (one step's routing and
// its parameter bytes vs formula); and, with --lesson R, the two-layer textbook example op by op on R ranks.
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

console.log('\n## Expert-parallel training: E = 4 (width 4, hidden 6), top-2, SGD, 5 steps, 8 tokens per rank, vs one rank holding all experts');
console.log('| room | parity (max rel. diff) | router hash equal | expert replicas equal | losses = one rank (1e-6) | all-to-all bytes (rank 0, step 1) | router all-reduce bytes | formula 2(W-1)/W·C·E·4 | expert replica bytes | formula 2(D-1)/D·(E/N)·P_e·4 | parameter bytes per rank | formula (C·E + (E/N)·P_e)·4 |');
console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
{
  const { flattenMoe, trainExpertParallel, trainMoeReference } = await import('../src/parallel/moe-test-support');
  const config = { width: 4, hidden: 6, experts: 4, topK: 2 as const, capacityFactor: 1.25, auxWeight: 0.01 };
  const perExpert = 2 * config.width * config.hidden + config.hidden + config.width;
  const routerSize = config.width * config.experts;
  for (const [W, N] of [[2, 2], [4, 4], [4, 2], [4, 1]] as const) {
    const c = { config, seed: 9, steps: 5, world: W, tokensPerRank: 8, lr: 0.1 };
    const reference = trainMoeReference(c);
    const run = await trainExpertParallel(c, N);
    const D = W / N;
    const diff = maxRelativeDifference(flattenMoe(run.params), flattenMoe(reference.params));
    const routerEqual = new Set(run.hashes.map((h) => h.router)).size === 1;
    const replicasEqual = Array.from({ length: N }, (_, r) => new Set(run.hashes.filter((h) => h.expertRank === r).map((h) => h.experts)).size === 1).every(Boolean);
    const r0 = run.reports[0];
    const name = D === 1 ? `EP${N}` : N === 1 ? `DP${D}` : `EP${N} x DP${D}`;
    const paramBytes = 4 * (run.params.router.length + (config.experts / N) * perExpert);
    console.log(
      `| ${name} | ${diff.toExponential(2)} | ${routerEqual} | ${replicasEqual} | ${run.losses.every((l, i) => Math.abs(l - reference.losses[i]) <= 1e-6)} | ${r0.bytes.allToAll.join(' / ')} | ` +
        `${r0.bytes.router} | ${(2 * (W - 1) * routerSize * 4) / W} | ${r0.bytes.expertReplicas} | ${(2 * (D - 1) * (config.experts / N) * perExpert * 4) / D} | ` +
        `${paramBytes} | ${4 * (routerSize + (config.experts / N) * perExpert)} |`,
    );
  }
}

console.log('\n## The MoE GPT on Backend ops (CPU reference): V 7, S 5, L 2, NH 4, C 8, E = 4, expert hidden 32, batch 8, one forward');
console.log('| top-k | capacity factor | tokens kept per expert [block][expert] | dropped [block] | aux loss [block] |');
console.log('| --- | --- | --- | --- | --- |');
{
  const { Gpt, gptLayout } = await import('../src/model/gpt');
  const { Rng } = await import('../src/data/random');
  const dense = { vocabSize: 7, blockSize: 5, nLayer: 2, nHead: 4, nEmbd: 8 };
  const rng = new Rng(3);
  const batch = { inputs: Uint32Array.from({ length: 40 }, () => rng.int(7)), targets: Uint32Array.from({ length: 40 }, () => rng.int(7)), rows: 8 };
  for (const [topk, capacityFactor] of [[1, 1.25], [2, 1.25], [1, 0.5]] as const) {
    const backend = new CpuBackend();
    const gpt = new Gpt(backend, { ...dense, moe: { experts: 4, topk, capacityFactor } }, 8);
    gpt.init(1);
    gpt.forward(batch, 0);
    const stats = await gpt.moeStats();
    console.log(`| ${topk} | ${capacityFactor} | ${JSON.stringify(stats.map((s) => s.tokensPerExpert))} | ${JSON.stringify(stats.map((s) => s.dropped))} | ${stats.map((s) => s.aux.toFixed(5)).join(', ')} |`);
  }
  // Bytes on a GPT of width 64, where the layout's 64-float alignment padding is small.
  const wide = { vocabSize: 65, blockSize: 32, nLayer: 2, nHead: 4, nEmbd: 64 };
  const Cw = wide.nEmbd;
  console.log('\n| GPT V=65 S=32 L=2 NH=4 C=64 (real allocations) | parameter bytes | formula | AdamW bytes | formula | off by |');
  console.log('| --- | --- | --- | --- | --- | --- |');
  for (const [name, moe, extra] of [
    ['dense', undefined, 0],
    ['E=4 experts of 4C', { experts: 4, topk: 1 as const, capacityFactor: 1.25 }, wide.nLayer * (Cw * 4 + 3 * (8 * Cw * Cw + 5 * Cw))],
    ['E=8 experts of 2C', { experts: 8, topk: 2 as const, capacityFactor: 1.25, hidden: 2 * Cw }, wide.nLayer * (Cw * 8 + 8 * (4 * Cw * Cw + 3 * Cw) - (8 * Cw * Cw + 5 * Cw))],
  ] as const) {
    const backend = new CpuBackend();
    const model = new Gpt(backend, { ...wide, moe }, 1);
    const opt = new Optimizer(backend, model.layout, ADAMW);
    const { params, optimizer } = backend.memory();
    const formula = gptLayout(wide).paramCount + extra;
    const off = Math.max(Math.abs(params / (4 * formula) - 1), Math.abs(optimizer / (8 * formula) - 1));
    console.log(`| ${name} | ${params} | ${4 * formula} | ${optimizer} | ${8 * formula} | ${(100 * off).toFixed(2)}% |`);
    opt.dispose();
    model.dispose();
  }
}
