import { describe, expect, it } from 'vitest';
import type { PipelineEvent } from './pipeline-executor';
import { idealBubbleFraction, pipelineSchedules } from './pipeline-schedules';
import { formatEventTimeline, handOverTimes, measuredOpCosts, measureTimeline, predictBubble } from './pipeline-timeline';

const event = (stage: number, kind: PipelineEvent['kind'], tStart: number, tEnd: number, bytes?: number): PipelineEvent => ({
  type: 'pipeline',
  kind,
  stage,
  micro: 0,
  round: 0,
  tStart,
  tEnd,
  ...(bytes !== undefined ? { bytes, peer: stage + 1 } : {}),
});

describe('measureTimeline', () => {
  it('counts computes as busy, everything else in the span as idle, and sums the bytes sent', () => {
    // Two stages over [10, 50]: stage 0 computes 10..20 and 40..50, stage 1 computes 22..38 and waits before.
    const t = measureTimeline(
      [
        event(0, 'forward', 10, 20),
        event(0, 'send-activation', 20, 21, 400),
        event(1, 'recv-activation', 10, 22, 400),
        event(1, 'forward', 22, 30),
        event(1, 'backward', 30, 38),
        event(1, 'send-grad', 38, 39, 400),
        event(0, 'recv-grad', 21, 40, 400),
        event(0, 'backward', 40, 50),
      ],
      2,
    );
    expect(t.spanMs).toBe(40);
    // Idle split: stage 0 waits 19 ms for its gradient and 1 ms in its send; stage 1 waits 12 ms for
    // its activation, 1 ms in its send, and 11 ms after its last op while stage 0 finishes.
    expect(t.stages).toEqual([
      { stage: 0, busyMs: 20, idleMs: 20, recvWaitMs: 19, edgeMs: 0, otherIdleMs: 1, bytesSent: 400 },
      { stage: 1, busyMs: 16, idleMs: 24, recvWaitMs: 12, edgeMs: 11, otherIdleMs: 1, bytesSent: 400 },
    ]);
    expect(t.bubbleFraction).toBeCloseTo(1 - 36 / 80, 12);
  });

  it('counts overlapping computes (a read-back still running when the next op is submitted) once', () => {
    const t = measureTimeline([event(0, 'forward', 0, 10), event(0, 'backward', 6, 14), event(0, 'send-activation', 10, 11, 4), event(0, 'forward', 16, 20)], 1);
    expect(t.spanMs).toBe(20);
    expect(t.stages[0]).toMatchObject({ busyMs: 18, idleMs: 2, recvWaitMs: 0, edgeMs: 0, otherIdleMs: 2 });
  });

  it('refuses no events and events of a stage outside the pipeline', () => {
    expect(() => measureTimeline([], 2)).toThrow(/no pipeline events/);
    expect(() => measureTimeline([event(2, 'forward', 0, 1)], 2)).toThrow(/event of stage 2 in a 2-stage pipeline/);
    expect(() => measureTimeline([event(0, 'forward', 0, 1)], 0)).toThrow(/stages must be an integer >= 1/);
  });

  it('draws the events as a stage x time diagram, idle where a stage computed under half a column', () => {
    const micro = (e: PipelineEvent, m: number): PipelineEvent => ({ ...e, micro: m });
    const events = [
      event(0, 'forward', 0, 10),
      micro(event(0, 'forward', 10, 20), 1),
      event(1, 'recv-activation', 0, 10, 4),
      event(1, 'forward', 10, 20),
      event(1, 'backward', 20, 30),
      event(0, 'backward', 30, 34),
      micro(event(0, 'backward', 34, 40), 1),
    ];
    expect(formatEventTimeline(events, 2, 4).split('\n')).toEqual([
      'measured: 40 ms, 10.0 ms a column, bubble 37.5%',
      'stage 0 | F0 F1 .  B1',
      'stage 1 | .  F0 B0 . ',
    ]);
    expect(() => formatEventTimeline(events, 2, 0)).toThrow(/columns must be an integer >= 1/);
  });

  it('hand-over times: from the sending compute\'s end to the receive\'s end, for receives that waited', () => {
    const withPeer = (e: PipelineEvent, peer: number, micro: number): PipelineEvent => ({ ...e, peer, micro });
    const events = [
      event(0, 'forward', 0, 10),
      withPeer(event(1, 'recv-activation', 0, 13), 0, 0), // waited; the activation came 3 ms after stage 0's forward
      event(1, 'forward', 13, 20),
      withPeer(event(0, 'forward', 10, 15), 0, 1),
      withPeer(event(1, 'recv-activation', 20, 20.5), 0, 1), // there before its turn: not a hand-over time
      event(1, 'backward', 20.5, 30),
      withPeer(event(0, 'recv-grad', 15, 34), 1, 0), // 4 ms after stage 1's backward
    ];
    expect(handOverTimes(events)).toEqual([3, 4]);
  });
});

describe('measuredOpCosts', () => {
  it('splits each stage\'s busy time (overlaps counted once) between forwards and backwards by the union of each kind', () => {
    const micro = (e: PipelineEvent, m: number): PipelineEvent => ({ ...e, micro: m });
    // Stage 0: forwards 0..10 and 8..20 overlap (union 20, durations 22), backwards 20..25 and 25..35 (15).
    // Busy 35 = 20 forward + 15 backward: 10 and 7.5 per op. Stage 1: one forward 10..14, one backward 14..20.
    const costs = measuredOpCosts(
      [
        event(0, 'forward', 0, 10),
        micro(event(0, 'forward', 8, 20), 1),
        event(0, 'backward', 20, 25),
        micro(event(0, 'backward', 25, 35), 1),
        event(1, 'forward', 10, 14),
        event(1, 'backward', 14, 20),
      ],
      2,
    );
    expect(costs[0].forwardMs).toBeCloseTo(10, 12);
    expect(costs[0].backwardMs).toBeCloseTo(7.5, 12);
    expect(costs[1]).toEqual({ forwardMs: 4, backwardMs: 6 });
    expect(costs[0].forwardMs * 2 + costs[0].backwardMs * 2).toBeCloseTo(measureTimeline([event(0, 'forward', 0, 10), micro(event(0, 'forward', 8, 20), 1), event(0, 'backward', 20, 35)], 1).stages[0].busyMs, 12);
  });

  it('scales the two unions to the busy time where a forward and a backward overlap', () => {
    // Forward 0..10 and backward 6..14 overlap: unions 10 and 8 of a busy 14; 14 x 10/18 and 14 x 8/18.
    const [cost] = measuredOpCosts([event(0, 'forward', 0, 10), event(0, 'backward', 6, 14)], 1);
    expect(cost.forwardMs).toBeCloseTo((14 * 10) / 18, 12);
    expect(cost.backwardMs).toBeCloseTo((14 * 8) / 18, 12);
  });

  it('refuses a stage without a forward or a backward', () => {
    expect(() => measuredOpCosts([event(0, 'forward', 0, 1), event(1, 'forward', 1, 2), event(1, 'backward', 2, 3)], 2)).toThrow(/stage 0 ran 1 forwards and 0 backwards/);
  });
});

describe('predictBubble (the schedule replayed with measured costs and a message delay)', () => {
  const equal = (P: number, ms: number) => Array.from({ length: P }, () => ({ forwardMs: ms, backwardMs: ms }));

  it('is the textbook (P-1)/(M+P-1) on equal stages with free messages, to 1e-12', () => {
    for (const kind of ['gpipe', '1f1b'] as const) for (const [P, M] of [[4, 4], [4, 16], [2, 3]]) expect(predictBubble(pipelineSchedules(kind, P, M), equal(P, 7), 0)).toBeCloseTo(idealBubbleFraction(P, M), 12);
  });

  it('adds the message delay where a stage waits: P=2, M=1 by hand', () => {
    // F=B=1, delay 1: stage 0 F [0,1]; stage 1 F [2,3], B [3,4]; stage 0 B [5,6]. Busy 4 of 2 x 6.
    expect(predictBubble(pipelineSchedules('gpipe', 2, 1), equal(2, 1), 1)).toBeCloseTo(1 - 4 / 12, 12);
  });

  it('uses each stage\'s own costs: P=2, M=1, stage 0 F=1 B=2, stage 1 F=3 B=4, delay 0.5, by hand', () => {
    // Stage 0 F [0,1]; stage 1 F [1.5,4.5], B [4.5,8.5]; stage 0 B [9,11]. Busy 10 of 2 x 11.
    const costs = [
      { forwardMs: 1, backwardMs: 2 },
      { forwardMs: 3, backwardMs: 4 },
    ];
    expect(predictBubble(pipelineSchedules('gpipe', 2, 1), costs, 0.5)).toBeCloseTo(1 - 10 / 22, 12);
  });

  it('charges strict 1F1B\'s steady state a round trip per micro-batch that GPipe\'s streams hide (P=4, M=16, delay = a compute)', () => {
    const gpipe = predictBubble(pipelineSchedules('gpipe', 4, 16), equal(4, 1), 1);
    const oneFOneB = predictBubble(pipelineSchedules('1f1b', 4, 16), equal(4, 1), 1);
    expect(gpipe).toBeGreaterThan(idealBubbleFraction(4, 16));
    expect(oneFOneB).toBeGreaterThan(gpipe + 0.1);
  });

  it('refuses costs for another number of stages and a negative delay', () => {
    expect(() => predictBubble(pipelineSchedules('gpipe', 2, 1), equal(3, 1), 0)).toThrow(/3 stage costs for 2 stages/);
    expect(() => predictBubble(pipelineSchedules('gpipe', 2, 1), equal(2, 1), -1)).toThrow(/message delay must be >= 0/);
  });
});
