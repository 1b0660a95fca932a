// What the dashboard's pipeline timeline draws, computed from one recorded step's real events
// (src/store/pipeline-slice.ts) and, beside it, the ideal timeline of the same schedule
// (src/collective/pipeline-schedules.ts simulate). Pure, so the view only lays out what this returns.
//
// One clock: each tab stamps its events on its own performance.now(); tStart + clockOffsetMs (the tab's
// performance.timeOrigin, events.ts) is epoch milliseconds, the one axis all tabs' events are drawn
// on. An event without clockOffsetMs is taken to be on this tab's clock (offset 0): a tab's own events
// and events from tabs of one process agree. Tabs on different machines agree only as far as their wall
// clocks do; the view says so.
//
// Nothing is drawn that did not happen: a block is a forward or backward event's [tStart, tEnd]; a row's
// idle time is the step's span less its compute; the measured bubble is measureTimeline's
// (pipeline-timeline.ts) over the rows present. The schedule is recognised, not assumed: a stage's
// recorded ops must be GPipe's or 1F1B's list for that stage (its forwards and backwards in the list's
// order; see recognise) for the ideal to be drawn.
// In a DP x PP room a stage's gradient all-reduces over its replicas (one per layer group, 'allreduce'
// events) run beside the schedule: they are returned as blocks of their own on their row, on the same
// clock, and left out of the schedule's recognition and of the bubble.
import type { PipelineEvent } from '../collective/pipeline-executor';
import { idealBubbleFraction, pipelineSchedules, PIPELINE_SCHEDULES, simulate, type PipelineScheduleKind } from '../collective/pipeline-schedules';
import { measureTimeline } from '../collective/pipeline-timeline';
import type { PipelineLabEvent } from '../shared/events';

export interface TimelineBlock {
  /** Row index (see TimelineRow). */
  row: number;
  kind: 'forward' | 'backward';
  micro: number;
  /** From the start of the span: milliseconds (measured) or schedule time units (ideal). */
  start: number;
  end: number;
}

/** One layer group's gradient all-reduce over the stage's replicas, as it ran (ms from the span's start). */
export interface AllReduceBlock {
  row: number;
  /** The layer group's index in the stage's layout. */
  group: number;
  start: number;
  end: number;
}

export interface TimelineRow {
  rank: number;
  stage: number;
  busyMs: number;
  idleMs: number;
  /** Ops this row has reported for the step so far. */
  ops: number;
  /** Ops its stage's schedule has, once the schedule is recognised. */
  expectedOps: number | null;
}

export interface MeasuredStep {
  round: number;
  spanMs: number;
  rows: TimelineRow[];
  blocks: TimelineBlock[];
  /** measureTimeline's bubble over the rows present. */
  bubbleFraction: number;
  /** DP x PP: the replica all-reduces recorded (empty in a room of one pipeline). */
  allReduces: AllReduceBlock[];
  /** Where the last op or all-reduce ends (ms from the span's start): the time axis to draw. */
  drawnSpanMs: number;
  /** Stages: the plan's, or the highest stage seen + 1. */
  stages: number;
  /** Micro-batches: the plan's, or the highest micro-batch seen + 1. */
  micro: number;
  /** The schedule every row's ops match, or null when they match none (or the step is partial). */
  schedule: PipelineScheduleKind | null;
  /** Every stage 0..stages-1 has a row and every row has all of its schedule's ops. */
  complete: boolean;
  /** Every row present has all of its schedule's ops (some stages may have no row here). */
  rowsComplete: boolean;
}

export interface IdealStep {
  schedule: PipelineScheduleKind;
  stages: number;
  micro: number;
  makespan: number;
  blocks: TimelineBlock[];
  bubbleFraction: number;
  /** (P-1)/(M+P-1). */
  formula: number;
}

const isCompute = (kind: string): kind is 'forward' | 'backward' => kind === 'forward' || kind === 'backward';
const epoch = (t: number, e: PipelineLabEvent): number => t + (e.clockOffsetMs ?? 0);

const opKey = (op: { kind: string; micro: number }) => `${op.kind} ${op.micro}`;

/**
 * The schedules whose op list for `stage` has exactly the ops of `ops` (kind and micro-batch) with its
 * forwards and backwards in the same order. The computes' order is what tells the schedules apart, and
 * it is reliable: a compute is stamped when submitted, in the list's order. A send or receive is not
 * held to its place: it is stamped at its turn, often within the clock's resolution of its neighbour
 * (100 µs in a page that is not cross-origin isolated), and such ties come out in the order the ops
 * finished, not the list's.
 */
function recognise(ops: readonly PipelineLabEvent[], stages: number, stage: number, micro: number): PipelineScheduleKind[] {
  const all = (list: readonly { kind: string; micro: number }[]) => list.map(opKey).sort().join();
  const computes = (list: readonly { kind: string; micro: number }[]) => list.filter((op) => isCompute(op.kind)).map(opKey).join();
  return PIPELINE_SCHEDULES.filter((kind) => {
    const expected = pipelineSchedules(kind, stages, micro)[stage].ops;
    return expected.length === ops.length && all(expected) === all(ops) && computes(expected) === computes(ops);
  });
}

/** The run's shape when the caller knows it (from the run's settings). */
export interface PipelinePlan {
  stages: number;
  micro: number;
}

/**
 * Without `plan`, the stages and micro-batches are the highest seen + 1: they undercount while only
 * part of a step is here (the first micro-batches' ops of a stage can look like a whole step of fewer).
 */
export function measureStep(round: number, recorded: readonly PipelineLabEvent[], plan?: PipelinePlan): MeasuredStep | null {
  const events = recorded.filter((e) => e.kind !== 'allreduce');
  if (events.length === 0) return null;
  const stages = Math.max(plan?.stages ?? 0, ...events.map((e) => e.stage + 1));
  const micro = Math.max(plan?.micro ?? 0, ...events.map((e) => e.micro + 1));
  const ranks = [...new Set(events.map((e) => e.rank))];
  const stageOf = new Map(ranks.map((rank) => [rank, events.find((e) => e.rank === rank)!.stage]));
  ranks.sort((a, b) => stageOf.get(a)! - stageOf.get(b)! || a - b);
  const rowOf = new Map(ranks.map((rank, row) => [rank, row]));
  const start = Math.min(...events.map((e) => epoch(e.tStart, e)));
  // In each row's op order (the executor runs a stage's list strictly in order).
  const byRow = ranks.map((rank) => events.filter((e) => e.rank === rank).sort((a, b) => epoch(a.tStart, a) - epoch(b.tStart, b)));
  // Rows as stages of one timeline on one clock: measureTimeline then gives busy, idle and the bubble.
  const onOneClock: PipelineEvent[] = events.map((e) => ({
    type: 'pipeline',
    kind: e.kind,
    stage: rowOf.get(e.rank)!,
    micro: e.micro,
    round: e.round,
    tStart: epoch(e.tStart, e) - start,
    tEnd: epoch(e.tEnd, e) - start,
  }));
  const measured = measureTimeline(onOneClock, ranks.length);
  const candidates = byRow.map((ops, row) => recognise(ops, stages, stageOf.get(ranks[row])!, micro));
  const common = PIPELINE_SCHEDULES.filter((kind) => candidates.every((c) => c.includes(kind)));
  // For some shapes both lists coincide (M = 1, or P = 1): GPipe names them then.
  const schedule = common[0] ?? null;
  const stagesPresent = new Set(stageOf.values());
  const complete = schedule !== null && Array.from({ length: stages }, (_, s) => stagesPresent.has(s)).every(Boolean);
  const rows: TimelineRow[] = ranks.map((rank, row) => ({
    rank,
    stage: stageOf.get(rank)!,
    busyMs: measured.stages[row].busyMs,
    idleMs: measured.stages[row].idleMs,
    ops: byRow[row].length,
    expectedOps: schedule ? pipelineSchedules(schedule, stages, micro)[stageOf.get(rank)!].ops.length : null,
  }));
  const blocks: TimelineBlock[] = onOneClock.flatMap((e) =>
    isCompute(e.kind) ? [{ row: e.stage, kind: e.kind, micro: e.micro, start: e.tStart, end: e.tEnd }] : [],
  );
  // An all-reduce of a rank with no op here yet has no row to sit on: it waits for the row.
  const allReduces: AllReduceBlock[] = recorded.flatMap((e) =>
    e.kind === 'allreduce' && rowOf.has(e.rank) ? [{ row: rowOf.get(e.rank)!, group: e.micro, start: epoch(e.tStart, e) - start, end: epoch(e.tEnd, e) - start }] : [],
  );
  const drawnSpanMs = Math.max(measured.spanMs, ...allReduces.map((a) => a.end));
  return { round, spanMs: measured.spanMs, rows, blocks, bubbleFraction: measured.bubbleFraction, allReduces, drawnSpanMs, stages, micro, schedule, complete, rowsComplete: schedule !== null };
}

/** The schedule's ideal timeline (unit forward and backward, free communication). */
export function idealStep(schedule: PipelineScheduleKind, stages: number, micro: number): IdealStep {
  const run = simulate(pipelineSchedules(schedule, stages, micro));
  const blocks = run.timeline.flatMap((ops, row) =>
    ops.flatMap((op) => (isCompute(op.kind) ? [{ row, kind: op.kind, micro: op.micro, start: op.start, end: op.end }] : [])),
  );
  return { schedule, stages, micro, makespan: run.makespan, blocks, bubbleFraction: run.bubbleFraction, formula: idealBubbleFraction(stages, micro) };
}
