// @vitest-environment jsdom
import { act, cleanup, render } from '@testing-library/react';
import { afterEach, describe, expect, it } from 'vitest';
import type { ChunkEvent } from '../collective/types';
import { EventBus } from '../shared/events';
import { connectBus, createLabStore } from '../store/lab-store';
import { nodePositions } from './ring-geometry';
import { RingView } from './RingView';

afterEach(cleanup);

/**
 * A recorded-style stream of one ring all-reduce over `world` ranks, written out independently of the
 * product's schedule: at reduce-scatter step s rank r sends chunk (r - s) mod n to r + 1, at all-gather
 * step s it sends chunk (r + 1 - s) mod n. Each message has a send event and a receive event.
 */
function ringStream(world: number, t0: number, stepMs: number): ChunkEvent[] {
  const events: ChunkEvent[] = [];
  const mod = (a: number) => ((a % world) + world) % world;
  for (let s = 0; s < 2 * (world - 1); s++) {
    const phase = s < world - 1 ? 'reduce-scatter' : 'all-gather';
    const local = s < world - 1 ? s : s - (world - 1);
    for (let r = 0; r < world; r++) {
      const chunk = phase === 'reduce-scatter' ? mod(r - local) : mod(r + 1 - local);
      const base = {
        type: 'chunk' as const,
        collective: 'ring-allreduce' as const,
        runId: '3:0',
        round: 3,
        phase: phase as ChunkEvent['phase'],
        step: s,
        chunk,
        part: 0,
        bytes: 400,
        offset: chunk * 100,
        length: 100,
        tStart: t0 + s * stepMs,
        tEnd: t0 + (s + 1) * stepMs,
      };
      events.push({ ...base, direction: 'send', rank: r, peer: mod(r + 1) });
      events.push({ ...base, direction: 'recv', rank: mod(r + 1), peer: r });
    }
  }
  return events;
}

function nextFrame(): Promise<void> {
  return new Promise((resolve) => requestAnimationFrame(() => resolve()));
}

function setup(world: number) {
  const store = createLabStore();
  const bus = new EventBus();
  connectBus(store, bus);
  bus.publish({ type: 'peers', self: { peerId: 'p0', rank: 0, world, room: 'r' }, peers: [] });
  return { store, bus };
}

describe('RingView', () => {
  it('draws the ring of the room, one node per rank and one link per neighbour pair', () => {
    const { store } = setup(5);
    const { container } = render(<RingView store={store} topology="ring" reducedMotion />);
    expect(container.querySelectorAll('[data-rank]')).toHaveLength(5);
    expect([...container.querySelectorAll('line[data-link]')].map((l) => l.getAttribute('data-link'))).toEqual([
      '0>1',
      '1>2',
      '2>3',
      '3>4',
      '4>0',
    ]);
  });

  it('places chunk k of step s on the link from rank r to r+1 exactly as the events say (still)', async () => {
    const world = 4;
    const { store, bus } = setup(world);
    const { container } = render(<RingView store={store} topology="ring" reducedMotion />);
    const events = ringStream(world, 1000, 10);
    await act(async () => {
      for (const e of events) bus.publish(e);
      await nextFrame();
    });
    const markers = [...container.querySelectorAll<SVGCircleElement>('circle.chunk')];
    // One marker per message (send and receive merged): world messages per step, 2(world-1) steps.
    expect(markers).toHaveLength(world * 2 * (world - 1));
    const nodes = nodePositions(world, 'ring', 420);
    for (const e of events.filter((x) => x.direction === 'send')) {
      const m = container.querySelector<SVGCircleElement>(
        `circle.chunk[data-step="${e.step}"][data-from="${e.rank}"][data-to="${e.peer}"]`,
      );
      expect(m, `step ${e.step} ${e.rank}->${e.peer}`).not.toBeNull();
      expect(m!.dataset.chunk).toBe(String(e.chunk));
      expect(m!.dataset.phase).toBe(e.phase);
      // The marker lies between its two nodes (within the lane offset).
      const a = nodes[e.rank];
      const b = nodes[e.peer];
      const frac = Number(m!.dataset.frac);
      const cx = Number(m!.getAttribute('cx'));
      const cy = Number(m!.getAttribute('cy'));
      expect(Math.hypot(cx - (a.x + (b.x - a.x) * frac), cy - (a.y + (b.y - a.y) * frac))).toBeLessThan(7);
    }
    // Reduce-scatter markers and all-gather markers get different colours.
    const rs = container.querySelector('circle.chunk[data-phase="reduce-scatter"]')!.getAttribute('fill');
    const ag = container.querySelector('circle.chunk[data-phase="all-gather"]')!.getAttribute('fill');
    expect(rs).not.toBe(ag);
    // Per-link throughput: each link carried 400 bytes per 10 ms while busy = 40 kB/s.
    const rate = container.querySelector<SVGTextElement>('text.rate[data-link="0>1"]');
    expect(Number(rate!.dataset.bytesPerSec)).toBeCloseTo(40_000, -2);
    expect(rate!.textContent).toBe('40.0 kB/s');
  });

  it('moves a chunk along its link from tStart to tEnd, and removes it once it has arrived', async () => {
    const world = 3;
    const { store, bus } = setup(world);
    let wall = 0;
    const { container } = render(<RingView store={store} topology="ring" reducedMotion={false} now={() => wall} />);
    const send: ChunkEvent = ringStream(world, 900, 100).find((e) => e.step === 1 && e.rank === 2 && e.direction === 'send')!;
    // The event arrives when the transfer has finished (t = 1100), started at 1000: the replay runs
    // 100 ms behind, so at wall 1100 the chunk is just leaving rank 2.
    wall = 1100;
    await act(async () => {
      bus.publish(send);
      await nextFrame();
    });
    const marker = () => container.querySelector<SVGCircleElement>('circle.chunk');
    expect(marker()!.dataset).toMatchObject({ step: '1', chunk: String(send.chunk), from: '2', to: '0' });
    expect(Number(marker()!.dataset.frac)).toBeCloseTo(0);
    expect(container.querySelector('[data-testid="replay-lag"]')!.textContent).toBe('replayed 100 ms behind live');
    wall = 1175;
    await act(nextFrame);
    expect(Number(marker()!.dataset.frac)).toBeCloseTo(0.75);
    wall = 1250;
    await act(nextFrame);
    expect(marker()).toBeNull();
  });

  it('draws a parameter-server star with the server in the middle', () => {
    const { store } = setup(4);
    const { container } = render(<RingView store={store} topology="ps" psServer={0} reducedMotion />);
    expect(container.querySelector('[data-rank="0"] text')!.textContent).toBe('PS 0');
    expect(container.querySelectorAll('line[data-link]')).toHaveLength(6);
    expect(container.querySelector('[data-rank="0"] circle')!.getAttribute('cx')).toBe('210');
  });
});
