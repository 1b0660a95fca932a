import { describe, expect, it } from 'vitest';
import type { StepMetrics } from './events';
import { RunMetrics } from './run-metrics';

const step = (rank: number, n: number, computeMs: number): StepMetrics => ({
  type: 'step', rank, step: n, loss: 1 / n, samplesPerSec: 100, computeMs, commMs: 2 * computeMs, overlapMs: computeMs / 2, waitMs: 0, stepMs: 3 * computeMs, bytesSent: 10, bytesReceived: 10, t: n,
});

describe('RunMetrics', () => {
  it("keeps this rank's steps, follows the rank when it changes, and leaves the first step out of the averages", () => {
    let rank = 1;
    const metrics = new RunMetrics(() => rank);
    metrics.record(step(1, 1, 500)); // compiles pipelines: not representative
    metrics.record(step(1, 2, 10));
    metrics.record(step(0, 2, 99)); // another rank's
    metrics.record(step(1, 3, 20));
    expect(metrics.values.lossSteps).toEqual([1, 2, 3]);
    expect(metrics.values.computeMsPerStep).toBe(15);
    expect(metrics.values.commMsPerStep).toBe(30);
    expect(metrics.values.overlapMsPerStep).toBe(7.5);
    rank = 0; // the ring re-formed without the old rank 0
    metrics.record(step(0, 4, 20));
    expect(metrics.values.lossSteps).toEqual([1, 2, 3, 4]);
  });

  it('keeps the last 200 log lines', () => {
    const metrics = new RunMetrics(() => 0);
    for (let i = 0; i < 250; i++) metrics.record({ type: 'log', level: 'info', message: `line ${i}`, t: i });
    const lines = metrics.logLines();
    expect(lines.length).toBe(200);
    expect(lines[0].message).toBe('line 50');
    lines[0].message = 'changed';
    expect(metrics.logLines()[0].message).toBe('line 50');
  });
});
