// The pipeline on the dashboard: stage x time, one block per micro-batch forward (light, "F") and
// backward (dark, "B"), coloured by micro-batch, each row's idle time shaded; per stage the measured
// busy and idle time, and the measured bubble beside the ideal (P-1)/(M+P-1); the ideal timeline of
// the same schedule drawn underneath for comparison. Everything measured comes from the recorded
// events of one step (pipeline-timeline-model.ts); a slider replays the recorded steps, "Live" follows
// the newest as its events arrive (a tab draws its own stage's row live, the other stages' when their
// events reach it), and "Replay step" plays the step on screen back as it unfolded: a time cursor
// sweeps its span (or is dragged), and only what had started by then is drawn, cut at the cursor. In a DP x PP room each layer group's gradient all-reduce over the stage's replicas
// is drawn as a thin bar along the bottom of its row, where it really ran beside the schedule.
import { useEffect, useMemo, useState } from 'react';
import { pipelineMicroBatches } from '../lab/config';
import { useLab, useLabFrame, type LabStore } from '../store/lab-store';
import type { PipelineStepRecord } from '../store/pipeline-slice';
import { type AllReduceBlock, idealStep, measureStep, type IdealStep, type MeasuredStep, type PipelinePlan, type TimelineBlock } from './pipeline-timeline-model';

const WIDTH = 600;
const ROW_HEIGHT = 22;
const LABEL_WIDTH = 92;
/** Height of the all-reduce bar along a row's bottom. */
const ALL_REDUCE_HEIGHT = 5;

const percent = (x: number) => `${(100 * x).toFixed(1)}%`;

/** A replay sweeps a step's span in this long, whatever the span (a 2 s step and a 20 ms one alike). */
export const REPLAY_MS = 4000;
/** The replay's frame interval. */
const REPLAY_TICK_MS = 50;

/** What had happened by `until` (ms into the step): the blocks started by then, each cut there. */
export function asOf<B extends { start: number; end: number }>(blocks: readonly B[], until: number | null): B[] {
  if (until === null) return [...blocks];
  return blocks.filter((b) => b.start <= until).map((b) => (b.end > until ? { ...b, end: until } : b));
}

/** Hue by micro-batch; forwards light, backwards dark (and lettered F/B, so colour is not the only cue). */
export function blockColour(kind: 'forward' | 'backward', micro: number, micros: number): string {
  const hue = Math.round((micro * 360) / Math.max(1, micros)) % 360;
  return kind === 'forward' ? `hsl(${hue} 70% 62%)` : `hsl(${hue} 60% 34%)`;
}

function Lanes({
  label,
  rowLabels,
  blocks,
  allReduces = [],
  span,
  micros,
  unit,
  cursor = null,
}: {
  cursor?: number | null;
  label: string;
  rowLabels: string[];
  blocks: readonly TimelineBlock[];
  allReduces?: readonly AllReduceBlock[];
  span: number;
  micros: number;
  unit: 'ms' | 'units';
}) {
  const height = rowLabels.length * ROW_HEIGHT;
  const scale = span > 0 ? (WIDTH - LABEL_WIDTH) / span : 0;
  return (
    <svg
      viewBox={`0 0 ${WIDTH} ${height}`}
      className="pipeline-svg"
      role="img"
      aria-label={label}
      data-span={span}
      data-unit={unit}
      preserveAspectRatio="xMinYMin meet"
    >
      {rowLabels.map((text, row) => (
        <g key={row}>
          <text x={2} y={row * ROW_HEIGHT + ROW_HEIGHT * 0.68} className="pipeline-row-label">
            {text}
          </text>
          {/* The whole span shaded as idle; compute blocks cover the busy parts. */}
          <rect className="pipeline-idle" x={LABEL_WIDTH} y={row * ROW_HEIGHT + 2} width={WIDTH - LABEL_WIDTH} height={ROW_HEIGHT - 4} />
        </g>
      ))}
      {blocks.map((b) => {
        const x = LABEL_WIDTH + b.start * scale;
        const w = Math.max(0.5, (b.end - b.start) * scale);
        const letter = b.kind === 'forward' ? 'F' : 'B';
        return (
          <g key={`${b.row}-${b.kind}-${b.micro}`} className="pipeline-block" data-row={b.row} data-kind={b.kind} data-micro={b.micro} data-start={b.start} data-end={b.end}>
            <title>{`${b.kind} of micro-batch ${b.micro}: ${b.start.toFixed(unit === 'ms' ? 1 : 0)}-${b.end.toFixed(unit === 'ms' ? 1 : 0)} ${unit}`}</title>
            <rect x={x} y={b.row * ROW_HEIGHT + 2} width={w} height={ROW_HEIGHT - 4} fill={blockColour(b.kind, b.micro, micros)} />
            {w >= 14 && (
              <text x={x + w / 2} y={b.row * ROW_HEIGHT + ROW_HEIGHT * 0.68} textAnchor="middle" className={`pipeline-block-label ${b.kind}`}>
                {letter}
                {b.micro}
              </text>
            )}
          </g>
        );
      })}
      {allReduces.map((a) => {
        const x = LABEL_WIDTH + a.start * scale;
        const w = Math.max(0.5, (a.end - a.start) * scale);
        return (
          <g key={`${a.row}-allreduce-${a.group}`} className="pipeline-allreduce" data-row={a.row} data-group={a.group} data-start={a.start} data-end={a.end}>
            <title>{`all-reduce of layer group ${a.group} over the stage's replicas: ${a.start.toFixed(1)}-${a.end.toFixed(1)} ms`}</title>
            <rect x={x} y={(a.row + 1) * ROW_HEIGHT - ALL_REDUCE_HEIGHT - 1} width={w} height={ALL_REDUCE_HEIGHT} />
          </g>
        );
      })}
      {cursor !== null && (
        <line className="pipeline-cursor" data-at={cursor} x1={LABEL_WIDTH + cursor * scale} x2={LABEL_WIDTH + cursor * scale} y1={0} y2={height} stroke="currentColor" />
      )}
    </svg>
  );
}

export interface PipelineTimelineViewProps {
  steps: readonly PipelineStepRecord[];
  /** The run's stages and micro-batches when known (its settings); otherwise inferred from the events. */
  plan?: PipelinePlan;
  /** Index into `steps`, or null: the newest. */
  selected: number | null;
  onSelect(index: number | null): void;
}

export function PipelineTimelineView({ steps, plan, selected, onSelect }: PipelineTimelineViewProps) {
  const last = steps.length - 1;
  const index = selected === null ? last : Math.min(selected, last);
  const record = steps[index];
  const measured: MeasuredStep | null = record ? measureStep(record.round, record.events, plan) : null;
  // The ideal needs the schedule: this step's (recognised from its rows), or (while it is still
  // arriving) the last recognised step's.
  let reference: MeasuredStep | null = measured?.schedule ? measured : null;
  for (let i = index - 1; i >= 0 && !reference; i--) {
    const m = measureStep(steps[i].round, steps[i].events, plan);
    if (m?.schedule) reference = m;
  }
  const ideal: IdealStep | null = reference?.schedule ? idealStep(reference.schedule, reference.stages, reference.micro) : null;
  // The replay of the step on screen: ms into it (null: the whole step), and whether it is playing.
  const [replay, setReplay] = useState<{ at: number | null; playing: boolean; round: number | null }>({ at: null, playing: false, round: null });
  const span = measured?.drawnSpanMs ?? 0;
  const round = measured?.round ?? null;
  // Another step on screen ends the replay of the last one.
  const cursor = replay.round === round ? replay.at : null;
  const playing = replay.playing && replay.round === round;
  useEffect(() => {
    if (!playing) return;
    const timer = setInterval(() => {
      setReplay((r) => {
        // A tick already queued when the replay ended or was paused changes nothing.
        if (!r.playing) return r;
        const at = (r.at ?? 0) + (span * REPLAY_TICK_MS) / REPLAY_MS;
        return at >= span ? { at: null, playing: false, round: r.round } : { ...r, at };
      });
    }, REPLAY_TICK_MS);
    return () => clearInterval(timer);
  }, [playing, span]);

  return (
    <section className="panel pipeline" aria-labelledby="pipeline-title">
      <h2 id="pipeline-title">Pipeline timeline</h2>
      {!measured ? (
        <p className="muted">Shown once a pipeline run's stages report their first ops.</p>
      ) : (
        <>
          <div className="pipeline-controls">
            <label>
              Step{' '}
              <input
                type="range"
                min={0}
                max={last}
                value={index}
                disabled={last === 0}
                aria-label="Recorded step"
                onChange={(e) => onSelect(Number(e.currentTarget.value))}
              />
            </label>
            <span className="readout" data-testid="pipeline-step">
              step {measured.round}
              {measured.complete
                ? ''
                : measured.rowsComplete
                  ? ` (${measured.rows.length} of ${measured.stages} stages: the others' events have not reached this tab)`
                  : ' (in progress: the events that reached this tab so far)'}
            </span>
            <button type="button" aria-pressed={selected === null} onClick={() => onSelect(selected === null ? index : null)}>
              Live
            </button>
            <button type="button" aria-pressed={playing} onClick={() => setReplay(playing ? { ...replay, playing: false } : { at: 0, playing: true, round })}>
              Replay step
            </button>
            <label>
              Time{' '}
              <input
                type="range"
                min={0}
                max={span}
                step="any"
                value={cursor ?? span}
                aria-label="Time in step"
                onChange={(e) => setReplay({ at: Number(e.currentTarget.value), playing: false, round })}
              />
            </label>
            <span className="readout" data-testid="pipeline-replay">
              {cursor === null ? 'whole step' : `${cursor.toFixed(1)} of ${span.toFixed(1)} ms`}
            </span>
          </div>
          <p className="readout" data-testid="pipeline-bubble">
            {measured.schedule ?? 'schedule not recognised yet'} · {measured.stages} stages × {measured.micro} micro-batches · span{' '}
            {measured.spanMs.toFixed(1)} ms ·{' '}
            {measured.complete
              ? `measured bubble ${percent(measured.bubbleFraction)} vs (P-1)/(M+P-1) = ${percent(ideal?.formula ?? 0)}`
              : `idle over the rows shown ${percent(measured.bubbleFraction)} (the bubble needs every stage's events)`}
          </p>
          <Lanes
            label={`Measured timeline of step ${measured.round}`}
            rowLabels={measured.rows.map((r) => `stage ${r.stage} · r${r.rank}`)}
            blocks={asOf(measured.blocks, cursor)}
            allReduces={asOf(measured.allReduces, cursor)}
            span={measured.drawnSpanMs}
            micros={measured.micro}
            unit="ms"
            cursor={cursor}
          />
          {measured.allReduces.length > 0 && (
            <p className="readout" data-testid="pipeline-allreduce">
              DP all-reduce (bars along each row's bottom): {measured.allReduces.length} layer groups, the first from{' '}
              {Math.min(...measured.allReduces.map((a) => a.start)).toFixed(1)} ms, the last done at {measured.drawnSpanMs.toFixed(1)} ms (
              {(measured.drawnSpanMs - measured.spanMs).toFixed(1)} ms after the schedule's last op)
            </p>
          )}
          <table className="pipeline-table">
            <thead>
              <tr>
                <th scope="col">Stage</th>
                <th scope="col">Rank</th>
                <th scope="col">Busy</th>
                <th scope="col">Idle</th>
                <th scope="col">Ops</th>
              </tr>
            </thead>
            <tbody>
              {measured.rows.map((r) => (
                <tr key={r.rank} data-rank={r.rank} data-stage={r.stage}>
                  <td>{r.stage}</td>
                  <td>{r.rank}</td>
                  <td data-testid="pipeline-busy">{r.busyMs.toFixed(1)} ms</td>
                  <td data-testid="pipeline-idle">{r.idleMs.toFixed(1)} ms</td>
                  <td>
                    {r.ops}
                    {r.expectedOps !== null ? ` of ${r.expectedOps}` : ''}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
          {ideal && (
            <>
              <p className="readout" data-testid="pipeline-ideal">
                ideal {ideal.schedule} (equal stage times, free messages): bubble {percent(ideal.bubbleFraction)} over {ideal.makespan} time units
              </p>
              <Lanes
                label={`Ideal ${ideal.schedule} timeline`}
                rowLabels={Array.from({ length: ideal.stages }, (_, s) => `stage ${s}`)}
                blocks={ideal.blocks}
                span={ideal.makespan}
                micros={ideal.micro}
                unit="units"
              />
            </>
          )}
          <p className="muted small">
            Tabs' clocks are mapped onto one by their time origin (epoch ms): across machines, only as well as their wall clocks agree.
          </p>
        </>
      )}
    </section>
  );
}

/** The panel as App mounts it: fed from the store, redrawn at most once per animation frame. */
export function PipelineTimelinePanel({ store }: { store: LabStore }) {
  const pipeline = useLabFrame(store, (s) => s.pipeline);
  const setPipelineStep = useLab(store, (s) => s.setPipelineStep);
  // The run's `pipeline=P` and `micro=M` settings (micro=0: the lab's default, pipelineMicroBatches).
  const stages = useLab(store, (s) => s.config.pipeline);
  const micro = useLab(store, (s) => pipelineMicroBatches(s.config));
  const plan = useMemo(() => (stages > 1 ? { stages, micro } : undefined), [stages, micro]);
  return <PipelineTimelineView steps={pipeline.steps} plan={plan} selected={pipeline.selected} onSelect={setPipelineStep} />;
}
