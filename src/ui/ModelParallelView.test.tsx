// @vitest-environment jsdom
import { cleanup, render, screen } from '@testing-library/react';
import { afterEach, describe, expect, it } from 'vitest';
import { ExpertRoutingView, TensorCollectivesView } from './ModelParallelView';

afterEach(cleanup);

describe('ExpertRoutingView', () => {
  it("draws each tab's tokens per expert, the dropped assignments, the aux loss and the bytes beside the router's formula", () => {
    render(
      <ExpertRoutingView
        step={{ type: 'expert-routing', step: 7, routed: [[10, 0, 5, 1], [2, 8, 3, 3]], dropped: [4, 0], assignments: [20, 16], auxLoss: [0.0123, 0.0101], wireBytes: 4096, wireFormulaBytes: 4096 }}
      />,
    );
    expect(screen.getByRole('heading').textContent).toBe('Expert routing');
    expect(screen.getAllByTestId('routed').map((e) => e.textContent)).toEqual(['10', '0', '5', '1', '2', '8', '3', '3']);
    expect(screen.getAllByTestId('dropped').map((e) => e.textContent)).toEqual(['4', '0']);
    expect(screen.getByText(/Dropped: 4 of 36 assignments/).textContent).toMatch(/11\.1%/);
    expect(screen.getByTestId('aux-loss').textContent).toBe('Load-balancing loss per block: 0.0123, 0.0101');
    expect(screen.getByTestId('expert-bytes').textContent).toMatch(/4,096 \(router's assignment: 4,096\)/);
    // The busiest cell is the darkest.
    const shades = screen.getAllByTestId('routed').map((e) => Number(/, ([\d.]+)\)/.exec(e.style.background)![1]));
    expect(shades.indexOf(Math.max(...shades))).toBe(0);
  });

  it('draws nothing before an expert run reports a step', () => {
    expect(render(<ExpertRoutingView step={null} />).container.innerHTML).toBe('');
  });
});

describe('TensorCollectivesView', () => {
  it("sums this tab's all-reduces per pass, block and sub-layer, with their bytes", () => {
    const c = (pass: 'forward' | 'backward', block: number, sublayer: 'mlp' | 'attention', micro: number) => ({ pass, block, sublayer, micro, elements: 1024, bytesSent: 2048, ms: 1 });
    render(<TensorCollectivesView step={{ type: 'tensor-collectives', step: 3, rank: 1, collectives: [c('forward', 0, 'attention', 0), c('forward', 0, 'attention', 1), c('forward', 0, 'mlp', 0), c('backward', 0, 'mlp', 0)] }} />);
    expect(screen.getByText(/4 all-reduces, 8,192 bytes sent/)).toBeTruthy();
    expect(screen.getAllByTestId('collective-row').map((r) => r.textContent)).toEqual(['forward0attention22,0484,096', 'forward0mlp11,0242,048', 'backward0mlp11,0242,048']);
  });
});
