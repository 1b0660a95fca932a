// The swarm summary's arithmetic and wording over hand-made tab reports (no tab ran here: the numbers
// are inputs, not measurements).
import { describe, expect, it } from 'vitest';
import { DEFAULT_CONFIG } from '../src/lab/config';
import type { LabMetrics, LabStatus } from '../src/lab/api';
import { compareRuns, formatComparison, formatSummary, summariseRun } from './swarm-summary';

function tab(rank: number, overrides: Partial<LabMetrics> = {}): { status: LabStatus; metrics: LabMetrics } {
  return {
    status: { rank, world: 2, step: 10, steps: 10, state: 'done', error: null, room: 'r', backend: { kind: 'webgpu', adapter: 'google swiftshader' }, epoch: 1 },
    metrics: {
      losses: [2, 1.5, 1.25],
      lossSteps: [1, 5, 10],
      valLoss: 1.1,
      accuracy: 0.9,
      bigramValLoss: null,
      bytesSent: 1000,
      bytesReceived: 1000,
      computeMsPerStep: 40,
      commMsPerStep: 60,
      overlapMsPerStep: 30,
      waitMsPerStep: 5,
      stepMsPerStep: 75,
      wallMsPerStep: null,
      samplesPerSec: 100,
      memory: null,
      hashesAgree: true,
      lastHash: '0123456789abcdef',
      sample: null,
      ...overrides,
    },
  };
}

describe('swarm summary (hand-made tab reports)', () => {
  it('adds bytes over ranks, averages times, and relates the step to the busier of compute and comm', () => {
    const s = summariseRun({ ...DEFAULT_CONFIG, steps: 10 }, [tab(1, { commMsPerStep: 80, stepMsPerStep: 85 }), tab(0)], 3);
    expect(s.tabs).toBe(2);
    expect(s.bytesSent).toBe(2000);
    expect(s.bytesSentPerStep).toBe(200);
    expect(s.commMsPerStep).toBe(70);
    expect(s.overlapRatio).toBeCloseTo(80 / 70);
    expect(s.finalLoss).toBe(1.25);
    expect(s.replicasAgree).toBe(true);
    expect(formatSummary(s)).toMatch(/held-out accuracy\s+90\.00%/);
    expect(s.reforms).toBe(0);
  });

  it('counts the re-forms of the ring as the rank that counted most (a tab that joined late counted fewer)', () => {
    const s = summariseRun({ ...DEFAULT_CONFIG, steps: 10 }, [tab(0, { elastic: { reforms: 2, joins: 1, departures: 1 } }), tab(1, { elastic: { reforms: 1, joins: 1, departures: 0 } })], 3);
    expect(s.reforms).toBe(2);
  });

  it("reports the room's mean loss as the final loss where the room published one (rank 0 trained on no samples: its own loss is NaN)", () => {
    const zeroShareLead = tab(0, { losses: [Number.NaN], roomLosses: [{ step: 10, loss: 0.75, ranks: 2 }] });
    expect(summariseRun({ ...DEFAULT_CONFIG, steps: 10 }, [zeroShareLead, tab(1)], 3).finalLoss).toBe(0.75);
  });

  it('splits the step into compute only, both at once, communication only, waiting and the rest', () => {
    // compute 40, comm 60, 30 of it at once, waiting 5, step 75: 10 + 30 + 30 + 5 = 75, nothing else.
    const s = summariseRun({ ...DEFAULT_CONFIG, steps: 10 }, [tab(0), tab(1)], 3);
    expect(s.overlapMsPerStep).toBe(30);
    expect(formatSummary(s)).toMatch(
      /the step split\s+compute only 10\.0 ms, both at once 30\.0 ms, communication only 30\.0 ms, waiting 5\.0 ms, other 0\.0 ms/,
    );
  });

  it("prints the slowest tab's wall clock per step, with what runs between steps, once every tab timed it", () => {
    expect(summariseRun({ ...DEFAULT_CONFIG, steps: 10 }, [tab(0), tab(1, { wallMsPerStep: 80 })], 3).wallMsPerStep).toBeNull();
    const s = summariseRun({ ...DEFAULT_CONFIG, steps: 10 }, [tab(0, { wallMsPerStep: 90 }), tab(1, { wallMsPerStep: 80 })], 3);
    expect(s.wallMsPerStep).toBe(90);
    // The steady pace (each tab's window without its newest step): the slowest tab's, once every tab has one.
    expect(s.steadyWallMsPerStep).toBeNull();
    const steady = summariseRun({ ...DEFAULT_CONFIG, steps: 10 }, [tab(0, { wallMsPerStep: 90, steadyWallMsPerStep: 70 }), tab(1, { wallMsPerStep: 80, steadyWallMsPerStep: 75 })], 3);
    expect(steady.steadyWallMsPerStep).toBe(75);
    expect(formatSummary(s)).toMatch(new RegExp(`wall clock per step\\s+90\\.0 ms = ${(90 / s.stepMsPerStep).toFixed(2)}x the step \\(the same steps, end to end: with what runs between them`));
    // compute 40, comm 60 on both ranks: the busier is 60.
    expect(s.wallOverlapRatio).toBeCloseTo(90 / 60);
    expect(formatSummary(s)).toMatch(/wall clock per step \/ max\(compute, comm\) = 1\.50 \(with what runs between steps\)/);
  });

  it('sets a compressed run beside its dense twin: accuracy points lost and how many times fewer bytes', () => {
    const topk = summariseRun({ ...DEFAULT_CONFIG, steps: 10, compression: 'topk' }, [tab(0, { accuracy: 0.9303, bytesSent: 500 }), tab(1, { accuracy: 0.9303, bytesSent: 500 })], 3);
    const dense = summariseRun({ ...DEFAULT_CONFIG, steps: 10 }, [tab(0, { accuracy: 0.9373, bytesSent: 19_600 }), tab(1, { accuracy: 0.9373, bytesSent: 19_600 })], 3);
    const text = formatComparison(topk, dense);
    expect(text).toMatch(/held-out accuracy 93\.03% vs 93\.73% \(-0\.70 points\)/);
    expect(text).toMatch(/\(39\.2x fewer\)/);
    const c = compareRuns(topk, dense);
    expect(c.accuracyPoints).toBeCloseTo(-0.7);
    expect(c.bytesFewer).toBeCloseTo(39.2);
    const gptA = summariseRun({ ...DEFAULT_CONFIG, steps: 10 }, [tab(0, { accuracy: null, valLoss: 2.5 })], 3);
    const gptB = summariseRun({ ...DEFAULT_CONFIG, steps: 10 }, [tab(0, { accuracy: null, valLoss: 2.4 })], 3);
    expect(formatComparison(gptA, gptB)).toMatch(/validation loss 2\.5000 vs 2\.4000 \(\+0\.1000\)/);
  });

    it("prints the host's load, and says when a saturated host leaves compute and communication taking turns", () => {
    const busy = summariseRun({ ...DEFAULT_CONFIG, steps: 10 }, [tab(0), tab(1)], 3, { cores: 2, busy: 0.97 });
    expect(busy.hostCpu).toEqual({ cores: 2, busy: 0.97 });
    expect(formatSummary(busy)).toMatch(/host CPU\s+97% busy over 2 core\(s\) while training\n\s+saturated: compute/);
    const idle = formatSummary(summariseRun({ ...DEFAULT_CONFIG, steps: 10 }, [tab(0), tab(1)], 3, { cores: 16, busy: 0.4 }));
    expect(idle).toMatch(/host CPU\s+40% busy over 16 core\(s\)/);
    expect(idle).not.toMatch(/saturated/);
    expect(formatSummary(summariseRun({ ...DEFAULT_CONFIG, steps: 10 }, [tab(0), tab(1)], 3))).not.toMatch(/host CPU/);
  });

  it('sums the transports\' wire counts beside the schedule\'s payload bytes, and says when a rank has none', () => {
    const wire = (payloadBytes: number, frames: number) => ({ payloadBytes, frames, wireBytes: payloadBytes + 56 * frames });
    const s = summariseRun({ ...DEFAULT_CONFIG, steps: 10 }, [tab(0, { wire: wire(1100, 10) }), tab(1, { wire: wire(1200, 12) })], 3);
    expect(s.wire).toEqual({ payloadBytes: 2300, frames: 22, wireBytes: 2300 + 56 * 22 });
    expect(formatSummary(s)).toMatch(/bytes sent \(all\)\s+1\.95 KiB \(200 B per step\) of model data, as the schedules count it/);
    expect(formatSummary(s)).toMatch(/on the wire \(all\)\s+3\.45 KiB in 22 frames: 2\.25 KiB of payload \(model data, hash exchanges, backups\) \+ 1\.20 KiB of frame headers and MACs/);
    const solo = summariseRun({ ...DEFAULT_CONFIG, steps: 10 }, [tab(0, { wire: null })], 3);
    expect(solo.wire).toBeNull();
    expect(formatSummary(solo)).toMatch(/on the wire \(all\)\s+unknown/);
  });

  it('reports disagreement when any rank saw a different hash', () => {
    const s = summariseRun(DEFAULT_CONFIG, [tab(0), tab(1, { lastHash: 'ffffffffffffffff' })], 1);
    expect(s.replicasAgree).toBe(false);
    expect(s.ok).toBe(false);
    expect(formatSummary(s)).toMatch(/replicas agree\s+NO/);
  });
});
