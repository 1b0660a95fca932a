// What a pipeline step's real timeline says: per stage the time spent computing (busy) and not
// (idle: waiting for a message, or done before the others), over the span from the first op's start to
// the last op's end, and the bubble fraction 1 - busy / (stages * span), the figure the ideal schedule
// gives as (P-1)/(M+P-1); and the same events drawn as a stage x time diagram, as pipeline-schedules.ts
// draws the ideal timeline. Pure: it reads PipelineEvents (pipeline-executor.ts) on one shared clock
// (stages in one process; tabs would first map their clocks onto one).
import type { PipelineEvent } from './pipeline-executor';

export interface StageTime {
  stage: number;
  busyMs: number;
  idleMs: number;
  /** Bytes this stage sent (activations and gradients) in the events measured. */
  bytesSent: number;
}

export interface PipelineTimeline {
  spanMs: number;
  stages: StageTime[];
  bubbleFraction: number;
}

export function measureTimeline(events: readonly PipelineEvent[], stages: number): PipelineTimeline {
  if (!Number.isInteger(stages) || stages < 1) throw new RangeError(`stages must be an integer >= 1, got ${stages}`);
  if (events.length === 0) throw new Error('no pipeline events to measure');
  const start = Math.min(...events.map((e) => e.tStart));
  const end = Math.max(...events.map((e) => e.tEnd));
  const spanMs = end - start;
  const perStage: StageTime[] = Array.from({ length: stages }, (_, stage) => ({ stage, busyMs: 0, idleMs: 0, bytesSent: 0 }));
  for (const e of events) {
    const s = perStage[e.stage];
    if (!s) throw new RangeError(`event of stage ${e.stage} in a ${stages}-stage pipeline`);
    if (e.kind === 'forward' || e.kind === 'backward') s.busyMs += e.tEnd - e.tStart;
    if (e.kind === 'send-activation' || e.kind === 'send-grad') s.bytesSent += e.bytes ?? 0;
  }
  for (const s of perStage) s.idleMs = spanMs - s.busyMs;
  const busy = perStage.reduce((sum, s) => sum + s.busyMs, 0);
  return { spanMs, stages: perStage, bubbleFraction: spanMs > 0 ? 1 - busy / (stages * spanMs) : 0 };
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
