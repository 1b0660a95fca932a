// One classroom pipeline lesson on one stage (= rank): a tiny linear model split into one D x D layer
// per tab runs a real pipeline schedule (pipeline-schedules.ts) through the very executor pipeline runs
// use (runStageSchedule), over the room's transport, one op of the whole pipeline per release of the
// teacher's tab. The stage that runs an op reports what it really computed, sent or received; every tab
// shows those reports, so every number on screen is one a tab held.
//
// The lesson as data: stage s holds W_s (D x D); stage 0 feeds micro-batch m's input x_m, the last
// stage's loss is 0.5 |y_m - t_m|^2. Forward y = W_s x; backward: gradient out dL/dx = W_s^T g, weight
// gradient dL/dW_s += g x^T. Small integers throughout, so float32 holds every value exactly and a
// student can check the arithmetic by hand. The order of ops across stages is one sequential run of
// the schedule (lessonOrder): each op is released only when what it receives has been sent.
import type { Transport, MessageTag } from '../collective/types';
import { runStageSchedule, type StageCompute } from '../collective/pipeline-executor';
import { pipelineSchedules, simulate, type PipelineOp, type PipelineOpKind, type PipelineScheduleKind, type StageSchedule } from '../collective/pipeline-schedules';
import { CLASSROOM_COLLECTIVE, type LessonTensor, type OpMessage } from './classroom-protocol';
import { GatedLesson, type LessonMembership } from './lesson-steps';
import type { PipelineLessonEvent, PipelineLessonReport } from '../shared/events';

/** Width of every activation: two numbers, enough to see a matrix act, few enough to read aloud. */
export const LESSON_WIDTH = 2;

export interface StageSetup {
  /** W_s, row-major D x D. */
  weights: number[];
  /** Stage 0: each micro-batch's input. */
  inputs?: number[][];
  /** Last stage: each micro-batch's target. */
  targets?: number[][];
}

/** Stage `stage`'s numbers in lesson `lesson`: digits from -1 to 2 for weights, 1 to 3 for inputs, 0 to 2 for targets. */
export function stageSetup(lesson: number, stage: number, stages: number, micro: number): StageSetup {
  const digit = (i: number, mod: number) => (((lesson * 7 + stage * 5 + i * 5) % mod) + mod) % mod;
  const D = LESSON_WIDTH;
  const setup: StageSetup = { weights: Array.from({ length: D * D }, (_, i) => digit(i, 4) - 1) };
  if (stage === 0) setup.inputs = Array.from({ length: micro }, (_, m) => Array.from({ length: D }, (_, i) => digit(10 + m * D + i, 3) + 1));
  if (stage === stages - 1) setup.targets = Array.from({ length: micro }, (_, m) => Array.from({ length: D }, (_, i) => digit(20 + m * D + i, 3)));
  return setup;
}

/**
 * One sequential order of every stage's ops: among the ops that can run (a receive only once its
 * message was sent), the one the ideal timeline starts first, the lower stage on a tie. Returns, per
 * lesson step k >= 1, the stage and the index of the op in that stage's list.
 */
export function lessonOrder(schedules: readonly StageSchedule[]): { stage: number; index: number }[] {
  const ideal = simulate(schedules).timeline;
  const next = schedules.map(() => 0);
  const sent = new Set<string>();
  const key = (from: number, to: number, op: PipelineOp) => `${op.kind.endsWith('activation') ? 'a' : 'g'}${op.micro}:${from}>${to}`;
  const order: { stage: number; index: number }[] = [];
  const total = schedules.reduce((n, s) => n + s.ops.length, 0);
  while (order.length < total) {
    let pick = -1;
    for (let s = 0; s < schedules.length; s++) {
      const op = schedules[s].ops[next[s]];
      if (!op) continue;
      if (op.kind.startsWith('recv') && !sent.has(key(op.peer ?? -1, s, op))) continue;
      if (pick < 0 || ideal[s][next[s]].start < ideal[pick][next[pick]].start) pick = s;
    }
    if (pick < 0) throw new Error('the pipeline schedule cannot run to the end');
    const op = schedules[pick].ops[next[pick]];
    if (op.kind.startsWith('send')) sent.add(key(pick, op.peer ?? -1, op));
    order.push({ stage: pick, index: next[pick]++ });
  }
  return order;
}

const matVec = (w: readonly number[], x: ArrayLike<number>, transpose: boolean): Float32Array => {
  const D = LESSON_WIDTH;
  const y = new Float32Array(D);
  for (let i = 0; i < D; i++) for (let j = 0; j < D; j++) y[i] += (transpose ? w[j * D + i] : w[i * D + j]) * x[j];
  return y;
};

export interface PipelineLessonSetup extends LessonMembership {
  schedule: PipelineScheduleKind;
  micro: number;
  publish(event: PipelineLessonEvent): void;
}

/** Keeps what each message carried, so a send or receive can be reported as it was on the wire. */
class RecordingTransport implements Transport {
  readonly moved = new Map<string, number[]>();
  constructor(private readonly inner: Transport) {}
  get rank(): number {
    return this.inner.rank;
  }
  get world(): number {
    return this.inner.world;
  }
  async send(to: number, tag: MessageTag, payload: Uint8Array): Promise<void> {
    this.moved.set(`send:${tag.chunk}`, floats(payload));
    return this.inner.send(to, tag, payload);
  }
  async recv(from: number, tag: MessageTag): Promise<Uint8Array> {
    const payload = await this.inner.recv(from, tag);
    this.moved.set(`recv:${tag.chunk}`, floats(payload));
    return payload;
  }
}

function floats(payload: Uint8Array): number[] {
  const copy = new Float32Array(payload.byteLength / 4);
  new Uint8Array(copy.buffer).set(payload.subarray(0, copy.byteLength));
  return Array.from(copy);
}

export class PipelineLesson extends GatedLesson<PipelineLessonReport> {
  readonly stages: number;
  readonly runId: string;
  /** Lesson steps: one per op of every stage. */
  readonly steps: number;
  private readonly schedules: StageSchedule[];
  /** Lesson step k (1-based) of each op of this stage's list. */
  private readonly stepOfOp: number[];
  /** Stage that runs each lesson step (index k - 1). */
  private readonly ownerOfStep: number[];

  constructor(private readonly setup: PipelineLessonSetup) {
    super(setup);
    this.stages = setup.members.length;
    this.schedules = pipelineSchedules(setup.schedule, this.stages, setup.micro);
    const order = lessonOrder(this.schedules);
    this.steps = order.length;
    this.ownerOfStep = order.map((o) => o.stage);
    this.stepOfOp = [];
    order.forEach((o, k) => {
      if (o.stage === this.rank) this.stepOfOp[o.index] = k + 1;
    });
    this.runId = `${setup.lesson}:pipeline`;
  }

  // Step 0 is every stage's setup; an op is reported by the one stage that ran it.
  protected isComplete(step: number): boolean {
    return (this.reports.get(step)?.size ?? 0) >= (step === 0 ? this.stages : 1);
  }

  protected missing(step: number): string {
    return step === 0 ? 'not every stage reported its setup' : `stage ${this.ownerOfStep[step - 1]} did not report its op`;
  }

  /** Runs this stage's part to the end (or until aborted, which rejects). */
  async run(): Promise<void> {
    const { lesson, micro } = this.setup;
    const numbers = stageSetup(lesson, this.rank, this.stages, micro);
    const last = this.rank === this.stages - 1;
    const setupTensors: LessonTensor[] = [{ name: 'W', values: numbers.weights }];
    numbers.inputs?.forEach((x, m) => setupTensors.push({ name: `x${m}`, values: x }));
    numbers.targets?.forEach((t, m) => setupTensors.push({ name: `target${m}`, values: t }));
    this.report({ step: 0, rank: this.rank, tensors: setupTensors });

    const held = new Map<number, Float32Array>();
    const seeds = new Map<number, Float32Array>();
    const weightGrad = new Float32Array(LESSON_WIDTH * LESSON_WIDTH);
    let computed: LessonTensor[] = [];
    const compute: StageCompute = {
      forward: async (m, input) => {
        const x = input ?? Float32Array.from(numbers.inputs![m]);
        const y = matVec(numbers.weights, x, false);
        held.set(m, x);
        computed = [
          { name: 'input', values: Array.from(x) },
          { name: 'output', values: Array.from(y) },
        ];
        if (!last) return y;
        const t = numbers.targets![m];
        const g = y.map((v, i) => v - t[i]);
        seeds.set(m, g);
        computed.push({ name: 'loss', values: [0.5 * g.reduce((s, v) => s + v * v, 0)] });
        return undefined;
      },
      backward: async (m, outputGrad) => {
        const g = outputGrad ?? seeds.get(m)!;
        const x = held.get(m)!;
        held.delete(m);
        for (let i = 0; i < LESSON_WIDTH; i++) for (let j = 0; j < LESSON_WIDTH; j++) weightGrad[i * LESSON_WIDTH + j] += g[i] * x[j];
        const gx = matVec(numbers.weights, g, true);
        computed = [{ name: 'output grad', values: Array.from(g) }];
        if (this.rank > 0) computed.push({ name: 'input grad', values: Array.from(gx) });
        computed.push({ name: 'W grad (sum)', values: Array.from(weightGrad) });
        return this.rank > 0 ? gx : undefined;
      },
    };
    const transport = new RecordingTransport(this.setup.transport);
    let current = -1;
    await runStageSchedule(this.schedules[this.rank], compute, {
      transport,
      round: lesson,
      collective: CLASSROOM_COLLECTIVE,
      beforeOp: (_op, index) => {
        current = index;
        return this.gate.releasedUpTo(this.stepOfOp[index]);
      },
      // The executor runs the list strictly in order: the event is that of the op last let through.
      onEvent: (e) => {
        if (e.kind === 'allreduce') return; // a lesson is one pipeline: no replicas to average over
        const step = this.stepOfOp[current];
        const chunk = e.micro * 2 + (e.kind.endsWith('grad') ? 1 : 0);
        const tensors =
          e.kind === 'forward' || e.kind === 'backward'
            ? computed
            : [{ name: e.kind.endsWith('grad') ? 'gradient' : 'activation', values: transport.moved.get(`${e.kind.startsWith('send') ? 'send' : 'recv'}:${chunk}`) ?? [] }];
        this.report({ step, rank: this.rank, op: { kind: e.kind, micro: e.micro, ...(e.peer !== undefined ? { peer: e.peer } : {}) }, tensors });
      },
    });
  }

  /** Another stage's report. Returns a reason when it cannot be used. */
  receiveOp(from: string, message: OpMessage): string | null {
    if (this.setup.members[message.rank] !== from) return `classroom: peer ${from} reported as stage ${message.rank}`;
    if (message.step > this.steps) return `classroom: step ${message.step} is past the lesson's ${this.steps}`;
    let expectedOp: PipelineOpKind | undefined;
    if (message.step > 0) {
      if (this.ownerOfStep[message.step - 1] !== message.rank) return `classroom: step ${message.step} is stage ${this.ownerOfStep[message.step - 1]}'s op, not stage ${message.rank}'s`;
      const index = this.ownerOfStep.slice(0, message.step - 1).filter((stage) => stage === message.rank).length;
      const expected = this.schedules[message.rank].ops[index];
      if (!expected || !message.op || expected.kind !== message.op.kind || expected.micro !== message.op.micro) return `classroom: step ${message.step} reports another op than the schedule's`;
      expectedOp = expected.kind;
    }
    const op = message.op && expectedOp ? { op: { ...message.op, kind: expectedOp } } : {};
    this.record({ step: message.step, rank: message.rank, ...op, tensors: message.tensors });
    return null;
  }

  // --- internals -----------------------------------------------------------------------------------

  private report(report: PipelineLessonReport): void {
    const message: OpMessage = { kind: 'op', lesson: this.setup.lesson, ...report };
    this.tellOthers(message);
    this.record(report);
  }

  private record(report: PipelineLessonReport): void {
    if (!this.keep(report.step, report.rank, report)) return;
    this.setup.publish({
      type: 'pipeline-lesson',
      runId: this.runId,
      schedule: this.setup.schedule,
      stages: this.stages,
      micro: this.setup.micro,
      steps: this.steps,
      stage: this.rank,
      teaching: this.teaching,
      report,
    });
    this.gate.reported(report.step);
  }
}
