import { describe, expect, it } from 'vitest';
import type { ChunkEvent } from '../collective/types';
import { PlaybackClock } from './playback-clock';
import {
  linkThroughput,
  mergeTransfers,
  movingMarkers,
  nodePositions,
  staticMarkers,
  topologyLinks,
  type Transfer,
} from './ring-geometry';

const ev = (over: Partial<ChunkEvent>): ChunkEvent => ({
  type: 'chunk',
  direction: 'send',
  collective: 'ring-allreduce',
  runId: '1:0',
  round: 1,
  phase: 'reduce-scatter',
  step: 0,
  chunk: 0,
  part: 0,
  rank: 0,
  peer: 1,
  bytes: 1000,
  offset: 0,
  length: 250,
  tStart: 0,
  tEnd: 10,
  ...over,
});

describe('ring geometry', () => {
  it('puts rank 0 at the top and spaces ranks evenly; a star puts its server in the middle', () => {
    const ring = nodePositions(4, 'ring', 400);
    expect(ring[0].x).toBeCloseTo(200);
    expect(ring[0].y).toBeLessThan(200);
    expect(ring[2].y).toBeGreaterThan(200);
    const d01 = Math.hypot(ring[1].x - ring[0].x, ring[1].y - ring[0].y);
    const d12 = Math.hypot(ring[2].x - ring[1].x, ring[2].y - ring[1].y);
    expect(d01).toBeCloseTo(d12);
    expect(nodePositions(4, 'ps', 400, 2)[2]).toEqual({ x: 200, y: 200 });
  });

  it('lists the links of each topology', () => {
    expect(topologyLinks(3, 'ring')).toEqual([
      { from: 0, to: 1 },
      { from: 1, to: 2 },
      { from: 2, to: 0 },
    ]);
    expect(topologyLinks(3, 'ps', 0)).toEqual([
      { from: 1, to: 0 },
      { from: 0, to: 1 },
      { from: 2, to: 0 },
      { from: 0, to: 2 },
    ]);
    expect(topologyLinks(4, 'all-to-all')).toHaveLength(12);
    expect(topologyLinks(1, 'ring')).toEqual([]);
  });

  it("merges a send and its receive into one transfer from the send's start to the receive's end", () => {
    const transfers = mergeTransfers([
      ev({ direction: 'send', rank: 0, peer: 1, tStart: 5, tEnd: 8 }),
      ev({ direction: 'recv', rank: 1, peer: 0, tStart: 2, tEnd: 12 }),
      ev({ direction: 'send', rank: 1, peer: 2, chunk: 2, tStart: 6, tEnd: 9 }),
    ]);
    expect(transfers).toHaveLength(2);
    expect(transfers[0]).toMatchObject({ from: 0, to: 1, tStart: 5, tEnd: 12 });
    expect(transfers[1]).toMatchObject({ from: 1, to: 2, chunk: 2 });
  });

  it('places a moving chunk along its link in proportion to elapsed time, and only while on the wire', () => {
    const nodes = [
      { x: 0, y: 0 },
      { x: 100, y: 0 },
    ];
    const [t] = mergeTransfers([ev({ tStart: 10, tEnd: 30 })]);
    const [m] = movingMarkers([t], nodes, 15);
    expect(m.frac).toBeCloseTo(0.25);
    expect(m.x).toBeCloseTo(25);
    expect(movingMarkers([t], nodes, 31)).toEqual([]);
    expect(movingMarkers([t], nodes, 9)).toEqual([]);
  });

  it('draws only the newest collective when still, spaced by step', () => {
    const nodes = nodePositions(3, 'ring', 300);
    const transfers = mergeTransfers([
      ev({ runId: '1:0', round: 1, step: 0, tEnd: 5 }),
      ev({ runId: '2:0', round: 2, step: 0, tStart: 20, tEnd: 25 }),
      ev({ runId: '2:0', round: 2, step: 1, tStart: 26, tEnd: 30 }),
    ]);
    const markers = staticMarkers(transfers, nodes);
    expect(markers.map((m) => [m.transfer.runId, m.frac])).toEqual([
      ['2:0', 1 / 3],
      ['2:0', 2 / 3],
    ]);
  });

  it('measures link throughput over busy time, not counting overlap twice', () => {
    const t = (from: number, to: number, tStart: number, tEnd: number, bytes: number): Transfer => ({
      key: `${from}${to}${tStart}`,
      runId: 'r',
      round: 1,
      phase: 'reduce-scatter',
      step: 0,
      chunk: 0,
      part: 0,
      from,
      to,
      bytes,
      tStart,
      tEnd,
    });
    const rates = linkThroughput([t(0, 1, 0, 10, 1000), t(0, 1, 5, 20, 1000), t(1, 2, 0, 100, 500)]);
    // 2000 bytes over the union [0, 20] = 20 ms.
    expect(rates.get('0>1')).toBeCloseTo(100_000);
    expect(rates.get('1>2')).toBeCloseTo(5_000);
  });
});

describe('PlaybackClock', () => {
  it('runs behind live by the longest recent delay between a transfer starting and being seen', () => {
    const clock = new PlaybackClock(1);
    expect(Number.isNaN(clock.tick(0))).toBe(true);
    clock.observe({ round: 1, tStart: 900 }, 1000);
    expect(clock.lagMs).toBe(100);
    expect(clock.tick(1000)).toBe(900);
    expect(clock.tick(1050)).toBe(950);
  });

  it('slows down by its scale and skips to the newest round when too far behind', () => {
    const clock = new PlaybackClock(0.1, 1000);
    clock.observe({ round: 1, tStart: 0 }, 10);
    expect(clock.tick(10)).toBe(0);
    expect(clock.tick(110)).toBeCloseTo(10);
    clock.observe({ round: 7, tStart: 5000 }, 5000);
    clock.tick(5000);
    expect(clock.t).toBe(5000);
    expect(clock.skippedRounds).toBe(1);
  });
});
