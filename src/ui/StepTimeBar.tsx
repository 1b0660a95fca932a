// Each recent step as one stacked column: compute only, computing and communicating at once (the
// overlap), communication only, waiting, other (step-split.ts). Redrawn at most once per animation
// frame however fast steps arrive.
import type { LabStore } from '../store/lab-store';
import { useLab, useLabFrame } from '../store/lab-store';
import { meanSplit, stepSplits, type SplitPart, type StepSplit } from '../lab/step-split';
import { formatBytes } from './zero-layout';

const PARTS: readonly { key: SplitPart; label: string; cls: string }[] = [
  { key: 'computeOnlyMs', label: 'compute only', cls: 'compute' },
  { key: 'bothMs', label: 'compute + communication at once', cls: 'both' },
  { key: 'commOnlyMs', label: 'communication only', cls: 'comm' },
  { key: 'waitMs', label: 'waiting', cls: 'wait' },
  { key: 'otherMs', label: 'other', cls: 'other' },
];

const WIDTH = 600;
const HEIGHT = 140;

export function StepTimeBar({ store, count = 60 }: { store: LabStore; count?: number }) {
  const selfRank = useLab(store, (s) => s.self?.rank ?? null);
  // The tick makes this re-render (per frame at most); the data comes from the ring buffer below.
  useLabFrame(store, (s) => s.metricsTick);
  const steps = store.getState().steps.toArray();
  const rank = selfRank ?? steps[steps.length - 1]?.rank ?? 0;
  const splits = stepSplits(steps, rank, count);
  const mean = meanSplit(splits);
  const latest = [...steps].reverse().find((s) => s.rank === rank);
  const maxMs = Math.max(1e-9, ...splits.map((s) => s.stepMs));
  const columnWidth = WIDTH / count;

  return (
    <section className="panel step-time" aria-labelledby="step-time-title">
      <h2 id="step-time-title">Step time (rank {rank})</h2>
      {mean ? (
        <p className="readout" data-testid="step-time-mean">
          mean over {splits.length} steps: {mean.stepMs.toFixed(1)} ms ={' '}
          {PARTS.map((p) => `${p.label} ${mean[p.key].toFixed(1)} ms (${((100 * mean[p.key]) / mean.stepMs).toFixed(0)}%)`).join(
            ', ',
          )}
        </p>
      ) : (
        <p className="muted">No steps yet.</p>
      )}
      {latest && (
        <p className="readout" data-testid="step-throughput">
          step {latest.step}: {latest.samplesPerSec.toFixed(0)} samples/s (room), sent {formatBytes(latest.bytesSent)}, received{' '}
          {formatBytes(latest.bytesReceived)}
        </p>
      )}
      <svg viewBox={`0 0 ${WIDTH} ${HEIGHT}`} className="step-svg" role="img" aria-label="Per-step time split">
        {splits.map((s, i) => (
          <StepColumn key={s.step} split={s} x={i * columnWidth} width={columnWidth * 0.85} scale={HEIGHT / maxMs} />
        ))}
      </svg>
      <ul className="legend">
        {PARTS.map((p) => (
          <li key={p.key}>
            <span className={`swatch ${p.cls}`} /> {p.label}
          </li>
        ))}
      </ul>
    </section>
  );
}

function StepColumn({ split, x, width, scale }: { split: StepSplit; x: number; width: number; scale: number }) {
  let y = HEIGHT;
  return (
    <g data-step={split.step}>
      <title>{`step ${split.step}: ${split.stepMs.toFixed(1)} ms`}</title>
      {PARTS.map((p) => {
        const h = split[p.key] * scale;
        y -= h;
        return <rect key={p.key} className={p.cls} data-part={p.cls} data-ms={split[p.key]} x={x} y={y} width={width} height={h} />;
      })}
    </g>
  );
}
