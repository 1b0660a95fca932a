// @vitest-environment jsdom
import { cleanup, render, screen } from '@testing-library/react';
import { afterEach, describe, expect, it } from 'vitest';
import { ZeroLayoutView } from './ZeroLayoutView';

afterEach(cleanup);

const partition = [
  { rank: 0, start: 0, end: 40 },
  { rank: 1, start: 40, end: 80 },
  { rank: 2, start: 80, end: 100 },
];

const held = (rank: number, kind: string) => {
  const bar = document.querySelector(`tr[data-rank="${rank}"][data-kind="${kind}"] .shard-held`)!;
  return [Number(bar.getAttribute('data-start')), Number(bar.getAttribute('data-end'))];
};

describe('ZeroLayoutView', () => {
  it('shards optimizer state at stage 1 and everything at stage 3, redrawing when the stage switches', () => {
    const { rerender } = render(<ZeroLayoutView partition={partition} total={100} stage={1} optimizerFloatsPerParam={2} />);
    expect(held(1, 'optimizer')).toEqual([40, 80]);
    expect(held(1, 'grads')).toEqual([0, 100]);
    expect(held(1, 'params')).toEqual([0, 100]);
    // Rank 1 at stage 1: full params (400 B), full grads (400 B), 40 params x 2 floats x 4 B of optimizer.
    const bytes = () =>
      [...document.querySelectorAll('tr[data-rank="1"] [data-testid="expected-bytes"]')].map((e) => e.textContent);
    expect(bytes()).toEqual(['400 B', '400 B', '320 B']);

    rerender(<ZeroLayoutView partition={partition} total={100} stage={3} optimizerFloatsPerParam={2} />);
    expect(screen.getByRole('heading').textContent).toMatch(/stage 3/);
    expect(held(2, 'params')).toEqual([80, 100]);
    expect(held(2, 'grads')).toEqual([80, 100]);
    expect(bytes()).toEqual(['160 B', '160 B', '320 B']);
  });

  it('replicates everything at stage 0 and shows allocated bytes where a rank reported them', () => {
    const memory = { 0: { params: 2048, grads: 2048, optimizer: 0, activations: 0, workspace: 0, data: 0 } };
    render(<ZeroLayoutView partition={partition} total={100} stage={0} optimizerFloatsPerParam={1} memory={memory} />);
    for (const kind of ['params', 'grads', 'optimizer']) expect(held(0, kind)).toEqual([0, 100]);
    expect(document.querySelector('tr[data-rank="0"][data-kind="params"]')!.textContent).toContain('2.0 KiB');
    expect(document.querySelector('tr[data-rank="1"][data-kind="params"]')!.textContent).toContain('—');
  });

  it('refuses a layout with no parameters', () => {
    expect(() => render(<ZeroLayoutView partition={[]} total={0} stage={0} optimizerFloatsPerParam={2} />)).toThrow(/positive/);
  });
});
