// @vitest-environment jsdom
import { act, cleanup, render, screen } from '@testing-library/react';
import { afterEach, describe, expect, it } from 'vitest';
import { EventBus } from '../shared/events';
import { connectBus, createLabStore } from '../store/lab-store';
import { StepTimeBar } from './StepTimeBar';
import { stepSplits } from '../lab/step-split';

afterEach(cleanup);
const nextFrame = () => new Promise<void>((resolve) => requestAnimationFrame(() => resolve()));

const step = (rank: number, n: number, computeMs: number, commMs: number, waitMs: number, stepMs: number, overlapMs = 0) => ({
  type: 'step' as const,
  rank,
  step: n,
  loss: 1,
  samplesPerSec: 1,
  computeMs,
  commMs,
  overlapMs,
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

  it('counts overlapped time once: the parts add up to the step', () => {
    // 30 ms computing, 50 ms communicating, 20 of them at once: a 60 ms step has 0 ms left over.
    const [split] = stepSplits([step(0, 1, 30, 50, 0, 60, 20)], 0, 1);
    expect(split).toEqual({ step: 1, computeOnlyMs: 10, bothMs: 20, commOnlyMs: 30, waitMs: 0, otherMs: 0, stepMs: 60 });
    // An overlap can never be longer than either side.
    expect(stepSplits([step(0, 1, 5, 50, 0, 60, 20)], 0, 1)[0].bothMs).toBe(5);
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
      for (let n = 1; n <= 5; n++) bus.publish(step(1, n, 6, 3, 1, 9, 1));
      bus.publish(step(0, 5, 100, 0, 0, 100));
      await nextFrame();
    });
    const columns = [...document.querySelectorAll('svg g[data-step]')];
    expect(columns.map((g) => g.getAttribute('data-step'))).toEqual(['3', '4', '5']);
    const h = (part: string) => Number(columns[2].querySelector(`rect[data-part="${part}"]`)!.getAttribute('height'));
    // compute only 5, both 1, communication only 2, waiting 1 (of a 9 ms step).
    expect(h('compute') / h('both')).toBeCloseTo(5);
    expect(h('comm') / h('wait')).toBeCloseTo(2);
    expect(h('other')).toBe(0);
    expect(screen.getByTestId('step-throughput').textContent).toBe('step 5: 1 samples/s (room), sent 0 B, received 0 B');
    expect(screen.getByTestId('step-time-mean').textContent).toMatch(
      /9\.0 ms = compute only 5\.0 ms \(56%\), compute \+ communication at once 1\.0 ms \(11%\), communication only 2\.0 ms \(22%\)/,
    );
  });
});
