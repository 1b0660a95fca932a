import { describe, expect, it } from 'vitest';
import type { EvalMetrics, StepMetrics } from '../shared/events';
import { buildLossSeries, latestReadout } from './loss-series';

const step = (rank: number, n: number, loss: number): StepMetrics => ({
  type: 'step',
  rank,
  step: n,
  loss,
  samplesPerSec: 0,
  computeMs: 0,
  commMs: 0,
  overlapMs: 0,
  waitMs: 0,
  stepMs: 0,
  bytesSent: 0,
  bytesReceived: 0,
  t: n,
});
const evalAt = (n: number, valLoss: number, accuracy?: number): EvalMetrics => ({ type: 'eval', rank: 0, step: n, valLoss, accuracy, t: n });

describe('buildLossSeries', () => {
  it("the train curve is the room's mean where the hash exchange brought one, this tab's own loss elsewhere", () => {
    const s = buildLossSeries([step(0, 1, 2), step(0, 2, 1)], [], [{ type: 'room-loss', step: 1, loss: 2.5, ranks: 4 }]);
    const [xs, own, run] = s.data;
    expect(xs).toEqual([1, 2]);
    expect(own).toEqual([2, 1]);
    expect(run).toEqual([2.5, 1]);
  });

  it('aligns per-rank losses, their mean and evals on one step axis', () => {
    const s = buildLossSeries(
      [step(1, 1, 4), step(0, 1, 2), step(0, 2, 1), step(1, 3, 3)],
      [evalAt(2, 1.5, 0.6)],
    );
    expect(s.ranks).toEqual([0, 1]);
    const [xs, r0, r1, run, val, acc] = s.data;
    expect(xs).toEqual([1, 2, 3]);
    expect(r0).toEqual([2, 1, null]);
    expect(r1).toEqual([4, null, 3]);
    expect(run).toEqual([3, 1, 3]);
    expect(val).toEqual([null, 1.5, null]);
    expect(acc).toEqual([null, 0.6, null]);
  });

  it('skips non-finite losses in the mean', () => {
    const s = buildLossSeries([step(0, 1, Number.NaN), step(1, 1, 2)], []);
    expect(s.data[3]).toEqual([2]);
  });

  it('reads out the newest values', () => {
    expect(latestReadout(buildLossSeries([], []))).toBe('No steps yet.');
    const s = buildLossSeries([step(0, 1, 2), step(0, 2, 1.25)], [evalAt(1, 1.5, 0.5)]);
    expect(latestReadout(s)).toBe('step 2, train loss 1.2500, val loss 1.5000, accuracy 50.0%');
  });
});
