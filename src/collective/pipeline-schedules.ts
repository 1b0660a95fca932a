// Pipeline schedules as data. Each function below is PURE: given (schedule, stages P, stage, micro-batches
// M) it lists, in order, what one stage does in one optimizer step: compute a micro-batch's forward or
// backward, send or receive one activation (forward, to the next stage) or one activation gradient
// (backward, to the previous stage). The executor (pipeline-executor.ts) runs these lists over a
// Transport; the checker and the simulator below prove them sound and give their ideal timeline; the
// tests run them for P = 1..8, M = 1..32. There is no other copy of the schedule logic.
//
// Execution model (the executor's): a stage runs its list strictly in order; a receive blocks until the
// peer's message is there; a send is buffered (it never waits for the receiver), as the transports do.
//
//   gpipe: every forward, then every backward (both in micro-batch order).
//   1f1b:  warm-up of min(P - stage - 1, M) forwards, then one forward and one backward in turn (steady
//          state), then the backwards left (cool-down). A stage holds at most min(P - stage, M)
//          micro-batches' activations instead of GPipe's M; the bubble is the same.
//
// Both run the backwards of a stage in micro-batch order 0..M-1, so each stage accumulates its
// gradients in the order one model with M micro-batches of gradient accumulation does.

export type PipelineScheduleKind = 'gpipe' | '1f1b';

export const PIPELINE_SCHEDULES: readonly PipelineScheduleKind[] = ['gpipe', '1f1b'];

export type PipelineOpKind = 'forward' | 'backward' | 'send-activation' | 'recv-activation' | 'send-grad' | 'recv-grad';

export interface PipelineOp {
  kind: PipelineOpKind;
  micro: number;
  /** The stage sent to or received from (absent for compute ops). */
  peer?: number;
}

export interface StageSchedule {
  schedule: PipelineScheduleKind;
  stages: number;
  stage: number;
  micro: number;
  ops: PipelineOp[];
}

function checkShape(stages: number, stage: number, micro: number): void {
  if (!Number.isSafeInteger(stages) || stages < 1) throw new RangeError(`stages must be an integer >= 1, got ${stages}`);
  if (!Number.isSafeInteger(stage) || stage < 0 || stage >= stages) throw new RangeError(`stage must be an integer in [0, ${stages}), got ${stage}`);
  if (!Number.isSafeInteger(micro) || micro < 1) throw new RangeError(`micro-batches must be an integer >= 1, got ${micro}`);
}

/** Builds one stage's list from its forward and backward steps (each with the messages around it). */
class OpList {
  readonly ops: PipelineOp[] = [];
  constructor(private readonly stages: number, private readonly stage: number) {}

  private get first(): boolean {
    return this.stage === 0;
  }
  private get last(): boolean {
    return this.stage === this.stages - 1;
  }

  recvActivation(m: number): void {
    if (!this.first) this.ops.push({ kind: 'recv-activation', micro: m, peer: this.stage - 1 });
  }
  forwardAndSend(m: number): void {
    this.ops.push({ kind: 'forward', micro: m });
    if (!this.last) this.ops.push({ kind: 'send-activation', micro: m, peer: this.stage + 1 });
  }
  recvGrad(m: number): void {
    if (!this.last) this.ops.push({ kind: 'recv-grad', micro: m, peer: this.stage + 1 });
  }
  backwardAndSend(m: number): void {
    this.ops.push({ kind: 'backward', micro: m });
    if (!this.first) this.ops.push({ kind: 'send-grad', micro: m, peer: this.stage - 1 });
  }
}

/** GPipe: all M forwards, then all M backwards. */
export function gpipeSchedule(stages: number, stage: number, micro: number): StageSchedule {
  checkShape(stages, stage, micro);
  const list = new OpList(stages, stage);
  for (let m = 0; m < micro; m++) {
    list.recvActivation(m);
    list.forwardAndSend(m);
  }
  for (let m = 0; m < micro; m++) {
    list.recvGrad(m);
    list.backwardAndSend(m);
  }
  return { schedule: 'gpipe', stages, stage, micro, ops: list.ops };
}

/** Forwards a stage runs before its first backward under 1F1B. */
export function warmupForwards(stages: number, stage: number, micro: number): number {
  return Math.min(stages - stage - 1, micro);
}

/** 1F1B (PipeDream-Flush, Megatron's non-interleaved schedule): warm-up, one forward one backward, cool-down. */
export function oneFOneBSchedule(stages: number, stage: number, micro: number): StageSchedule {
  checkShape(stages, stage, micro);
  const list = new OpList(stages, stage);
  const warmup = warmupForwards(stages, stage, micro);
  const steady = micro - warmup;
  for (let m = 0; m < warmup; m++) {
    list.recvActivation(m);
    list.forwardAndSend(m);
  }
  if (steady > 0) list.recvActivation(warmup);
  for (let i = 0; i < steady; i++) {
    list.forwardAndSend(warmup + i);
    list.recvGrad(i);
    list.backwardAndSend(i);
    if (i < steady - 1) list.recvActivation(warmup + i + 1);
  }
  for (let m = steady; m < micro; m++) {
    list.recvGrad(m);
    list.backwardAndSend(m);
  }
  return { schedule: '1f1b', stages, stage, micro, ops: list.ops };
}

export function stageSchedule(kind: PipelineScheduleKind, stages: number, stage: number, micro: number): StageSchedule {
  if (kind === 'gpipe') return gpipeSchedule(stages, stage, micro);
  if (kind === '1f1b') return oneFOneBSchedule(stages, stage, micro);
  throw new RangeError(`unknown pipeline schedule "${String(kind)}" (expected ${PIPELINE_SCHEDULES.join(' or ')})`);
}

/** The lists of every stage of one pipeline. */
export function pipelineSchedules(kind: PipelineScheduleKind, stages: number, micro: number): StageSchedule[] {
  return Array.from({ length: stages }, (_, stage) => stageSchedule(kind, stages, stage, micro));
}

/** Micro-batches whose forward has run and whose backward has not, at most, over the list: activations held. */
export function peakInFlight(schedule: StageSchedule): number {
  let live = 0;
  let peak = 0;
  for (const op of schedule.ops) {
    if (op.kind === 'forward') peak = Math.max(peak, ++live);
    if (op.kind === 'backward') live--;
  }
  return peak;
}

/** The formula peakInFlight must meet: GPipe M, 1F1B min(P - stage, M). */
export function expectedPeakInFlight(kind: PipelineScheduleKind, stages: number, stage: number, micro: number): number {
  return kind === 'gpipe' ? micro : Math.min(stages - stage, micro);
}

/** The bubble fraction of the ideal pipeline (equal stage costs, free communication): (P-1)/(M+P-1). */
export function idealBubbleFraction(stages: number, micro: number): number {
  return (stages - 1) / (micro + stages - 1);
}

// --- checking ----------------------------------------------------------------------------------------

const messageKey = (from: number, to: number, kind: 'activation' | 'grad', micro: number): string => `${kind} ${micro}: ${from}->${to}`;

/**
 * Rules the executor relies on, over the lists of ALL stages of one pipeline; returns the problems found
 * (empty when sound): on each stage every micro-batch is forwarded once and backwarded once, forward
 * before backward, an activation received before its forward and sent after it, a gradient received
 * before its backward and sent after it; messages only between neighbours, each send matched by exactly
 * one receive; and no deadlock (simulate() completes).
 */
export function checkPipeline(schedules: readonly StageSchedule[]): string[] {
  const problems: string[] = [];
  const P = schedules.length;
  schedules.forEach((s, i) => {
    if (s.stage !== i || s.stages !== P) problems.push(`list ${i} is for stage ${s.stage}/${s.stages} of a ${P}-stage pipeline`);
    if (s.micro !== schedules[0].micro) problems.push(`stage ${i} has ${s.micro} micro-batches, stage 0 ${schedules[0].micro}`);
  });
  if (problems.length) return problems;
  const sent = new Map<string, number>();
  const received = new Map<string, number>();
  for (const s of schedules) {
    const at = (kind: PipelineOpKind, m: number) => s.ops.findIndex((op) => op.kind === kind && op.micro === m);
    const count = (kind: PipelineOpKind, m: number) => s.ops.filter((op) => op.kind === kind && op.micro === m).length;
    const name = `stage ${s.stage}`;
    for (let m = 0; m < s.micro; m++) {
      for (const kind of ['forward', 'backward'] as const) if (count(kind, m) !== 1) problems.push(`${name}: ${kind} of micro-batch ${m} runs ${count(kind, m)} times`);
      const [f, b] = [at('forward', m), at('backward', m)];
      if (f > b) problems.push(`${name}: backward of micro-batch ${m} before its forward`);
      const around: [PipelineOpKind, boolean, number, string][] = [
        ['recv-activation', s.stage > 0, f, 'before its forward'],
        ['send-activation', s.stage < P - 1, f, 'after its forward'],
        ['recv-grad', s.stage < P - 1, b, 'before its backward'],
        ['send-grad', s.stage > 0, b, 'after its backward'],
      ];
      for (const [kind, needed, anchor, where] of around) {
        const n = count(kind, m);
        if (n !== (needed ? 1 : 0)) {
          problems.push(`${name}: ${kind} of micro-batch ${m} appears ${n} times, expected ${needed ? 1 : 0}`);
          continue;
        }
        if (!needed) continue;
        const i = at(kind, m);
        if (kind.startsWith('recv') ? i > anchor : i < anchor) problems.push(`${name}: ${kind} of micro-batch ${m} is not ${where}`);
      }
    }
    for (const op of s.ops) {
      if (op.kind === 'forward' || op.kind === 'backward') continue;
      const toward = op.kind.endsWith('activation') ? 1 : -1;
      const sending = op.kind.startsWith('send');
      const expectedPeer = sending ? s.stage + toward : s.stage - toward;
      if (op.peer !== expectedPeer) problems.push(`stage ${s.stage}: ${op.kind} of micro-batch ${op.micro} with stage ${op.peer}, expected stage ${expectedPeer}`);
      const kind = op.kind.endsWith('activation') ? 'activation' : 'grad';
      const key = sending ? messageKey(s.stage, op.peer ?? -1, kind, op.micro) : messageKey(op.peer ?? -1, s.stage, kind, op.micro);
      const map = sending ? sent : received;
      map.set(key, (map.get(key) ?? 0) + 1);
    }
  }
  for (const [key, n] of sent) if (received.get(key) !== n) problems.push(`${key} sent ${n} times, received ${received.get(key) ?? 0}`);
  for (const [key, n] of received) if (!sent.has(key)) problems.push(`${key} received ${n} times, never sent`);
  if (problems.length) return problems;
  const run = simulate(schedules);
  if (run.deadlock) problems.push(run.deadlock);
  return problems;
}

// --- simulation --------------------------------------------------------------------------------------

export interface OpCosts {
  /** Time units of one forward (default 1): the same on every stage, or one value per stage. */
  forward: number | readonly number[];
  /** Time units of one backward (default 1): the same on every stage, or one value per stage. */
  backward: number | readonly number[];
  /** Time units between a send and the message being receivable (default 0: free communication). */
  transfer: number;
}

export interface TimedOp extends PipelineOp {
  stage: number;
  start: number;
  end: number;
}

export interface SimulatedPipeline {
  /** Every op of every stage with its start and end; receives span the time their stage waited. */
  timeline: TimedOp[][];
  /** When the last stage finished. */
  makespan: number;
  /** Per stage: compute time (forwards and backwards). */
  busy: number[];
  /** 1 - sum(busy) / (P * makespan). */
  bubbleFraction: number;
  /** Set when the stages got stuck (each waits for a message that is never sent). */
  deadlock?: string;
}

/**
 * Runs the stages as processes with blocking receives and buffered sends, under `costs`. It either
 * runs every op of every stage (termination: the lists cannot deadlock) or stops where no stage can go
 * on and says which receives wait. Ready stages run in any order: the times do not depend on it, since
 * a stage's times depend only on its own earlier ops and on when the messages it receives were sent.
 */
export function simulate(schedules: readonly StageSchedule[], costs: Partial<OpCosts> = {}): SimulatedPipeline {
  const c: OpCosts = { forward: 1, backward: 1, transfer: 0, ...costs };
  const P = schedules.length;
  for (const kind of ['forward', 'backward'] as const) {
    const given = c[kind];
    if (typeof given !== 'number' && given.length !== P) throw new RangeError(`${kind} costs: ${given.length} values for ${P} stages`);
  }
  const costOf = (kind: 'forward' | 'backward', stage: number): number => {
    const given = c[kind];
    return typeof given === 'number' ? given : given[stage];
  };
  const next = new Array<number>(P).fill(0);
  const clock = new Array<number>(P).fill(0);
  const busy = new Array<number>(P).fill(0);
  const timeline: TimedOp[][] = schedules.map(() => []);
  /** When each message becomes receivable. */
  const arrivals = new Map<string, number>();
  const key = (from: number, to: number, op: PipelineOp) => messageKey(from, to, op.kind.endsWith('activation') ? 'activation' : 'grad', op.micro);
  let progressed = true;
  while (progressed) {
    progressed = false;
    for (let s = 0; s < P; s++) {
      const ops = schedules[s].ops;
      while (next[s] < ops.length) {
        const op = ops[next[s]];
        let start = clock[s];
        let end = start;
        if (op.kind === 'forward' || op.kind === 'backward') {
          end = start + costOf(op.kind, s);
          busy[s] += costOf(op.kind, s);
        } else if (op.kind.startsWith('send')) {
          arrivals.set(key(s, op.peer ?? -1, op), start + c.transfer);
        } else {
          const arrives = arrivals.get(key(op.peer ?? -1, s, op));
          if (arrives === undefined) break; // blocked on a message not yet sent
          end = Math.max(start, arrives);
        }
        timeline[s].push({ ...op, stage: s, start, end });
        clock[s] = end;
        next[s]++;
        progressed = true;
      }
    }
  }
  const makespan = Math.max(0, ...clock);
  const stuck = schedules.map((sch, s) => ({ s, op: sch.ops[next[s]] })).filter((x) => x.op !== undefined);
  const deadlock = stuck.length
    ? `deadlock: ${stuck.map(({ s, op }) => `stage ${s} waits at ${op.kind} of micro-batch ${op.micro} from stage ${op.peer}`).join('; ')}`
    : undefined;
  const totalBusy = busy.reduce((a, b) => a + b, 0);
  return { timeline, makespan, busy, bubbleFraction: makespan > 0 ? 1 - totalBusy / (P * makespan) : 0, ...(deadlock ? { deadlock } : {}) };
}

// --- printing ----------------------------------------------------------------------------------------

/** One stage's ops as text, one op a line: for logs and tests. */
export function formatStageSchedule(schedule: StageSchedule): string {
  const header = `${schedule.schedule} stage ${schedule.stage}/${schedule.stages}, ${schedule.micro} micro-batches, ${schedule.ops.length} ops`;
  const arrow = (op: PipelineOp) => (op.kind.startsWith('send') ? ` -> s${op.peer}` : op.kind.startsWith('recv') ? ` <- s${op.peer}` : '');
  return [header, ...schedule.ops.map((op, i) => `  ${i} ${op.kind} m${op.micro}${arrow(op)}`)].join('\n');
}

/**
 * The ideal timeline as a stage x time diagram: each column one time unit, "F3"/"B3" a forward or
 * backward of micro-batch 3, "." idle. With unit costs this is the picture every course draws.
 */
export function formatTimeline(schedules: readonly StageSchedule[], costs: Partial<OpCosts> = {}): string {
  const run = simulate(schedules, costs);
  if (run.deadlock) return run.deadlock;
  const width = Math.max(2, String(schedules[0]?.micro ?? 1).length + 1);
  const columns = Math.ceil(run.makespan);
  const rows = run.timeline.map((ops, s) => {
    const cells = new Array<string>(columns).fill('.'.padEnd(width));
    for (const op of ops) {
      if (op.kind !== 'forward' && op.kind !== 'backward') continue;
      for (let t = Math.floor(op.start); t < Math.ceil(op.end); t++) cells[t] = `${op.kind === 'forward' ? 'F' : 'B'}${op.micro}`.padEnd(width);
    }
    return `stage ${s} | ${cells.join(' ')}`;
  });
  const first = schedules[0];
  const P = schedules.length;
  const header = `${first?.schedule ?? '?'} P=${P} M=${first?.micro ?? 0}: ${run.makespan} time units, bubble ${(run.bubbleFraction * 100).toFixed(1)}% (ideal (P-1)/(M+P-1) = ${(idealBubbleFraction(P, first?.micro ?? 1) * 100).toFixed(1)}%)`;
  return [header, ...rows].join('\n');
}
