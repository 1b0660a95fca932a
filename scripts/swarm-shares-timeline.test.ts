import { describe, expect, it } from 'vitest';
import { tabTimeline, type TimelineMark } from './swarm-shares-timeline';

/** Marks of one step starting at `t0`, at the given offsets (ms). */
function step(t0: number, offsets: Record<string, number>): TimelineMark[] {
  return Object.entries(offsets).map(([name, dt]) => ({ name, at: t0 + dt }));
}

describe('tabTimeline', () => {
  it('splits each step into its parts from the marks, averages from the chosen step, and skips the last (no next start)', () => {
    const full = { 'step-start': 0, 'sync-start': 10, 'bucket-launch': 10, 'bucket-on-host': 12, 'piece-reduced': 30, 'piece-applied': 31, 'bucket-done': 32, 'sync-buckets-done': 40, 'sync-end': 41, 'settle-start': 45, 'settle-end': 60, 'hash-start': 61, 'hash-end': 70 };
    const marks = [...step(0, { 'step-start': 0, 'sync-start': 500 }), ...step(1000, full), ...step(1100, full), ...step(1200, { 'step-start': 0 })].reverse();
    const t = tabTimeline(marks, 1);
    expect(t.steps).toBe(2);
    expect(t.stepMs).toBe(100);
    expect(t.parts).toEqual({ passes: 10, sync: 30, shares: 1, update: 4, settle: 15, loss: 1, hash: 9, rest: 30 });
    expect(t.bucketReadMs).toBe(2);
    expect(t.bucketNetworkMs).toBe(20);
    expect(t.firstPieceMs).toBe(18);
    expect(t.lastAppliedMs).toBe(19);
  });

  it('a part whose mark is missing in a step counts 0 there, and the part before runs on to the next present mark', () => {
    const marks = [...step(0, { 'step-start': 0, 'sync-start': 5, 'hash-start': 20, 'hash-end': 30 }), ...step(50, { 'step-start': 0 })];
    const t = tabTimeline(marks, 0);
    expect(t.parts.sync).toBe(15);
    expect(t.parts.settle).toBe(0);
    expect(t.parts.rest).toBe(20);
  });
});
