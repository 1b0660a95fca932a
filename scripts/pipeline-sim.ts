// Prints the pipeline figures of one configuration: the ideal timelines of GPipe and 1F1B (stage x
// time, unit costs), then a measured run of P stages in this process (a CPU backend each, the in-memory
// transport, an artificial delay per forward and backward so that the timeline has a shape): bubble
// fraction beside (P-1)/(M+P-1), busy and idle time per stage, peak activation bytes per stage from
// real allocations beside (sets in flight x bytes per set), bytes on the wire per step beside
// 2·M·(activation bytes summed over the P-1 boundaries), and the parity of the trained parameters with
// one tab on the same global batch, for P stages and for two such pipelines side by side (DP2 x PP).
//
// All stages run in this one process: their artificial delays overlap as tabs would, their CPU work
// does not (one thread). The delay must dominate the CPU work for the figure to mean a pipeline of
// tabs; the bubble is the median over --timed-steps steps (default 5), since a pause of this process
// stretches whatever ops it falls in.
//
// --latency-ms L delays every message by L ms (the hand-over time of a message between tabs), and
// --ahead k adds a row for 1F1B with forwards run ahead of the list (pipeline-executor.ts `ahead`).
//
//   npx tsx scripts/pipeline-sim.ts --stages 4 --micro 8 [--model mlp|gpt] [--delay-ms 20] [--latency-ms 0] [--ahead 0] [--steps 3] [--timed-steps 5]
import { idealBubbleFraction, expectedPeakInFlight, formatTimeline, PIPELINE_SCHEDULES, type PipelineScheduleKind, pipelineSchedules } from '../src/collective/pipeline-schedules';
import { formatEventTimeline, measureTimeline } from '../src/collective/pipeline-timeline';
import { splitUnits, unitsOf, type StageModelSpec } from '../src/model/pipeline-stage';
import { ADAMW, maxRelativeDifference, TINY_GPT, TINY_MLP, trainOneTab, trainPipeline } from '../src/parallel/pipeline-test-support';
import { integer, option } from './cli-options';


const P = integer('stages', 4, 1);
const M = integer('micro', 8, 1);
const delayMs = integer('delay-ms', 20, 0);
const steps = integer('steps', 3, 1);
const timedSteps = integer('timed-steps', 5, 1);
const latencyMs = integer('latency-ms', 0, 0);
const ahead = integer('ahead', 0, 0);
const modelName = option('model', 'mlp');
if (modelName !== 'mlp' && modelName !== 'gpt') throw new RangeError(`--model must be mlp or gpt, got ${modelName}`);
const ROWS_PER_MICRO = 4;
const base = modelName === 'mlp' ? TINY_MLP : TINY_GPT;
// A deeper MLP / GPT when more stages are asked for than the tiny models have layers or blocks.
const spec: StageModelSpec =
  base.kind === 'mlp'
    ? { ...base, config: { sizes: [...base.config.sizes.slice(0, -1), ...new Array(Math.max(0, P - unitsOf(base))).fill(8), base.config.sizes[base.config.sizes.length - 1]] } }
    : { ...base, config: { ...base.config, nLayer: Math.max(base.config.nLayer, P) } };
const globalRows = ROWS_PER_MICRO * M;

/** Bytes of the activation crossing each stage boundary per micro-batch (the gradient is the same size). */
function boundaryBytes(): number[] {
  const parts = splitUnits(unitsOf(spec), P);
  return parts.slice(0, -1).map((part) =>
    spec.kind === 'mlp' ? ROWS_PER_MICRO * spec.config.sizes[part.to] * 4 : ROWS_PER_MICRO * spec.config.blockSize * spec.config.nEmbd * 4,
  );
}

console.log(`pipeline-sim: ${modelName} ${JSON.stringify(spec.config)}, P=${P} stages, M=${M} micro-batches of ${ROWS_PER_MICRO} rows\n`);
for (const kind of PIPELINE_SCHEDULES) console.log(formatTimeline(pipelineSchedules(kind, P, M)) + '\n');

const oneTab = await trainOneTab(spec, ADAMW, globalRows, 1, steps);
const wire = 2 * M * boundaryBytes().reduce((a, b) => a + b, 0);
const perSet = (await trainPipeline(spec, ADAMW, 'gpipe', P, ROWS_PER_MICRO, 1, { steps: 1 })).stages.map((s) => s.peakActivationBytes);
console.log(`measured: ${delayMs} ms added to every forward and backward, ${latencyMs} ms to every message (bubble: median of ${timedSteps} steps); AdamW; parity (max |difference| / max |parameter|) after ${steps} steps against one tab on the same global batch of ${globalRows}`);
const drawings: string[] = [];
const rows: string[][] = [['schedule', 'bubble', 'ideal', 'busy ms/stage', 'idle ms/stage', 'peak act. bytes/stage', 'formula', 'wire bytes/step', 'formula', 'parity', 'parity DP2']];
const runs: [PipelineScheduleKind, number][] = [...PIPELINE_SCHEDULES.map((kind): [PipelineScheduleKind, number] => [kind, 0]), ...(ahead > 0 ? [['1f1b', ahead] as [PipelineScheduleKind, number]] : [])];
for (const [kind, runAhead] of runs) {
  const timed = await trainPipeline(spec, ADAMW, kind, P, globalRows, M, { steps: timedSteps, computeDelayMs: () => delayMs, mesh: { latencyMs }, ahead: runAhead });
  const timelines = timed.events.map((events) => measureTimeline(events, P)).sort((a, b) => a.bubbleFraction - b.bubbleFraction);
  const t = timelines[Math.floor(timelines.length / 2)];
  const medianStep = timed.events.find((events) => measureTimeline(events, P).bubbleFraction === t.bubbleFraction) ?? timed.events[0];
  drawings.push(`${kind}${runAhead > 0 ? ` ahead=${runAhead}` : ''} P=${P} M=${M}, the median step as it ran, ${formatEventTimeline(medianStep, P, Math.min(80, 2 * (M + P - 1)))}`);
  const trained = await trainPipeline(spec, ADAMW, kind, P, globalRows, M, { steps, ahead: runAhead });
  const dp = await trainPipeline(spec, ADAMW, kind, P, globalRows, M, { steps, replicas: 2, ahead: runAhead });
  if (dp.replicaHashes.some((hashes) => new Set(hashes).size !== 1)) throw new Error('DP2: the replicas of a stage differ');
  const sent = t.stages.reduce((sum, s) => sum + s.bytesSent, 0);
  rows.push([
    runAhead > 0 ? `${kind} ahead=${runAhead}` : kind,
    t.bubbleFraction.toFixed(3),
    idealBubbleFraction(P, M).toFixed(3),
    t.stages.map((s) => s.busyMs.toFixed(0)).join('/'),
    t.stages.map((s) => s.idleMs.toFixed(0)).join('/'),
    timed.stages.map((s) => s.peakActivationBytes).join('/'),
    perSet.map((bytes, s) => Math.min(expectedPeakInFlight(kind, P, s, M) + runAhead, M) * bytes).join('/'),
    String(sent),
    String(wire),
    maxRelativeDifference(trained.params, oneTab).toExponential(2),
    maxRelativeDifference(dp.params, oneTab).toExponential(2),
  ]);
}
const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
for (const r of rows) console.log(r.map((cell, c) => cell.padEnd(widths[c])).join('  '));
console.log('\n' + drawings.join('\n\n'));
