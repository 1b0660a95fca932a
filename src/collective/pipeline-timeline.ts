// What a pipeline step's real timeline says: per stage the time spent computing (busy: the union of its
// forward and backward events, which overlap while the device works through a submitted op and the
// next) and not (idle), over the span from the first op's start to the last op's end, and the bubble
// fraction 1 - busy / (stages * span), the figure the ideal schedule gives as (P-1)/(M+P-1). Moving
// tensors counts as idle: a send, a receive, a read-back outside a compute. Idle is split into where it
// went: waiting in a receive, before the stage's first op or after its last (the fill and drain of the
// pipeline, and the other stages' tails), and the rest (sends the stage waited for, the executor's own
// time between ops). And the same events drawn as a stage x time diagram, as pipeline-schedules.ts
// draws the ideal timeline. A DP x PP group's gradient all-reduce ('allreduce' events) runs beside the
// schedule and is left out of these figures (the dashboard draws it in its own lane). Pure: it reads PipelineEvents (pipeline-executor.ts) on one shared clock
// (stages in one process; tabs first map their clocks onto one).
//
// Beside the textbook (P-1)/(M+P-1), which assumes equal stages and free messages, the latency-aware
// prediction (predictBubble) replays the schedule as data (pipeline-schedules.ts simulate) with each
// stage's measured compute per forward and backward and a fixed delay per message (the measured
// hand-over): what the schedule gives on these stages and this link. Measured minus theory then splits
// into unequal stages (prediction without delay minus theory), the link (prediction with delay minus
// without) and what neither explains (measured minus prediction).
import type { PipelineEvent } from './pipeline-executor';
import { simulate, type StageSchedule } from './pipeline-schedules';

export interface StageTime {
  stage: number;
  busyMs: number;
  idleMs: number;
  /** Idle time inside receives not overlapped by a compute (waiting for a neighbour's message). */
  recvWaitMs: number;
  /** Idle time before the stage's first op and after its last, within the step's span. */
  edgeMs: number;
  /** The rest of the idle time: between the stage's ops, in neither a compute nor a receive. */
  otherIdleMs: number;
  /** Bytes this stage sent (activations and gradients) in the events measured. */
  bytesSent: number;
}

export interface PipelineTimeline {
  spanMs: number;
  stages: StageTime[];
  bubbleFraction: number;
}

/** Total length of the union of intervals. */
function unionMs(intervals: [number, number][]): number {
  const sorted = intervals.filter(([from, to]) => to > from).sort((x, y) => x[0] - y[0]);
  let total = 0;
  let [from, to] = [Number.NEGATIVE_INFINITY, Number.NEGATIVE_INFINITY];
  for (const [a, b] of sorted) {
    if (a > to) {
      if (to > from) total += to - from;
      [from, to] = [a, b];
    } else to = Math.max(to, b);
  }
  if (to > from) total += to - from;
  return total;
}

const isCompute = (e: PipelineEvent) => e.kind === 'forward' || e.kind === 'backward';

export function measureTimeline(allEvents: readonly PipelineEvent[], stages: number): PipelineTimeline {
  if (!Number.isInteger(stages) || stages < 1) throw new RangeError(`stages must be an integer >= 1, got ${stages}`);
  // The schedule's ops only: a DP x PP all-reduce runs beside the schedule (drawn, not counted here).
  const events = allEvents.filter((e) => e.kind !== 'allreduce');
  if (events.length === 0) throw new Error('no pipeline events to measure');
  for (const e of events) if (!Number.isInteger(e.stage) || e.stage < 0 || e.stage >= stages) throw new RangeError(`event of stage ${e.stage} in a ${stages}-stage pipeline`);
  const start = Math.min(...events.map((e) => e.tStart));
  const end = Math.max(...events.map((e) => e.tEnd));
  const spanMs = end - start;
  const perStage: StageTime[] = Array.from({ length: stages }, (_, stage) => {
    const mine = events.filter((e) => e.stage === stage);
    const computes = mine.filter(isCompute).map((e): [number, number] => [e.tStart, e.tEnd]);
    const busyMs = unionMs(computes);
    const recvs = mine.filter((e) => e.kind === 'recv-activation' || e.kind === 'recv-grad').map((e): [number, number] => [e.tStart, e.tEnd]);
    const recvWaitMs = unionMs([...computes, ...recvs]) - busyMs;
    const active = mine.length > 0 ? Math.max(...mine.map((e) => e.tEnd)) - Math.min(...mine.map((e) => e.tStart)) : 0;
    const edgeMs = spanMs - active;
    const idleMs = spanMs - busyMs;
    const bytesSent = mine.filter((e) => e.kind === 'send-activation' || e.kind === 'send-grad').reduce((sum, e) => sum + (e.bytes ?? 0), 0);
    return { stage, busyMs, idleMs, recvWaitMs, edgeMs, otherIdleMs: idleMs - recvWaitMs - edgeMs, bytesSent };
  });
  const busy = perStage.reduce((sum, s) => sum + s.busyMs, 0);
  return { spanMs, stages: perStage, bubbleFraction: spanMs > 0 ? 1 - busy / (stages * spanMs) : 0 };
}

/**
 * How long each message took from the end of the compute that made it (on the sending stage) to its
 * receive's end, for the receives that had to wait for it (a message that was there before its
 * receive's turn says nothing about the hand-over): the latency a message adds where a stage waits
 * for it, the sender's send, the wire and the receiver's checks together. 1F1B's steady state pays it
 * twice per micro-batch (every op waits for a neighbour's), GPipe's streams hide it.
 */
export function handOverTimes(events: readonly PipelineEvent[]): number[] {
  const made = new Map<string, number>();
  for (const e of events) if (isCompute(e)) made.set(`${e.kind}:${e.stage}:${e.micro}`, e.tEnd);
  const times: number[] = [];
  for (const e of events) {
    const grad = e.kind === 'recv-grad';
    if ((e.kind !== 'recv-activation' && !grad) || e.peer === undefined) continue;
    const producedAt = made.get(`${grad ? 'backward' : 'forward'}:${e.peer}:${e.micro}`);
    if (producedAt !== undefined && producedAt > e.tStart) times.push(e.tEnd - producedAt);
  }
  return times;
}

/**
 * The real timeline as text: `columns` equal slices of the span, each cell the compute that covers most
 * of its slice on that stage ("F3"/"B3": forward/backward of micro-batch 3), "." where the stage computed
 * for less than half of it.
 */
export function formatEventTimeline(events: readonly PipelineEvent[], stages: number, columns = 40): string {
  if (!Number.isInteger(columns) || columns < 1) throw new RangeError(`columns must be an integer >= 1, got ${columns}`);
  const t = measureTimeline(events, stages);
  const start = Math.min(...events.map((e) => e.tStart));
  const slice = t.spanMs / columns;
  const computes = events.filter((e) => e.kind === 'forward' || e.kind === 'backward');
  const width = Math.max(2, ...computes.map((e) => String(e.micro).length + 1));
  const rows = Array.from({ length: stages }, (_, s) => {
    const mine = computes.filter((e) => e.stage === s);
    const cells = Array.from({ length: columns }, (_, c) => {
      const [from, to] = [start + c * slice, start + (c + 1) * slice];
      let best: PipelineEvent | undefined;
      let bestMs = 0;
      for (const e of mine) {
        const overlap = Math.min(to, e.tEnd) - Math.max(from, e.tStart);
        if (overlap > bestMs) [best, bestMs] = [e, overlap];
      }
      const label = best && bestMs >= slice / 2 ? `${best.kind === 'forward' ? 'F' : 'B'}${best.micro}` : '.';
      return label.padEnd(width);
    });
    return `stage ${s} | ${cells.join(' ')}`;
  });
  const header = `measured: ${t.spanMs.toFixed(0)} ms, ${slice.toFixed(1)} ms a column, bubble ${(t.bubbleFraction * 100).toFixed(1)}%`;
  return [header, ...rows].join('\n');
}

/** One stage's compute per micro-batch, from a measured step. */
export interface StageOpCost {
  forwardMs: number;
  backwardMs: number;
}

/**
 * Per stage, the time one forward and one backward kept it busy in `events` (one step): the stage's
 * busy time (the union of its computes, as measureTimeline counts it) split between forwards and
 * backwards in proportion to the union of each kind's events, over the number of each. Unions, not
 * summed durations: a compute's event runs from its submission to its read-back, so while a stage
 * queues forwards (GPipe's first half) each event also holds the wait behind the ones before it, and
 * summed durations would count that queue many times over. The costs sum to the busy time the bubble
 * was measured with.
 */
export function measuredOpCosts(events: readonly PipelineEvent[], stages: number): StageOpCost[] {
  const timeline = measureTimeline(events, stages);
  return timeline.stages.map(({ stage, busyMs }) => {
    const of = (kind: 'forward' | 'backward') => events.filter((e) => e.stage === stage && e.kind === kind);
    const [forwards, backwards] = [of('forward'), of('backward')];
    if (forwards.length === 0 || backwards.length === 0) throw new Error(`stage ${stage} ran ${forwards.length} forwards and ${backwards.length} backwards: no cost per op to measure`);
    const covered = (list: PipelineEvent[]) => unionMs(list.map((e): [number, number] => [e.tStart, e.tEnd]));
    const [forwardMs, backwardMs] = [covered(forwards), covered(backwards)];
    const forwardShare = forwardMs + backwardMs > 0 ? forwardMs / (forwardMs + backwardMs) : 0.5;
    return { forwardMs: (busyMs * forwardShare) / forwards.length, backwardMs: (busyMs * (1 - forwardShare)) / backwards.length };
  });
}

/**
 * The bubble fraction `schedules` give when stage s's forward takes costs[s].forwardMs, its backward
 * costs[s].backwardMs, and every message arrives `delayMs` after the compute that made it (sends free,
 * receives blocking, the list's order kept: forwards run ahead of the list are not modelled).
 */
export function predictBubble(schedules: readonly StageSchedule[], costs: readonly StageOpCost[], delayMs: number): number {
  if (costs.length !== schedules.length) throw new RangeError(`${costs.length} stage costs for ${schedules.length} stages`);
  if (!(delayMs >= 0)) throw new RangeError(`the message delay must be >= 0 ms, got ${delayMs}`);
  const run = simulate(schedules, { forward: costs.map((c) => c.forwardMs), backward: costs.map((c) => c.backwardMs), transfer: delayMs });
  if (run.deadlock) throw new Error(run.deadlock);
  return run.bubbleFraction;
}
