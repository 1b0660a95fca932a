// Where each step's time went: computing, moving bytes, waiting on slower peers, and the rest.
import type { StepMetrics } from '../lab/events';

export interface StepSplit {
  step: number;
  computeMs: number;
  commMs: number;
  waitMs: number;
  /** Step time not covered by the three (optimizer, bookkeeping); never negative. */
  otherMs: number;
  stepMs: number;
}

/** The newest `count` steps of `rank`, oldest first. */
export function stepSplits(steps: readonly StepMetrics[], rank: number, count: number): StepSplit[] {
  const out: StepSplit[] = [];
  for (let i = steps.length - 1; i >= 0 && out.length < count; i--) {
    const s = steps[i];
    if (s.rank !== rank) continue;
    const known = s.computeMs + s.commMs + s.waitMs;
    out.push({
      step: s.step,
      computeMs: s.computeMs,
      commMs: s.commMs,
      waitMs: s.waitMs,
      otherMs: Math.max(0, s.stepMs - known),
      stepMs: Math.max(s.stepMs, known),
    });
  }
  return out.reverse();
}

export function meanSplit(splits: readonly StepSplit[]): StepSplit | null {
  if (splits.length === 0) return null;
  const sum = (k: keyof StepSplit) => splits.reduce((a, s) => a + s[k], 0) / splits.length;
  return {
    step: splits[splits.length - 1].step,
    computeMs: sum('computeMs'),
    commMs: sum('commMs'),
    waitMs: sum('waitMs'),
    otherMs: sum('otherMs'),
    stepMs: sum('stepMs'),
  };
}
