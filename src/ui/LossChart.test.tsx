// @vitest-environment jsdom
import './jsdom-canvas-stub';
import { act, cleanup, render, screen } from '@testing-library/react';
import { afterEach, describe, expect, it } from 'vitest';
import { EventBus } from '../shared/events';
import { connectBus, createLabStore } from '../store/lab-store';
import { LossChart } from './LossChart';

afterEach(cleanup);

const nextFrame = () => new Promise<void>((resolve) => requestAnimationFrame(() => resolve()));

describe('LossChart', () => {
  it('streams step and eval events into uPlot, one series per rank', async () => {
    const store = createLabStore();
    const bus = new EventBus();
    connectBus(store, bus);
    const { container } = render(<LossChart store={store} />);
    expect(screen.getByTestId('loss-readout').textContent).toBe('No steps yet.');
    await act(async () => {
      for (let n = 1; n <= 300; n++) {
        for (const rank of [0, 1]) {
          bus.publish({
            type: 'step',
            rank,
            step: n,
            loss: 3 / n + rank,
            samplesPerSec: 1,
            computeMs: 1,
            commMs: 1,
            overlapMs: 0,
            waitMs: 0,
            stepMs: 2,
            bytesSent: 0,
            bytesReceived: 0,
            t: n,
          });
        }
      }
      bus.publish({ type: 'eval', rank: 0, step: 300, valLoss: 0.5, accuracy: 0.9, t: 301 });
      await nextFrame();
    });
    expect(screen.getByTestId('loss-readout').textContent).toBe(
      `step 300, train loss ${(0.01 + 0.5).toFixed(4)}, val loss 0.5000, accuracy 90.0%`,
    );
    const legend = [...container.querySelectorAll('.u-legend .u-series .u-label')].map((e) => e.textContent);
    expect(legend).toEqual(['step', 'rank 0', 'rank 1', 'train (room mean)', 'val loss', 'accuracy']);
  });
});
