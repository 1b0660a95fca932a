import { describe, expect, it } from 'vitest';
import type { PipelineFigures, TimedOp } from '../src/lab/partitioned-run';
import { formatPipelineReport, pipelineReport, type PipelineTab } from './swarm-pipeline';

/**
 * Two stages, one micro-batch, epoch ms offset by 1e12: stage 0 computes [0, 10) and [30, 40), stage 1
 * [12, 28); each message reaches the waiting stage 2 ms after the compute that made it.
 */
function step(round: number, stage: number): TimedOp[] {
  const t0 = 1e12 + round * 1000;
  return stage === 0
    ? [
        { kind: 'forward', stage: 0, micro: 0, tStart: t0, tEnd: t0 + 10 },
        { kind: 'send-activation', stage: 0, micro: 0, peer: 1, bytes: 64, tStart: t0 + 10, tEnd: t0 + 10 },
        { kind: 'recv-grad', stage: 0, micro: 0, peer: 1, bytes: 64, tStart: t0 + 10, tEnd: t0 + 30 },
        { kind: 'backward', stage: 0, micro: 0, tStart: t0 + 30, tEnd: t0 + 40 },
      ]
    : [
        { kind: 'recv-activation', stage: 1, micro: 0, peer: 0, bytes: 64, tStart: t0, tEnd: t0 + 12 },
        { kind: 'forward', stage: 1, micro: 0, tStart: t0 + 12, tEnd: t0 + 20 },
        { kind: 'backward', stage: 1, micro: 0, tStart: t0 + 20, tEnd: t0 + 28 },
        { kind: 'send-grad', stage: 1, micro: 0, peer: 0, bytes: 64, tStart: t0 + 28, tEnd: t0 + 28 },
      ];
}

function tab(stage: number, params: number[]): PipelineTab {
  const figures: PipelineFigures = {
    kind: 'pipeline',
    schedule: 'gpipe',
    stages: 2,
    pipelines: 1,
    micro: 1,
    stage,
    pipeline: 0,
    activationBytesPerSet: 100,
    peakActivationBytes: 100,
    expectedPeakActivationBytes: 100,
    wireFormulaBytesPerStep: 64,
    placement: [{ name: stage === 0 ? 'a' : 'b', partOffset: 0, wholeOffset: stage * 2, length: 2 }],
    steps: [0, 1, 2].map((round) => ({ round, ops: step(round, stage) })),
  };
  return { figures, params };
}

describe('the swarm pipeline report', () => {
  it('measures busy, idle and bubble from the tabs\' ops on one clock (the first step left out), and the parity by placement', () => {
    const report = pipelineReport([tab(0, [1, 2]), tab(1, [3, 4.5])], [1, 2, 3, 4]);
    expect(report.stepsMeasured).toBe(2);
    // Span 40 ms; stage 0 computes 20 ms, stage 1 16 ms: bubble 1 - 36 / (2 x 40) = 0.55 against (P-1)/(M+P-1) = 0.5.
    expect(report.rows.map((r) => [r.busyMs, r.idleMs, r.bubble])).toEqual([
      [20, 20, 0.5],
      [16, 24, 0.6],
    ]);
    expect(report.bubble).toBeCloseTo(0.55, 12);
    expect(report.idealBubble).toBe(0.5);
    // Replayed with these costs (stage 0 10 + 10 ms, stage 1 8 + 8 ms): 36 of 2 x 36 with free
    // messages (0.5), and with the measured 2 ms hand-over the measured 40 ms span (0.55).
    expect(report.handOverMs).toBe(2);
    expect(report.predictedBubbleNoDelay).toBeCloseTo(0.5, 12);
    expect(report.predictedBubble).toBeCloseTo(0.55, 12);
    expect(report.computeConcurrency).toBeCloseTo(36 / 40, 12);
    expect(formatPipelineReport(report)).toContain('measured - theory +0.050 = unequal stages +0.000 + link +0.050 + unexplained +0.000');
    expect(report.rows.map((r) => r.wireBytesPerStep)).toEqual([64, 64]);
    // The only difference is 0.5 at the whole model's offset 3; the largest reference value is 4.
    expect(report.parity).toBe(0.125);
    expect(formatPipelineReport(report)).toContain('wire 128 bytes/step vs 2·M·(boundary activation bytes) = 128');
  });

  it('refuses figures that lack a stage of pipeline 0', () => {
    expect(() => pipelineReport([tab(0, [1, 2])])).toThrow(/pipeline 0 reported 1 of its 2 stages/);
  });
});
