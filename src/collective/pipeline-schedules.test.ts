import { describe, expect, it } from 'vitest';
import {
  checkPipeline,
  expectedPeakInFlight,
  formatStageSchedule,
  formatTimeline,
  gpipeSchedule,
  idealBubbleFraction,
  oneFOneBSchedule,
  peakInFlight,
  PIPELINE_SCHEDULES,
  pipelineSchedules,
  simulate,
  stageSchedule,
  type StageSchedule,
} from './pipeline-schedules';

const STAGES = [1, 2, 3, 4, 5, 6, 7, 8];
const MICROS = Array.from({ length: 32 }, (_, i) => i + 1);

describe('pipeline schedules over P = 1..8, M = 1..32', () => {
  it.each(PIPELINE_SCHEDULES)('%s: every list is sound, matched and deadlock-free', (kind) => {
    for (const P of STAGES) {
      for (const M of MICROS) {
        const schedules = pipelineSchedules(kind, P, M);
        expect(checkPipeline(schedules), `${kind} P=${P} M=${M}`).toEqual([]);
        const run = simulate(schedules);
        expect(run.deadlock).toBeUndefined();
        expect(run.timeline.map((ops) => ops.length)).toEqual(schedules.map((s) => s.ops.length));
        // Compute ops and messages: 2M computes per stage, 2M messages per link in each direction's total.
        for (const s of schedules) expect(s.ops.filter((op) => op.kind === 'forward' || op.kind === 'backward')).toHaveLength(2 * M);
        const messages = schedules.flatMap((s) => s.ops.filter((op) => op.kind.startsWith('send')));
        expect(messages).toHaveLength(2 * M * (P - 1));
      }
    }
  });

  it.each(PIPELINE_SCHEDULES)('%s: the ideal timeline (unit costs) has bubble fraction (P-1)/(M+P-1) exactly (1e-12)', (kind) => {
    for (const P of STAGES) {
      for (const M of MICROS) {
        const run = simulate(pipelineSchedules(kind, P, M));
        expect(run.makespan).toBe(2 * (M + P - 1));
        expect(run.busy).toEqual(new Array(P).fill(2 * M));
        expect(Math.abs(run.bubbleFraction - idealBubbleFraction(P, M))).toBeLessThan(1e-12);
      }
    }
  });

  it.each(PIPELINE_SCHEDULES)('%s: with backward twice a forward the bubble is still (P-1)/(M+P-1) (1e-12)', (kind) => {
    for (const P of STAGES) {
      for (const M of [1, 4, 16]) {
        const run = simulate(pipelineSchedules(kind, P, M), { forward: 1, backward: 2 });
        expect(run.makespan).toBe(3 * (M + P - 1));
        expect(Math.abs(run.bubbleFraction - idealBubbleFraction(P, M))).toBeLessThan(1e-12);
      }
    }
  });

  it('per-stage costs: GPipe P=2 M=2, stage 1 three times slower, makespan by hand; a cost list of the wrong length refused', () => {
    // Stage 0 F [0,1] [1,2]; stage 1 F [1,4] [4,7], B [7,10] [10,13]; stage 0 B [10,11] [13,14].
    const run = simulate(pipelineSchedules('gpipe', 2, 2), { forward: [1, 3], backward: [1, 3] });
    expect(run.makespan).toBe(14);
    expect(run.busy).toEqual([4, 12]);
    expect(() => simulate(pipelineSchedules('gpipe', 2, 2), { forward: [1, 2, 3] })).toThrow(/forward costs: 3 values for 2 stages/);
  });

  it('peak activations in flight per stage: GPipe M, 1F1B min(P - stage, M)', () => {
    for (const P of STAGES) {
      for (const M of MICROS) {
        for (let s = 0; s < P; s++) {
          expect(peakInFlight(gpipeSchedule(P, s, M))).toBe(M);
          expect(peakInFlight(oneFOneBSchedule(P, s, M))).toBe(Math.min(P - s, M));
          for (const kind of PIPELINE_SCHEDULES) expect(peakInFlight(stageSchedule(kind, P, s, M))).toBe(expectedPeakInFlight(kind, P, s, M));
        }
      }
    }
  });

  it('1F1B interleaves: after the warm-up every forward is followed by a backward', () => {
    const ops = oneFOneBSchedule(4, 1, 8).ops.filter((op) => op.kind === 'forward' || op.kind === 'backward');
    expect(ops.map((op) => `${op.kind[0].toUpperCase()}${op.micro}`).join(' ')).toBe('F0 F1 F2 B0 F3 B1 F4 B2 F5 B3 F6 B4 F7 B5 B6 B7');
    const gpipe = gpipeSchedule(4, 1, 3).ops.filter((op) => op.kind === 'forward' || op.kind === 'backward');
    expect(gpipe.map((op) => `${op.kind[0].toUpperCase()}${op.micro}`).join(' ')).toBe('F0 F1 F2 B0 B1 B2');
  });

  it('the checker finds a backward before its forward, an unmatched send and a deadlock', () => {
    const good = pipelineSchedules('gpipe', 2, 2);
    const swapped: StageSchedule[] = good.map((s) => ({ ...s, ops: [...s.ops] }));
    const ops1 = swapped[1].ops;
    const f = ops1.findIndex((op) => op.kind === 'forward' && op.micro === 0);
    const b = ops1.findIndex((op) => op.kind === 'backward' && op.micro === 0);
    [ops1[f], ops1[b]] = [ops1[b], ops1[f]];
    expect(checkPipeline(swapped).join('\n')).toMatch(/backward of micro-batch 0 before its forward/);

    const dropped: StageSchedule[] = good.map((s) => ({ ...s, ops: s.ops.filter((op) => !(s.stage === 1 && op.kind === 'recv-activation' && op.micro === 1)) }));
    expect(checkPipeline(dropped).join('\n')).toMatch(/activation 1: 0->1 sent 1 times, received 0/);

    // Stage 0 waits for gradient 0 before sending activation 1; stage 1 waits for activation 1 before
    // its backwards: sound locally, matched, and stuck.
    const stuck: StageSchedule[] = [
      { schedule: 'gpipe', stages: 2, stage: 0, micro: 2, ops: [
        { kind: 'forward', micro: 0 }, { kind: 'send-activation', micro: 0, peer: 1 },
        { kind: 'recv-grad', micro: 0, peer: 1 }, { kind: 'forward', micro: 1 }, { kind: 'send-activation', micro: 1, peer: 1 },
        { kind: 'backward', micro: 0 }, { kind: 'recv-grad', micro: 1, peer: 1 }, { kind: 'backward', micro: 1 },
      ] },
      { ...gpipeSchedule(2, 1, 2) },
    ];
    expect(checkPipeline(stuck)).toEqual([expect.stringMatching(/^deadlock: stage 0 waits at recv-grad of micro-batch 0 from stage 1; stage 1 waits at recv-activation of micro-batch 1/)]);
  });

  it('refuses bad shapes and names clearly', () => {
    expect(() => gpipeSchedule(0, 0, 1)).toThrow(/stages must be an integer >= 1/);
    expect(() => gpipeSchedule(2, 2, 1)).toThrow(/stage must be an integer in \[0, 2\)/);
    expect(() => oneFOneBSchedule(2, 0, 0)).toThrow(/micro-batches must be an integer >= 1/);
    expect(() => stageSchedule('zigzag' as never, 2, 0, 2)).toThrow(/unknown pipeline schedule "zigzag"/);
  });

  it('prints a stage list and the stage x time diagram', () => {
    expect(formatStageSchedule(oneFOneBSchedule(2, 1, 2))).toBe(
      ['1f1b stage 1/2, 2 micro-batches, 8 ops', '  0 recv-activation m0 <- s0', '  1 forward m0', '  2 backward m0', '  3 send-grad m0 -> s0', '  4 recv-activation m1 <- s0', '  5 forward m1', '  6 backward m1', '  7 send-grad m1 -> s0'].join('\n'),
    );
    const text = formatTimeline(pipelineSchedules('gpipe', 3, 2));
    expect(text.split('\n')).toEqual([
      'gpipe P=3 M=2: 8 time units, bubble 50.0% (ideal (P-1)/(M+P-1) = 50.0%)',
      'stage 0 | F0 F1 .  .  .  .  B0 B1',
      'stage 1 | .  F0 F1 .  .  B0 B1 . ',
      'stage 2 | .  .  F0 F1 B0 B1 .  . ',
    ]);
  });
});
