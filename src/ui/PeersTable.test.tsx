// @vitest-environment jsdom
import { cleanup, render, screen } from '@testing-library/react';
import { afterEach, describe, expect, it } from 'vitest';
import { PeersTable } from './PeersTable';

afterEach(cleanup);

describe('PeersTable', () => {
  it('lists ranks with RTT, throughput, backend, and whether their hash agrees with ours', () => {
    render(
      <PeersTable
        self={{ peerId: 'me', rank: 0, world: 3, room: 'abc' }}
        peers={[
          { peerId: 'p2', rank: 2, state: 'connected', rttMs: 4.25, throughputBytesPerSec: 2_500_000, path: 'relay' },
          { peerId: 'p1', rank: 1, state: 'connecting', backend: { kind: 'webgpu', adapter: 'google swiftshader' } },
        ]}
        hashes={[
          { step: 1, byRank: { 0: 'aa', 1: 'aa', 2: 'aa' }, agree: true },
          { step: 2, byRank: { 0: 'bb', 2: 'cc' }, agree: false },
        ]}
      />,
    );
    const ranks = [...document.querySelectorAll('tbody tr')].map((tr) => tr.getAttribute('data-rank'));
    expect(ranks).toEqual(['0', '1', '2']);
    const row2 = document.querySelector('tr[data-rank="2"]')!.textContent!;
    expect(row2).toContain('4.3 ms');
    expect(row2).toContain('2.5 MB/s');
    expect(document.querySelector('tr[data-rank="1"]')!.textContent).toContain('webgpu: google swiftshader');
    // Each link's path, explained in its tooltip; none yet for a link still connecting.
    expect(screen.getByTestId('path-p2').textContent).toBe('relay');
    expect(screen.getByTestId('path-p2').getAttribute('title')).toMatch(/TURN/);
    expect(screen.getByTestId('path-p1').textContent).toBe('—');
    // Long identifiers carry their full text as a tooltip (the panel cuts them to its width).
    expect(document.querySelector('tr[data-rank="1"] .backend')!.getAttribute('title')).toBe('webgpu: google swiftshader');
    // Rank 2 differed at step 2 (the newest both reported); rank 1 agreed at step 1.
    expect(screen.getByTestId('hash-2').textContent).toBe('✗ differs');
    expect(screen.getByTestId('hash-1').textContent).toBe('✓ agrees');
    expect(screen.getByRole('heading').textContent).toBe('Peers (room abc, 3 ranks)');
    // The verdict and the link come before the long identifiers, which a narrow panel cuts.
    expect([...document.querySelectorAll('thead th')].map((th) => th.textContent)).toEqual(['Rank', 'Name', 'Hash', 'State', 'Path', 'RTT', 'Rate', 'Step', 'Peer', 'Backend']);
  });

  it("shows each tab's name and backend, and marks a tab whose step takes over 1.5x the median as lagging", () => {
    render(
      <PeersTable
        self={{ peerId: 'me', rank: 0, world: 4, room: 'abc', name: 'Teacher', msPerStep: 100 }}
        peers={[
          { peerId: 'p1', rank: 1, state: 'connected', name: 'Ada', msPerStep: 110, backend: { kind: 'webgpu', adapter: 'swiftshader' } },
          { peerId: 'p2', rank: 2, state: 'connected', name: 'Bo (2)', msPerStep: 151, backend: { kind: 'cpu', adapter: 'CPU reference (no WebGPU)' } },
          { peerId: 'p3', rank: 3, state: 'connected', msPerStep: 149 },
        ]}
        hashes={[]}
      />,
    );
    expect(screen.getByTestId('name-p1').textContent).toBe('Ada');
    expect(screen.getByTestId('name-p2').textContent).toBe('Bo (2)');
    expect(screen.getByTestId('name-p3').textContent).toBe('—');
    expect(document.querySelector('tr.self .name')!.textContent).toBe('Teacher');
    expect(screen.getByTestId('backend-p2').className).toContain('backend-cpu');
    // the median of 100, 110, 149 and 151 is 129.5 ms: lagging starts above 194 ms, so nobody lags
    expect(document.querySelectorAll('.lagging')).toHaveLength(0);
  });

  it('marks the slow tab, and only it, as lagging', () => {
    render(
      <PeersTable
        self={{ peerId: 'me', rank: 0, world: 3, room: 'abc', msPerStep: 100 }}
        peers={[
          { peerId: 'p1', rank: 1, state: 'connected', msPerStep: 100 },
          { peerId: 'p2', rank: 2, state: 'connected', msPerStep: 151 },
        ]}
        hashes={[]}
      />,
    );
    const lagging = [...document.querySelectorAll('.lagging')];
    expect(lagging).toHaveLength(1);
    expect(lagging[0].textContent).toBe('151 ms slow');
    expect(lagging[0].closest('tr')!.getAttribute('data-rank')).toBe('2');
  });

  it('lists a tab that is in the room but not yet in the ring last, as joining, with no hash verdict', () => {
    render(
      <PeersTable
        self={{ peerId: 'me', rank: 1, world: 2, room: 'abc' }}
        peers={[
          { peerId: 'new', rank: -1, state: 'connected' },
          { peerId: 'p0', rank: 0, state: 'connected' },
        ]}
        hashes={[{ step: 3, byRank: { 0: 'aa', 1: 'aa' }, agree: true }]}
      />,
    );
    const rows = [...document.querySelectorAll('tbody tr')].map((tr) => tr.querySelector('th')!.textContent);
    expect(rows).toEqual(['1', '0', 'joining']);
    expect(screen.getByTestId('hash--1').textContent).toBe('…');
  });

  it('says so when not in a room', () => {
    render(<PeersTable self={null} peers={[]} hashes={[]} />);
    expect(screen.getByText('Not in a room.')).toBeTruthy();
  });
});
