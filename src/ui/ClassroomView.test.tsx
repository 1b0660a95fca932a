// @vitest-environment jsdom
import { act, cleanup, fireEvent, render, screen } from '@testing-library/react';
import { useState } from 'react';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { ClassroomSnapshot } from '../shared/events';
import { ClassroomView } from './ClassroomView';

afterEach(cleanup);

const CHUNKS = [
  { start: 0, end: 2 },
  { start: 2, end: 4 },
  { start: 4, end: 6 },
];
const INITIAL = [
  [1, 2, 3, 4, 5, 6],
  [10, 20, 30, 40, 50, 60],
  [100, 200, 300, 400, 500, 600],
];

/** A plain ring all-reduce over 3 ranks, simulated here as the fixture the mesh would publish. */
function lesson(): ClassroomSnapshot[] {
  const n = 3;
  const values = INITIAL.map((v) => v.slice());
  const snaps: ClassroomSnapshot[] = [{ step: 0, phase: 'initial', perRank: values.map((v, rank) => ({ rank, values: v.slice() })) }];
  for (let s = 0; s < 2 * (n - 1); s++) {
    const reducing = s < n - 1;
    const sent = values.map((v, r) => {
      const chunk = reducing ? (((r - s) % n) + n) % n : (((r + 1 - (s - n + 1)) % n) + n) % n;
      return { chunk, from: r, values: v.slice(CHUNKS[chunk].start, CHUNKS[chunk].end) };
    });
    const received = values.map((_, r) => sent[(r + n - 1) % n]);
    received.forEach((msg, r) => {
      msg.values.forEach((x, j) => {
        const i = CHUNKS[msg.chunk].start + j;
        values[r][i] = reducing ? values[r][i] + x : x;
      });
    });
    snaps.push({
      step: s + 1,
      phase: reducing ? 'reduce-scatter' : 'all-gather',
      perRank: values.map((v, rank) => ({ rank, values: v.slice(), received: received[rank] })),
    });
  }
  return snaps;
}

function Harness({ snapshots, onAdvance }: { snapshots: ClassroomSnapshot[]; onAdvance?: () => void }) {
  const [index, setIndex] = useState(0);
  return <ClassroomView snapshots={snapshots} chunks={CHUNKS} index={index} onIndexChange={setIndex} onAdvance={onAdvance} />;
}

const cells = (rank: number) =>
  [...document.querySelectorAll(`tr[data-rank="${rank}"] td.cell`)].map((td) => Number(td.textContent));

describe('ClassroomView', () => {
  it('steps forward and back with the arrow keys, showing the running partial sums', () => {
    render(<Harness snapshots={lesson()} />);
    const body = screen.getByRole('group', { name: /arrow keys/ });
    expect(cells(1)).toEqual([10, 20, 30, 40, 50, 60]);

    fireEvent.keyDown(body, { key: 'ArrowRight' });
    // Step 1: rank 1 received chunk 0 from rank 0 and added it: 1+10, 2+20.
    expect(cells(1).slice(0, 2)).toEqual([11, 22]);
    expect(cells(2).slice(2, 4)).toEqual([330, 440]);
    expect(cells(0).slice(4, 6)).toEqual([505, 606]);
    expect(screen.getByText('chunk 0 from rank 0: [1, 2]')).toBeTruthy();
    expect(document.querySelector('tr[data-rank="1"] td[data-index="0"]')!.className).toContain('received');

    fireEvent.keyDown(body, { key: 'ArrowRight' });
    // Step 2: the partial sums travel on and are complete: rank 2 holds chunk 0 = 111, 222.
    expect(cells(2).slice(0, 2)).toEqual([111, 222]);
    expect(cells(0).slice(2, 4)).toEqual([333, 444]);
    expect(cells(1).slice(4, 6)).toEqual([555, 666]);
    expect(document.querySelector('tr[data-rank="2"] td[data-index="0"]')!.getAttribute('data-complete')).toBe('true');
    expect(screen.getByTestId('classroom-status').textContent).not.toMatch(/same total/);

    fireEvent.keyDown(body, { key: 'ArrowLeft' });
    // Back at step 1, rank 2 has not yet received chunk 0.
    expect(cells(2).slice(0, 2)).toEqual([100, 200]);
    fireEvent.keyDown(body, { key: 'ArrowRight' });
    fireEvent.keyDown(body, { key: 'ArrowRight' });
    fireEvent.keyDown(body, { key: 'ArrowRight' });
    // Step 4, the end of all-gather: every rank holds the totals.
    for (const rank of [0, 1, 2]) expect(cells(rank)).toEqual([111, 222, 333, 444, 555, 666]);
    expect(screen.getByTestId('classroom-status').textContent).toMatch(/Every rank holds the same total/);
    expect(screen.getByTestId('classroom-step').textContent).toMatch(/Step 4 of 4 \(all-gather\)/);
    expect((screen.getByRole('button', { name: 'Next step' }) as HTMLButtonElement).disabled).toBe(true);
  });

  it('asks the mesh for the next step when the last snapshot so far is on screen', () => {
    const onAdvance = vi.fn();
    render(<Harness snapshots={lesson().slice(0, 2)} onAdvance={onAdvance} />);
    fireEvent.click(screen.getByRole('button', { name: 'Next step' }));
    expect(onAdvance).not.toHaveBeenCalled();
    fireEvent.click(screen.getByRole('button', { name: 'Next step' }));
    expect(onAdvance).toHaveBeenCalledTimes(1);
  });

  it('plays through the snapshots and stops at the end', async () => {
    vi.useFakeTimers();
    try {
      render(<Harness snapshots={lesson()} />);
      fireEvent.click(screen.getByRole('button', { name: 'Play' }));
      for (let i = 0; i < 6; i++) await act(async () => void vi.advanceTimersByTime(1300));
      expect(screen.getByTestId('classroom-step').textContent).toMatch(/Step 4 of 4/);
      expect(screen.getByRole('button', { name: 'Play' })).toBeTruthy();
    } finally {
      vi.useRealTimers();
    }
  });
});
