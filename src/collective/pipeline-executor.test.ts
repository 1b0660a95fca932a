import { describe, expect, it } from 'vitest';
import { createMemoryMesh } from './memory-transport';
import { type PipelineEvent, runStageSchedule, type StageCompute } from './pipeline-executor';
import { peakInFlight, pipelineSchedules, PIPELINE_SCHEDULES } from './pipeline-schedules';
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

  it('does not wait for a send before the next compute; the step ends once every send has gone', async () => {
    // 4000-byte activations over a 100 kB/s link: each send takes 40 ms to leave.
    const [P, M, width] = [2, 3, 1000];
    const transports = createMemoryMesh(P, { bytesPerSec: 100_000 });
    const events: PipelineEvent[] = [];
    const seen: string[] = [];
    const t0 = performance.now();
    await Promise.all(pipelineSchedules('gpipe', P, M).map((schedule, s) => runStageSchedule(schedule, arithmeticStage(s, P, width, seen), { transport: transports[s], round: 0, onEvent: (e) => events.push(e) })));
    const of = (kind: PipelineEvent['kind'], micro: number) => events.find((e) => e.stage === 0 && e.kind === kind && e.micro === micro)!;
    expect(of('forward', 1).tStart).toBeLessThan(of('send-activation', 0).tEnd);
    expect(of('forward', 2).tStart).toBeLessThan(of('send-activation', 0).tEnd);
    // Every message still went: M activations (3 x 40 ms on one link) and M gradients.
    expect(seen).toContain(`s1 F2 in ${2 * 100 + 1}`);
    expect(seen).toContain('s0 B2 in 6');
    expect(performance.now() - t0).toBeGreaterThanOrEqual(M * 40 - 1);
    for (const t of transports) expect(t.pendingMessages).toBe(0);
  });

  it('submits the next op while a pending output is read back; its send and its event wait for it', async () => {
    const [P, M, width] = [2, 2, 3];
    const transports = createMemoryMesh(P);
    const events: PipelineEvent[] = [];
    const seen: string[] = [];
    const later = <T>(ms: number, value: T) => new Promise<T>((resolve) => setTimeout(() => resolve(value), ms));
    const plain = arithmeticStage(0, P, width, seen);
    const slowReadBack: StageCompute = {
      forward: async (micro, input) => ({ pending: later(30, (await plain.forward(micro, input)) as Float32Array) }),
      backward: (micro, grad) => plain.backward(micro, grad),
    };
    await Promise.all([
      runStageSchedule(pipelineSchedules('gpipe', P, M)[0], slowReadBack, { transport: transports[0], round: 0, onEvent: (e) => events.push(e) }),
      runStageSchedule(pipelineSchedules('gpipe', P, M)[1], arithmeticStage(1, P, width, seen), { transport: transports[1], round: 0, onEvent: (e) => events.push(e) }),
    ]);
    const of = (kind: PipelineEvent['kind'], micro: number) => events.find((e) => e.stage === 0 && e.kind === kind && e.micro === micro)!;
    expect(of('forward', 0).tEnd - of('forward', 0).tStart).toBeGreaterThanOrEqual(29);
    expect(of('forward', 1).tStart).toBeLessThan(of('forward', 0).tEnd);
    expect(of('send-activation', 0).tEnd).toBeGreaterThanOrEqual(of('forward', 0).tEnd);
    expect(seen).toContain('s1 F1 in 101');
    expect(measureTimeline(events, P).stages[0].busyMs).toBeLessThan(of('forward', 0).tEnd - of('forward', 0).tStart + of('forward', 1).tEnd - of('forward', 1).tStart);
  });

  it('a send that fails fails the step with its error', async () => {
    const [inner] = createMemoryMesh(2);
    const failing = { rank: 0, world: 2, send: () => Promise.reject(new Error('channel closed mid-send')), recv: inner.recv.bind(inner) };
    await expect(runStageSchedule(pipelineSchedules('1f1b', 2, 2)[0], arithmeticStage(0, 2, 3, []), { transport: failing, round: 0 })).rejects.toThrow(/channel closed mid-send/);
  });

  /** Per stage, the computes in the order they started ('F3', 'B0'), from arithmeticStage's record. */
  const computeOrder = (seen: string[], stage: number): string[] => seen.filter((line) => line.startsWith(`s${stage} `)).map((line) => line.split(' ')[1]);
  const mostInFlight = (order: string[]): number => {
    let live = 0;
    let most = 0;
    for (const op of order) most = Math.max(most, (live += op.startsWith('F') ? 1 : -1));
    return most;
  };
  const runPipeline = async (P: number, M: number, ahead: number, latencyMs: number, delayMs: (stage: number, micro: number) => number = () => 0) => {
    const transports = createMemoryMesh(P, { latencyMs });
    const seen: string[] = [];
    const events: PipelineEvent[] = [];
    const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
    await Promise.all(
      pipelineSchedules('1f1b', P, M).map((schedule, s) => {
        const plain = arithmeticStage(s, P, 3, seen);
        const slowed: StageCompute = {
          forward: async (micro, input) => (await sleep(delayMs(s, micro)), plain.forward(micro, input)),
          backward: async (micro, grad) => (await sleep(delayMs(s, micro)), plain.backward(micro, grad)),
        };
        return runStageSchedule(schedule, slowed, { transport: transports[s], round: 0, ahead, onEvent: (e) => events.push(e) });
      }),
    );
    for (const t of transports) expect(t.pendingMessages).toBe(0);
    return { seen, events };
  };

  it('ahead=1: a 1F1B stage whose gradient is still on its way runs its next forward first; same values, backwards in order, one set more at most', async () => {
    // 20 ms per message and instant computes: stage 0 waits a round trip for each gradient.
    const [P, M] = [4, 8];
    const listed = await runPipeline(P, M, 0, 20);
    const early = await runPipeline(P, M, 1, 20);
    const schedules = pipelineSchedules('1f1b', P, M);
    const listOrder = schedules[0].ops.filter((op) => op.kind === 'forward' || op.kind === 'backward').map((op) => `${op.kind === 'forward' ? 'F' : 'B'}${op.micro}`);
    expect(computeOrder(listed.seen, 0)).toEqual(listOrder);
    expect(computeOrder(early.seen, 0)).not.toEqual(listOrder);
    expect(mostInFlight(computeOrder(early.seen, 0))).toBe(peakInFlight(schedules[0]) + 1);
    for (let s = 0; s < P; s++) {
      expect(computeOrder(early.seen, s).filter((op) => op.startsWith('B'))).toEqual(Array.from({ length: M }, (_, m) => `B${m}`));
      expect(mostInFlight(computeOrder(early.seen, s))).toBeLessThanOrEqual(peakInFlight(schedules[s]) + 1);
    }
    // Every compute was given what it is given in the list's order (the messages say which path they took).
    expect(early.seen.slice().sort()).toEqual(listed.seen.slice().sort());
    expect(early.events).toHaveLength(listed.events.length);
  });

  it('ahead=1 and 2 over P = 1..5 and M = 1..9 with uneven compute times: every step ends, backwards in micro-batch order, within the set bound', async () => {
    for (const P of [1, 2, 3, 5]) {
      for (const M of [1, 2, 5, 9]) {
        for (const ahead of [1, 2]) {
          const reference = await runPipeline(P, M, 0, 0);
          const { seen } = await runPipeline(P, M, ahead, 2, (s, m) => (s * 7 + m * 3) % 4);
          const schedules = pipelineSchedules('1f1b', P, M);
          for (let s = 0; s < P; s++) {
            expect(computeOrder(seen, s).filter((op) => op.startsWith('B'))).toEqual(Array.from({ length: M }, (_, m) => `B${m}`));
            expect(mostInFlight(computeOrder(seen, s))).toBeLessThanOrEqual(peakInFlight(schedules[s]) + ahead);
          }
          expect(seen.slice().sort()).toEqual(reference.seen.slice().sort());
        }
      }
    }
  });

  it('ahead changes nothing in GPipe, which has no forward after a gradient receive', async () => {
    const transports = createMemoryMesh(3, { latencyMs: 5 });
    const seen: string[] = [];
    await Promise.all(pipelineSchedules('gpipe', 3, 4).map((schedule, s) => runStageSchedule(schedule, arithmeticStage(s, 3, 3, seen), { transport: transports[s], round: 0, ahead: 2 })));
    for (let s = 0; s < 3; s++) expect(computeOrder(seen, s)).toEqual(['F0', 'F1', 'F2', 'F3', 'B0', 'B1', 'B2', 'B3']);
  });
});
