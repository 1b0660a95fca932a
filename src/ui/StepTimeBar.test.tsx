// @vitest-environment jsdom
import { act, cleanup, render, screen } from '@testing-library/react';
import { afterEach, describe, expect, it } from 'vitest';
import { EventBus } from '../lab/events';
import { connectBus, createLabStore } from '../store/lab-store';
import { StepTimeBar } from './StepTimeBar';
import { stepSplits } from './step-split';

afterEach(cleanup);
const nextFrame = () => new Promise<void>((resolve) => requestAnimationFrame(() => resolve()));

const step = (rank: number, n: number, computeMs: number, commMs: number, waitMs: number, stepMs: number) => ({
  type: 'step' as const,
  rank,
  step: n,
  loss: 1,
  samplesPerSec: 1,
  computeMs,
  commMs,
  waitMs,
  stepMs,
  bytesSent: 0,
  bytesReceived: 0,
  t: n,
});

describe('stepSplits', () => {
  it("keeps the newest steps of one rank and names the time the three parts don't cover", () => {
    const splits = stepSplits([step(0, 1, 1, 1, 1, 4), step(1, 1, 9, 9, 9, 27), step(0, 2, 2, 3, 1, 5)], 0, 10);
    expect(splits.map((s) => [s.step, s.otherMs, s.stepMs])).toEqual([
      [1, 1, 4],
      [2, 0, 6],
    ]);
  });
});

describe('StepTimeBar', () => {
  it('draws one stacked column per step of this rank, heights in proportion to the times', async () => {
    const store = createLabStore();
    const bus = new EventBus();
    connectBus(store, bus);
    bus.publish({ type: 'peers', self: { peerId: 'a', rank: 1, world: 2, room: 'r' }, peers: [] });
    render(<StepTimeBar store={store} count={3} />);
    await act(async () => {
      for (let n = 1; n <= 5; n++) bus.publish(step(1, n, 6, 3, 1, 10));
      bus.publish(step(0, 5, 100, 0, 0, 100));
      await nextFrame();
    });
    const columns = [...document.querySelectorAll('svg g[data-step]')];
    expect(columns.map((g) => g.getAttribute('data-step'))).toEqual(['3', '4', '5']);
    const h = (part: string) => Number(columns[2].querySelector(`rect[data-part="${part}"]`)!.getAttribute('height'));
    expect(h('compute') / h('comm')).toBeCloseTo(2);
    expect(h('comm') / h('wait')).toBeCloseTo(3);
    expect(screen.getByTestId('step-throughput').textContent).toBe('step 5: 1 samples/s (room), sent 0 B, received 0 B');
    expect(screen.getByTestId('step-time-mean').textContent).toMatch(/10\.0 ms = compute 6\.0 ms \(60%\), communication 3\.0 ms \(30%\)/);
  });
});
