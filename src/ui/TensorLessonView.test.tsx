// @vitest-environment jsdom
// Fed with the events a real tensor lesson publishes (two tabs in one process, src/lab/classroom-test-support.ts).
import { cleanup, render, screen } from '@testing-library/react';
import { afterEach, describe, expect, it } from 'vitest';
import { room, until } from '../lab/classroom-test-support';
import { EventBus } from '../shared/events';
import { connectBus, createLabStore } from '../store/lab-store';
import { TensorLessonView } from './TensorLessonView';

afterEach(cleanup);

async function studentAfter(steps: number, expectedEvents: number) {
  const r = room(2);
  await r.classrooms[0].load(r.venues[0], 'tensor');
  const count = () => r.events[1].filter((e) => e.type === 'tensor-lesson').length;
  await until(() => count() === 2, 'both setups');
  for (let step = 1; step <= steps; step++) await r.classrooms[0].next();
  await until(() => count() === expectedEvents, `${steps} ops on the student`);
  const store = createLabStore();
  const bus = new EventBus();
  connectBus(store, bus);
  for (const e of r.events[1]) bus.publish(e);
  return store.getState().tensorLesson;
}

describe('TensorLessonView', () => {
  it("shows the op just run (both ranks' reports of an all-reduce), this tab's own last op, the shards as matrices, and the ops so far", async () => {
    const lesson = await studentAfter(5, 2 + 4 + 2);
    render(<TensorLessonView lesson={lesson} />);
    expect(screen.getByTestId('tensor-lesson-step').textContent).toMatch(/^Op 5 of 11: all 2 ranks all-reduce the partial outputs over the mesh \(Megatron's g\)/);
    const own = screen.getByTestId('tensor-lesson-own');
    expect(own.getAttribute('data-step')).toBe('5');
    expect(own.getAttribute('data-kind')).toBe('all-reduce-output');
    expect(document.querySelectorAll('.tensor-lesson-ops li[data-step="5"]')).toHaveLength(2);
    expect(document.querySelectorAll('.tensor-lesson-ops li')).toHaveLength(6);
    // Rows of a matrix are separated by "|": X is 2 x 3.
    const X = document.querySelector('.tensor-lesson-setup tr[data-rank="0"] .lesson-tensor[data-name="X"]')!;
    expect(X.getAttribute('data-cols')).toBe('3');
    expect(X.textContent).toMatch(/^X = \[\S+ \S+ \S+ \| \S+ \S+ \S+\]$/);
    expect(screen.getByTestId('tensor-lesson-role').getAttribute('data-role')).toBe('student');
    expect(screen.queryByRole('button', { name: 'Next tensor op' })!.hasAttribute('disabled')).toBe(true);
  });

  it('says, once every tab has checked, that Y and dX equal the unsplit layer', async () => {
    const lesson = await studentAfter(11, 2 + 8 + 6);
    render(<TensorLessonView lesson={lesson} onNext={() => undefined} />);
    expect(screen.getByTestId('tensor-lesson-step').textContent).toMatch(/Y and dX equal the unsplit layer’s on every tab\.$/);
  });
});
