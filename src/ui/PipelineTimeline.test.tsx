// @vitest-environment jsdom
// The timeline is fed recorded event sequences made by really running the executor
// (pipeline-executor.ts) over an in-memory mesh with the real schedules, each stage's compute taking
// real time; each "tab" stamps its events on its own skewed clock, as tabs do, with the offset that
// maps it back, and the store reduces them as it does on the dashboard.
import { act, cleanup, fireEvent, render, screen } from '@testing-library/react';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createMemoryMesh } from '../collective/memory-transport';
import { runStageSchedule, type StageCompute } from '../collective/pipeline-executor';
import { idealBubbleFraction, pipelineSchedules, simulate, type PipelineScheduleKind } from '../collective/pipeline-schedules';
import { measureTimeline } from '../collective/pipeline-timeline';
import type { PipelineEvent } from '../collective/pipeline-executor';
import { EventBus, type PipelineLabEvent } from '../shared/events';
import { connectBus, createLabStore } from '../store/lab-store';
import { ADAMW, TINY_GPT, trainPipeline } from '../parallel/pipeline-test-support';
import { PipelineTimelineView, REPLAY_MS } from './PipelineTimeline';

afterEach(cleanup);

/** Each tab's clock: this far behind the shared one (ms); its clockOffsetMs adds it back. */
const SKEW_MS = [0, 3_600_000, -250_000, 42_000];

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function timedStage(stage: number, stages: number, width: number, ms: { forward: number; backward: number }): StageCompute {
  return {
    forward: async (micro, input) => {
      await sleep(ms.forward);
      return stage < stages - 1 ? (input ?? new Float32Array(width).fill(micro)).map((v) => v + 1) : undefined;
    },
    backward: async (_micro, grad) => {
      await sleep(ms.backward);
      return stage > 0 ? (grad ?? new Float32Array(width).fill(1)).map((v) => v * 2) : undefined;
    },
  };
}

interface Recorded {
  /** As the executor emitted them, on the one real clock of this process. */
  raw: PipelineEvent[];
  /** As the tabs publish them: own skewed clock plus the offset back. */
  published: PipelineLabEvent[];
}

async function recordStep(kind: PipelineScheduleKind, P: number, M: number, round: number): Promise<Recorded> {
  const transports = createMemoryMesh(P);
  const raw: PipelineEvent[] = [];
  const published: PipelineLabEvent[] = [];
  await Promise.all(
    pipelineSchedules(kind, P, M).map((schedule, s) =>
      runStageSchedule(schedule, timedStage(s, P, 8, { forward: 4, backward: 8 }), {
        transport: transports[s],
        round,
        onEvent: (e) => {
          raw.push(e);
          published.push({ ...e, rank: s, tStart: e.tStart - SKEW_MS[s], tEnd: e.tEnd - SKEW_MS[s], clockOffsetMs: SKEW_MS[s] });
        },
      }),
    ),
  );
  return { raw, published };
}

function storeFed(events: readonly PipelineLabEvent[]) {
  const store = createLabStore();
  const bus = new EventBus();
  connectBus(store, bus);
  for (const e of events) bus.publish(e);
  return store;
}

function View({ store, plan }: { store: ReturnType<typeof createLabStore>; plan?: { stages: number; micro: number } }) {
  const { steps, selected } = store.getState().pipeline;
  return <PipelineTimelineView steps={steps} plan={plan} selected={selected} onSelect={(i) => store.getState().setPipelineStep(i)} />;
}

const blocksOf = (svgName: RegExp) =>
  [...screen.getByRole('img', { name: svgName }).querySelectorAll('g.pipeline-block')].map((g) => ({
    row: Number(g.getAttribute('data-row')),
    kind: g.getAttribute('data-kind'),
    micro: Number(g.getAttribute('data-micro')),
    start: Number(g.getAttribute('data-start')),
    end: Number(g.getAttribute('data-end')),
    fill: g.querySelector('rect')!.getAttribute('fill'),
  }));

describe('PipelineTimelineView', () => {
  it.each(['gpipe', '1f1b'] as const)('%s P=3 M=4: one block per real forward and backward, on one clock, with the measured bubble beside the formula (both printed to 0.1 percent)', async (kind) => {
    const [P, M] = [3, 4];
    const { raw, published } = await recordStep(kind, P, M, 5);
    const store = storeFed(published);
    render(<View store={store} />);

    const blocks = blocksOf(/Measured timeline of step 5/);
    expect(blocks).toHaveLength(P * M * 2);
    const t0 = Math.min(...raw.map((e) => e.tStart));
    for (const e of raw.filter((e) => e.kind === 'forward' || e.kind === 'backward')) {
      const b = blocks.find((x) => x.row === e.stage && x.kind === e.kind && x.micro === e.micro)!;
      // The skews cancel: each block sits where the op really ran on the shared clock.
      expect(b.start).toBeCloseTo(e.tStart - t0, 6);
      expect(b.end).toBeCloseTo(e.tEnd - t0, 6);
    }
    // Causality holds only on one clock: a stage's forward of m starts after the previous stage's ends.
    for (let s = 1; s < P; s++) {
      for (let m = 0; m < M; m++) {
        const mine = blocks.find((b) => b.row === s && b.kind === 'forward' && b.micro === m)!;
        const before = blocks.find((b) => b.row === s - 1 && b.kind === 'forward' && b.micro === m)!;
        expect(mine.start).toBeGreaterThanOrEqual(before.end);
      }
    }
    // F and B of one micro-batch share a hue and differ in lightness; micro-batches differ in hue.
    const f0 = blocks.find((b) => b.kind === 'forward' && b.micro === 0)!.fill;
    const b0 = blocks.find((b) => b.kind === 'backward' && b.micro === 0)!.fill;
    const f1 = blocks.find((b) => b.kind === 'forward' && b.micro === 1)!.fill;
    expect(f0).not.toBe(b0);
    expect(f0!.split(' ')[0]).toBe(b0!.split(' ')[0]);
    expect(f0!.split(' ')[0]).not.toBe(f1!.split(' ')[0]);

    const truth = measureTimeline(raw, P);
    const text = screen.getByTestId('pipeline-bubble').textContent!;
    expect(text).toContain(kind);
    expect(text).toContain(`measured bubble ${(truth.bubbleFraction * 100).toFixed(1)}%`);
    expect(text).toContain(`(P-1)/(M+P-1) = ${(idealBubbleFraction(P, M) * 100).toFixed(1)}%`);
    const busy = screen.getAllByTestId('pipeline-busy').map((td) => td.textContent);
    const idle = screen.getAllByTestId('pipeline-idle').map((td) => td.textContent);
    expect(busy).toEqual(truth.stages.map((s) => `${s.busyMs.toFixed(1)} ms`));
    expect(idle).toEqual(truth.stages.map((s) => `${s.idleMs.toFixed(1)} ms`));

    // The ideal of the recognised schedule beside it, block for block from the simulator.
    const ideal = simulate(pipelineSchedules(kind, P, M));
    const idealBlocks = blocksOf(new RegExp(`Ideal ${kind} timeline`));
    expect(idealBlocks).toHaveLength(P * M * 2);
    for (const [s, ops] of ideal.timeline.entries()) {
      for (const op of ops.filter((o) => o.kind === 'forward' || o.kind === 'backward')) {
        expect(idealBlocks).toContainEqual(expect.objectContaining({ row: s, kind: op.kind, micro: op.micro, start: op.start, end: op.end }));
      }
    }
  });

  it("live: a tab with only its own stage's events so far draws that row alone, marked in progress, and no ideal", async () => {
    const { published } = await recordStep('1f1b', 2, 3, 0);
    const own = published.filter((e) => e.rank === 1).slice(0, 4);
    const store = storeFed(own);
    // The run's settings say what a whole step is: these 4 ops alone would look like a step of 1 micro-batch.
    render(<View store={store} plan={{ stages: 2, micro: 3 }} />);
    const blocks = blocksOf(/Measured timeline/);
    expect(new Set(blocks.map((b) => b.row))).toEqual(new Set([0]));
    expect(blocks.length).toBe(own.filter((e) => e.kind === 'forward' || e.kind === 'backward').length);
    expect(screen.getByTestId('pipeline-step').textContent).toMatch(/in progress/);
    expect(screen.queryByRole('img', { name: /Ideal/ })).toBeNull();
    expect(screen.getByText('stage 1 · r1')).toBeTruthy();
  });

  it("a tab whose own stage's step is complete but has no other stage's events says so, and claims no bubble", async () => {
    const { published } = await recordStep('1f1b', 3, 4, 0);
    const own = published.filter((e) => e.rank === 0);
    const store = storeFed(own);
    render(<View store={store} plan={{ stages: 3, micro: 4 }} />);
    expect(screen.getByTestId('pipeline-step').textContent).toBe("step 0 (1 of 3 stages: the others' events have not reached this tab)");
    const text = screen.getByTestId('pipeline-bubble').textContent!;
    expect(text).toMatch(/^1f1b · 3 stages × 4 micro-batches/);
    expect(text).toMatch(/idle over the rows shown/);
    expect(text).not.toMatch(/measured bubble|P-1/);
    expect(blocksOf(/Measured timeline/)).toHaveLength(8);
    // The schedule's ideal is known from this stage's own ops and the run's stage count.
    expect(blocksOf(/Ideal 1f1b timeline/)).toHaveLength(3 * 4 * 2);
  });

  it("replays recorded steps with the slider; the same op delivered twice (own, then gathered) counts once", async () => {
    const first = await recordStep('gpipe', 2, 2, 0);
    const second = await recordStep('1f1b', 2, 4, 1);
    const own = second.published.filter((e) => e.rank === 0);
    const store = storeFed([...first.published, ...own, ...second.published]);
    expect(store.getState().pipeline.steps.map((s) => s.events.length)).toEqual([first.published.length, second.published.length]);
    const { rerender } = render(<View store={store} />);
    expect(screen.getByTestId('pipeline-step').textContent).toBe('step 1');
    expect(screen.getByTestId('pipeline-bubble').textContent).toMatch(/^1f1b · 2 stages × 4 micro-batches/);

    fireEvent.change(screen.getByRole('slider', { name: 'Recorded step' }), { target: { value: '0' } });
    rerender(<View store={store} />);
    expect(screen.getByTestId('pipeline-step').textContent).toBe('step 0');
    expect(screen.getByTestId('pipeline-bubble').textContent).toMatch(/^gpipe · 2 stages × 2 micro-batches/);
    expect(blocksOf(/Measured timeline of step 0/)).toHaveLength(2 * 2 * 2);
    expect(screen.getByRole('button', { name: 'Live' }).getAttribute('aria-pressed')).toBe('false');

    // A new step arriving does not move a viewer who is replaying; Live follows the newest again.
    const third = await recordStep('gpipe', 2, 2, 2);
    const bus = new EventBus();
    connectBus(store, bus);
    for (const e of third.published) bus.publish(e);
    rerender(<View store={store} />);
    expect(screen.getByTestId('pipeline-step').textContent).toBe('step 0');
    fireEvent.click(screen.getByRole('button', { name: 'Live' }));
    rerender(<View store={store} />);
    expect(screen.getByTestId('pipeline-step').textContent).toBe('step 2');
  });

  it('recognises the schedule when a send or receive is stamped at the same time as its neighbour and reported out of list order (as the 100 µs clock of a real tab does)', async () => {
    const { published } = await recordStep('1f1b', 3, 4, 0);
    // Every message op of a row stamped at the row's first op's start, so that they sort ahead of the
    // computes, and reported last; the computes keep their times and order.
    const firstStart = (rank: number) => Math.min(...published.filter((e) => e.rank === rank).map((e) => e.tStart));
    const isMessage = (e: PipelineLabEvent) => e.kind !== 'forward' && e.kind !== 'backward';
    const shuffled = [
      ...published.filter((e) => !isMessage(e)),
      ...published.filter(isMessage).map((e) => ({ ...e, tStart: firstStart(e.rank), tEnd: Math.max(e.tEnd, firstStart(e.rank)) })),
    ];
    render(<View store={storeFed(shuffled)} />);
    expect(screen.getByTestId('pipeline-step').textContent).toBe('step 0');
    expect(screen.getByTestId('pipeline-bubble').textContent).toMatch(/^1f1b · 3 stages × 4 micro-batches .* measured bubble \d+\.\d% vs \(P-1\)\/\(M\+P-1\) = 33\.3%$/);
    expect(blocksOf(/Ideal 1f1b timeline/)).toHaveLength(3 * 4 * 2);
    cleanup();
    // A row whose computes ran in another order is not called 1F1B (nor GPipe): stage 2 (last) with its first two computes swapped.
    const last = published.filter((e) => e.rank === 2 && (e.kind === 'forward' || e.kind === 'backward')).sort((a, b) => a.tStart - b.tStart);
    const [a, b] = last;
    const swapped = published.map((e) => (e === a ? { ...e, tStart: b.tStart, tEnd: b.tEnd } : e === b ? { ...e, tStart: a.tStart, tEnd: a.tEnd } : e));
    render(<View store={storeFed(swapped)} />);
    expect(screen.getByTestId('pipeline-bubble').textContent).toMatch(/^schedule not recognised yet/);
  });

  it('replays a recorded step as it unfolded: the time cursor sweeps its span, showing only the ops started by then, cut at the cursor', async () => {
    const { published } = await recordStep('1f1b', 3, 4, 0);
    const store = storeFed(published);
    vi.useFakeTimers();
    try {
      render(<View store={store} />);
      const whole = blocksOf(/Measured timeline of step 0/);
      expect(whole).toHaveLength(3 * 4 * 2);
      const span = Number(screen.getByRole('img', { name: /Measured timeline of step 0/ }).getAttribute('data-span'));
      const drawnAt = (t: number) => whole.filter((b) => b.start <= t).map((b) => ({ ...b, end: Math.min(b.end, t) }));
      const byPlace = (a: { row: number; kind: string | null; micro: number }, b: typeof a) => a.row - b.row || String(a.kind).localeCompare(String(b.kind)) || a.micro - b.micro;

      fireEvent.click(screen.getByRole('button', { name: 'Replay step' }));
      expect(screen.getByTestId('pipeline-replay').textContent).toBe(`0.0 of ${span.toFixed(1)} ms`);
      // At 0 only the first forward has started (stage 0's), drawn zero wide.
      expect(blocksOf(/Measured timeline/)).toEqual(drawnAt(0));
      for (const fraction of [0.25, 0.5, 0.75]) {
        act(() => vi.advanceTimersByTime(REPLAY_MS * 0.25));
        const at = Number(screen.getByRole('img', { name: /Measured timeline/ }).querySelector('line.pipeline-cursor')!.getAttribute('data-at'));
        expect(at).toBeCloseTo(span * fraction, 6);
        const shown = blocksOf(/Measured timeline/).sort(byPlace);
        expect(shown).toEqual(drawnAt(at).sort(byPlace));
        expect(shown.length).toBeGreaterThan(0);
        expect(shown.length).toBeLessThan(whole.length);
      }
      // At the end of the span the replay stops and the whole step is back.
      act(() => vi.advanceTimersByTime(REPLAY_MS * 0.25 + 100));
      expect(screen.getByTestId('pipeline-replay').textContent).toBe('whole step');
      expect(blocksOf(/Measured timeline/)).toEqual(whole);
      expect(screen.getByRole('button', { name: 'Replay step' }).getAttribute('aria-pressed')).toBe('false');

      // Dragging the time cursor shows that moment without playing.
      fireEvent.change(screen.getByRole('slider', { name: 'Time in step' }), { target: { value: String(span / 3) } });
      expect(blocksOf(/Measured timeline/).sort(byPlace)).toEqual(drawnAt(span / 3).sort(byPlace));
      act(() => vi.advanceTimersByTime(REPLAY_MS));
      expect(blocksOf(/Measured timeline/).sort(byPlace)).toEqual(drawnAt(span / 3).sort(byPlace));
    } finally {
      vi.useRealTimers();
    }
  });

  it('DP2 x PP2: each layer group\'s replica all-reduce drawn as a bar where it ran on its row, left out of the bubble, the schedule still recognised', async () => {
    const P = 2;
    const run = await trainPipeline(TINY_GPT, ADAMW, '1f1b', P, 8, 2, { steps: 1, replicas: 2 });
    const raw = run.events[0];
    const published: PipelineLabEvent[] = raw.map((e) => ({ ...e, rank: e.stage, tStart: e.tStart - SKEW_MS[e.stage], tEnd: e.tEnd - SKEW_MS[e.stage], clockOffsetMs: SKEW_MS[e.stage] }));
    render(<View store={storeFed(published)} />);
    const reduces = raw.filter((e) => e.kind === 'allreduce');
    expect(reduces.length).toBe(run.stages.reduce((n, st) => n + st.layout.groups.length, 0));
    const t0 = Math.min(...raw.filter((e) => e.kind !== 'allreduce').map((e) => e.tStart));
    const bars = [...screen.getByRole('img', { name: /Measured timeline of step 0/ }).querySelectorAll('g.pipeline-allreduce')];
    expect(bars).toHaveLength(reduces.length);
    for (const e of reduces) {
      const bar = bars.find((g) => Number(g.getAttribute('data-row')) === e.stage && Number(g.getAttribute('data-group')) === e.micro)!;
      expect(Number(bar.getAttribute('data-start'))).toBeCloseTo(e.tStart - t0, 6);
      expect(Number(bar.getAttribute('data-end'))).toBeCloseTo(e.tEnd - t0, 6);
    }
    const truth = measureTimeline(raw.filter((e) => e.kind !== 'allreduce'), P);
    expect(screen.getByTestId('pipeline-bubble').textContent).toMatch(new RegExp(`^1f1b · 2 stages × 2 micro-batches.*measured bubble ${(truth.bubbleFraction * 100).toFixed(1)}%`));
    expect(screen.getByTestId('pipeline-allreduce').textContent).toContain(`${reduces.length} layer groups`);
  });
});
