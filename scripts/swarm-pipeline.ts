// The swarm's pipeline figures (`npm run swarm -- --tabs 4 --pipeline 4 --micro 8 --schedule 1f1b`): from
// what every tab measured (window.lab.metrics().partition, src/lab/partitioned-run.ts PipelineFigures),
// per stage of pipeline 0: busy and idle time and the bubble from the real timeline (the tabs' ops on
// one clock, epoch milliseconds), beside (P-1)/(M+P-1), and where the idle time went (waiting in a
// receive, before the stage's first op and after its last, the rest: sends and the executor's own time); peak activation bytes from real allocations
// beside the schedule's micro-batches in flight x one micro-batch's bytes; bytes sent per step beside
// M x the boundary activations; and, given one tab's parameters on the same global batch, the parity.
// Beside the textbook bubble, the latency-aware prediction (pipeline-timeline.ts predictBubble): the
// schedule replayed with each step's measured compute per op and stage, once with free messages (what
// unequal stages cost) and once with the median hand-over on every message (what the link costs).
import type { PipelineEvent } from '../src/collective/pipeline-executor';
import { idealBubbleFraction, pipelineSchedules } from '../src/collective/pipeline-schedules';
import { handOverTimes, measuredOpCosts, measureTimeline, predictBubble } from '../src/collective/pipeline-timeline';
import type { PipelineFigures } from '../src/lab/partitioned-run';

export interface PipelineTab {
  figures: PipelineFigures;
  /** The tab's part of the parameters. */
  params: number[];
}

export interface StageRow {
  stage: number;
  busyMs: number;
  idleMs: number;
  /** Where the idle time went (medians, pipeline-timeline.ts): waiting in receives, before the first op and after the last, the rest. */
  recvWaitMs: number;
  edgeMs: number;
  otherIdleMs: number;
  bubble: number;
  peakActivationBytes: number;
  expectedPeakActivationBytes: number;
  wireBytesPerStep: number;
  wireFormulaBytesPerStep: number;
}

export interface PipelineReport {
  schedule: string;
  stages: number;
  pipelines: number;
  micro: number;
  /** Steps whose timelines were measured (the first, with shader compilation, left out when there are more). */
  stepsMeasured: number;
  /** Median over those steps of the whole pipeline's bubble fraction. */
  bubble: number;
  idealBubble: number;
  /** Median over the steps of the bubble the list gives with the step's measured compute per op and stage and free messages. */
  predictedBubbleNoDelay: number;
  /** The same with every message arriving the median hand-over time after the compute that made it (NaN when none waited). */
  predictedBubble: number;
  /**
   * Median over the steps of the stages' summed busy time over the span: how many stages computed at
   * once on average. Above the host's cores, the tabs' computes stretched each other (one shared CPU),
   * and an op's time was not its own: the replay, which takes it as fixed, then overstates the bubble.
   */
  computeConcurrency: number;
  /** Median hand-over time of a message a stage waited for (pipeline-timeline.ts handOverTimes), over the steps measured; NaN when none waited. */
  handOverMs: number;
  rows: StageRow[];
  /** max |pipeline - one tab| / max |one tab| over the whole model, when a reference ran. */
  parity?: number;
}

function median(values: number[]): number {
  const sorted = values.slice().sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

export function pipelineReport(tabs: PipelineTab[], reference?: number[]): PipelineReport {
  const first = tabs.map((t) => t.figures).filter((f) => f.pipeline === 0).sort((a, b) => a.stage - b.stage);
  if (first.length === 0) throw new Error('no tab reported pipeline figures');
  const { stages: P, micro: M, pipelines } = first[0];
  const schedule = first[0].schedule + (first[0].ahead ? ` ahead=${first[0].ahead}` : '');
  if (first.length !== P) throw new Error(`pipeline 0 reported ${first.length} of its ${P} stages`);
  // Rounds every stage kept, the first left out (it compiles shaders) when there are more.
  const rounds = first.map((f) => new Set(f.steps.map((s) => s.round))).reduce((a, b) => new Set([...a].filter((r) => b.has(r))));
  const sortedRounds = [...rounds].sort((a, b) => a - b);
  const measured = sortedRounds.length > 1 ? sortedRounds.slice(1) : sortedRounds;
  const stepEvents = measured.map((round): PipelineEvent[] => first.flatMap((f) => f.steps.find((s) => s.round === round)!.ops.map((op) => ({ type: 'pipeline' as const, round, ...op }))));
  const timelines = stepEvents.map((events) => measureTimeline(events, P));
  const handOvers = stepEvents.flatMap((events) => handOverTimes(events));
  const handOverMs = handOvers.length > 0 ? median(handOvers) : Number.NaN;
  // The strict list's order: forwards run ahead of it (ahead=k) are not replayed.
  const lists = pipelineSchedules(first[0].schedule, P, M);
  const stepCosts = stepEvents.map((events) => measuredOpCosts(events, P));
  const predictedBubbleNoDelay = median(stepCosts.map((costs) => predictBubble(lists, costs, 0)));
  const predictedBubble = Number.isNaN(handOverMs) ? Number.NaN : median(stepCosts.map((costs) => predictBubble(lists, costs, handOverMs)));
  const wirePerStep = first.map((f) => {
    const sent = measured.map((round) => f.steps.find((s) => s.round === round)!.ops.filter((o) => o.kind.startsWith('send')).reduce((sum, o) => sum + (o.bytes ?? 0), 0));
    return median(sent);
  });
  const rows: StageRow[] = first.map((f, s) => ({
    stage: s,
    busyMs: median(timelines.map((t) => t.stages[s].busyMs)),
    idleMs: median(timelines.map((t) => t.stages[s].idleMs)),
    recvWaitMs: median(timelines.map((t) => t.stages[s].recvWaitMs)),
    edgeMs: median(timelines.map((t) => t.stages[s].edgeMs)),
    otherIdleMs: median(timelines.map((t) => t.stages[s].otherIdleMs)),
    bubble: median(timelines.map((t) => t.stages[s].idleMs / t.spanMs)),
    peakActivationBytes: f.peakActivationBytes,
    expectedPeakActivationBytes: f.expectedPeakActivationBytes,
    wireBytesPerStep: wirePerStep[s],
    wireFormulaBytesPerStep: f.wireFormulaBytesPerStep,
  }));
  let parity: number | undefined;
  if (reference) {
    let diff = 0;
    let scale = 0;
    for (const tab of tabs.filter((t) => t.figures.pipeline === 0)) {
      for (const p of tab.figures.placement) {
        for (let i = 0; i < p.length; i++) {
          const ref = reference[p.wholeOffset + i];
          diff = Math.max(diff, Math.abs(tab.params[p.partOffset + i] - ref));
          scale = Math.max(scale, Math.abs(ref));
        }
      }
    }
    parity = scale > 0 ? diff / scale : diff;
  }
  return {
    schedule,
    stages: P,
    pipelines,
    micro: M,
    stepsMeasured: measured.length,
    bubble: median(timelines.map((t) => t.bubbleFraction)),
    idealBubble: idealBubbleFraction(P, M),
    predictedBubbleNoDelay,
    predictedBubble,
    computeConcurrency: median(timelines.map((t) => t.stages.reduce((sum, st) => sum + st.busyMs, 0) / t.spanMs)),
    handOverMs,
    rows,
    ...(parity !== undefined ? { parity } : {}),
  };
}

const signed = (x: number): string => (x >= 0 ? '+' : '') + x.toFixed(3);

export function formatPipelineReport(r: PipelineReport): string {
  const header = `pipeline ${r.schedule}, P=${r.stages} stages x ${r.pipelines} pipeline(s), M=${r.micro} micro-batches; medians over ${r.stepsMeasured} step(s) of pipeline 0's real timeline`;
  const table: string[][] = [['stage', 'busy ms', 'idle ms', '= recv wait', '+ fill/drain', '+ other', 'bubble', '(P-1)/(M+P-1)', 'peak act. bytes', 'formula', 'sent bytes/step', 'formula']];
  for (const row of r.rows) {
    table.push([
      String(row.stage),
      row.busyMs.toFixed(1),
      row.idleMs.toFixed(1),
      row.recvWaitMs.toFixed(1),
      row.edgeMs.toFixed(1),
      row.otherIdleMs.toFixed(1),
      row.bubble.toFixed(3),
      r.idealBubble.toFixed(3),
      String(row.peakActivationBytes),
      String(row.expectedPeakActivationBytes),
      String(row.wireBytesPerStep),
      String(row.wireFormulaBytesPerStep),
    ]);
  }
  const widths = table[0].map((_, c) => Math.max(...table.map((row) => row[c].length)));
  const lines = table.map((row) => row.map((cell, c) => cell.padEnd(widths[c])).join('  '));
  const wire = r.rows.reduce((s, row) => s + row.wireBytesPerStep, 0);
  const wireFormula = r.rows.reduce((s, row) => s + row.wireFormulaBytesPerStep, 0);
  const footer = [
    `whole pipeline: bubble ${r.bubble.toFixed(3)} measured vs (P-1)/(M+P-1) = ${r.idealBubble.toFixed(3)} (equal stages, free messages); a message a stage waited for came ${r.handOverMs.toFixed(1)} ms (median) after the compute that made it; wire ${wire} bytes/step vs 2·M·(boundary activation bytes) = ${wireFormula}`,
    `latency-aware prediction (the ${r.schedule.startsWith('1f1b ahead') ? 'strict 1f1b ' : ''}list replayed with each stage's measured compute per op): ${r.predictedBubbleNoDelay.toFixed(3)} with free messages, ${r.predictedBubble.toFixed(3)} with ${r.handOverMs.toFixed(1)} ms on every message; measured - theory ${signed(r.bubble - r.idealBubble)} = unequal stages ${signed(r.predictedBubbleNoDelay - r.idealBubble)} + link ${signed(r.predictedBubble - r.predictedBubbleNoDelay)} + unexplained ${signed(r.bubble - r.predictedBubble)}; the stages computed ${r.computeConcurrency.toFixed(2)} at once on average (sum of busy / span: above the host's cores, their ops stretched each other and the replay, which takes an op's time as its own, overstates the bubble)`,
    `peak activation bytes, all stages: ${r.rows.reduce((s, row) => s + row.peakActivationBytes, 0)} measured vs ${r.rows.reduce((s, row) => s + row.expectedPeakActivationBytes, 0)} formula`,
    ...(r.parity !== undefined ? [`parity vs one tab on the same global batch: max |difference| / max |parameter| = ${r.parity.toExponential(2)}`] : []),
  ];
  return [header, ...lines, ...footer].join('\n');
}
