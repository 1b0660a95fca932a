// Where each step's time went. Computing and communicating overlap (buckets are all-reduced while the
// backward pass runs), so their durations are not stacked as they are: the step splits into compute
// only, both at once, communication only, waiting on slower peers, and the rest. These parts add up to
// the step, and the "both" part is the overlap the data-parallel trainer exists to create.
import type { StepMetrics } from '../shared/events';

export interface StepSplit {
  step: number;
  computeOnlyMs: number;
  /** Computing and communicating at the same time. */
  bothMs: number;
  commOnlyMs: number;
  waitMs: number;
  /** Step time none of the others covers (bookkeeping, gaps); never negative. */
  otherMs: number;
  stepMs: number;
}

export type SplitPart = Exclude<keyof StepSplit, 'step' | 'stepMs'>;

export function splitOf(s: Pick<StepMetrics, 'step' | 'computeMs' | 'commMs' | 'overlapMs' | 'waitMs' | 'stepMs'>): StepSplit {
  const bothMs = Math.max(0, Math.min(s.overlapMs, s.computeMs, s.commMs));
  const computeOnlyMs = s.computeMs - bothMs;
  const commOnlyMs = s.commMs - bothMs;
  const known = computeOnlyMs + bothMs + commOnlyMs + s.waitMs;
  return {
    step: s.step,
    computeOnlyMs,
    bothMs,
    commOnlyMs,
    waitMs: s.waitMs,
    otherMs: Math.max(0, s.stepMs - known),
    stepMs: Math.max(s.stepMs, known),
  };
}

/** The newest `count` steps of `rank`, oldest first. */
export function stepSplits(steps: readonly StepMetrics[], rank: number, count: number): StepSplit[] {
  const out: StepSplit[] = [];
  for (let i = steps.length - 1; i >= 0 && out.length < count; i--) {
    if (steps[i].rank === rank) out.push(splitOf(steps[i]));
  }
  return out.reverse();
}

export function meanSplit(splits: readonly StepSplit[]): StepSplit | null {
  if (splits.length === 0) return null;
  const sum = (k: keyof StepSplit) => splits.reduce((a, s) => a + s[k], 0) / splits.length;
  return {
    step: splits[splits.length - 1].step,
    computeOnlyMs: sum('computeOnlyMs'),
    bothMs: sum('bothMs'),
    commOnlyMs: sum('commOnlyMs'),
    waitMs: sum('waitMs'),
    otherMs: sum('otherMs'),
    stepMs: sum('stepMs'),
  };
}
