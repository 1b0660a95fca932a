import { describe, expect, it } from 'vitest';
import type { ChunkEvent } from '../collective/types';
import type { LinkFitEvent, StepMetrics } from '../shared/events';
import { RunMetrics, wallClockPerStep } from './run-metrics';

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

  it('metrics().links: null before a fit, then the newest fit and the newest refit of the same room as plain data (no event type or time)', () => {
    const metrics = new RunMetrics(() => 0);
    expect(metrics.values.links).toBeNull();
    const formed: LinkFitEvent = {
      type: 'link-fit', kind: 'formed', step: 0, world: 3, link: { alpha: 0.005, beta: 5e-8, gamma: 2e-8 }, rmsRelativeError: 0.1, samples: 12, buckets: [],
      picks: [{ bytes: 256, algorithm: 'naive', predictedMs: { naive: 5 }, latencyBoundMs: 5 }], t: 7,
    };
    metrics.record(formed);
    const refit = { ...formed, kind: 'refit' as const, step: 9, buckets: [{ bytes: 4096, algorithm: 'naive', predictedMs: 5.2, measuredMs: 6.1 }], t: 8 };
    metrics.record(refit);
    metrics.record({ ...formed, step: 19, t: 9 });
    const { type: _type, t: _t, ...plainRefit } = refit;
    expect(metrics.values.links).toMatchObject({ fits: 3, latest: { kind: 'formed', step: 19 }, lastRefit: plainRefit });
    expect(metrics.values.links!.latest).not.toHaveProperty('type');
  });

  it('metrics().sharesIdle: the steps this tab had no samples by the agreed splits, and the chunk bytes it moved at them', () => {
    const metrics = new RunMetrics(() => 2);
    const chunk = (round: number, direction: 'send' | 'recv', bytes: number) =>
      ({ type: 'chunk', direction, collective: 'ring-allreduce', runId: `${round}:16`, round, phase: 'broadcast', step: 0, chunk: 0, part: 0, rank: 2, peer: 1, bytes, offset: 0, length: bytes / 4, tStart: 0, tEnd: 1 }) satisfies ChunkEvent;
    metrics.record(chunk(0, 'send', 100));
    expect(metrics.values.sharesIdle).toBeUndefined();
    metrics.record({ type: 'shares', rank: 2, fromStep: 3, counts: [12, 12, 0], samplesPerSec: [1, 1, 0.01], t: 0 });
    metrics.record({ type: 'shares', rank: 2, fromStep: 5, counts: [8, 8, 8], samplesPerSec: [1, 1, 1], t: 0 });
    metrics.record(chunk(2, 'send', 100)); // before the first split: even shares
    metrics.record(chunk(3, 'recv', 40));
    metrics.record(chunk(3, 'recv', 40));
    metrics.record(chunk(4, 'send', 7)); // a bug this metric exists to show
    metrics.record(chunk(4, 'recv', 40));
    metrics.record(chunk(5, 'send', 100)); // a share again
    expect(metrics.values.sharesIdle).toEqual({ steps: 2, bytesSent: 7, bytesReceived: 120 });
    expect(metrics.values.bytesSent).toBe(307);
  });

  it('metrics().parking: steps sat out, bring-backs and hand-overs with their state bytes; a parked tab\'s wall clock per step counts the steps it sat out', () => {
    const metrics = new RunMetrics(() => 1);
    const parking = (kind: 'sat-out' | 'brought-back' | 'handed-over', step: number, t: number, bytes = 0, receivers = 0, rank = 1) => ({ type: 'parking' as const, kind, rank, step, bytes, receivers, t });
    metrics.record({ ...step(1, 10, 10), t: 1000 });
    metrics.record(parking('sat-out', 11, 1100));
    metrics.record(parking('sat-out', 12, 1150));
    metrics.record(parking('brought-back', 13, 1300, 2_000));
    metrics.record(parking('handed-over', 13, 1300, 2_000, 2, 0)); // another rank's
    metrics.record(parking('handed-over', 20, 2000, 500, 2));
    expect(metrics.values.parking).toEqual({ satOut: 3, broughtBack: 1, bytesReceived: 2_000, handedOver: 1, bytesSent: 1_000, broughtBackAt: [13] });
    // Steps 11 to 13 (the first, step 10, left out): 200 ms over 2 steps.
    expect(metrics.values.wallMsPerStep).toBe(100);
  });

  it('times the wall clock per step from the end of the first averaged step to the end of the last', () => {
    const metrics = new RunMetrics(() => 0);
    // Steps are logged every 10: steps 10 and 30 end 2,400 ms apart, evaluations and checks included.
    metrics.record({ ...step(0, 1, 500), t: 100 });
    expect(metrics.values.wallMsPerStep).toBeNull();
    metrics.record({ ...step(0, 10, 10), t: 1000 });
    expect(metrics.values.wallMsPerStep).toBeNull(); // the first step is left out: one step is no interval
    metrics.record({ ...step(0, 20, 10), t: 2100 });
    metrics.record({ ...step(0, 30, 10), t: 3400 });
    expect(metrics.values.wallMsPerStep).toBe(120);
    // The steady pace leaves out the newest step: steps 10 to 20, 1,100 ms.
    expect(metrics.values.steadyWallMsPerStep).toBe(110);
    metrics.record({ ...step(0, 40, 10), t: 9400 }); // the last step: 6 s, an end-of-run hand-over included
    expect(metrics.values.wallMsPerStep).toBe((9400 - 1000) / 30);
    expect(metrics.values.steadyWallMsPerStep).toBe(120); // steps 10 to 30, as before the last step
  });

  it('has no wall clock per step when the step counter went back (an elastic room redid a step)', () => {
    expect(wallClockPerStep([{ endedAt: 0, stepNumber: 20 }, { endedAt: 500, stepNumber: 20 }])).toBeNull();
    expect(wallClockPerStep([{ endedAt: 0, stepNumber: 20 }, { endedAt: 500, stepNumber: 10 }])).toBeNull();
    expect(wallClockPerStep([{ endedAt: 0, stepNumber: 10 }, { endedAt: 500, stepNumber: 15 }])).toBe(100);
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

  it('puts refused frames and signals in the log, as warnings naming the peer and the reason', () => {
    const metrics = new RunMetrics(() => 0);
    metrics.record({ type: 'refused', from: 'peer-7', reason: 'frame for another room', t: 5 });
    expect(metrics.logLines()).toEqual([{ t: 5, level: 'warn', message: 'refused from peer-7: frame for another room' }]);
  });
});
