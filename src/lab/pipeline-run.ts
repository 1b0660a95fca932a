// Pipeline parallelism as a partitioned run kind (partitioned-run.ts): `pipeline=P` splits the MLP by
// layers or the GPT by blocks into P stages (src/model/pipeline-stage.ts), one per tab. A room of N tabs
// holds N / P pipelines side by side: room rank r is stage r % P of pipeline floor(r / P), so the tabs
// of one pipeline are consecutive ranks and the tabs holding one stage (its data-parallel group, whose
// hashes must agree) are P apart. Each tab trains its stage with its own optimizer state through
// PipelineTrainer (src/parallel/pipeline-trainer.ts): the schedule's activations and gradients travel
// between stage tabs, each stage's gradient is averaged over its group, the tied GPT embedding summed
// between the two ends, the whole gradient clipped to the recipe's norm, the rate following its schedule.
//
// Every pipeline draws its share of the same global batch one tab with M micro-batches of gradient
// accumulation would (the lab's samplers with world = pipelines), so the room ends where one tab ends
// to float tolerance (pipeline-run.test.ts). Every message uses the registry's pipeline ids
// (src/collective/collective-ids.ts), so the mesh checks its floats for NaN/Infinity like any gradient.
// The step counter, the part's parameters, its checkpoint and restore are one-part-run.ts's.
import { COLLECTIVE_IDS } from '../collective/collective-ids';
import { GroupTransport } from '../collective/group-transport';
import { runAllReduce } from '../collective/collectives';
import type { PipelineEvent } from '../collective/pipeline-executor';
import { expectedPeakInFlight } from '../collective/pipeline-schedules';
import type { Transport } from '../collective/types';
import type { Backend } from '../engine/backend';
import { decodeTokens } from '../data/text';
import { Gpt, gptLayout } from '../model/gpt';
import { entry } from '../model/layout';
import { Mlp, mlpLayout } from '../model/mlp';
import type { Batch, ForwardResult } from '../model/model';
import { PipelineStage, splitUnits, type StageModelSpec } from '../model/pipeline-stage';
import { PipelineTrainer } from '../parallel/pipeline-trainer';
import { gatherStepEvents } from '../parallel/timeline-gather';
import { ClassificationBatches, classificationEvalBatches, TextBatches, textEvalBatches, type BatchSource } from '../train/batches';
import { type CharLmRecipe, lrScheduleOf, type TrainingRecipe } from '../train/defaults';
import { learningRateAt, Optimizer } from '../train/optimizer';
import { fitToData } from './build-run';
import { type LabConfig, pipelineMicroBatches } from './config';
import type { PartitionedBuildContext, PartitionedEvalResult, PartitionedRun, PartitionedRunKind, PartitionedStepResult, PipelineFigures, TimedOp } from './partitioned-run';
import { OnePartRun } from './one-part-run';
import { recipeFor } from './recipe';

const IDS = COLLECTIVE_IDS.pipeline.first;
/** Offsets within the registry's pipeline range (the trainer uses +0..+3). */
const EVAL_ACTIVATIONS = IDS + 4;
const SHARED_LOSSES = IDS + 5;
const SAMPLE = IDS + 6;
/** Steps of events kept for the figures (window.lab.metrics().partition). */
const KEPT_STEPS = 64;

/** The first id of a stage's per-layer-group all-reduces over its replicas; refuses more groups than the registry holds ids for. */
function replicaCollectives(groups: number): number {
  const { first, count } = COLLECTIVE_IDS.pipelineReplicaGroups;
  if (groups > count) throw new RangeError(`a pipeline stage of ${groups} layer groups: the registry holds ids for ${count}`);
  return first;
}

/** Where a room rank sits: stage `rank % P` of pipeline `floor(rank / P)`. */
export function pipelinePlace(rank: number, stages: number): { stage: number; pipeline: number } {
  return { stage: rank % stages, pipeline: Math.floor(rank / stages) };
}

export const PIPELINE_RUN_KIND = {
  name: 'pipeline',
  groupSize: (config) => config.pipeline,
  refuses(config: LabConfig, world: number): string | null {
    const P = config.pipeline;
    if (world % P !== 0) return `pipeline=${P} needs a room whose size it divides (tabs = pipelines x ${P} stages); this room has ${world} tabs`;
    return null;
  },
  build(context: PartitionedBuildContext): PipelineRun {
    return new PipelineRun(context);
  },
} satisfies PartitionedRunKind;

export class PipelineRun extends OnePartRun implements PartitionedRun {
  readonly description: string;
  readonly part: string;
  readonly replicaGroup: readonly number[];
  readonly recipe: TrainingRecipe;
  private readonly P: number;
  private readonly D: number;
  private readonly M: number;
  private readonly rank: number;
  private readonly place: { stage: number; pipeline: number };
  private readonly backend: Backend;
  private readonly transport: Transport;
  private readonly stage: PipelineStage;
  private readonly optimizer: Optimizer;
  private readonly trainer: PipelineTrainer;
  private readonly evalBatches: Batch[];
  private readonly activationBytesPerSet: number;
  private readonly activationBytesBefore: number;
  /** Bytes this stage's sends should carry per step: M activations forward and M gradients back per boundary it touches. */
  private readonly wireFormulaBytes: number;
  private readonly kept: { round: number; ops: TimedOp[] }[] = [];
  /** The GPT's sampling: the prompt (the validation text's first character, as one tab's) and the vocabulary. */
  private readonly text: { prompt: Uint32Array; vocab: readonly string[] } | null = null;

  constructor(context: PartitionedBuildContext) {
    super(context);
    const { config, backend, data, transport } = context;
    this.backend = backend;
    this.transport = transport;
    const P = (this.P = config.pipeline);
    const world = transport.world;
    const refused = PIPELINE_RUN_KIND.refuses(config, world);
    if (refused) throw new Error(refused);
    this.D = world / P;
    const M = (this.M = pipelineMicroBatches(config));
    this.rank = transport.rank;
    const place = (this.place = pipelinePlace(this.rank, P));
    // The recipe of one pipeline among D, with M micro-batches (its batch split is checked there).
    const resolved = recipeFor({ ...config, accum: M }, this.D);
    this.recipe = resolved.recipe;
    const shard = { globalBatch: this.recipe.globalBatch, microBatches: M, seed: this.recipe.seed, world: this.D, rank: place.pipeline };
    let spec: StageModelSpec;
    let batches: BatchSource & { microRows: number };
    if (resolved.kind === 'classifier') {
      if (data.kind !== 'classification') throw new Error('the MLP needs a classification data set');
      const recipe = fitToData(resolved.recipe, data.data);
      batches = new ClassificationBatches(data.data.train, shard, recipe.maxShift);
      spec = { kind: 'mlp', config: recipe.model, maxRows: batches.microRows };
      this.evalBatches = classificationEvalBatches(data.data.test, batches.microRows);
    } else {
      if (data.kind !== 'text') throw new Error('the GPT needs a text data set');
      const model = { ...resolved.recipe.model, vocabSize: data.data.vocab.length };
      batches = new TextBatches(data.data.train, model.blockSize, shard);
      spec = { kind: 'gpt', config: model, maxRows: batches.microRows };
      this.evalBatches = textEvalBatches(data.data.val, model.blockSize, batches.microRows, resolved.recipe.evalWindows);
      this.text = { prompt: (data.data.val.length > 0 ? data.data.val : data.data.train).slice(0, 1), vocab: data.data.vocab };
    }
    this.activationBytesBefore = backend.memory().activations;
    this.stage = new PipelineStage(backend, spec, place.stage, P);
    this.activationBytesPerSet = this.stage.peakActivationBytes - this.activationBytesBefore;
    this.stage.init(this.recipe.seed);
    this.optimizer = new Optimizer(backend, this.stage.layout, this.recipe.optimizer);
    const pipelineRanks = Array.from({ length: P }, (_, s) => place.pipeline * P + s);
    this.replicaGroup = Array.from({ length: this.D }, (_, d) => d * P + place.stage);
    const schedule = lrScheduleOf(this.recipe);
    this.trainer = new PipelineTrainer({
      backend,
      stage: this.stage,
      optimizer: this.optimizer,
      batches,
      transport,
      schedule: config.schedule,
      ahead: config.ahead,
      rankOfStage: (s) => place.pipeline * P + s,
      collective: IDS,
      ...(this.D > 1 ? { dataParallel: { transport: new GroupTransport(transport, this.replicaGroup), firstCollective: replicaCollectives(this.stage.layout.groups.length) } } : {}),
      learningRate: (step) => learningRateAt(step, schedule),
      clipNorm: this.recipe.clipNorm,
      pipelineGroup: new GroupTransport(transport, pipelineRanks),
      onEvent: (event) => this.onPipelineEvent(event),
    });
    const boundary = boundaryBytes(spec, P, batches.microRows);
    this.wireFormulaBytes = M * ((place.stage < P - 1 ? boundary[place.stage] : 0) + (place.stage > 0 ? boundary[place.stage - 1] : 0));
    this.part = `stage ${place.stage} of ${P}`;
    this.description = `pipeline ${config.schedule}, ${M} micro-batches: ${this.part}` + (this.D > 1 ? `, pipeline ${place.pipeline} of ${this.D}` : '');
  }

  partOf(rank: number): string {
    const { stage, pipeline } = pipelinePlace(rank, this.P);
    return `stage ${stage} of ${this.P}` + (this.D > 1 ? ` (pipeline ${pipeline})` : '');
  }

  async trainStep(): Promise<PartitionedStepResult> {
    const report = await this.trainer.trainStep();
    let computeMs = 0;
    let commMs = 0;
    let waitMs = 0;
    for (const e of report.events) {
      const ms = e.tEnd - e.tStart;
      if (e.kind === 'forward' || e.kind === 'backward') computeMs += ms;
      else if (e.kind === 'send-activation' || e.kind === 'send-grad' || e.kind === 'allreduce') commMs += ms;
      else waitMs += ms;
    }
    const [loss] = await this.shareFromLastStages(2 * report.step, [report.loss]);
    await this.shareTimeline(report.step, report.events);
    return { loss, computeMs, commMs, waitMs };
  }

  /**
   * The whole model's validation loss: every pipeline runs the held-out batches forward through its
   * stages (activations on the registry's evaluation id), its last stage scores them, and every tab
   * gets the result.
   */
  async evaluate(): Promise<PartitionedEvalResult> {
    const { backend: b, stage, transport } = this;
    const { stage: s, pipeline } = this.place;
    const rankOf = (st: number) => pipeline * this.P + st;
    let lossSum = 0;
    let rows = 0;
    let correct = 0;
    const classifier = stage.spec.kind === 'mlp';
    for (const [i, batch] of this.evalBatches.entries()) {
      const tag = { round: this.step, collective: EVAL_ACTIVATIONS, chunk: i };
      // A copy into a buffer of its own: the payload may be a view into a larger frame, and the data
      // channels' Buffer polyfill's slice() is a view too.
      const input = stage.isFirst ? undefined : new Float32Array(new Uint8Array(await transport.recv(rankOf(s - 1), tag)).buffer);
      try {
        const out = stage.forward(0, batch, 0, input);
        if (out.output) {
          const activation = await b.read(out.output);
          await transport.send(rankOf(s + 1), tag, new Uint8Array(activation.buffer, activation.byteOffset, activation.byteLength));
        } else {
          const r = out.result!;
          const [losses, probs] = await Promise.all([b.read(r.losses), classifier ? b.read(r.probs) : undefined]);
          for (let k = 0; k < r.lossRows; k++) lossSum += losses[k];
          rows += r.lossRows;
          if (probs) {
            const predicted = Mlp.argmax(probs, r.lossRows, r.classes);
            for (let k = 0; k < r.lossRows; k++) if (predicted[k] === batch.targets[k]) correct++;
          }
        }
      } finally {
        stage.release(0);
      }
    }
    const [valLoss, accuracy] = await this.shareFromLastStages(2 * this.step + 1, rows > 0 ? [lossSum / rows, correct / rows] : [undefined, undefined]);
    return { valLoss, ...(classifier ? { accuracy } : {}) };
  }

  /**
   * A text sample of the whole GPT, drawn by the pipeline's stages together as one tab's sampler draws
   * it (src/train/recipes.ts: the validation text's first character as the prompt, seeded by the
   * step): for each new character the context's activations go forward stage by stage, the last stage
   * draws the character from its probabilities (Gpt.sample) and sends it to every other stage of its
   * pipeline, so every tab ends with the same text. A collective of the pipeline; every pipeline of a
   * DP x PP room samples alike (their stages hold the same bits). Undefined for the MLP. `length`:
   * the characters to draw (default the recipe's), the first ones of any longer sample of the step.
   */
  async sample(length?: number): Promise<string | undefined> {
    const { stage, transport, text } = this;
    if (stage.spec.kind !== 'gpt' || !text) return undefined;
    const recipe = this.recipe as CharLmRecipe;
    const { stage: s, pipeline } = this.place;
    const rankOf = (st: number) => pipeline * this.P + st;
    const { blockSize } = stage.spec.config;
    const round = this.step;
    const activationTag = (n: number) => ({ round, collective: SAMPLE, chunk: 2 * n });
    const characterTag = (n: number) => ({ round, collective: SAMPLE, chunk: 2 * n + 1 });
    const targets = new Uint32Array(blockSize); // unused by sampling; the loss op needs some
    /** This stage's part of the forward that predicts character n from `context`; the last stage's result. */
    const forwardContext = async (context: Batch['inputs'], n: number): Promise<ForwardResult | undefined> => {
      // A copy into a buffer of its own: the payload may be a view into a larger frame.
      const input = stage.isFirst ? undefined : new Float32Array(new Uint8Array(await transport.recv(rankOf(s - 1), activationTag(n))).buffer);
      try {
        const out = stage.forward(0, { inputs: context, targets, rows: 1, seqLen: context.length }, 0, input);
        if (!out.output) return out.result;
        const activation = await this.backend.read(out.output);
        await transport.send(rankOf(s + 1), activationTag(n), new Uint8Array(activation.buffer, activation.byteOffset, activation.byteLength));
        return undefined;
      } finally {
        // Gpt.sample's read of the probabilities is recorded before the next forward can take the set.
        stage.release(0);
      }
    };
    const drawLength = length ?? recipe.sampleLength;
    const total = text.prompt.length + drawLength;
    const tokens = new Uint32Array(total);
    tokens.set(text.prompt);
    if (stage.isLast) {
      const tellOthers = (n: number) =>
        Promise.all(Array.from({ length: this.P - 1 }, (_, st) => transport.send(rankOf(st), characterTag(n), new Uint8Array(new Float32Array([tokens[n]]).buffer))));
      let n = text.prompt.length;
      const drawn = await (stage.model as Gpt).sample(text.prompt, drawLength, {
        temperature: recipe.temperature,
        seed: recipe.seed + this.step,
        forward: async (batch) => {
          // The context ends with the character drawn last: the others need it before their next forward.
          if (n > text.prompt.length) {
            tokens[n - 1] = batch.inputs[batch.inputs.length - 1];
            await tellOthers(n - 1);
          }
          return (await forwardContext(batch.inputs, n++))!;
        },
      });
      tokens.set(drawn, text.prompt.length);
      if (total > text.prompt.length) await tellOthers(total - 1);
    } else {
      for (let n = text.prompt.length; n < total; n++) {
        await forwardContext(tokens.subarray(Math.max(0, n - blockSize), n), n);
        const [character] = new Float32Array(new Uint8Array(await transport.recv(rankOf(this.P - 1), characterTag(n))).buffer);
        if (!Number.isInteger(character) || character < 0 || character >= text.vocab.length) throw new RangeError(`sample: character ${character} from the last stage is outside a vocabulary of ${text.vocab.length}`);
        tokens[n] = character;
      }
    }
    return decodeTokens(tokens, text.vocab);
  }

  /**
   * Every tab gets the values the pipelines' last stages computed, averaged over the pipelines: a sum
   * all-reduce of one slot per rank and value (every other slot 0, so the sum is exact).
   */
  private async shareFromLastStages(round: number, values: (number | undefined)[]): Promise<number[]> {
    const world = this.transport.world;
    const slots = new Float32Array(world * values.length);
    if (this.stage.isLast) values.forEach((v, k) => (slots[k * world + this.rank] = v ?? 0));
    await runAllReduce(this.transport, slots, { round, collective: SHARED_LOSSES });
    return values.map((_, k) => {
      let sum = 0;
      for (let d = 0; d < this.D; d++) sum += slots[k * world + d * this.P + this.P - 1];
      return sum / this.D;
    });
  }

  figures(): PipelineFigures {
    const { stage: s, pipeline } = this.place;
    // With ahead=k a stage may hold k sets more than the list, never more than M: a bound, met or not.
    const sets = Math.min(expectedPeakInFlight(this.context.config.schedule, this.P, s, this.M) + this.context.config.ahead, this.M);
    const whole = this.stage.spec.kind === 'mlp' ? mlpLayout(this.stage.spec.config) : gptLayout(this.stage.spec.config);
    return {
      kind: 'pipeline',
      schedule: this.context.config.schedule,
      ahead: this.context.config.ahead,
      stages: this.P,
      pipelines: this.D,
      micro: this.M,
      stage: s,
      pipeline,
      activationBytesPerSet: this.activationBytesPerSet,
      peakActivationBytes: this.stage.peakActivationBytes - this.activationBytesBefore,
      expectedPeakActivationBytes: sets * this.activationBytesPerSet,
      wireFormulaBytesPerStep: this.wireFormulaBytes,
      placement: this.stage.layout.entries.map((e) => ({ name: e.name, partOffset: e.offset, wholeOffset: entry(whole, e.name).offset, length: e.length })),
      steps: this.kept.map((k) => ({ round: k.round, ops: k.ops.slice() })),
    };
  }

  /** The stage, not only its model: its activation sets are the stage's. */
  override dispose(): void {
    this.optimizer.dispose();
    this.stage.dispose();
  }

  /**
   * Every tab's dashboard draws every stage's row (src/ui/PipelineTimeline.tsx): the step's op events,
   * as each tab published them, are all-gathered once after the step (a few kB) and the others' published here.
   */
  private async shareTimeline(round: number, events: readonly PipelineEvent[]): Promise<void> {
    const clockOffsetMs = performance.timeOrigin;
    const own = events.map((e) => ({ ...e, rank: this.rank, clockOffsetMs }));
    for (const e of await gatherStepEvents(this.transport, round, COLLECTIVE_IDS.pipelineTimeline.first, own)) if (e.rank !== this.rank) this.context.publish(e);
  }

  private onPipelineEvent(event: PipelineEvent): void {
    // Epoch milliseconds: tabs of one machine (and, to their clocks' agreement, of several) share one axis.
    const clockOffsetMs = performance.timeOrigin;
    this.context.publish({ ...event, rank: this.rank, clockOffsetMs });
    // The figures keep the schedule's ops; a replica all-reduce is drawn (published), not measured there.
    if (event.kind === 'allreduce') return;
    let last = this.kept[this.kept.length - 1];
    if (!last || last.round !== event.round) {
      last = { round: event.round, ops: [] };
      this.kept.push(last);
      if (this.kept.length > KEPT_STEPS) this.kept.shift();
    }
    last.ops.push({ kind: event.kind, stage: event.stage, micro: event.micro, ...(event.peer !== undefined ? { peer: event.peer } : {}), ...(event.bytes !== undefined ? { bytes: event.bytes } : {}), tStart: event.tStart + clockOffsetMs, tEnd: event.tEnd + clockOffsetMs });
  }

  protected partition(): { kind: 'pipeline'; stages: number; stage: number; schedule: string } {
    return { kind: 'pipeline', stages: this.P, stage: this.place.stage, schedule: this.context.config.schedule };
  }

  protected heldPart() {
    const model = this.stage.model;
    if (!(model instanceof Mlp || model instanceof Gpt)) throw new Error('a pipeline stage holds an MLP or a GPT');
    return { model, optimizer: this.optimizer, trainer: this.trainer };
  }
}

/** Bytes of the activation crossing each stage boundary per micro-batch (its gradient is the same size). */
export function boundaryBytes(spec: StageModelSpec, stages: number, microRows: number): number[] {
  const parts = splitUnits(spec.kind === 'mlp' ? spec.config.sizes.length - 1 : spec.config.nLayer, stages);
  return parts.slice(0, -1).map((part) => (spec.kind === 'mlp' ? microRows * spec.config.sizes[part.to] : microRows * spec.config.blockSize * spec.config.nEmbd) * 4);
}
