import { describe, expect, it } from 'vitest';
import { hostLoadBetween, sampleCpu } from './host-load';

describe('host load', () => {
  it('is the busy share of all cores between two samples', () => {
    const start = { busyMs: 1000, totalMs: 4000, cores: 2 };
    const end = { busyMs: 1000 + 1500, totalMs: 4000 + 2000, cores: 2 };
    expect(hostLoadBetween(start, end)).toEqual({ cores: 2, busy: 0.75 });
  });

  it('has no figure when no time passed or the cores changed', () => {
    const s = { busyMs: 10, totalMs: 20, cores: 2 };
    expect(hostLoadBetween(s, s)).toBeNull();
    expect(hostLoadBetween(s, { busyMs: 30, totalMs: 60, cores: 4 })).toBeNull();
  });

  it('samples this machine: cumulative times that only grow', async () => {
    const a = sampleCpu();
    const until = performance.now() + 30;
    while (performance.now() < until); // keep one core busy for a moment
    await new Promise((resolve) => setTimeout(resolve, 20));
    const b = sampleCpu();
    expect(a.cores).toBeGreaterThan(0);
    expect(b.totalMs).toBeGreaterThanOrEqual(a.totalMs);
    expect(b.busyMs).toBeGreaterThanOrEqual(a.busyMs);
  });
});
