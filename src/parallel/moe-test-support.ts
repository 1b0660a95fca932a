// An MoE layer trained with SGD on seeded random tokens, by one rank holding every expert (the
// reference) and by an EP x DP room of simulated ranks over the in-memory transport: for the unit tests
// and scripts/tensor-sim.ts, never for the product.
import { createMemoryMesh } from '../collective/memory-transport';
import { Rng } from '../data/random';
import { initMoeParams, type MoeConfig, type MoeParams, moeForward } from './moe-layer';
import { ExpertParallelTrainer, type ExpertParallelStepReport } from './moe-trainer';

export interface MoeTrainingCase {
  config: MoeConfig;
  seed: number;
  steps: number;
  /** Ranks in the room; each routes its own tokens (one capacity group per rank). */
  world: number;
  tokensPerRank: number;
  lr: number;
}

/** Rank `rank`'s tokens and targets at `step` (a new batch every step). */
export function moeBatch(c: MoeTrainingCase, step: number, rank: number): { x: Float32Array; target: Float32Array } {
  const rng = new Rng(1000 * step + rank + 77);
  const n = c.tokensPerRank * c.config.width;
  return { x: Float32Array.from({ length: n }, () => rng.normal()), target: Float32Array.from({ length: n }, () => rng.normal()) };
}

/** The router then every expert's w1, b1, w2, b2, in expert order. */
export function flattenMoe(p: MoeParams): Float32Array {
  return Float32Array.from([...p.router, ...p.experts.flatMap((e) => [...e.w1, ...e.b1, ...e.w2, ...e.b2])]);
}

/** One rank holding every expert, the room's groups routed as the room routes them. */
export function trainMoeReference(c: MoeTrainingCase): { params: MoeParams; losses: number[] } {
  const p = initMoeParams(c.config, c.seed);
  const total = c.world * c.tokensPerRank;
  const losses: number[] = [];
  for (let step = 0; step < c.steps; step++) {
    const batches = Array.from({ length: c.world }, (_, r) => moeBatch(c, step, r));
    const forward = moeForward(c.config, p, batches.map((b) => b.x));
    let loss = 0;
    const dys = forward.y.map((y, g) =>
      y.map((v, i) => {
        const d = v - batches[g].target[i];
        loss += (0.5 * d * d) / total;
        return d / total;
      }),
    );
    losses.push(loss);
    const { grads } = forward.backward(dys);
    p.router.forEach((_, i) => (p.router[i] -= c.lr * grads.router[i]));
    p.experts.forEach((e, k) => {
      for (const key of ['w1', 'b1', 'w2', 'b2'] as const) e[key].forEach((_, i) => (e[key][i] -= c.lr * grads.experts[k][key][i]));
    });
  }
  return { params: p, losses };
}

export interface ExpertParallelRun {
  /** The first expert-parallel group's experts with rank 0's router, in the reference's layout. */
  params: MoeParams;
  losses: number[];
  /** Per rank: router hash, experts hash, expert rank. */
  hashes: { router: string; experts: string; expertRank: number }[];
  /** Per step, rank 0's report. */
  reports: ExpertParallelStepReport[];
}

/** W ranks in expert-parallel groups of `expertRanks` (EP x DP when W > expertRanks). */
export async function trainExpertParallel(c: MoeTrainingCase, expertRanks: number): Promise<ExpertParallelRun> {
  const initial = initMoeParams(c.config, c.seed);
  const trainers = createMemoryMesh(c.world).map(
    (transport) =>
      new ExpertParallelTrainer({
        config: c.config,
        transport,
        expertRanks,
        initial,
        lr: c.lr,
        data: (step) => moeBatch(c, step, transport.rank),
        totalTokens: c.world * c.tokensPerRank,
      }),
  );
  const losses: number[] = [];
  const reports: ExpertParallelStepReport[] = [];
  for (let step = 0; step < c.steps; step++) {
    const all = await Promise.all(trainers.map((t) => t.trainStep()));
    losses.push(all.reduce((s, r) => s + r.loss, 0));
    reports.push(all[0]);
  }
  const group = trainers.slice(0, expertRanks);
  return {
    params: { router: trainers[0].router, experts: group.flatMap((t) => t.experts) },
    losses,
    hashes: trainers.map((t) => ({ router: t.routerHash(), experts: t.expertsHash(), expertRank: t.placement.expertRank })),
    reports,
  };
}
