// The loss chart's data, as uPlot wants it: one shared x (the step) and one y array per series, null
// where a series has no point. Built from the store's ring buffers; the chart itself stays thin.
import type { EvalMetrics, RoomLoss, StepMetrics } from '../shared/events';

export interface LossSeries {
  /**
   * Ranks with a train-loss series, ascending; series order is x, rank..., run mean, val loss, accuracy.
   * The run mean is the room's mean (RoomLoss) at the steps it exists, else the mean of the ranks shown.
   */
  ranks: number[];
  data: [number[], ...(number | null)[][]];
}

function meanAt<T>(byStep: Map<number, T[]>, step: number, pick: (x: T) => number | undefined): number | null {
  const list = byStep.get(step);
  if (!list) return null;
  let sum = 0;
  let n = 0;
  for (const x of list) {
    const v = pick(x);
    if (v !== undefined && Number.isFinite(v)) {
      sum += v;
      n++;
    }
  }
  return n === 0 ? null : sum / n;
}

function groupByStep<T extends { step: number }>(items: readonly T[]): Map<number, T[]> {
  const out = new Map<number, T[]>();
  for (const item of items) {
    const list = out.get(item.step);
    if (list) list.push(item);
    else out.set(item.step, [item]);
  }
  return out;
}

export function buildLossSeries(steps: readonly StepMetrics[], evals: readonly EvalMetrics[], roomLosses: readonly RoomLoss[] = []): LossSeries {
  const stepsByStep = groupByStep(steps);
  const roomByStep = new Map(roomLosses.map((r) => [r.step, r.loss]));
  const evalsByStep = groupByStep(evals);
  const xs = [...new Set([...stepsByStep.keys(), ...evalsByStep.keys()])].sort((a, b) => a - b);
  const ranks = [...new Set(steps.map((s) => s.rank))].sort((a, b) => a - b);
  const perRank = ranks.map((rank) =>
    xs.map((x) => stepsByStep.get(x)?.find((s) => s.rank === rank)?.loss ?? null),
  );
  const run = xs.map((x) => roomByStep.get(x) ?? meanAt(stepsByStep, x, (s) => s.loss));
  const val = xs.map((x) => meanAt(evalsByStep, x, (e) => e.valLoss));
  const acc = xs.map((x) => meanAt(evalsByStep, x, (e) => e.accuracy));
  return { ranks, data: [xs, ...perRank, run, val, acc] };
}

/** A short text of the newest values, for the readout under the chart (and screen readers). */
export function latestReadout(series: LossSeries): string {
  const [xs, ...ys] = series.data;
  if (xs.length === 0) return 'No steps yet.';
  const lastOf = (ys: (number | null)[]) => {
    for (let i = ys.length - 1; i >= 0; i--) if (ys[i] !== null) return ys[i];
    return null;
  };
  const n = series.ranks.length;
  const run = lastOf(ys[n]);
  const val = lastOf(ys[n + 1]);
  const acc = lastOf(ys[n + 2]);
  const parts = [`step ${xs[xs.length - 1]}`];
  if (run !== null) parts.push(`train loss ${run.toFixed(4)}`);
  if (val !== null) parts.push(`val loss ${val.toFixed(4)}`);
  if (acc !== null) parts.push(`accuracy ${(acc * 100).toFixed(1)}%`);
  return parts.join(', ');
}
