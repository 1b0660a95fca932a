// Expert parallelism as a partitioned run kind (partitioned-run.ts): `experts=E` (with `topk`,
// `capacity`) in a room makes every GPT block's MLP a mixture of E experts (src/model/moe-mlp.ts), and
// spreads them over expert-parallel groups of `ep` tabs (default: the whole room). Room rank r is
// expert rank r % ep of group floor(r / ep): it holds experts [k·E/ep, (k+1)·E/ep) of every block and
// the whole of everything else (embeddings, attention, norms, routers). A room of W tabs is W / ep
// groups side by side (EP x DP): the tabs T = ep apart hold the same experts (their replicas, whose
// hashes must agree after every step).
//
// Every tab trains on its own share of the global batch (the lab's samplers, world = W) and routes its
// tokens as one capacity group; inside every MoE block's forward and backward the tokens travel to
// their experts' tabs and back by all-to-alls over the group's data channels (ExpertGptTrainer,
// src/parallel/moe-gpt-trainer.ts). So the room ends where one tab holding all E experts ends when
// that tab routes each micro-batch as W capacity groups (`moe.groups`), the tabs' shares in rank
// order: the test (expert-run.test.ts) checks it to float tolerance.
//
// Every message uses the registry's expert ids (src/collective/collective-ids.ts), float ids all, so
// the mesh checks tokens and gradients for NaN/Infinity like any gradient.
import { COLLECTIVE_IDS } from '../collective/collective-ids';
import { GroupTransport } from '../collective/group-transport';
import { runAllReduce } from '../collective/collectives';
import type { Transport } from '../collective/types';
import { shareOf } from '../train/sampler';
import { Gpt, type GptConfig, gptLayout } from '../model/gpt';
import type { Batch } from '../model/model';
import { isExpertTensor } from '../model/moe-mlp';
import { ExpertGptTrainer, type ExpertStepReport } from '../parallel/moe-gpt-trainer';
import { TextBatches, textEvalBatches } from '../train/batches';
import type { CheckpointableRun } from '../train/checkpoint';
import { lrScheduleOf, type TrainingRecipe } from '../train/defaults';
import { learningRateAt, Optimizer } from '../train/optimizer';
import type { LabConfig } from './config';
import { meanOverGroup, OnePartRun } from './one-part-run';
import type { ExpertFigures, PartitionedBuildContext, PartitionedEvalResult, PartitionedRun, PartitionedRunKind, PartitionedStepResult } from './partitioned-run';
import { recipeFor } from './recipe';

const IDS = COLLECTIVE_IDS.expert.first;
const DENSE_AVERAGE = IDS;
const EXPERT_AVERAGE = IDS + 1;
const CLIP_NORM = IDS + 2;
const SHARED_LOSSES = IDS + 3;
const ROUTING = IDS + 4;

/** Where a room rank sits: expert rank `rank % ep` of group `floor(rank / ep)`. */
export function expertPlace(rank: number, ep: number): { expertRank: number; group: number } {
  return { expertRank: rank % ep, group: Math.floor(rank / ep) };
}

/** The tabs one copy of the experts is spread over: `ep`, or the room. */
export function expertGroupSize(config: LabConfig, world: number): number {
  return config.ep || world;
}

export const EXPERT_RUN_KIND: PartitionedRunKind = {
  name: 'experts',
  groupSize: (config) => config.ep || config.world || config.experts,
  refuses(config: LabConfig, world: number): string | null {
    const ep = expertGroupSize(config, world);
    if (world % ep !== 0) return `ep=${ep} needs a room whose size it divides (tabs = expert groups x ${ep}); this room has ${world} tabs`;
    if (config.experts % ep !== 0) return `experts=${config.experts} do not spread evenly over ${ep} tabs`;
    if (config.model !== 'gpt') return 'experts replace the GPT\'s MLPs: use model=gpt';
    return null;
  },
  build(context: PartitionedBuildContext): PartitionedRun {
    return new ExpertRun(context);
  },
};

class ExpertRun extends OnePartRun implements PartitionedRun {
  readonly description: string;
  readonly part: string;
  readonly replicaGroup: readonly number[];
  readonly recipe: TrainingRecipe;
  private readonly N: number;
  private readonly D: number;
  private readonly W: number;
  private readonly M: number;
  private readonly place: { expertRank: number; group: number };
  private readonly room: Transport;
  private readonly expertGroup: Transport;
  private readonly model: Gpt;
  private readonly wholeConfig: GptConfig;
  private readonly optimizer: Optimizer;
  private readonly trainer: ExpertGptTrainer;
  private readonly evalBatches: Batch[];
  private readonly paramBytes: number;
  private readonly optimizerBytes: number;
  private last: { report: ExpertStepReport; routed: number[][]; dropped: number[]; assignments: number[] } | null = null;

  constructor(context: PartitionedBuildContext) {
    super(context);
    const { config, backend, data, transport } = context;
    this.room = transport;
    const W = (this.W = transport.world);
    const refused = EXPERT_RUN_KIND.refuses(config, W);
    if (refused) throw new Error(refused);
    if (data.kind !== 'text') throw new Error('the GPT needs a text data set');
    const N = (this.N = expertGroupSize(config, W));
    this.D = W / N;
    const place = (this.place = expertPlace(transport.rank, N));
    const resolved = recipeFor(config, W);
    if (resolved.kind !== 'charlm') throw new Error('experts replace the GPT\'s MLPs: use model=gpt');
    this.recipe = resolved.recipe;
    const M = (this.M = this.recipe.microBatches);
    const batches = new TextBatches(data.data.train, resolved.recipe.model.blockSize, { globalBatch: this.recipe.globalBatch, microBatches: M, seed: this.recipe.seed, world: W, rank: transport.rank });
    const moe = resolved.recipe.model.moe;
    if (!moe) throw new Error('an expert run needs experts=E');
    this.wholeConfig = { ...resolved.recipe.model, vocabSize: data.data.vocab.length };
    const El = moe.experts / N;
    const held = N > 1 ? { held: { first: place.expertRank * El, count: El } } : {};
    const before = backend.memory();
    this.model = new Gpt(backend, { ...this.wholeConfig, moe: { ...moe, ...held } }, batches.maxMicroRows);
    this.model.init(this.recipe.seed);
    this.optimizer = new Optimizer(backend, this.model.layout, this.recipe.optimizer);
    const after = backend.memory();
    this.paramBytes = after.params - before.params;
    this.optimizerBytes = after.optimizer - before.optimizer;
    // Every tab evaluates its share of each validation batch: W equal shares (each batch trimmed to a multiple of W rows).
    this.evalBatches = textEvalBatches(data.data.val, this.wholeConfig.blockSize, W * batches.maxMicroRows, resolved.recipe.evalWindows)
      .filter((batch) => batch.rows >= W)
      .map((batch) => rowsShare(batch, this.wholeConfig.blockSize, W, transport.rank));
    if (this.evalBatches.length === 0) throw new Error(`the evaluation needs at least ${W} validation windows, one per tab`);
    this.replicaGroup = Array.from({ length: this.D }, (_, d) => d * N + place.expertRank);
    this.expertGroup = new GroupTransport(transport, Array.from({ length: N }, (_, k) => place.group * N + k));
    const schedule = lrScheduleOf(this.recipe);
    this.trainer = new ExpertGptTrainer({
      backend,
      model: this.model,
      optimizer: this.optimizer,
      batches,
      experts: this.expertGroup,
      room: transport,
      ...(this.D > 1 ? { replicas: new GroupTransport(transport, this.replicaGroup) } : {}),
      ids: { exchanges: COLLECTIVE_IDS.expertExchanges.first, exchangesCount: COLLECTIVE_IDS.expertExchanges.count, denseAverage: DENSE_AVERAGE, expertAverage: EXPERT_AVERAGE, clipNorm: CLIP_NORM },
      learningRate: (step) => learningRateAt(step, schedule),
      clipNorm: this.recipe.clipNorm,
    });
    this.part = this.partOf(transport.rank).replace(/ \(group \d+\)$/, '');
    this.description = `expert parallel, ${moe.experts} experts top-${moe.topk}, capacity ${moe.capacityFactor}, ${M} micro-batch(es): ${this.part}` + (this.D > 1 ? `, expert group ${place.group} of ${this.D}` : '');
  }

  partOf(rank: number): string {
    const { expertRank, group } = expertPlace(rank, this.N);
    const E = this.wholeConfig.moe!.experts;
    const El = E / this.N;
    return `experts ${expertRank * El}..${(expertRank + 1) * El - 1} of ${E}` + (this.D > 1 ? ` (group ${group})` : '');
  }

  async trainStep(): Promise<PartitionedStepResult> {
    const t0 = performance.now();
    const report = await this.trainer.trainStep();
    const totalMs = performance.now() - t0;
    const commMs = report.exchanges.reduce((s, e) => s + e.ms, 0);
    const [loss, routing] = await Promise.all([meanOverGroup(this.room, report.loss, { round: 2 * report.step, collective: SHARED_LOSSES }), this.gatherRouting(report)]);
    this.last = { report, ...routing };
    const figures = this.figures();
    this.context.publish({
      type: 'expert-routing',
      step: report.step + 1,
      routed: routing.routed,
      dropped: routing.dropped,
      assignments: routing.assignments,
      auxLoss: report.routing.auxLoss,
      wireBytes: figures.wireBytesPerStep,
      wireFormulaBytes: figures.wireFormulaBytesPerStep,
    });
    return { loss, computeMs: Math.max(0, totalMs - commMs), commMs, waitMs: 0 };
  }

  /** The room's validation loss: every tab runs its share of every held-out batch forward through the experts' exchanges. */
  async evaluate(): Promise<PartitionedEvalResult> {
    const { first, count } = COLLECTIVE_IDS.expertEvalExchanges;
    let next = first;
    let lossSum = 0;
    let rows = 0;
    for (const batch of this.evalBatches) {
      const r = await this.trainer.evaluateBatch(batch, this.step, next, first + count);
      next = r.nextId;
      lossSum += r.lossSum;
      rows += r.rows;
    }
    const totals = new Float32Array([lossSum, rows]);
    if (this.W > 1) await runAllReduce(this.room, totals, { round: 2 * this.step + 1, collective: SHARED_LOSSES });
    return { valLoss: totals[0] / totals[1] };
  }

  /** Every tab's row of the routing heatmap (and its dropped and made assignments), all-gathered by a sum. */
  private async gatherRouting(report: ExpertStepReport): Promise<{ routed: number[][]; dropped: number[]; assignments: number[] }> {
    const E = report.routing.tokensPerExpert.length;
    const width = E + 2;
    const values = new Float32Array(this.W * width);
    const at = this.room.rank * width;
    values.set(report.routing.tokensPerExpert, at);
    values[at + E] = report.routing.dropped;
    values[at + E + 1] = report.routing.assignments;
    if (this.W > 1) await runAllReduce(this.room, values, { round: report.step, collective: ROUTING });
    const rows = Array.from({ length: this.W }, (_, r) => Array.from(values.subarray(r * width, (r + 1) * width)));
    return { routed: rows.map((r) => r.slice(0, E)), dropped: rows.map((r) => r[E]), assignments: rows.map((r) => r[E + 1]) };
  }

  figures(): ExpertFigures {
    const { N, D, W, M } = this;
    const moe = this.wholeConfig.moe!;
    const { nLayer: L, nEmbd: C } = this.wholeConfig;
    const El = moe.experts / N;
    const whole = gptLayout(this.wholeConfig);
    const floats = (expert: boolean) => whole.entries.filter((e) => isExpertTensor(e.name) === expert).reduce((s, e) => s + e.length, 0);
    const [denseFloats, allExpertFloats] = [floats(false), floats(true)];
    const perTab = denseFloats + allExpertFloats / N;
    const statesPerParam = this.recipe.optimizer.kind === 'adamw' ? 2 : 1;
    const ring = (n: number, world: number) => ((2 * (world - 1)) / world) * n * 4;
    const report = this.last?.report;
    // Per MoE block and micro-batch: the header (El counts to each other tab), then rows of C floats both ways, forward and backward.
    const wireFormula = report && N > 1 ? (report.rowsSentToOthers * C + M * L * (N - 1) * El) * 4 : 0;
    return {
      kind: 'experts',
      model: structuredClone(this.wholeConfig),
      experts: moe.experts,
      topk: moe.topk,
      capacityFactor: moe.capacityFactor,
      ep: N,
      groups: D,
      expertRank: this.place.expertRank,
      group: this.place.group,
      micro: M,
      paramBytes: this.paramBytes,
      paramFormulaBytes: perTab * 4,
      optimizerBytes: this.optimizerBytes,
      optimizerFormulaBytes: perTab * 4 * statesPerParam,
      exchangesPerStep: report?.exchanges.length ?? 0,
      wireBytesPerStep: report?.exchanges.reduce((s, e) => s + e.bytesSent, 0) ?? 0,
      wireFormulaBytesPerStep: wireFormula,
      dataParallelBytesPerStep: report ? report.denseBytesSent + report.expertBytesSent : 0,
      dataParallelFormulaBytesPerStep: (W > 1 ? ring(denseFloats, W) : 0) + (D > 1 ? ring(allExpertFloats / N, D) : 0),
      routed: this.last?.routed ?? [],
      dropped: this.last?.dropped ?? [],
      assignments: this.last?.assignments ?? [],
      auxLoss: report?.routing.auxLoss ?? [],
    };
  }

  protected partition(): { kind: 'experts'; ranks: number; rank: number } {
    return { kind: 'experts', ranks: this.N, rank: this.place.expertRank };
  }

  protected heldPart(): CheckpointableRun {
    return { model: this.model, optimizer: this.optimizer, trainer: this.trainer };
  }
}

/** Tab `rank`'s share of `batch`'s rows: W equal consecutive shares of its first floor(rows / W) x W rows. */
function rowsShare(batch: Batch, seqLen: number, W: number, rank: number): Batch {
  const { start, end } = shareOf(Math.floor(batch.rows / W) * W, W, rank);
  const tokens = batch.inputs as Uint32Array;
  return { inputs: tokens.slice(start * seqLen, end * seqLen), targets: batch.targets.slice(start * seqLen, end * seqLen), rows: end - start, seqLen };
}
