// One tab's part of a pipeline-parallel optimizer step: zero the stage's gradients, run the stage's
// schedule (GPipe or 1F1B) over the transport with the stage's model as the compute, sum the tied
// embedding's gradient with the other end of the pipeline (GPT), then update the stage's parameters with
// its own optimizer state. Every stage draws micro-batch m of step s from the same batch source as one
// tab would (the first stage reads its inputs, the last its targets), and the loss gradient is scaled
// by 1 / (predictions * M), so P stages x M micro-batches compute the gradient one model computes with M
// micro-batches of gradient accumulation.
//
// DP x PP: with `dataParallel`, the tabs holding one stage in several pipelines average that stage's
// gradients before the update, so every replica of a stage stays bitwise equal. The average runs per
// layer group (the layout's groups: a GPT block, the head, ...), each group its own ring all-reduce
// with its own collective id: the stage's last backward announces each tensor's gradient as final
// (GradHooks), and a group's all-reduce starts once all of its tensors are announced (its read queued
// behind the ops that finish it), beside the rest of that backward and of the schedule. A group the
// backward never announced is averaged after the schedule, so nothing is left out. Each all-reduce
// emits an 'allreduce' event (micro = the group's index) for the timeline.
//
// Global-norm clipping (`clipNorm`) is group-clip.ts's over the pipeline's stages: each stage sums the
// squares of its tensors (the tied copy counted once, on the first stage), the sums are all-reduced and
// added in stage order, so every stage scales by the same factor, and one tab's clip of the whole
// gradient is matched to float tolerance. The learning rate follows
// `learningRate` (the recipe's schedule) like the one-tab trainer's.
//
import { pipelineTag, type PipelineEvent, type PipelineListener, runStageSchedule, type StageCompute } from '../collective/pipeline-executor';
import { runAllReduce } from '../collective/collectives';
import { clipOverGroup } from './group-clip';
import { stageSchedule, type PipelineScheduleKind } from '../collective/pipeline-schedules';
import type { Transport } from '../collective/types';
import { type Backend, viewOf } from '../engine/backend';
import { coveredBy, entry, type FlatRange } from '../model/layout';
import type { GradHooks } from '../model/model';
import type { PipelineStage } from '../model/pipeline-stage';
import type { BatchSource } from '../train/batches';
import type { Optimizer } from '../train/optimizer';

/** A pipeline of one stage clips alone: a group of one, which never sends. */
const singleTab: Transport = {
  rank: 0,
  world: 1,
  send: () => Promise.reject(new Error('a group of one tab sends nothing')),
  recv: () => Promise.reject(new Error('a group of one tab receives nothing')),
};

export interface PipelineTrainerOptions {
  backend: Backend;
  stage: PipelineStage;
  optimizer: Optimizer;
  /** The whole pipeline's batches (world 1): micro-batch m of step s is the same on every stage. */
  batches: BatchSource;
  transport: Transport;
  schedule: PipelineScheduleKind;
  /** Transport rank of each stage. Default: rank = stage. */
  rankOfStage?: (stage: number) => number;
  /** Collective numbers this pipeline's messages use (the schedule's, and the next for the tied sum). Default 0. */
  collective?: number;
  /**
   * Wraps each forward and backward (tests: an artificial delay per op, so the timeline has a shape
   * on a fast CPU). Default: none.
   */
  computeDelayMs?: (kind: 'forward' | 'backward', micro: number) => number;
  /**
   * DP x PP: the group of tabs holding this same stage in the other pipelines (a GroupTransport), each
   * training on its own share of every micro-batch (`batches`). The stage's gradients are averaged over
   * the group, one ring all-reduce per layer group of the stage's layout (layer group g on collective
   * number `firstCollective + g`), each from the moment the last backward has made that group's
   * gradient final. Absent: one pipeline.
   */
  dataParallel?: { transport: Transport; firstCollective: number };
  /** The learning rate of 0-based step `step` (the recipe's schedule). Default: the optimizer's own. */
  learningRate?: (step: number) => number;
  /**
   * Clip the whole model's gradient to this L2 norm (0 or absent: no clipping). Needs `pipelineGroup`
   * when there is more than one stage: the squared norms are summed over it (collective + 3).
   */
  clipNorm?: number;
  /**
   * Forwards the stage may run ahead of its schedule while a gradient is on its way (the executor's
   * `ahead`: one activation set more each; backwards keep their order, so the result is unchanged).
   */
  ahead?: number;
  /** This pipeline's own stages as a transport (a GroupTransport; rank = stage). */
  pipelineGroup?: Transport;
  onEvent?: PipelineListener;
}

export interface PipelineStepReport {
  step: number;
  /** The last stage: mean loss of the step's global batch. */
  loss?: number;
  events: PipelineEvent[];
}

export class PipelineTrainer {
  private completed = 0;

  constructor(private readonly o: PipelineTrainerOptions) {
    if (o.batches.microBatches < 1) throw new RangeError('a pipeline needs at least one micro-batch');
    if (o.optimizer.stateRange.length !== o.stage.layout.totalLength) throw new Error("the stage's optimizer must hold the state of the stage's whole layout");
  }

  get step(): number {
    return this.completed;
  }

  /** A resumed run continues from its checkpoint's step (src/train/checkpoint.ts restoreCheckpoint). */
  set step(value: number) {
    if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`step must be an integer >= 0, got ${value}`);
    this.completed = value;
  }

  async trainStep(): Promise<PipelineStepReport> {
    const { backend: b, stage, batches, optimizer } = this.o;
    const step = this.completed;
    const M = batches.microBatches;
    const weight = batches.shareWeight ?? 1;
    const model = stage.model;
    b.fill(viewOf(model.grads), 0);
    let lossSum = 0;
    let lossCount = 0;
    const delay = async (kind: 'forward' | 'backward', micro: number) => {
      const ms = this.o.computeDelayMs?.(kind, micro) ?? 0;
      if (ms > 0) await new Promise((resolve) => setTimeout(resolve, ms));
    };
    // A layer group's gradient is whole once the last backward (backwards run in micro-batch order)
    // has recorded the ops that finish it: from then its all-reduce over the stage's replicas runs
    // beside the rest of that backward and of the schedule.
    const collective = this.o.collective ?? 0;
    const replicas = this.replicaAverages(step);
    // Each op is submitted and its output's read-back started (the copy is recorded now, so the
    // activation set can be released or reused by the next op); the executor goes on while it runs.
    const compute: StageCompute = {
      forward: async (micro, input) => {
        const batch = batches.next(step, micro);
        const rows = model.lossRowsOf(batch);
        const out = stage.forward(micro, batch, weight / (rows * M), input);
        await delay('forward', micro);
        if (out.output) return { pending: b.read(out.output) };
        const losses = b.read(viewOf(out.result!.losses.buf, out.result!.losses.offset, rows));
        return {
          pending: losses.then((values) => {
            for (const v of values) lossSum += v;
            lossCount += rows;
            return undefined;
          }),
        };
      },
      backward: async (micro, outputGrad) => {
        const inputGrad = stage.backward(micro, outputGrad, micro === M - 1 ? replicas.hooks : undefined);
        await delay('backward', micro);
        // On the first stage nothing is read back: the op ends when the device has run it.
        const grad = inputGrad ? b.read(inputGrad) : b.flush().then(() => undefined);
        stage.release(micro);
        return { pending: grad };
      },
    };
    const events = await runStageSchedule(stageSchedule(this.o.schedule, stage.stages, stage.stage, M), compute, {
      transport: this.o.transport,
      round: step,
      collective,
      rankOfStage: this.o.rankOfStage,
      onEvent: this.o.onEvent,
      ahead: this.o.ahead,
    });
    // Averaged within the stage's group first, then the tied copies summed: the two ends then add the
    // same two vectors (in one order) whatever the group's ring did, so their copies stay equal.
    events.push(...(await replicas.finish()));
    await this.sumTiedGradients(step, collective + 1);
    if (this.o.clipNorm) await this.clip(step, this.o.clipNorm, collective + 3);
    optimizer.update(model.params, model.grads, step + 1, this.o.learningRate?.(step) ?? optimizer.config.lr);
    await b.flush();
    this.completed++;
    return { step, events, ...(lossCount > 0 ? { loss: lossSum / lossCount } : {}) };
  }

  /**
   * Scales the stage's gradient by the factor one tab's clip of the whole gradient would use: the
   * stages' squared norms summed over the pipeline (group-clip.ts), the tied copies counted once (the
   * first stage's), every stage scaling by the same factor.
   */
  private async clip(step: number, maxNorm: number, collective: number): Promise<void> {
    const { backend, stage } = this.o;
    const group = this.o.pipelineGroup;
    if (stage.stages > 1 && !group) throw new Error('clipping a pipeline needs its stages as a transport (pipelineGroup)');
    if (group && group.rank !== stage.stage) throw new Error(`the pipeline group's rank ${group.rank} is not the stage ${stage.stage}`);
    const tied = new Set(stage.isFirst ? [] : stage.model.tiedTensors);
    await clipOverGroup({
      backend,
      grads: stage.model.grads,
      entries: stage.layout.entries,
      counts: (name) => !tied.has(name),
      group: group ?? singleTab,
      maxNorm,
      round: step,
      collective,
    });
  }

  /**
   * The step's averages over the stage's replicas: `hooks` for the last backward (a layer group's
   * all-reduce starts once every tensor of the group is announced), `finish` starts the groups not
   * announced and waits for all. Without replicas: no hooks, nothing to wait for.
   */
  private replicaAverages(step: number): { hooks?: GradHooks; finish: () => Promise<PipelineEvent[]> } {
    const dp = this.o.dataParallel;
    if (!dp || dp.transport.world === 1) return { finish: async () => [] };
    const events: PipelineEvent[] = [];
    const { backend: b, stage } = this.o;
    const layout = stage.layout;
    const announced = new Map<string, FlatRange[]>();
    const running = new Map<string, Promise<void>>();
    const start = (group: string): void => {
      if (running.has(group)) return;
      const index = layout.groups.findIndex((g) => g.name === group);
      const range = layout.groups[index].range;
      const view = viewOf(stage.model.grads, range.offset, range.length);
      const read = b.read(view);
      const tStart = performance.now();
      const done = read.then(async (data) => {
        await runAllReduce(dp.transport, data, { round: step, collective: dp.firstCollective + index, average: true });
        b.write(view, data);
        const event: PipelineEvent = { type: 'pipeline', kind: 'allreduce', stage: stage.stage, micro: index, group, bytes: data.byteLength, round: step, tStart, tEnd: performance.now() };
        events.push(event);
        this.o.onEvent?.(event);
      });
      done.catch(() => undefined); // awaited in finish
      running.set(group, done);
    };
    const hooks: GradHooks = {
      onGradReady: (range, group) => {
        const ranges = announced.get(group) ?? [];
        ranges.push(range);
        announced.set(group, ranges);
        if (layout.entries.every((e) => e.group !== group || coveredBy(ranges, e))) start(group);
      },
    };
    const finish = async (): Promise<PipelineEvent[]> => {
      for (const g of layout.groups) start(g.name);
      await Promise.all(running.values());
      return events;
    };
    return { hooks, finish };
  }

  /**
   * The GPT's wte lives on the first stage (embedding) and the last (head): each sends its gradient to
   * the other and both add the two in one order (first + last), so both copies get the same bits and,
   * updated from the same state, stay equal.
   */
  private async sumTiedGradients(step: number, collective: number): Promise<void> {
    const { backend: b, stage, transport } = this.o;
    const tied = stage.model.tiedTensors;
    if (tied.length === 0) return;
    const rankOf = this.o.rankOfStage ?? ((s: number) => s);
    const peer = rankOf(stage.isFirst ? stage.stages - 1 : 0);
    for (const [i, name] of tied.entries()) {
      const e = entry(stage.layout, name);
      const view = viewOf(stage.model.grads, e.offset, e.length);
      const own = await b.read(view);
      const tag = pipelineTag(step, collective, i, 'grad');
      const [, payload] = await Promise.all([transport.send(peer, tag, new Uint8Array(own.buffer, own.byteOffset, own.byteLength)), transport.recv(peer, tag)]);
      if (payload.byteLength !== own.byteLength) throw new RangeError(`tied ${name}: got ${payload.byteLength} bytes from the other end, hold ${own.byteLength}`);
      // A copy of its own: the payload may view a larger frame (and a Buffer's slice() is a view too).
      const other = new Float32Array(new Uint8Array(payload).buffer);
      const [first, last] = stage.isFirst ? [own, other] : [other, own];
      const sum = new Float32Array(own.length);
      for (let k = 0; k < sum.length; k++) sum[k] = first[k] + last[k];
      b.write(view, sum);
    }
  }
}
