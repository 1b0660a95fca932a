// @vitest-environment jsdom
import './jsdom-canvas-stub';
import { act, cleanup, fireEvent, render, screen } from '@testing-library/react';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { EventBus } from '../shared/events';
import { connectBus, createLabStore } from '../store/lab-store';
import { App } from './App';
import type { LabController } from '../lab/controller';

afterEach(cleanup);

function fakeController() {
  return {
    start: vi.fn(async () => {}),
    pause: vi.fn(),
    resume: vi.fn(),
    reset: vi.fn(),
    createRoom: vi.fn(async () => 'abc'),
    joinRoom: vi.fn(async () => {}),
    exportCheckpoint: vi.fn(async () => ({ filename: 'ckpt.bin', blob: new Blob([new Uint8Array(4)]) })),
    switchStrategy: vi.fn(async () => ({ step: 4, strategy: 'ring' })),
    shapeLink: vi.fn(),
    classroom: { load: vi.fn(async () => {}), next: vi.fn(async () => {}) },
  } satisfies LabController;
}

function setup() {
  const store = createLabStore();
  const bus = new EventBus();
  connectBus(store, bus);
  const controller = fakeController();
  render(<App store={store} controller={controller} />);
  return { store, bus, controller };
}

beforeEach(() => {
  URL.createObjectURL = vi.fn(() => 'blob:x');
  URL.revokeObjectURL = vi.fn();
});

const CHUNKS = [
  { start: 0, end: 1 },
  { start: 1, end: 2 },
];
const STEP0 = { step: 0, phase: 'initial' as const, perRank: [{ rank: 0, values: [1, 2] }, { rank: 1, values: [3, 4] }] };
const STEP1 = {
  step: 1,
  phase: 'reduce-scatter' as const,
  perRank: [
    { rank: 0, values: [1, 6], received: { chunk: 1, from: 1, values: [4] } },
    { rank: 1, values: [4, 4], received: { chunk: 0, from: 0, values: [1] } },
  ],
};

describe('App', () => {
  it('starts a run with the configured settings and shows the run state the lab reports', async () => {
    const { store, bus, controller } = setup();
    fireEvent.change(screen.getByLabelText('ZeRO stage'), { target: { value: '2' } });
    fireEvent.click(screen.getByRole('button', { name: 'Start' }));
    await act(async () => {});
    expect(controller.start).toHaveBeenCalledWith(expect.objectContaining({ zero: 2, model: 'mlp' }));
    expect(store.getState().config.zero).toBe(2);
    act(() => bus.publish({ type: 'state', state: 'training' }));
    expect(screen.getByTestId('run-state').textContent).toMatch(/^training/);
    act(() => bus.publish({ type: 'state', state: 'error', error: 'GPU device lost' }));
    expect(screen.getByRole('alert').textContent).toContain('GPU device lost');
  });

  it('shows a failed controller action instead of swallowing it', async () => {
    const { controller } = setup();
    controller.joinRoom.mockRejectedValueOnce(new Error('signalling server unreachable'));
    fireEvent.change(screen.getByLabelText('Room code'), { target: { value: 'room1' } });
    fireEvent.click(screen.getByRole('button', { name: 'Join' }));
    await act(async () => {});
    expect(controller.joinRoom).toHaveBeenCalledWith('room1');
    expect(screen.getByRole('alert').textContent).toContain('Join room failed: signalling server unreachable');
  });

  it('toggles large type and reduced motion with real, pressed-state buttons', () => {
    setup();
    const large = screen.getByRole('button', { name: 'Large type' });
    fireEvent.click(large);
    expect(large.getAttribute('aria-pressed')).toBe('true');
    expect(document.querySelector('.lab')!.classList.contains('large')).toBe(true);
    const motion = screen.getByRole('button', { name: 'Reduce motion' });
    fireEvent.click(motion);
    expect(motion.getAttribute('aria-pressed')).toBe('true');
    expect(screen.getByText(/Reduced motion: the newest collective/)).toBeTruthy();
  });

  it('exports metrics as a file and downloads a checkpoint from the controller', async () => {
    const { bus, controller } = setup();
    act(() => bus.publish({ type: 'state', state: 'done' }));
    const clicks: string[] = [];
    const click = vi.spyOn(HTMLAnchorElement.prototype, 'click').mockImplementation(function (this: HTMLAnchorElement) {
      clicks.push(this.download);
    });
    fireEvent.click(screen.getByRole('button', { name: 'Export metrics CSV' }));
    fireEvent.click(screen.getByRole('button', { name: 'Download checkpoint' }));
    await act(async () => {});
    expect(controller.exportCheckpoint).toHaveBeenCalled();
    expect(clicks).toEqual(['metrics.csv', 'ckpt.bin']);
    click.mockRestore();
  });

  it('runs a classroom lesson as the teacher: loads, asks the mesh for the next step, and follows to it', async () => {
    const { bus, controller } = setup();
    fireEvent.click(screen.getByRole('button', { name: 'Load lesson' }));
    expect(controller.classroom.load).toHaveBeenCalled();
    act(() => bus.publish({ type: 'classroom', runId: 'L1', chunks: CHUNKS, teaching: true, snapshot: STEP0 }));
    expect(screen.getByTestId('classroom-role').dataset.role).toBe('teacher');
    fireEvent.click(screen.getByRole('button', { name: 'Next step' }));
    expect(controller.classroom.next).toHaveBeenCalledTimes(1);
    act(() => bus.publish({ type: 'classroom', runId: 'L1', chunks: CHUNKS, teaching: true, snapshot: STEP1 }));
    expect(screen.getByTestId('classroom-step').textContent).toMatch(/^Step 1 of 1 \(reduce-scatter\)/);
    expect(screen.getByText('chunk 1 from rank 1: [4]')).toBeTruthy();
  });

  it("follows another tab's lesson: Next cannot release steps, new steps appear by themselves", () => {
    const { bus, controller } = setup();
    act(() => bus.publish({ type: 'classroom', runId: 'L1', chunks: CHUNKS, snapshot: STEP0 }));
    expect(screen.getByTestId('classroom-role').dataset.role).toBe('student');
    const next = screen.getByRole('button', { name: 'Next step' }) as HTMLButtonElement;
    expect(next.disabled).toBe(true);
    act(() => bus.publish({ type: 'classroom', runId: 'L1', chunks: CHUNKS, snapshot: STEP1 }));
    expect(screen.getByTestId('classroom-step').textContent).toMatch(/^Step 1 of 1/);
    expect(controller.classroom.next).not.toHaveBeenCalled();
  });

  it('draws the ZeRO layout the trainer reported', () => {
    const { bus } = setup();
    act(() =>
      bus.publish({
        type: 'zero-layout',
        stage: 2,
        total: 10,
        partition: [
          { rank: 0, start: 0, end: 5 },
          { rank: 1, start: 5, end: 10 },
        ],
        optimizerFloatsPerParam: 2,
      }),
    );
    act(() => bus.publish({ type: 'state', state: 'training' }));
    expect(screen.getByRole('heading', { name: /ZeRO stage 2 shard layout/ })).toBeTruthy();
    const grads = document.querySelector('tr[data-rank="1"][data-kind="grads"] .shard-held')!;
    expect([grads.getAttribute('data-start'), grads.getAttribute('data-end')]).toEqual(['5', '10']);
  });
});
