// @vitest-environment jsdom
// Fed with the events a real pipeline lesson publishes (two tabs in one process, src/lab/classroom-test-support.ts).
import { cleanup, fireEvent, render, screen } from '@testing-library/react';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { room, until } from '../lab/classroom-test-support';
import { EventBus } from '../shared/events';
import { connectBus, createLabStore } from '../store/lab-store';
import { PipelineLessonView } from './PipelineLessonView';

afterEach(cleanup);

describe('PipelineLessonView', () => {
  it('Load runs the schedule and micro-batches picked (GPipe with 2 unless changed)', () => {
    const store = createLabStore();
    const onLoad = vi.fn();
    render(<PipelineLessonView lesson={store.getState().pipelineLesson} onLoad={onLoad} />);
    const load = screen.getByRole('button', { name: 'Load pipeline lesson' });
    fireEvent.click(load);
    expect(onLoad).toHaveBeenLastCalledWith({ schedule: 'gpipe', micro: 2 });
    fireEvent.change(screen.getByRole('combobox', { name: /Schedule/ }), { target: { value: '1f1b' } });
    fireEvent.change(screen.getByRole('combobox', { name: /Micro-batches/ }), { target: { value: '3' } });
    fireEvent.click(load);
    expect(onLoad).toHaveBeenLastCalledWith({ schedule: '1f1b', micro: 3 });
    expect(screen.getAllByRole('option').map((o) => o.getAttribute('value'))).toEqual(['gpipe', '1f1b', '1', '2', '3', '4']);
  });

  it('a tab that cannot load (no onLoad) shows no choice', () => {
    render(<PipelineLessonView lesson={createLabStore().getState().pipelineLesson} />);
    expect(screen.queryByRole('combobox')).toBeNull();
  });

  it("shows the op just run, this tab's own last op with its tensors, the setup, and the ops so far", async () => {
    const r = room(2);
    await r.classrooms[0].load(r.venues[0], 'pipeline');
    const count = () => r.events[1].filter((e) => e.type === 'pipeline-lesson').length;
    await until(() => count() === 2, 'both setups');
    for (let step = 1; step <= 3; step++) await r.classrooms[0].next();
    await until(() => count() === 5, 'three ops on the student');

    const store = createLabStore();
    const bus = new EventBus();
    connectBus(store, bus);
    for (const e of r.events[1]) bus.publish(e);
    render(<PipelineLessonView lesson={store.getState().pipelineLesson} />);

    // GPipe on 2 stages: stage 0 forward m0, sends it, then stage 1 receives it (the third op).
    expect(screen.getByTestId('pipeline-lesson-step').textContent).toBe('Op 3 of 16: stage 1 receives the activation from stage 0 (micro-batch 0)');
    const own = screen.getByTestId('pipeline-lesson-own');
    expect(own.getAttribute('data-step')).toBe('3');
    expect(own.getAttribute('data-kind')).toBe('recv-activation');
    const sent = document.querySelector('.pipeline-lesson-ops li[data-step="2"] .lesson-tensor')!.getAttribute('data-values');
    expect(own.querySelector('.lesson-tensor')!.getAttribute('data-values')).toBe(sent);
    expect(document.querySelectorAll('.pipeline-lesson-setup tr')).toHaveLength(2);
    expect(document.querySelectorAll('.pipeline-lesson-ops li')).toHaveLength(3);
    expect(screen.getByTestId('pipeline-lesson-role').getAttribute('data-role')).toBe('student');
    expect(screen.queryByRole('button', { name: 'Next op' })!.hasAttribute('disabled')).toBe(true);
  });
});
