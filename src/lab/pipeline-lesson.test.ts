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

  it.each([
    ['gpipe', 2],
    ['1f1b', 3],
  ] as const)('two tabs step a 2-stage %s of %i micro-batches one op per release, each stage its schedule\'s list; each op reports the numbers a CPU computation gives', async (schedule, micro) => {
    const r = room(2);
    // GPipe with two micro-batches is what Load runs when nothing is picked.
    await (schedule === 'gpipe' && micro === 2 ? r.classrooms[0].load(r.venues[0], 'pipeline') : r.classrooms[0].load(r.venues[0], 'pipeline', { schedule, micro }));
    const lessonEvents = (tab: number) => r.events[tab].filter((e): e is PipelineLessonEvent => e.type === 'pipeline-lesson');
    await until(() => [0, 1].every((t) => lessonEvents(t).length === 2), 'both setups on both tabs');
    expect(lessonEvents(1)[0]).toMatchObject({ schedule, micro, stages: 2 });
    const lesson = r.classrooms[1].current()!.lesson;
    const hand = byHand(lesson, micro);
    const steps = lessonEvents(0)[0].steps;
    // Per micro-batch: stage 0 forward, send, receive, backward; stage 1 receive, forward, backward, send.
    expect(steps).toBe(8 * micro);
    const ran: string[][] = [[], []];
    const weightGrad = [
      [0, 0, 0, 0],
      [0, 0, 0, 0],
    ];
    const outer = (g: number[], x: number[]) => [g[0] * x[0], g[0] * x[1], g[1] * x[0], g[1] * x[1]];
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
      ran[report.rank].push(`${report.op!.kind} ${m}`);
      if (report.op!.kind === 'backward') {
        weightGrad[report.rank] = weightGrad[report.rank].map((v, i) => v + (report.rank === 1 ? outer(hand[m].g, hand[m].h) : outer(hand[m].gh, hand[m].x))[i]);
      }
      const t = Object.fromEntries(report.tensors.map((x) => [x.name, x.values]));
      const expected: Record<string, Record<string, number[]>> = {
        '0 forward': { input: hand[m].x, output: hand[m].h },
        '0 send-activation': { activation: hand[m].h },
        '1 recv-activation': { activation: hand[m].h },
        '1 forward': { input: hand[m].h, output: hand[m].y, loss: [hand[m].loss] },
        '1 backward': { 'output grad': hand[m].g, 'input grad': hand[m].gh, 'W grad (sum)': weightGrad[1] },
        '1 send-grad': { gradient: hand[m].gh },
        '0 recv-grad': { gradient: hand[m].gh },
        '0 backward': { 'output grad': hand[m].gh, 'W grad (sum)': weightGrad[0] },
      };
      expect(t, `op ${step}`).toEqual(expected[`${report.rank} ${report.op!.kind}`]);
    }
    // Each stage ran its own list of the schedule picked, in order (1F1B's differs from GPipe's on stage 1).
    expect(ran).toEqual(pipelineSchedules(schedule, 2, micro).map((list) => list.ops.map((op) => `${op.kind} ${op.micro}`)));
    expect(r.refusals.flat()).toEqual([]);
  });

  it("refuses a teacher's schedule or micro-batch count it cannot run, before any tab hears of it", async () => {
    const r = room(2);
    await expect(r.classrooms[0].load(r.venues[0], 'pipeline', { schedule: 'interleaved' as never, micro: 2 })).rejects.toThrow(/runs gpipe or 1f1b, not "interleaved"/);
    await expect(r.classrooms[0].load(r.venues[0], 'pipeline', { schedule: '1f1b', micro: 0 })).rejects.toThrow(/1 to 8 micro-batches, not 0/);
    await expect(r.classrooms[0].load(r.venues[0], 'pipeline', { schedule: '1f1b', micro: 9 })).rejects.toThrow(/1 to 8 micro-batches, not 9/);
    await sleep(30);
    expect(r.events[1].filter((e) => e.type === 'pipeline-lesson')).toEqual([]);
    expect(r.classrooms[1].current()).toBeNull();
  });
});
