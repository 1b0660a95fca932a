import { describe, expect, it } from 'vitest';
import { formatSharesFigure, sharesFigure } from './swarm-shares';
import type { RunSummary } from './swarm-summary';

const run = (wallMsPerStep: number, extra: Partial<RunSummary> = {}) => ({ wallMsPerStep, stepMsPerStep: wallMsPerStep, commMsPerStep: 40, accuracy: 0.9, replicasAgree: true, shares: null, ...extra }) as RunSummary;

describe('sharesFigure', () => {
  it('ideal = 1 / sum over tabs of 1 / solo ms per step; ratios against it and against equal shares', () => {
    // Two tabs at 300 ms and one at 100 ms do 1/300 + 1/300 + 1/100 = 1/60 of a global batch per ms.
    const shares = { fromStep: 92, counts: [12, 12, 104], samplesPerSec: [400, 410, 3500] };
    const f = sharesFigure(['webgpu', 'webgpu', 'cpu'], { webgpu: run(300), cpu: run(100) }, run(330), run(72, { shares }));
    expect(f.idealMs).toBeCloseTo(60, 10);
    expect(f.equalVsIdeal).toBeCloseTo(5.5, 10);
    expect(f.autoVsIdeal).toBeCloseTo(1.2, 10);
    expect(f.autoVsEqual).toBeCloseTo(72 / 330, 10);
    // Concurrent: 128 samples over 400 + 410 + 3500 samples/s.
    expect(f.concurrentIdealMs).toBeCloseTo((1000 * 128) / 4310, 10);
    expect(f.autoVsConcurrentIdeal).toBeCloseTo(72 / ((1000 * 128) / 4310), 10);
    // The host bound: the fastest tab's solo time (the CPU tab's 100 ms).
    expect(f.hostBoundMs).toBe(100);
    expect(f.autoVsHostBound).toBeCloseTo(0.72, 10);
    expect(f.replicasAgree).toBe(true);
    const text = formatSharesFigure(f);
    expect(text).toContain('ideal                60.0 ms/step');
    expect(text).toContain('concurrent ideal     29.7 ms/step');
    expect(text).toContain('host bound           100.0 ms/step');
    expect(text).toContain('0.72x the host bound');
    expect(text).toContain('[12, 12, 104] samples from step 92');
    // No steady figure measured: none printed.
    expect(f.autoSteadyMs).toBeNull();
    expect(text).not.toContain('shares=auto steady');
  });

  it("prints shares=auto's steady pace (without the end-of-run hand-over) beside the end-to-end figure, each against the ideal and the host bound", () => {
    const f = sharesFigure(['webgpu', 'webgpu', 'cpu'], { webgpu: run(300), cpu: run(100) }, run(330), run(90, { steadyWallMsPerStep: 66 }));
    expect(f.autoMs).toBe(90);
    expect(f.autoSteadyMs).toBe(66);
    expect(f.autoSteadyVsIdeal).toBeCloseTo(1.1, 10);
    expect(f.autoSteadyVsHostBound).toBeCloseTo(0.66, 10);
    const text = formatSharesFigure(f);
    expect(text).toContain('shares=auto          90.0 ms/step, 1.50x the ideal');
    expect(text).toContain('shares=auto steady   66.0 ms/step, 1.10x the ideal, 0.66x the host bound');
  });

  it('fails without a solo time for a backend in the room, and reports a room whose replicas disagreed', () => {
    expect(() => sharesFigure(['webgpu', 'cpu'], { webgpu: run(300) }, run(1), run(1))).toThrow(/no solo time for backend cpu/);
    const disagreed = sharesFigure(['cpu', 'cpu'], { cpu: run(100) }, run(60), run(55, { replicasAgree: false }));
    expect(disagreed.replicasAgree).toBe(false);
    // No agreed split (the room never re-balanced): no concurrent ideal, and the text leaves it out.
    expect(disagreed.concurrentIdealMs).toBeNull();
    expect(formatSharesFigure(disagreed)).not.toContain('concurrent ideal');
  });
});
