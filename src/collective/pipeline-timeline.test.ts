import { describe, expect, it } from 'vitest';
import type { PipelineEvent } from './pipeline-executor';
import { formatEventTimeline, handOverTimes, measureTimeline } from './pipeline-timeline';

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
