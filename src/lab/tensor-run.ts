// Tensor parallelism as a partitioned run kind (partitioned-run.ts): `tensor=T` cuts every split layer
// of the MLP (column/row pairs, src/model/tensor-mlp.ts) or the GPT (attention by heads, MLP columns then
// rows, src/model/tensor-gpt.ts) across T tabs; the embeddings, LayerNorms, biases after a row split and
// the tied head stay whole on every tab. A room of N tabs holds N / T tensor groups side by side: room
// rank r is tensor rank r % T of group floor(r / T), so a group's tabs are consecutive ranks and the tabs
// holding one shard (its data-parallel replicas, whose hashes must agree) are T apart. Each tab trains its
// shard with its own optimizer state through TensorTrainer (src/parallel/tensor-trainer.ts): the
// partial sums of every block are all-reduced over the group, the shard's gradient averaged over its
// replicas, the whole gradient clipped to the recipe's norm, the rate following its schedule.
//
// Every tensor group draws its share of the same global batch the lab's samplers give a data-parallel
// tab (world = groups), so the room ends where one tab ends to float tolerance (tensor-run.test.ts).
// Every message uses the registry's tensor ids (src/collective/collective-ids.ts), float ids all, so
// the mesh checks activations for NaN/Infinity like any gradient.
import { COLLECTIVE_IDS } from '../collective/collective-ids';
import { GroupTransport } from '../collective/group-transport';
import { runAllReduce } from '../collective/collectives';
import type { Transport } from '../collective/types';
import { viewOf } from '../engine/backend';
import { Mlp } from '../model/mlp';
import type { Batch } from '../model/model';
import { TensorGpt } from '../model/tensor-gpt';
import type { TensorAllReduce, TensorParallelModel } from '../model/tensor-model';
import { TensorMlp } from '../model/tensor-mlp';
import { shardParamCount } from '../model/tensor-split';
import { type TensorCollectiveEvent, TensorTrainer } from '../parallel/tensor-trainer';
import { ClassificationBatches, classificationEvalBatches, TextBatches, textEvalBatches, type BatchSource } from '../train/batches';
import type { CheckpointableRun } from '../train/checkpoint';
import { lrScheduleOf, type TrainingRecipe } from '../train/defaults';
import { learningRateAt, Optimizer } from '../train/optimizer';
import { fitToData } from './build-run';
import type { LabConfig } from './config';
import { meanOverGroup, OnePartRun } from './one-part-run';
import type { PartitionedBuildContext, PartitionedEvalResult, PartitionedRun, PartitionedRunKind, PartitionedStepResult, TensorFigures } from './partitioned-run';
import { recipeFor } from './recipe';

const IDS = COLLECTIVE_IDS.tensor.first;
const DP_AVERAGE = IDS;
const CLIP_NORM = IDS + 1;
const SHARED_LOSSES = IDS + 2;

/** Where a room rank sits: tensor rank `rank % T` of group `floor(rank / T)`. */
export function tensorPlace(rank: number, ranks: number): { tensorRank: number; group: number } {
  return { tensorRank: rank % ranks, group: Math.floor(rank / ranks) };
}

export const TENSOR_RUN_KIND: PartitionedRunKind = {
  name: 'tensor',
  groupSize: (config) => config.tensor,
  refuses(config: LabConfig, world: number): string | null {
    const T = config.tensor;
    if (world % T !== 0) return `tensor=${T} needs a room whose size it divides (tabs = tensor groups x ${T}); this room has ${world} tabs`;
    return null;
  },
  build(context: PartitionedBuildContext): PartitionedRun {
    return new TensorRun(context);
  },
};

class TensorRun extends OnePartRun implements PartitionedRun {
  readonly description: string;
  readonly part: string;
  readonly replicaGroup: readonly number[];
  readonly recipe: TrainingRecipe;
  private readonly T: number;
  private readonly D: number;
  private readonly M: number;
  private readonly rows: number;
  private readonly place: { tensorRank: number; group: number };
  private readonly tensorGroup: Transport;
  private readonly replicas: Transport;
  private readonly model: TensorParallelModel;
  private readonly optimizer: Optimizer;
  private readonly trainer: TensorTrainer;
  private readonly evalBatches: Batch[];
  private readonly paramBytes: number;
  private readonly optimizerBytes: number;
  private last: { collectives: TensorCollectiveEvent[]; dataParallelBytes: number } = { collectives: [], dataParallelBytes: 0 };

  constructor(context: PartitionedBuildContext) {
    super(context);
    const { config, backend, data, transport } = context;
    const T = (this.T = config.tensor);
    const refused = TENSOR_RUN_KIND.refuses(config, transport.world);
    if (refused) throw new Error(refused);
    this.D = transport.world / T;
    const place = (this.place = tensorPlace(transport.rank, T));
    // The recipe of one tensor group among D (its batch split is checked there).
    const resolved = recipeFor(config, this.D);
    this.recipe = resolved.recipe;
    const M = (this.M = this.recipe.microBatches);
    const shard = { globalBatch: this.recipe.globalBatch, microBatches: M, seed: this.recipe.seed, world: this.D, rank: place.group };
    let batches: BatchSource & { maxMicroRows: number };
    const before = backend.memory();
    if (resolved.kind === 'classifier') {
      if (data.kind !== 'classification') throw new Error('the MLP needs a classification data set');
      const recipe = fitToData(resolved.recipe, data.data);
      batches = new ClassificationBatches(data.data.train, shard, recipe.maxShift);
      this.model = new TensorMlp(backend, recipe.model, batches.maxMicroRows, { rank: place.tensorRank, ranks: T });
      this.evalBatches = classificationEvalBatches(data.data.test, batches.maxMicroRows);
    } else {
      if (data.kind !== 'text') throw new Error('the GPT needs a text data set');
      const model = { ...resolved.recipe.model, vocabSize: data.data.vocab.length };
      batches = new TextBatches(data.data.train, model.blockSize, shard);
      this.model = new TensorGpt(backend, model, batches.maxMicroRows, { rank: place.tensorRank, ranks: T });
      this.evalBatches = textEvalBatches(data.data.val, model.blockSize, batches.maxMicroRows, resolved.recipe.evalWindows);
    }
    this.rows = batches.maxMicroRows;
    // The step's all-reduces take one id each (at most 4 per GPT block and 2 per MLP layer pair, per micro-batch).
    const perMicro = this.model instanceof TensorGpt ? 4 * this.model.config.nLayer : (this.model as TensorMlp).config.sizes.length;
    if (M * perMicro > COLLECTIVE_IDS.tensorActivations.count) throw new Error(`a step of ${M} micro-batches needs more than ${COLLECTIVE_IDS.tensorActivations.count} tensor all-reduces: use fewer micro-batches or layers`);
    this.model.init(this.recipe.seed);
    this.optimizer = new Optimizer(backend, this.model.layout, this.recipe.optimizer);
    const after = backend.memory();
    this.paramBytes = after.params - before.params;
    this.optimizerBytes = after.optimizer - before.optimizer;
    this.replicaGroup = Array.from({ length: this.D }, (_, d) => d * T + place.tensorRank);
    this.tensorGroup = new GroupTransport(transport, Array.from({ length: T }, (_, t) => place.group * T + t));
    this.replicas = new GroupTransport(transport, this.replicaGroup);
    const schedule = lrScheduleOf(this.recipe);
    this.trainer = new TensorTrainer({
      backend,
      model: this.model,
      optimizer: this.optimizer,
      batches,
      transport: this.tensorGroup,
      collective: COLLECTIVE_IDS.tensorActivations.first,
      ...(this.D > 1 ? { dataParallel: { transport: this.replicas, collective: DP_AVERAGE } } : {}),
      learningRate: (step) => learningRateAt(step, schedule),
      clipNorm: this.recipe.clipNorm,
      clipCollective: CLIP_NORM,
    });
    this.part = `tensor shard ${place.tensorRank} of ${T}`;
    this.description = `tensor parallel, ${M} micro-batch(es): ${this.part}` + (this.D > 1 ? `, tensor group ${place.group} of ${this.D}` : '');
  }

  partOf(rank: number): string {
    const { tensorRank, group } = tensorPlace(rank, this.T);
    return `tensor shard ${tensorRank} of ${this.T}` + (this.D > 1 ? ` (group ${group})` : '');
  }

  async trainStep(): Promise<PartitionedStepResult> {
    const t0 = performance.now();
    const report = await this.trainer.trainStep();
    const totalMs = performance.now() - t0;
    const commMs = report.collectives.reduce((s, e) => s + e.ms, 0);
    this.last = { collectives: report.collectives, dataParallelBytes: report.dataParallelBytesSent };
    this.context.publish({
      type: 'tensor-collectives',
      step: report.step + 1,
      rank: this.place.tensorRank,
      collectives: report.collectives.map(({ pass, block, sublayer, micro, elements, bytesSent, ms }) => ({ pass, block, sublayer, micro, elements, bytesSent, ms })),
    });
    // The room's mean training loss: each group's mean of its share, averaged over the groups.
    const loss = await meanOverGroup(this.replicas, report.loss, { round: 2 * report.step, collective: SHARED_LOSSES });
    return { loss, computeMs: Math.max(0, totalMs - commMs), commMs, waitMs: 0 };
  }

  /**
   * The whole model's validation loss: every tensor group runs the held-out batches forward (the same
   * bits on every tab: the loss reads only all-reduced activations and replicated tensors).
   */
  async evaluate(): Promise<PartitionedEvalResult> {
    const { model } = this;
    const b = this.context.backend;
    const group = this.tensorGroup;
    // One id per all-reduce of the whole evaluation: the data channels refuse a tag they have seen.
    const { first, count } = COLLECTIVE_IDS.tensorEvalActivations;
    let next = first;
    const round = this.step;
    const sum: TensorAllReduce = async (view) => {
      if (group.world === 1) return;
      if (next >= first + count) throw new Error(`the evaluation needs more than ${count} tensor all-reduces: use fewer evaluation batches`);
      const values = await b.read(view);
      await runAllReduce(group, values, { round, collective: next++ });
      b.write(view, values);
    };
    let lossSum = 0;
    let rows = 0;
    let correct = 0;
    const classifier = model.kind === 'mlp';
    for (const batch of this.evalBatches) {
      const r = await model.forward(batch, 0, sum);
      const [losses, probs] = await b.readMany([viewOf(r.losses.buf, r.losses.offset, r.lossRows), ...(classifier ? [r.probs] : [])]);
      for (let k = 0; k < r.lossRows; k++) lossSum += losses[k];
      rows += r.lossRows;
      if (probs) {
        const predicted = Mlp.argmax(probs, r.lossRows, r.classes);
        for (let k = 0; k < r.lossRows; k++) if (predicted[k] === batch.targets[k]) correct++;
      }
    }
    return { valLoss: lossSum / rows, ...(classifier ? { accuracy: correct / rows } : {}) };
  }

  figures(): TensorFigures {
    const { model, T, D } = this;
    const counts = shardParamCount(model.wholeLayout, model.plan, T);
    const statesPerParam = this.recipe.optimizer.kind === 'adamw' ? 2 : 1;
    const ring = (n: number, world: number) => ((2 * (world - 1)) / world) * n * 4;
    const sites = this.last.collectives;
    return {
      kind: 'tensor',
      model: model instanceof TensorGpt ? { kind: 'gpt', config: structuredClone(model.config) } : { kind: 'mlp', config: structuredClone((model as TensorMlp).config) },
      tensor: T,
      groups: D,
      tensorRank: this.place.tensorRank,
      group: this.place.group,
      micro: this.M,
      rowsPerMicro: this.rows,
      paramBytes: this.paramBytes,
      paramFormulaBytes: counts.perRank * 4,
      optimizerBytes: this.optimizerBytes,
      optimizerFormulaBytes: counts.perRank * 4 * statesPerParam,
      collectivesPerStep: { forward: sites.filter((e) => e.pass === 'forward').length, backward: sites.filter((e) => e.pass === 'backward').length },
      wireBytesPerStep: sites.reduce((s, e) => s + e.bytesSent, 0),
      wireFormulaBytesPerStep: ring(this.activationFloatsPerStep(), T),
      dataParallelBytesPerStep: this.last.dataParallelBytes,
      dataParallelFormulaBytesPerStep: D > 1 ? ring(model.layout.totalLength, D) : 0,
    };
  }

  /**
   * Floats all-reduced over the tensor group per step, from the model's shape: GPT, 2 all-reduces of
   * B·S·C per block per pass; MLP, one of B·width per column/row pair forward, and one per pair but the
   * first backward (nothing upstream wants the input's gradient).
   */
  private activationFloatsPerStep(): number {
    const { model, M, rows } = this;
    if (model instanceof TensorGpt) {
      const { nLayer, blockSize, nEmbd } = model.config;
      return M * nLayer * 2 * 2 * rows * blockSize * nEmbd;
    }
    const sizes = (model as TensorMlp).config.sizes;
    let floats = 0;
    const layers = sizes.length - 1;
    for (let l = 0; l + 1 < layers; l += 2) {
      floats += rows * sizes[l + 2];
      if (l > 0) floats += rows * sizes[l];
    }
    return M * floats;
  }

  protected partition(): { kind: 'tensor'; ranks: number; rank: number } {
    return { kind: 'tensor', ranks: this.T, rank: this.place.tensorRank };
  }

  /** The checkpoint reads the model's kind, config, (shard) layout and parameters: a tensor shard has them all. */
  protected heldPart(): CheckpointableRun {
    return { model: this.model as unknown as CheckpointableRun['model'], optimizer: this.optimizer, trainer: this.trainer };
  }
}
