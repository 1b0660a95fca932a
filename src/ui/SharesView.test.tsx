// @vitest-environment jsdom
import { cleanup, render, screen } from '@testing-library/react';
import { afterEach, describe, expect, it } from 'vitest';
import { SharesView } from './SharesView';

afterEach(cleanup);

describe('SharesView', () => {
  it("shows each rank's share of the global batch and its measured speed, marking this tab", () => {
    const shares = { type: 'shares', rank: 1, fromStep: 11, counts: [10, 10, 44], samplesPerSec: [812.4, 790, 3502.6], t: 0 } as const;
    render(<SharesView shares={{ ...shares, counts: [...shares.counts], samplesPerSec: [...shares.samplesPerSec] }} selfRank={2} />);
    expect(screen.getByRole('heading').textContent).toBe('Shares by speed');
    expect(screen.getByText(/64 samples per step/).textContent).toMatch(/from step 12/);
    expect(screen.getAllByTestId('share').map((e) => e.textContent)).toEqual(['10 (16%)', '10 (16%)', '44 (69%)']);
    expect(screen.getAllByTestId('speed').map((e) => e.textContent)).toEqual(['812 samples/s', '790 samples/s', '3,503 samples/s']);
    expect(screen.getByText('2 (this tab)')).toBeTruthy();
  });

  it('draws nothing while the shares are even', () => {
    const { container } = render(<SharesView shares={null} />);
    expect(container.innerHTML).toBe('');
  });
});
