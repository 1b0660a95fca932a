// One optimizer step of an expert-parallel MoE layer on one rank (plain SGD: the check that expert
// parallelism trains like one rank holding every expert; the lab's Optimizer, on the experts' flat
// layout, is the wiring's job): forward through the all-to-alls, a mean-squared-error loss against the
// rank's targets (mean over all ranks' tokens), backward, the router's partial gradients summed with a
// ring all-reduce over every rank that holds the router, the experts' gradients summed over the ranks
// that hold the same experts (EP x DP), then each rank updates the router (the same bits everywhere)
// and its own experts.
//
// EP x DP (`ExpertParallelTrainer`): a room of W = N x D ranks is D expert-parallel groups of N
// consecutive ranks (replica = rank div N, expert rank = rank mod N), each group holding all E experts
// (E/N per rank) and routing its own ranks' tokens; the ranks with the same expert rank in the D groups
// hold the same experts and sum their gradients; the router is replicated on all W ranks.
import { GroupTransport } from '../collective/group-transport';
import { runAllReduce } from '../collective/collectives';
import type { Transport } from '../collective/types';
import { paramsHash } from '../model/layout';
import { expertParallelForward } from './moe-expert-parallel';
import type { ExpertParams, MoeConfig, MoeParams } from './moe-layer';

export interface MoeStepReport {
  /** This rank's share of the loss: sum over its tokens of 1/2 |y - target|^2, divided by all ranks' tokens. */
  loss: number;
  auxLoss: number;
  dropped: number;
  tokensPerExpert: number[];
  bytesSent: number;
  /** Bytes this rank sent: the four all-to-alls, the router's all-reduce, the experts' data-parallel all-reduce. */
  bytes: { allToAll: number[]; router: number; expertReplicas: number };
}

/** The groups one step talks to. */
export interface MoeStepGroups {
  /** The ranks the experts are spread over (all-to-alls). */
  experts: Transport;
  /** Every rank holding the router (its gradient is summed over them); default `experts`. */
  router?: Transport;
  /** The ranks holding this rank's experts in the other expert-parallel groups (EP x DP); default none. */
  expertReplicas?: Transport;
}

const KEYS = ['w1', 'b1', 'w2', 'b2'] as const;

/** `router` and `experts` are updated in place. `totalTokens`: the tokens of all ranks together. */
export async function expertParallelSgdStep(
  c: MoeConfig,
  groups: Transport | MoeStepGroups,
  router: Float32Array,
  experts: ExpertParams[],
  x: Float32Array,
  target: Float32Array,
  totalTokens: number,
  lr: number,
  round: number,
): Promise<MoeStepReport> {
  const { experts: transport, router: routerGroup = transport, expertReplicas } = 'send' in groups ? { experts: groups } : groups;
  if (target.length !== x.length) throw new RangeError(`targets of ${target.length} elements for ${x.length} elements of tokens`);
  const forward = await expertParallelForward(c, transport, router, experts, x, { round, collective: 0, groups: routerGroup.world });
  const dy = new Float32Array(x.length);
  let loss = 0;
  for (let i = 0; i < dy.length; i++) {
    const d = forward.y[i] - target[i];
    dy[i] = d / totalTokens;
    loss += (0.5 * d * d) / totalTokens;
  }
  const backward = await forward.backward(dy);
  const routerStats = routerGroup.world > 1 ? await runAllReduce(routerGroup, backward.routerGrad, { round, collective: 4 }) : { bytesSent: 0 };
  let replicaBytes = 0;
  if (expertReplicas && expertReplicas.world > 1) {
    // The dy above is already divided by all ranks' tokens: the replicas' gradients are summed, not averaged.
    const flat = Float32Array.from(backward.expertGrads.flatMap((g) => KEYS.flatMap((key) => Array.from(g[key]))));
    replicaBytes = (await runAllReduce(expertReplicas, flat, { round, collective: 5 })).bytesSent;
    let at = 0;
    for (const g of backward.expertGrads) for (const key of KEYS) g[key].set(flat.subarray(at, (at += g[key].length)));
  }
  for (let i = 0; i < router.length; i++) router[i] -= lr * backward.routerGrad[i];
  experts.forEach((e, k) => {
    const g = backward.expertGrads[k];
    for (const key of KEYS) for (let i = 0; i < e[key].length; i++) e[key][i] -= lr * g[key][i];
  });
  const allToAll = [...forward.bytesSent, ...backward.bytesSent];
  return {
    loss,
    auxLoss: forward.auxLoss,
    dropped: forward.dropped,
    tokensPerExpert: forward.tokensPerExpert,
    bytesSent: allToAll.reduce((s, b) => s + b, 0) + routerStats.bytesSent + replicaBytes,
    bytes: { allToAll, router: routerStats.bytesSent, expertReplicas: replicaBytes },
  };
}

/** Where a room rank sits in EP x DP. */
export interface ExpertPlacement {
  replica: number;
  expertRank: number;
  /** Room ranks of this rank's expert-parallel group, and of the ranks holding its experts. */
  expertGroup: number[];
  replicaGroup: number[];
  /** The experts this rank holds: [first, first + count). */
  firstExpert: number;
  expertCount: number;
}

export function expertPlacement(rank: number, world: number, expertRanks: number, experts: number): ExpertPlacement {
  if (!Number.isInteger(expertRanks) || expertRanks < 1 || world % expertRanks !== 0) {
    throw new RangeError(`a room of ${world} does not split into expert-parallel groups of ${expertRanks}`);
  }
  if (experts % expertRanks !== 0) throw new RangeError(`${experts} experts do not spread evenly over ${expertRanks} ranks`);
  const replica = Math.floor(rank / expertRanks);
  const expertRank = rank % expertRanks;
  const expertCount = experts / expertRanks;
  return {
    replica,
    expertRank,
    expertGroup: Array.from({ length: expertRanks }, (_, i) => replica * expertRanks + i),
    replicaGroup: Array.from({ length: world / expertRanks }, (_, d) => d * expertRanks + expertRank),
    firstExpert: expertRank * expertCount,
    expertCount,
  };
}

export interface ExpertParallelTrainerOptions {
  config: MoeConfig;
  /** The whole room (rank, world). */
  transport: Transport;
  /** Ranks per expert-parallel group: divides the room and the experts. */
  expertRanks: number;
  /** The whole layer's initial parameters (every rank builds the same from one seed); this rank keeps its experts. */
  initial: MoeParams;
  lr: number;
  /** This rank's tokens and targets at step `step`. */
  data(step: number): { x: Float32Array; target: Float32Array };
  /** Tokens of all ranks together in one step (the loss is their mean). */
  totalTokens: number;
}

export interface ExpertParallelStepReport extends MoeStepReport {
  step: number;
}

/** One rank of an EP x DP room: `trainStep()` runs one step; the hashes say whether replicas agree. */
export class ExpertParallelTrainer {
  readonly placement: ExpertPlacement;
  readonly router: Float32Array;
  readonly experts: ExpertParams[];
  private readonly groups: MoeStepGroups;
  private step = 0;

  constructor(private readonly o: ExpertParallelTrainerOptions) {
    const { transport, config, initial } = o;
    this.placement = expertPlacement(transport.rank, transport.world, o.expertRanks, config.experts);
    if (initial.experts.length !== config.experts) throw new RangeError(`initial parameters hold ${initial.experts.length} experts, the config ${config.experts}`);
    const { firstExpert, expertCount, expertGroup, replicaGroup } = this.placement;
    this.router = initial.router.slice();
    this.experts = initial.experts.slice(firstExpert, firstExpert + expertCount).map((e) => ({ w1: e.w1.slice(), b1: e.b1.slice(), w2: e.w2.slice(), b2: e.b2.slice() }));
    this.groups = {
      experts: new GroupTransport(transport, expertGroup),
      router: transport,
      expertReplicas: replicaGroup.length > 1 ? new GroupTransport(transport, replicaGroup) : undefined,
    };
  }

  get stepsDone(): number {
    return this.step;
  }

  async trainStep(): Promise<ExpertParallelStepReport> {
    const { x, target } = this.o.data(this.step);
    const report = await expertParallelSgdStep(this.o.config, this.groups, this.router, this.experts, x, target, this.o.totalTokens, this.o.lr, this.step);
    return { ...report, step: ++this.step };
  }

  /** Equal on every rank of the room. */
  routerHash(): string {
    return paramsHash(this.router);
  }

  /** Equal on the ranks of this rank's replica group (the same experts in every expert-parallel group). */
  expertsHash(): string {
    return paramsHash(Float32Array.from(this.experts.flatMap((e) => KEYS.flatMap((key) => Array.from(e[key])))));
  }
}
