import { describe, expect, it } from 'vitest';
import { integerLessonValues, twoLayerLesson, type Matrix } from '../parallel/tensor-lesson';
import type { TensorLessonEvent } from '../shared/events';
import { decodeClassroomMessage, encodeClassroomMessage, isMessageError, type OpMessage, type StartMessage } from './classroom-protocol';
import { room, sleep, until } from './classroom-test-support';
import { TensorLesson, tensorLessonPlan, tensorLessonShape } from './tensor-class-lesson';

/** The matrix `name` that the float64 lesson (src/parallel/tensor-lesson.ts) holds on `rank`. */
function expected(lesson: ReturnType<typeof twoLayerLesson>, name: string, rank: number): number[] {
  const op = lesson.ops.find((o) => o.kind !== 'check' && o.ranks[rank][name]);
  if (!op) throw new Error(`the lesson has no ${name}`);
  return (op.ranks[rank][name] as Matrix).data;
}

describe('tensor lesson plan', () => {
  it.each([1, 2, 3, 4])('%i ranks: every rank runs each local op once, in order, between the two all-reduces', (R) => {
    const plan = tensorLessonPlan(R);
    expect(plan).toHaveLength(4 * R + 3);
    for (let r = 0; r < R; r++) expect(plan.filter((s) => s.owner === r).map((s) => s.kind)).toEqual(['layer1', 'layer2', 'layer2-grad', 'layer1-grad']);
    expect(plan.filter((s) => s.owner === 'all').map((s) => s.kind)).toEqual(['all-reduce-output', 'all-reduce-input-grad', 'check']);
    expect(plan.findIndex((s) => s.kind === 'all-reduce-output')).toBe(2 * R);
  });
});

describe('tensor lesson numbers', () => {
  it.each([1, 2, 3, 4])('%i ranks, 50 seeds: integers in their ranges; every value of the float64 lesson (the loss: times 2) is an integer below 2^24; relu is on and off', (R) => {
    for (let seed = 1; seed <= 50; seed++) {
      const values = integerLessonValues(tensorLessonShape(R), seed);
      const within = (m: Matrix, low: number, high: number) => m.data.every((v) => Number.isInteger(v) && v >= low && v <= high);
      expect(within(values.X, -2, 2) && within(values.W1, -1, 1) && within(values.b1, -1, 1) && within(values.W2, -1, 1) && within(values.b2, 0, 1) && within(values.target, 0, 2)).toBe(true);
      const lesson = twoLayerLesson(tensorLessonShape(R), values);
      expect(lesson.ok).toBe(true);
      // The loss is half a sum of squares: a multiple of 1/2, also exact in float32.
      for (const op of lesson.ops) for (const byName of op.ranks) for (const [name, m] of Object.entries(byName)) expect(m.data.every((v) => Number.isInteger(name === 'loss' ? 2 * v : v) && Math.abs(v) < 2 ** 24), `${name} at op ${op.step}`).toBe(true);
      const Z = lesson.ops.filter((o) => o.ranks[0].Z_r).flatMap((o) => o.ranks.flatMap((byName) => byName.Z_r.data));
      expect(Z.some((z) => z > 0) && Z.some((z) => z <= 0)).toBe(true);
    }
  });
});

describe('tensor lesson on tabs', () => {
  it.each([2, 4])('%i tabs step the whole lesson; every report equals the float64 lesson exactly and each tab checks zero difference', async (R) => {
    const r = room(R);
    await r.classrooms[0].load(r.venues[0], 'tensor');
    const events = (tab: number) => r.events[tab].filter((e): e is TensorLessonEvent => e.type === 'tensor-lesson');
    await until(() => r.ids.every((_, t) => events(t).length === R), 'every setup on every tab');
    const running = r.classrooms[1].current() as TensorLesson;
    expect(running).toBeInstanceOf(TensorLesson);
    const reference = twoLayerLesson(tensorLessonShape(R), running.values());
    expect(reference.ok).toBe(true);
    // The gate holds: nothing runs before the teacher's Next, and a student cannot step.
    await sleep(20);
    expect(events(1)).toHaveLength(R);
    await expect(r.classrooms[1].next()).rejects.toThrow(/teacher/);

    const plan = tensorLessonPlan(R);
    let seen = R;
    for (let step = 1; step <= plan.length; step++) {
      await r.classrooms[0].next();
      seen += plan[step - 1].owner === 'all' ? R : 1;
      await until(() => r.ids.every((_, t) => events(t).length === seen), `step ${step} on every tab`);
      for (const e of events(R - 1).slice(seen - (plan[step - 1].owner === 'all' ? R : 1))) {
        expect(e.report.step).toBe(step);
        expect(e.report.op?.kind).toBe(plan[step - 1].kind);
        const shown = Object.fromEntries(e.report.tensors.map((t) => [t.name, t.values]));
        const rank = e.report.rank;
        const want: Record<string, Record<string, string>> = {
          layer1: { 'Z_r = X W1_r + b1_r': 'Z_r', 'A_r = relu(Z_r)': 'A_r' },
          layer2: { 'P_r = A_r W2_r': 'P_r' },
          'all-reduce-output': { 'P = sum P_r': 'P', 'Y = P + b2': 'Y' },
          'layer2-grad': { 'dY = Y - target': 'dY', 'dW2_r = A_r^T dY': 'dW2_r', 'db2 = sum rows dY': 'db2' },
          'layer1-grad': { "dZ_r = dY W2_r^T * relu'": 'dZ_r', 'dW1_r = X^T dZ_r': 'dW1_r', 'db1_r = sum rows dZ_r': 'db1_r', 'dX_r = dZ_r W1_r^T': 'dX_r' },
          'all-reduce-input-grad': { 'dX = sum dX_r': 'dX' },
          check: { 'unsplit Y': 'Y', 'unsplit dX': 'dX' },
        };
        for (const [shownName, lessonName] of Object.entries(want[e.report.op!.kind])) expect(shown[shownName], `step ${step} rank ${rank} ${shownName}`).toEqual(expected(reference, lessonName, rank));
        if (e.report.op!.kind === 'check') expect(shown['max |diff| Y dX dW1_r db1_r dW2_r']).toEqual([0, 0, 0, 0, 0]);
      }
    }
    // Every tab saw the same reports (an all-ranks step's reports arrive in any order).
    const strip = (t: number) => events(t).map((e) => e.report).sort((a, b) => a.step - b.step || a.rank - b.rank);
    for (let t = 1; t < R; t++) expect(strip(t)).toEqual(strip(0));
    expect(r.refusals.flat()).toEqual([]);
  });

  it('refuses reports that name the wrong tab, the wrong rank for a step, or the wrong op, and keeps none of them', async () => {
    const r = room(2);
    await r.classrooms[0].load(r.venues[0], 'tensor');
    const events = (tab: number) => r.events[tab].filter((e): e is TensorLessonEvent => e.type === 'tensor-lesson');
    await until(() => events(0).length === 2 && events(1).length === 2, 'setups');
    const lesson = r.classrooms[0].current()!.lesson;
    // Tab 1 claims to be rank 0; tab 1 reports rank 0's step 1; tab 0 reports step 1 as another op; a setup with an op.
    r.inject(1, 0, { kind: 'op', lesson, step: 1, rank: 0, op: { kind: 'layer1', micro: 0 }, tensors: [] });
    r.inject(1, 0, { kind: 'op', lesson, step: 1, rank: 1, op: { kind: 'layer1', micro: 0 }, tensors: [] });
    r.inject(0, 1, { kind: 'op', lesson, step: 1, rank: 0, op: { kind: 'layer2', micro: 0 }, tensors: [] });
    r.inject(0, 1, { kind: 'op', lesson, step: 1, rank: 0, op: { kind: 'forward', micro: 0 }, tensors: [] });
    r.inject(1, 0, { kind: 'op', lesson, step: 99, rank: 1, op: { kind: 'check', micro: 0 }, tensors: [] });
    expect(r.refusals[0]).toEqual([
      'p1: classroom: peer p1 reported as rank 0',
      "p1: classroom: step 1 is rank 0's op, not rank 1's",
      "p1: classroom: step 99 is past the lesson's 11",
    ]);
    expect(r.refusals[1]).toEqual(['p0: classroom: step 1 is layer1, not layer2', 'p0: classroom: step 1 is layer1, not forward']);
    expect(events(0)).toHaveLength(2);
    expect(events(1)).toHaveLength(2);
  });
});

describe('tensor lesson messages', () => {
  it('a tensor start and an op report with a matrix round-trip; pipeline settings, unknown op kinds and ragged matrices are refused', () => {
    const start: StartMessage = { kind: 'start', lesson: 5, teacher: 'a', members: ['a', 'b'], topic: 'tensor' };
    expect(decodeClassroomMessage(encodeClassroomMessage(start))).toEqual(start);
    const op: OpMessage = { kind: 'op', lesson: 5, step: 1, rank: 0, op: { kind: 'layer1', micro: 0 }, tensors: [{ name: 'Z_r', values: [1, 2, 3, 4], cols: 2 }] };
    expect(decodeClassroomMessage(encodeClassroomMessage(op))).toEqual(op);
    const bad = (m: object) => {
      const d = decodeClassroomMessage(new TextEncoder().encode(JSON.stringify(m)));
      return isMessageError(d) ? d.error : null;
    };
    expect(bad({ ...start, pipeline: { schedule: 'gpipe', micro: 2 } })).toMatch(/pipeline settings in a tensor lesson/);
    expect(bad({ ...op, op: { kind: 'layer9', micro: 0 } })).toMatch(/bad op/);
    expect(bad({ ...op, tensors: [{ name: 'Z_r', values: [1, 2, 3], cols: 2 }] })).toMatch(/row length/);
    expect(bad({ ...op, tensors: [{ name: 'Z_r', values: [1, 2], cols: 0 }] })).toMatch(/row length/);
  });
});
