// Checks of schedules.ts that mutation testing (npm run mutate) showed missing. checkSchedule is the rule
// the executor relies on (it sends straight out of the vector's memory and sums same-range receives in
// rank order), yet only one broken schedule was ever shown to it: every other rule could be deleted
// unnoticed. The reduced ranges decide what the executor divides by world, so an all-gather or a
// broadcast that declared one would average values a second time. The collective and phase names are
// what the dashboard shows for every chunk.
import { describe, expect, it } from 'vitest';
import {
  type RecvAction,
  type Schedule,
  type SendAction,
  broadcast,
  checkSchedule,
  formatSchedule,
  naiveAllReduce,
  parameterServerRound,
  ringAllGather,
  ringAllReduce,
  ringReduceScatter,
  sparseAllGather,
} from './schedules';

const send = (offset: number, length: number, to = 1, msg = 0): SendAction => ({ phase: 'gather', chunk: 0, part: 0, offset, length, to, msg });
const recv = (offset: number, length: number, op: 'sum' | 'copy', from = 1, msg = 0): RecvAction => ({ phase: 'gather', chunk: 0, part: 0, offset, length, from, msg, op });
/** A hand-made one-step schedule of rank 0 in a world of 4 over a vector of 10 elements. */
const oneStep = (sends: SendAction[], recvs: RecvAction[]): Schedule => ({
  collective: 'ps-round',
  world: 4,
  rank: 0,
  length: 10,
  chunks: [{ offset: 0, length: 10 }],
  steps: [{ step: 0, phase: 'gather', sends, recvs }],
  reduced: [],
});

describe('checkSchedule refuses each kind of broken schedule, with its own reason', () => {
  it('a send or receive outside the vector: negative offset, negative length, or ending past the end', () => {
    for (const [offset, length] of [
      [-1, 2],
      [3, -1],
      [9, 2],
      [11, 0],
    ]) {
      expect(checkSchedule(oneStep([send(offset, length)], []))).toEqual([`step 0: send [${offset}+${length}] outside the vector`]);
      expect(checkSchedule(oneStep([], [recv(offset, length, 'copy')]))).toEqual([`step 0: recv [${offset}+${length}] outside the vector`]);
    }
    // A range that ends exactly at the end is inside.
    expect(checkSchedule(oneStep([send(8, 2)], []))).toEqual([]);
    expect(checkSchedule(oneStep([], [recv(8, 2, 'copy')]))).toEqual([]);
  });

  it('a message number used twice towards one peer, or heard twice from one peer', () => {
    expect(checkSchedule(oneStep([send(0, 1, 1, 5), send(2, 1, 1, 5)], []))).toEqual(['step 0: message 5 to 1 sent twice']);
    expect(checkSchedule(oneStep([], [recv(0, 1, 'copy', 2, 5), recv(2, 1, 'copy', 2, 5)]))).toEqual(['step 0: message 5 from 2 received twice']);
    // The same number towards two different peers is fine.
    expect(checkSchedule(oneStep([send(0, 1, 1, 5), send(0, 1, 2, 5)], []))).toEqual([]);
  });

  it('a step that writes part of what it sends (the executor sends straight out of the vector)', () => {
    expect(checkSchedule(oneStep([send(0, 4)], [recv(3, 2, 'sum', 2)]))).toEqual(['step 0: sends and writes overlapping ranges']);
    // Adjacent ranges and empty ranges do not overlap.
    expect(checkSchedule(oneStep([send(0, 4)], [recv(4, 2, 'sum', 2)]))).toEqual([]);
    expect(checkSchedule(oneStep([send(0, 4)], [recv(2, 0, 'sum', 2)]))).toEqual([]);
    expect(checkSchedule(oneStep([send(2, 0)], [recv(0, 4, 'sum', 2)]))).toEqual([]);
  });

  it('receives into overlapping ranges unless all are sums over the identical range (summed in rank order)', () => {
    const overlapping = ['step 0: receives write overlapping ranges'];
    expect(checkSchedule(oneStep([], [recv(0, 4, 'sum', 1), recv(0, 4, 'sum', 2), recv(0, 4, 'sum', 3)]))).toEqual([]);
    expect(checkSchedule(oneStep([], [recv(0, 4, 'sum', 1), recv(0, 4, 'copy', 2)]))).toEqual(overlapping);
    expect(checkSchedule(oneStep([], [recv(0, 4, 'copy', 1), recv(0, 4, 'sum', 2)]))).toEqual(overlapping);
    expect(checkSchedule(oneStep([], [recv(0, 4, 'copy', 1), recv(0, 4, 'copy', 2)]))).toEqual(overlapping);
    expect(checkSchedule(oneStep([], [recv(0, 4, 'sum', 1), recv(2, 4, 'sum', 2)]))).toEqual(overlapping);
    expect(checkSchedule(oneStep([], [recv(0, 4, 'sum', 1), recv(0, 3, 'sum', 2)]))).toEqual(overlapping);
    // Disjoint receives of any kind are fine.
    expect(checkSchedule(oneStep([], [recv(0, 4, 'copy', 1), recv(4, 4, 'sum', 2)]))).toEqual([]);
  });
});

describe('reduced ranges: what the executor divides by world, and when', () => {
  it('an all-gather, a broadcast and a parameter-server worker declare none (averaging there would divide twice)', () => {
    for (const world of [2, 3, 5]) {
      for (let rank = 0; rank < world; rank++) {
        expect(ringAllGather(world, rank, 20).reduced).toEqual([]);
        expect(broadcast(0, world, rank, 20).reduced).toEqual([]);
        expect(broadcast(0, world, rank, 20, { topology: 'star' }).reduced).toEqual([]);
        expect(parameterServerRound(0, world, rank, 20).broadcast.reduced).toEqual([]);
        if (rank !== 0) expect(parameterServerRound(0, world, rank, 20).gather.reduced).toEqual([]);
      }
    }
  });

  it('a reduce-scatter declares exactly its own chunk, complete after its last reduce step', () => {
    const world = 3;
    for (let rank = 0; rank < world; rank++) {
      const s = ringReduceScatter(world, rank, 12);
      expect(s.reduced).toEqual([{ ...s.chunks[rank], afterStep: world - 2 }]);
    }
  });
});

describe('names and shapes the dashboard and the executor read', () => {
  it('each builder names its collective and the phase of every step and action', () => {
    const world = 3;
    const cases: [Schedule, string, string[]][] = [
      [ringReduceScatter(world, 1, 9), 'reduce-scatter', ['reduce-scatter', 'reduce-scatter']],
      [ringAllGather(world, 1, 9), 'all-gather', ['all-gather', 'all-gather']],
      [broadcast(0, world, 1, 9), 'broadcast', ['broadcast', 'broadcast']],
      [broadcast(0, world, 1, 9, { topology: 'star' }), 'broadcast', ['broadcast']],
      [naiveAllReduce(world, 1, 9), 'naive-allreduce', ['exchange', 'exchange']],
      [parameterServerRound(0, world, 1, 9).gather, 'ps-round', ['gather']],
      [parameterServerRound(0, world, 1, 9).broadcast, 'ps-round', ['broadcast']],
      [sparseAllGather(world, 1, [2, 3, 4]), 'sparse-allgather', ['all-gather', 'all-gather']],
    ];
    for (const [s, collective, phases] of cases) {
      expect(s.collective).toBe(collective);
      expect(s.steps.map((step) => step.phase)).toEqual(phases);
      for (const step of s.steps) for (const a of [...step.sends, ...step.recvs]) expect(a.phase).toBe(step.phase);
    }
  });

  it('whole-vector collectives have one chunk, the whole vector', () => {
    for (const s of [broadcast(0, 3, 1, 9), naiveAllReduce(3, 1, 9), parameterServerRound(0, 3, 1, 9).gather]) {
      expect(s.chunks).toEqual([{ offset: 0, length: 9 }]);
    }
  });

  it('the star broadcast is one step even when the vector travels in several parts; the chain pipelines them', () => {
    const star = broadcast(0, 4, 0, 30, { topology: 'star', maxMessageElements: 10 });
    expect(star.steps).toHaveLength(1);
    expect(star.steps[0].sends).toHaveLength(3 * 3);
    const chain = broadcast(0, 4, 0, 30, { maxMessageElements: 10 });
    expect(chain.steps.length).toBeGreaterThan(1);
    expect(chain.steps.flatMap((s) => s.sends.map((a) => a.to))).toEqual([1, 1, 1]);
  });

  it('a world of one has no steps at all (nothing to send, no idle barrier)', () => {
    expect(broadcast(0, 1, 0, 5, { topology: 'star' }).steps).toEqual([]);
    expect(naiveAllReduce(1, 0, 5).steps).toEqual([]);
    expect(parameterServerRound(0, 1, 0, 5).gather.steps).toEqual([]);
  });

  it('bad sizes are refused with the number of entries that was expected', () => {
    expect(() => ringAllReduce(3, 0, 9, { boundaries: [0, 9] })).toThrow('boundaries need world + 1 = 4 entries, got 2');
    expect(() => sparseAllGather(3, 0, [1, -1, 2])).toThrow('payload sizes must be integers >= 0, got -1');
    expect(() => sparseAllGather(3, 0, [1, 1.5, 2])).toThrow('payload sizes must be integers >= 0, got 1.5');
  });

  it("formatSchedule's header names the collective, rank, world, length and step count", () => {
    expect(formatSchedule(ringAllReduce(3, 2, 6)).split('\n')[0]).toBe('ring-allreduce rank 2/3, 6 elements, 4 steps');
  });
});

// Added after the fifth mutation run: the schedules' names and phases (what the dashboard's chunk events
// and timelines show, and what tells the executor which ranges to average) were read only for the ring;
// every 'broadcast', 'exchange', 'gather' and 'ps-round' string, the star topology, the chunk list of
// the whole-vector schedules and the rooms of one could change unnoticed. Written out by hand for a
// vector of 10 elements (one message part).
describe('schedules: names, phases and reduced ranges, written out', () => {
  const send = (phase: string, to: number) => `${phase} -> ${to} [0, +10) #0`;
  const recv = (phase: string, from: number, op: string) => `${phase} <- ${from} [0, +10) #0 ${op}`;
  const summary = (s: Schedule) => ({
    collective: s.collective,
    chunks: s.chunks,
    steps: s.steps.map((st) => ({
      phase: st.phase,
      actions: [
        ...st.sends.map((a) => `${a.phase} -> ${a.to} [${a.offset}, +${a.length}) #${a.msg}`),
        ...st.recvs.map((a) => `${a.phase} <- ${a.from} [${a.offset}, +${a.length}) #${a.msg} ${a.op}`),
      ],
    })),
    reduced: s.reduced,
  });
  const whole = [{ offset: 0, length: 10 }];

  it('chain broadcast from rank 0 over 3 ranks, at rank 1: receive a copy, then pass it on', () => {
    expect(summary(broadcast(0, 3, 1, 10))).toEqual({
      collective: 'broadcast',
      chunks: whole,
      steps: [
        { phase: 'broadcast', actions: [recv('broadcast', 0, 'copy')] },
        { phase: 'broadcast', actions: [send('broadcast', 2)] },
      ],
      reduced: [],
    });
  });

  it('star broadcast: the root sends to every rank in one step; a room of one has no step', () => {
    expect(summary(broadcast(0, 3, 0, 10, { topology: 'star' }))).toEqual({
      collective: 'broadcast',
      chunks: whole,
      steps: [{ phase: 'broadcast', actions: [send('broadcast', 1), send('broadcast', 2)] }],
      reduced: [],
    });
    expect(broadcast(0, 1, 0, 10, { topology: 'star' }).steps).toEqual([]);
    expect(broadcast(0, 1, 0, 10).steps).toEqual([]);
  });

  it('naive all-reduce: send to all, then sum from all; the whole vector reduced after step 1 (from the start alone)', () => {
    expect(summary(naiveAllReduce(3, 0, 10))).toEqual({
      collective: 'naive-allreduce',
      chunks: whole,
      steps: [
        { phase: 'exchange', actions: [send('exchange', 1), send('exchange', 2)] },
        { phase: 'exchange', actions: [recv('exchange', 1, 'sum'), recv('exchange', 2, 'sum')] },
      ],
      reduced: [{ offset: 0, length: 10, afterStep: 1 }],
    });
    expect(summary(naiveAllReduce(1, 0, 10))).toEqual({ collective: 'naive-allreduce', chunks: whole, steps: [], reduced: [{ offset: 0, length: 10, afterStep: -1 }] });
  });

  it('parameter-server round, server 1 of 3: gather sums at the server (reduced after step 0), broadcast copies back', () => {
    const server = parameterServerRound(1, 3, 1, 10);
    expect(summary(server.gather)).toEqual({
      collective: 'ps-round',
      chunks: whole,
      steps: [{ phase: 'gather', actions: [recv('gather', 0, 'sum'), recv('gather', 2, 'sum')] }],
      reduced: [{ offset: 0, length: 10, afterStep: 0 }],
    });
    expect(summary(server.broadcast)).toEqual({
      collective: 'ps-round',
      chunks: whole,
      steps: [{ phase: 'broadcast', actions: [send('broadcast', 0), send('broadcast', 2)] }],
      reduced: [],
    });
    const worker = parameterServerRound(1, 3, 2, 10);
    expect(summary(worker.gather).steps).toEqual([{ phase: 'gather', actions: [send('gather', 1)] }]);
    expect(worker.gather.reduced).toEqual([]);
    expect(summary(worker.broadcast).steps).toEqual([{ phase: 'broadcast', actions: [recv('broadcast', 1, 'copy')] }]);
    const alone = parameterServerRound(0, 1, 0, 10);
    expect(alone.gather.steps).toEqual([]);
    expect(alone.gather.reduced).toEqual([{ offset: 0, length: 10, afterStep: -1 }]);
  });

  it('ring: reduce-scatter and all-gather name their phases; a room of one holds its chunk reduced from the start', () => {
    expect(ringReduceScatter(3, 0, 12).steps.map((s) => s.phase)).toEqual(['reduce-scatter', 'reduce-scatter']);
    expect(ringReduceScatter(3, 0, 12).collective).toBe('reduce-scatter');
    expect(ringAllGather(3, 0, 12).steps.map((s) => s.phase)).toEqual(['all-gather', 'all-gather']);
    expect(ringAllGather(3, 0, 12).collective).toBe('all-gather');
    expect(ringAllReduce(3, 0, 12).steps.flatMap((s) => [...s.sends, ...s.recvs].map((a) => a.phase))).toEqual([
      'reduce-scatter',
      'reduce-scatter',
      'reduce-scatter',
      'reduce-scatter',
      'all-gather',
      'all-gather',
      'all-gather',
      'all-gather',
    ]);
    expect(ringReduceScatter(1, 0, 12).reduced).toEqual([{ offset: 0, length: 12, afterStep: -1 }]);
  });
});
