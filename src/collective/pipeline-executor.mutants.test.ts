// Checks of pipeline-executor.ts that mutation testing (npm run mutate) showed missing. The other tests
// run whole pipelines over the in-memory mesh, which hides several things a real room depends on:
// - the message numbers: a stage pair uses each direction for one kind only, so activation and gradient
//   tags could collide (or be numbered differently from pipelineTag, which pipeline-trainer.ts also uses
//   for the tied-weight exchange) without a whole-pipeline test noticing;
// - payloads at unaligned byte offsets (a frame's bytes after its header on a real link);
// - what each event names (the timeline and the dashboard read kind, peer and bytes from it);
// - the classroom's one-op-at-a-time mode (beforeOp), which no test used;
// - lists out of order and computes that give nothing to send (clear errors, not a hang or a crash);
// - which background failure is reported, and that a failure in the last op still fails the step;
// - exactly when a forward may run ahead of its list (only at a gradient receive whose message has not
//   come, only beside its own receive and send, never past `ahead`): the timing tests of
//   pipeline-executor.test.ts bound the result but do not pin the order. Here the neighbours are
//   scripted (their messages sent by the test at chosen moments), so every order is deterministic.
import { describe, expect, it } from 'vitest';
import { createMemoryMesh, type MemoryTransport } from './memory-transport';
import { type PipelineEvent, pipelineTag, runStageSchedule, type StageCompute } from './pipeline-executor';
import { type PipelineOp, pipelineSchedules, type StageSchedule } from './pipeline-schedules';
import type { MessageTag, Transport } from './types';

const F = (micro: number): PipelineOp => ({ kind: 'forward', micro });
const B = (micro: number): PipelineOp => ({ kind: 'backward', micro });
const recvAct = (micro: number, peer: number): PipelineOp => ({ kind: 'recv-activation', micro, peer });
const sendAct = (micro: number, peer: number): PipelineOp => ({ kind: 'send-activation', micro, peer });
const recvGrad = (micro: number, peer: number): PipelineOp => ({ kind: 'recv-grad', micro, peer });
const sendGrad = (micro: number, peer: number): PipelineOp => ({ kind: 'send-grad', micro, peer });

/** A hand-made list for one stage (the executor runs any list; the schedules module builds the usual ones). */
function list(stage: number, stages: number, micro: number, ops: PipelineOp[]): StageSchedule {
  return { schedule: '1f1b', stages, stage, micro, ops };
}

const bytes = (values: number[]): Uint8Array => new Uint8Array(new Float32Array(values).buffer);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Records each compute in the order it starts ('F2', 'B0') and what it was given; forwards add 1 to
 * their input (or start from micro * 10), backwards double their gradient (or start from micro + 1).
 */
function recordingStage(stage: number, stages: number, order: string[], given: string[] = []): StageCompute {
  return {
    forward: async (micro, input) => {
      order.push(`F${micro}`);
      given.push(`F${micro} ${input ? Array.from(input).join(',') : '-'}`);
      const x = input ?? new Float32Array([micro * 10, micro * 10 + 1]);
      return stage < stages - 1 ? x.map((v) => v + 1) : undefined;
    },
    backward: async (micro, grad) => {
      order.push(`B${micro}`);
      given.push(`B${micro} ${grad ? Array.from(grad).join(',') : '-'}`);
      const g = grad ?? new Float32Array([micro + 1, micro + 2]);
      return stage > 0 ? g.map((v) => v * 2) : undefined;
    },
  };
}

/** Wraps a transport to record the tags it sends and receives under, and when each receive is posted. */
function recording(inner: Transport, log: string[]): Transport {
  return {
    rank: inner.rank,
    world: inner.world,
    send: (to: number, tag: MessageTag, payload: Uint8Array) => {
      log.push(`send ${to} ${tag.round}/${tag.collective}/${tag.chunk}`);
      return inner.send(to, tag, payload);
    },
    recv: (from: number, tag: MessageTag) => {
      log.push(`recv ${from} ${tag.round}/${tag.collective}/${tag.chunk}`);
      return inner.recv(from, tag);
    },
  };
}

/** The scripted neighbour `from` sends micro-batch `micro`'s activation or gradient to rank `to`. */
function deliver(transports: MemoryTransport[], from: number, to: number, micro: number, kind: 'activation' | 'grad', values: number[]): void {
  void transports[from].send(to, pipelineTag(0, 0, micro, kind), bytes(values));
}

describe('pipeline executor: message numbers', () => {
  it('pipelineTag: the activation of micro-batch m is chunk 2m, its gradient 2m + 1, under the round and collective given (a peer must number them alike)', () => {
    expect(pipelineTag(5, 3, 0, 'activation')).toEqual({ round: 5, collective: 3, chunk: 0 });
    expect(pipelineTag(5, 3, 0, 'grad')).toEqual({ round: 5, collective: 3, chunk: 1 });
    expect(pipelineTag(5, 3, 7, 'activation')).toEqual({ round: 5, collective: 3, chunk: 14 });
    expect(pipelineTag(5, 3, 7, 'grad')).toEqual({ round: 5, collective: 3, chunk: 15 });
  });

  it('every send and receive of a 3-stage 1F1B step goes under pipelineTag of its op (activations even, gradients odd), to and from the neighbouring ranks given by rankOfStage', async () => {
    const [P, M] = [3, 3];
    // Stages on ranks 2, 0, 1: a DP x PP room numbers its tabs otherwise than its stages.
    const rankOfStage = (stage: number) => [2, 0, 1][stage];
    const mesh = createMemoryMesh(P);
    const logs: string[][] = [[], [], []];
    const schedules = pipelineSchedules('1f1b', P, M);
    await Promise.all(
      schedules.map((schedule, s) =>
        runStageSchedule(schedule, recordingStage(s, P, []), { transport: recording(mesh[rankOfStage(s)], logs[s]), round: 4, collective: 2, rankOfStage }),
      ),
    );
    for (const [s, schedule] of schedules.entries()) {
      const want = schedule.ops
        .filter((op) => op.peer !== undefined)
        .map((op) => {
          const tag = pipelineTag(4, 2, op.micro, op.kind.endsWith('grad') ? 'grad' : 'activation');
          return `${op.kind.startsWith('send') ? 'send' : 'recv'} ${rankOfStage(op.peer!)} 4/2/${tag.chunk}`;
        });
      expect(logs[s].slice().sort()).toEqual(want.slice().sort());
    }
    for (const t of mesh) expect(t.pendingMessages).toBe(0);
  });
});

describe('pipeline executor: payloads and events', () => {
  for (const shift of [1, 2, 3]) {
    it(`a received activation at byte offset ${shift} of a larger buffer (a frame after its header) is read as its floats, exactly`, async () => {
      const mesh = createMemoryMesh(2);
      const inner = mesh[1];
      const unaligned: Transport = {
        rank: 1,
        world: 2,
        send: (to, tag, payload) => inner.send(to, tag, payload),
        recv: async (from, tag) => {
          const payload = await inner.recv(from, tag);
          const holder = new Uint8Array(payload.byteLength + shift);
          holder.set(payload, shift);
          return holder.subarray(shift);
        },
      };
      deliver(mesh, 0, 1, 0, 'activation', [1.5, -2.25, 3e-7]);
      const given: string[] = [];
      await runStageSchedule(list(1, 2, 1, [recvAct(0, 0), F(0), B(0), sendGrad(0, 0)]), recordingStage(1, 2, [], given), { transport: unaligned, round: 0 });
      expect(given[0]).toBe(`F0 1.5,-2.25,${Math.fround(3e-7)}`);
    });
  }

  it('each event is a "pipeline" event naming its stage, kind, micro-batch and round; messages name the peer stage and their bytes, computes neither; the step resolves with its stage\'s events', async () => {
    const [P, M] = [3, 2];
    const mesh = createMemoryMesh(P);
    const events: PipelineEvent[] = [];
    const schedules = pipelineSchedules('gpipe', P, M);
    const returned = await Promise.all(schedules.map((schedule, s) => runStageSchedule(schedule, recordingStage(s, P, []), { transport: mesh[s], round: 9, onEvent: (e) => events.push(e) })));
    const describeEvent = (e: PipelineEvent) => JSON.stringify({ ...e, tStart: undefined, tEnd: undefined });
    const want = schedules.flatMap((schedule) =>
      schedule.ops.map((op) =>
        JSON.stringify({
          type: 'pipeline',
          kind: op.kind,
          stage: schedule.stage,
          micro: op.micro,
          ...(op.peer !== undefined ? { peer: op.peer, bytes: 8 } : {}),
          round: 9,
        }),
      ),
    );
    // JSON leaves out undefined fields but keeps the others: a compute with `peer` or `bytes` set differs.
    expect(events.map(describeEvent).sort()).toEqual(want.sort());
    // What each stage's step resolves with is its events, in the order they were emitted.
    for (const [stage, stageEvents] of returned.entries()) expect(stageEvents).toEqual(events.filter((e) => e.stage === stage));
    for (const e of events.filter((x) => x.kind === 'forward' || x.kind === 'backward')) {
      expect('peer' in e).toBe(false);
      expect('bytes' in e).toBe(false);
    }
  });
});

describe('pipeline executor: one op at a time (beforeOp, the classroom)', () => {
  it('each op has finished (its event emitted, sends gone, read-backs arrived) before the next is released, and each receive is asked for only at its turn', async () => {
    const [P, M] = [2, 2];
    // A slow link (each 8-byte message takes 20 ms to leave) and a read-back that takes 15 ms: work that
    // would run on in the background unless the executor waits for it.
    const mesh = createMemoryMesh(P, { bytesPerSec: 400 });
    const schedules = pipelineSchedules('gpipe', P, M);
    const problems: string[] = [];
    const released: string[] = [];
    await Promise.all(
      schedules.map((schedule, s) => {
        const events: PipelineEvent[] = [];
        const log: string[] = [];
        const plain = recordingStage(s, P, []);
        const slowReadBack: StageCompute = {
          forward: async (micro, input) => ({ pending: sleep(15).then(() => plain.forward(micro, input) as Promise<Float32Array | undefined>) }),
          backward: (micro, grad) => plain.backward(micro, grad),
        };
        return runStageSchedule(schedule, slowReadBack, {
          transport: recording(mesh[s], log),
          round: 0,
          onEvent: (e) => events.push(e),
          beforeOp: async (op, index) => {
            released.push(`s${s} ${op.kind} ${op.micro}`);
            if (events.length !== index) problems.push(`stage ${s}: op ${index} (${op.kind}) released with ${events.length} earlier ops finished`);
            const receivesBefore = schedule.ops.slice(0, index).filter((o) => o.kind.startsWith('recv')).length;
            const posted = log.filter((l) => l.startsWith('recv')).length;
            if (posted !== receivesBefore) problems.push(`stage ${s}: ${posted} receives posted before op ${index}, the list has ${receivesBefore}`);
          },
        });
      }),
    );
    expect(problems).toEqual([]);
    expect(released).toHaveLength(schedules.reduce((n, s) => n + s.ops.length, 0));
  });
});

describe('pipeline executor: bad lists and failures', () => {
  const cases: [string, StageSchedule, RegExp][] = [
    ['a send-activation before its forward', list(0, 2, 1, [sendAct(0, 1), F(0)]), /stage 0: no output activation of micro-batch 0 \(the schedule is out of order\)/],
    ['a send-grad before its backward', list(1, 2, 1, [sendGrad(0, 0), B(0)]), /stage 1: no input gradient of micro-batch 0 \(the schedule is out of order\)/],
    ['a forward on stage 1 before its receive', list(1, 2, 1, [F(0), recvAct(0, 0)]), /stage 1: no input activation of micro-batch 0 \(the schedule is out of order\)/],
    ['a backward on stage 0 of 2 before its gradient', list(0, 2, 1, [F(0), B(0), recvGrad(0, 1)]), /stage 0: no output gradient of micro-batch 0 \(the schedule is out of order\)/],
  ];
  for (const [what, schedule, message] of cases) {
    it(`a list with ${what} is refused with a clear error`, async () => {
      const mesh = createMemoryMesh(2, { recvTimeoutMs: 2_000 });
      await expect(runStageSchedule(schedule, recordingStage(schedule.stage, 2, []), { transport: mesh[schedule.stage], round: 0 })).rejects.toThrow(message);
    });
  }

  it('a forward or backward whose read-back brings nothing although its list sends it on fails the step, naming the stage, the pass and the micro-batch', async () => {
    const mesh = createMemoryMesh(2);
    const silent: StageCompute = { forward: async () => ({ pending: Promise.resolve(undefined) }), backward: async () => ({ pending: Promise.resolve(undefined) }) };
    await expect(runStageSchedule(list(0, 2, 1, [F(0), sendAct(0, 1)]), silent, { transport: mesh[0], round: 0 })).rejects.toThrow(
      'stage 0: the forward of micro-batch 0 gave nothing to send',
    );
    deliver(mesh, 0, 1, 0, 'activation', [1, 2]);
    await expect(runStageSchedule(list(1, 2, 1, [recvAct(0, 0), F(0), B(0), sendGrad(0, 0)]), silent, { transport: mesh[1], round: 0 })).rejects.toThrow(
      'stage 1: the backward of micro-batch 0 gave nothing to send',
    );
  });

  it('two sends that fail: the step reports the first failure, even when both come after the last op started', async () => {
    // Stage 1 of 2 under GPipe ends with its two gradient sends: nothing is left to run when they fail.
    const mesh = createMemoryMesh(2);
    deliver(mesh, 0, 1, 0, 'activation', [1, 2]);
    deliver(mesh, 0, 1, 1, 'activation', [3, 4]);
    let sends = 0;
    const failing: Transport = {
      rank: 1,
      world: 2,
      recv: (from, tag) => mesh[1].recv(from, tag),
      send: async () => {
        const n = sends++;
        await sleep(n === 0 ? 10 : 30);
        throw new Error(n === 0 ? 'first send lost' : 'second send lost');
      },
    };
    await expect(runStageSchedule(pipelineSchedules('gpipe', 2, 2)[1], recordingStage(1, 2, []), { transport: failing, round: 0 })).rejects.toThrow('first send lost');
    expect(sends).toBe(2);
  });
});

describe('pipeline executor: forwards run ahead only where the list allows', () => {
  it('ahead = 0 keeps the list order even where the list holds fewer micro-batches than its peak at a gradient receive', async () => {
    // Stage 0 of 2 holds two micro-batches, then one at recv-grad 1: a cap of the list's peak alone
    // would let forward 2 run before backward 1 while gradient 1 is on its way.
    const ops = [F(0), sendAct(0, 1), F(1), sendAct(1, 1), recvGrad(0, 1), B(0), recvGrad(1, 1), B(1), F(2), sendAct(2, 1), recvGrad(2, 1), B(2)];
    const mesh = createMemoryMesh(2);
    const order: string[] = [];
    setTimeout(() => deliver(mesh, 1, 0, 0, 'grad', [1, 1]), 5);
    setTimeout(() => deliver(mesh, 1, 0, 1, 'grad', [2, 2]), 40);
    setTimeout(() => deliver(mesh, 1, 0, 2, 'grad', [3, 3]), 50);
    await runStageSchedule(list(0, 2, 3, ops), recordingStage(0, 2, order), { transport: mesh[0], round: 0, ahead: 0 });
    expect(order).toEqual(['F0', 'F1', 'B0', 'B1', 'F2', 'B2']);
  });

  it('ahead = 2 runs nothing ahead when every gradient is already here at its receive', async () => {
    const mesh = createMemoryMesh(2);
    for (let m = 0; m < 4; m++) deliver(mesh, 1, 0, m, 'grad', [m, m]);
    const schedule = pipelineSchedules('1f1b', 2, 4)[0];
    const order: string[] = [];
    await runStageSchedule(schedule, recordingStage(0, 2, order), { transport: mesh[0], round: 0, ahead: 2 });
    expect(order).toEqual(schedule.ops.filter((op) => op.kind === 'forward' || op.kind === 'backward').map((op) => `${op.kind === 'forward' ? 'F' : 'B'}${op.micro}`));
  });

  /**
   * Stage 1 of 3 under 1F1B with M = 4 and every activation already here; the scripted last stage sends
   * gradient m once stage 1 has sent activation m + 2 (or the last one), and after 300 ms in any case
   * (so that a wrong executor ends with a wrong order instead of a hang).
   */
  async function middleStage(ahead: number): Promise<{ order: string[]; given: string[] }> {
    const [P, M] = [3, 4];
    const mesh = createMemoryMesh(P);
    for (let m = 0; m < M; m++) deliver(mesh, 0, 1, m, 'activation', [m, -m]);
    const sentGrads = new Set<number>();
    const sendGradient = (m: number) => {
      if (sentGrads.has(m)) return;
      sentGrads.add(m);
      deliver(mesh, 2, 1, m, 'grad', [m + 0.5, m + 0.25]);
    };
    const fallback = setTimeout(() => Array.from({ length: M }, (_, m) => sendGradient(m)), 300);
    const order: string[] = [];
    const given: string[] = [];
    await runStageSchedule(pipelineSchedules('1f1b', P, M)[1], recordingStage(1, P, order, given), {
      transport: mesh[1],
      round: 0,
      ahead,
      onEvent: (e) => {
        if (e.kind !== 'send-activation') return;
        for (let m = 0; m < M; m++) if (m + 2 === e.micro || e.micro === M - 1) sendGradient(m);
      },
    });
    clearTimeout(fallback);
    return { order, given };
  }

  it('ahead = 1 on a middle stage: at each gradient still on its way the next forward runs first, holding one set more than the list at most; inputs and gradients as in the list', async () => {
    // The list: F0 F1 B0 F2 B1 F3 B2 B3 (peak 2). Gradient 0 waits for activation 2, gradient 1 for 3.
    const { order, given } = await middleStage(1);
    expect(order).toEqual(['F0', 'F1', 'F2', 'B0', 'F3', 'B1', 'B2', 'B3']);
    expect(given.slice().sort()).toEqual(['B0 0.5,0.25', 'B1 1.5,1.25', 'B2 2.5,2.25', 'B3 3.5,3.25', 'F0 0,0', 'F1 1,-1', 'F2 2,-2', 'F3 3,-3']);
  });

  /** Stage 1 of 3 running `ops` with ahead = 2, activations and gradients all sent 20 ms after the start. */
  async function lateMessages(ops: PipelineOp[], M: number): Promise<string[]> {
    const mesh = createMemoryMesh(3);
    setTimeout(() => {
      for (let m = 0; m < M; m++) deliver(mesh, 0, 1, m, 'activation', [m, m]);
    }, 1);
    setTimeout(() => {
      for (let m = 0; m < M; m++) deliver(mesh, 2, 1, m, 'grad', [m, m]);
    }, 20);
    const order: string[] = [];
    await runStageSchedule(list(1, 3, M, ops), recordingStage(1, 3, order), { transport: mesh[1], round: 0, ahead: 2 });
    return order;
  }

  it('a forward whose send is not right after it in the list is not run ahead (the list is run in its own order)', async () => {
    const ops = [recvAct(0, 0), F(0), sendAct(0, 2), recvAct(1, 0), F(1), sendAct(1, 2), recvGrad(0, 2), B(0), sendGrad(0, 0), recvAct(2, 0), F(2), recvGrad(1, 2), B(1), sendGrad(1, 0), sendAct(2, 2), recvGrad(2, 2), B(2), sendGrad(2, 0)];
    expect(await lateMessages(ops, 3)).toEqual(['F0', 'F1', 'B0', 'F2', 'B1', 'B2']);
  });

  it('a forward whose receive is not right before it in the list is not run ahead', async () => {
    const ops = [recvAct(0, 0), F(0), sendAct(0, 2), recvAct(1, 0), F(1), sendAct(1, 2), recvGrad(0, 2), B(0), sendGrad(0, 0), recvAct(2, 0), recvGrad(1, 2), F(2), sendAct(2, 2), B(1), sendGrad(1, 0), recvGrad(2, 2), B(2), sendGrad(2, 0)];
    expect(await lateMessages(ops, 3)).toEqual(['F0', 'F1', 'B0', 'F2', 'B1', 'B2']);
  });

  it('a forward preceded by the receive of another micro-batch is not run ahead', async () => {
    const ops = [recvAct(0, 0), F(0), sendAct(0, 2), recvAct(1, 0), recvGrad(0, 2), B(0), sendGrad(0, 0), recvAct(2, 0), F(1), sendAct(1, 2), F(2), sendAct(2, 2), recvGrad(1, 2), B(1), sendGrad(1, 0), recvGrad(2, 2), B(2), sendGrad(2, 0)];
    expect(await lateMessages(ops, 3)).toEqual(['F0', 'B0', 'F1', 'F2', 'B1', 'B2']);
  });

  it('a forward followed by the send of another micro-batch is not run ahead', async () => {
    const ops = [recvAct(0, 0), F(0), sendAct(0, 2), recvAct(1, 0), F(1), recvGrad(0, 2), B(0), sendGrad(0, 0), recvAct(2, 0), F(2), sendAct(1, 2), sendAct(2, 2), recvGrad(1, 2), B(1), sendGrad(1, 0), recvGrad(2, 2), B(2), sendGrad(2, 0)];
    expect(await lateMessages(ops, 3)).toEqual(['F0', 'F1', 'B0', 'F2', 'B1', 'B2']);
  });

  it('a forward followed by another op of its own micro-batch (not its send) is not run ahead', async () => {
    const ops = [recvAct(0, 0), F(0), sendAct(0, 2), recvAct(1, 0), F(1), sendAct(1, 2), recvGrad(0, 2), B(0), sendGrad(0, 0), recvAct(2, 0), F(2), recvGrad(2, 2), sendAct(2, 2), recvGrad(1, 2), B(1), sendGrad(1, 0), B(2), sendGrad(2, 0)];
    expect(await lateMessages(ops, 3)).toEqual(['F0', 'F1', 'B0', 'F2', 'B1', 'B2']);
  });

  it('a forward preceded by another op of its own micro-batch (not its receive) is not run ahead', async () => {
    const ops = [recvAct(0, 0), F(0), sendAct(0, 2), recvAct(1, 0), F(1), sendAct(1, 2), recvGrad(0, 2), B(0), sendGrad(0, 0), recvAct(2, 0), recvGrad(2, 2), F(2), sendAct(2, 2), recvGrad(1, 2), B(1), sendGrad(1, 0), B(2), sendGrad(2, 0)];
    expect(await lateMessages(ops, 3)).toEqual(['F0', 'F1', 'B0', 'F2', 'B1', 'B2']);
  });

  /**
   * Stage 1 of 3 under 1F1B (M = 3, ahead = 1): activations 0 and 1 are here; at recv-grad 0 the next
   * forward (2) still waits for its input. The scripted neighbours send gradient 0 and activation 2 at
   * the given times.
   */
  async function race(gradientAtMs: number, activationAtMs: number): Promise<{ order: string[]; events: PipelineEvent[]; t0: number }> {
    const mesh = createMemoryMesh(3);
    deliver(mesh, 0, 1, 0, 'activation', [0, 0]);
    deliver(mesh, 0, 1, 1, 'activation', [1, 1]);
    const t0 = performance.now();
    setTimeout(() => deliver(mesh, 2, 1, 0, 'grad', [1, 1]), gradientAtMs);
    setTimeout(() => deliver(mesh, 0, 1, 2, 'activation', [2, 2]), activationAtMs);
    setTimeout(() => {
      deliver(mesh, 2, 1, 1, 'grad', [2, 2]);
      deliver(mesh, 2, 1, 2, 'grad', [3, 3]);
    }, Math.max(gradientAtMs, activationAtMs) + 20);
    const order: string[] = [];
    const events: PipelineEvent[] = [];
    await runStageSchedule(pipelineSchedules('1f1b', 3, 3)[1], recordingStage(1, 3, order), { transport: mesh[1], round: 0, ahead: 1, onEvent: (e) => events.push(e) });
    return { order, events, t0 };
  }

  it('the gradient comes before the next forward\'s input: the backward runs first (list order), and the gradient receive\'s event covers the whole wait', async () => {
    const { order, events, t0 } = await race(100, 400);
    expect(order).toEqual(['F0', 'F1', 'B0', 'F2', 'B1', 'B2']);
    const recvGrad0 = events.find((e) => e.kind === 'recv-grad' && e.micro === 0)!;
    // The wait began before the gradient came at 100 ms (timers fire late, never early, so the bounds
    // are the wait's start well before 100 ms and its end at 99 ms or later: 1 ms for timer rounding).
    expect(recvGrad0.tStart - t0).toBeLessThan(70);
    expect(recvGrad0.tEnd - t0).toBeGreaterThanOrEqual(99);
  });

  it('the next forward\'s input comes first: that forward runs ahead; its receive\'s event covers the wait, the forward\'s starts after it', async () => {
    const { order, events, t0 } = await race(400, 100);
    expect(order).toEqual(['F0', 'F1', 'F2', 'B0', 'B1', 'B2']);
    const recvAct2 = events.find((e) => e.kind === 'recv-activation' && e.micro === 2)!;
    const forward2 = events.find((e) => e.kind === 'forward' && e.micro === 2)!;
    expect(recvAct2.tStart - t0).toBeLessThan(70);
    expect(recvAct2.tEnd - t0).toBeGreaterThanOrEqual(99);
    expect(forward2.tStart).toBeGreaterThanOrEqual(recvAct2.tEnd);
  });
});
