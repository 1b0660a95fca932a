import { describe, expect, it } from 'vitest';
import { createMemoryMesh } from './memory-transport';
import { type PipelineEvent, runStageSchedule, type StageCompute } from './pipeline-executor';
import { pipelineSchedules, PIPELINE_SCHEDULES } from './pipeline-schedules';
import { measureTimeline } from './pipeline-timeline';

/**
 * Each stage adds its own number + 1 to every element forward and doubles every gradient backward, so
 * the values that arrive say which path they took. Records what each compute was given.
 */
function arithmeticStage(stage: number, stages: number, width: number, seen: string[]): StageCompute {
  return {
    forward: async (micro, input) => {
      if (stage === 0) expect(input).toBeUndefined();
      const x = input ?? new Float32Array(width).fill(micro * 100);
      seen.push(`s${stage} F${micro} in ${x[0]}`);
      return stage < stages - 1 ? x.map((v) => v + stage + 1) : undefined;
    },
    backward: async (micro, grad) => {
      const g = grad ?? new Float32Array(width).fill(micro + 1);
      seen.push(`s${stage} B${micro} in ${g[0]}`);
      return stage > 0 ? g.map((v) => v * 2) : undefined;
    },
  };
}

describe('pipeline executor', () => {
  it.each(PIPELINE_SCHEDULES)('%s: activations travel forward and gradients back, every op one event with its bytes', async (kind) => {
    const [P, M, width] = [3, 4, 5];
    const transports = createMemoryMesh(P);
    const seen: string[] = [];
    const events: PipelineEvent[] = [];
    await Promise.all(
      pipelineSchedules(kind, P, M).map((schedule, s) =>
        runStageSchedule(schedule, arithmeticStage(s, P, width, seen), { transport: transports[s], round: 7, onEvent: (e) => events.push(e) }),
      ),
    );
    for (let m = 0; m < M; m++) {
      // stage 1 gets m*100 + 1, stage 2 gets m*100 + 1 + 2; gradients (m + 1) doubled once per hop back.
      expect(seen).toContain(`s1 F${m} in ${m * 100 + 1}`);
      expect(seen).toContain(`s2 F${m} in ${m * 100 + 3}`);
      expect(seen).toContain(`s1 B${m} in ${(m + 1) * 2}`);
      expect(seen).toContain(`s0 B${m} in ${(m + 1) * 4}`);
    }
    expect(events).toHaveLength(pipelineSchedules(kind, P, M).reduce((n, s) => n + s.ops.length, 0));
    for (const e of events) {
      expect(e.round).toBe(7);
      expect(e.tEnd).toBeGreaterThanOrEqual(e.tStart);
      if (e.kind.startsWith('send') || e.kind.startsWith('recv')) expect(e.bytes).toBe(width * 4);
      else expect(e.bytes).toBeUndefined();
    }
    for (const t of transports) expect(t.pendingMessages).toBe(0);
    const timeline = measureTimeline(events, P);
    expect(timeline.stages.map((s) => s.bytesSent)).toEqual([M * width * 4, 2 * M * width * 4, M * width * 4]);
  });

  it('a stage that vanishes fails its neighbours with a clear error instead of a hang', async () => {
    const transports = createMemoryMesh(2, { recvTimeoutMs: 5_000 });
    const [s0, s1] = pipelineSchedules('1f1b', 2, 2);
    const dying: StageCompute = {
      forward: async () => {
        transports[1].kill('stage 1 closed its tab');
        throw new Error('gone');
      },
      backward: async () => undefined,
    };
    const results = await Promise.allSettled([
      runStageSchedule(s0, arithmeticStage(0, 2, 3, []), { transport: transports[0], round: 0 }),
      runStageSchedule(s1, dying, { transport: transports[1], round: 0 }),
    ]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    expect(String((results[0] as PromiseRejectedResult).reason)).toMatch(/rank 1 is gone|cannot send to rank 1/);
  });

  it('refuses a payload that is not whole float32 values', async () => {
    const transports = createMemoryMesh(2);
    const [, s1] = pipelineSchedules('gpipe', 2, 1);
    void transports[0].send(1, { round: 0, collective: 0, chunk: 0 }, new Uint8Array(7));
    await expect(runStageSchedule(s1, arithmeticStage(1, 2, 3, []), { transport: transports[1], round: 0 })).rejects.toThrow(/recv-activation of micro-batch 0 from stage 0: 7 bytes is not a whole number of float32 values/);
  });
});
