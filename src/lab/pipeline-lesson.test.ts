import { describe, expect, it } from 'vitest';
import { pipelineSchedules, PIPELINE_SCHEDULES } from '../collective/pipeline-schedules';
import type { PipelineLessonEvent } from '../shared/events';
import { room, sleep, until } from './classroom-test-support';
import { lessonOrder, stageSetup } from './pipeline-lesson';

/** The two-stage linear pipeline by hand: y = W x per stage, loss 0.5|y - t|^2, gradients back. */
function byHand(lesson: number, micro: number) {
  const [s0, s1] = [stageSetup(lesson, 0, 2, micro), stageSetup(lesson, 1, 2, micro)];
  const mv = (w: number[], x: number[], t = false) => [0, 1].map((i) => [0, 1].reduce((sum, j) => sum + (t ? w[j * 2 + i] : w[i * 2 + j]) * x[j], 0));
  return Array.from({ length: micro }, (_, m) => {
    const x = s0.inputs![m];
    const h = mv(s0.weights, x);
    const y = mv(s1.weights, h);
    const g = y.map((v, i) => v - s1.targets![m][i]);
    return { x, h, y, g, loss: 0.5 * g.reduce((s, v) => s + v * v, 0), gh: mv(s1.weights, g, true) };
  });
}

describe('pipeline lesson', () => {
  it.each(PIPELINE_SCHEDULES)('%s: lessonOrder runs every op once, each receive after its send, each stage in its own order', (kind) => {
    for (let P = 1; P <= 4; P++) {
      for (let M = 1; M <= 4; M++) {
        const schedules = pipelineSchedules(kind, P, M);
        const order = lessonOrder(schedules);
        expect(order).toHaveLength(schedules.reduce((n, s) => n + s.ops.length, 0));
        const sent = new Set<string>();
        const next = schedules.map(() => 0);
        for (const { stage, index } of order) {
          expect(index).toBe(next[stage]++);
          const op = schedules[stage].ops[index];
          const what = `${op.kind.endsWith('grad') ? 'g' : 'a'}${op.micro}`;
          if (op.kind.startsWith('send')) sent.add(`${what}:${stage}>${op.peer}`);
          if (op.kind.startsWith('recv')) expect(sent.has(`${what}:${op.peer}>${stage}`)).toBe(true);
        }
      }
    }
  });

  it('two tabs step a 2-stage, 2-micro-batch GPipe one op per release; each op reports the numbers a CPU computation gives', async () => {
    const r = room(2);
    await r.classrooms[0].load(r.venues[0], 'pipeline');
    const lessonEvents = (tab: number) => r.events[tab].filter((e): e is PipelineLessonEvent => e.type === 'pipeline-lesson');
    await until(() => [0, 1].every((t) => lessonEvents(t).length === 2), 'both setups on both tabs');
    const lesson = r.classrooms[1].current()!.lesson;
    const hand = byHand(lesson, 2);
    const steps = lessonEvents(0)[0].steps;
    expect(steps).toBe(16);
    // The gate holds: no op runs before the teacher releases one.
    await sleep(30);
    expect(lessonEvents(1)).toHaveLength(2);
    await expect(r.classrooms[1].next()).rejects.toThrow(/teacher/);

    for (let step = 1; step <= steps; step++) {
      await r.classrooms[0].next();
      await until(() => lessonEvents(1).length === step + 2, `step ${step} on the student`);
      const { report } = lessonEvents(1).at(-1)!;
      expect(lessonEvents(0).at(-1)!.report).toEqual(report);
      expect(report.step).toBe(step);
      const m = report.op!.micro;
      const t = Object.fromEntries(report.tensors.map((x) => [x.name, x.values]));
      const expected: Record<string, Record<string, number[]>> = {
        '0 forward': { input: hand[m].x, output: hand[m].h },
        '0 send-activation': { activation: hand[m].h },
        '1 recv-activation': { activation: hand[m].h },
        '1 forward': { input: hand[m].h, output: hand[m].y, loss: [hand[m].loss] },
        '1 backward': { 'output grad': hand[m].g, 'input grad': hand[m].gh },
        '1 send-grad': { gradient: hand[m].gh },
        '0 recv-grad': { gradient: hand[m].gh },
        '0 backward': { 'output grad': hand[m].gh },
      };
      for (const [name, values] of Object.entries(expected[`${report.rank} ${report.op!.kind}`])) expect(t[name]).toEqual(values);
    }
    expect(r.refusals.flat()).toEqual([]);
  });
});
