import { describe, expect, it } from 'vitest';
import { createMemoryMesh } from '../collective/memory-transport';
import { runStageSchedule, type StageCompute } from '../collective/pipeline-executor';
import { pipelineSchedules } from '../collective/pipeline-schedules';
import type { PipelineLabEvent } from '../shared/events';
import { decodeStepEvents, encodeStepEvents, gatherStepEvents } from './timeline-gather';

const passOn: StageCompute = {
  forward: async (micro, input) => input ?? new Float32Array(4).fill(micro),
  backward: async (_micro, grad) => grad ?? new Float32Array(4).fill(1),
};

describe('gathering a pipeline step\'s events', () => {
  it('every rank ends with every stage\'s events of the step, bit for bit as each tab published them', async () => {
    const P = 3;
    const transports = createMemoryMesh(P);
    const own: PipelineLabEvent[][] = [[], [], []];
    await Promise.all(
      pipelineSchedules('1f1b', P, 4).map((schedule, s) =>
        runStageSchedule({ ...schedule }, s === P - 1 ? { ...passOn, forward: async () => undefined } : passOn, {
          transport: transports[s],
          round: 9,
          onEvent: (e) => own[s].push({ ...e, rank: s, clockOffsetMs: 1.7e12 + s * 0.25 }),
        }),
      ),
    );
    const gathered = await Promise.all(transports.map((t, s) => gatherStepEvents(t, 9, 1, own[s])));
    for (const all of gathered) expect(all).toEqual(own.flat());
  });

  it('refuses a set that names another rank, another step, or a time that runs backwards', () => {
    const e: PipelineLabEvent = { type: 'pipeline', rank: 1, kind: 'send-grad', stage: 1, micro: 2, peer: 0, bytes: 64, round: 3, tStart: 5, tEnd: 6, clockOffsetMs: 10 };
    expect(decodeStepEvents(encodeStepEvents([e]), 1, 3)).toEqual([e]);
    expect(String(decodeStepEvents(encodeStepEvents([e]), 2, 3))).toMatch(/rank 2: event 0 is malformed/);
    expect(String(decodeStepEvents(encodeStepEvents([e]), 1, 4))).toMatch(/is of step 3, expected 4/);
    expect(String(decodeStepEvents(encodeStepEvents([{ ...e, tEnd: 4 }]), 1, 3))).toMatch(/bad times/);
    expect(String(decodeStepEvents(new Uint8Array(12), 1, 3))).toMatch(/not whole events/);
  });
});
