// @vitest-environment jsdom
import { cleanup, fireEvent, render, screen } from '@testing-library/react';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { LinkShapeControl } from './LinkShapeControl';

afterEach(cleanup);

const peers = [
  { peerId: 'p1', rank: 1, name: 'Ada' },
  { peerId: 'p2', rank: 2 },
];

describe('LinkShapeControl', () => {
  it("applies the chosen peer's latency and bandwidth, and clears it back to the room's", () => {
    const onShape = vi.fn();
    render(<LinkShapeControl peers={peers} onShape={onShape} />);
    fireEvent.change(screen.getByLabelText('Peer'), { target: { value: 'p2' } });
    fireEvent.change(screen.getByLabelText('Latency (ms)'), { target: { value: '80' } });
    fireEvent.change(screen.getByLabelText('Bandwidth (MB/s, 0: unlimited)'), { target: { value: '0' } });
    fireEvent.click(screen.getByRole('button', { name: 'Apply' }));
    expect(onShape).toHaveBeenLastCalledWith('p2', { latency: 80, bandwidth: 0 });
    expect(screen.getByRole('status').textContent).toBe('Link to rank 2: 80 ms, unlimited.');
    fireEvent.click(screen.getByRole('button', { name: 'Clear' }));
    expect(onShape).toHaveBeenLastCalledWith('p2', null);
  });

  it('shows why a shape was refused, and nothing without peers', () => {
    const onShape = vi.fn(() => {
      throw new Error('latency must be 0-10000 ms, got -5');
    });
    const { rerender } = render(<LinkShapeControl peers={peers} onShape={onShape} />);
    fireEvent.change(screen.getByLabelText('Latency (ms)'), { target: { value: '-5' } });
    fireEvent.click(screen.getByRole('button', { name: 'Apply' }));
    expect(onShape).toHaveBeenLastCalledWith('p1', { latency: -5, bandwidth: 5 });
    expect(screen.getByRole('alert').textContent).toMatch(/latency must be/);
    rerender(<LinkShapeControl peers={[]} onShape={onShape} />);
    expect(screen.queryByRole('button', { name: 'Apply' })).toBeNull();
  });
});
