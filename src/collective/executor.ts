// Runs a Schedule over a Transport on a Float32Array, in place. This file moves bytes and adds floats;
// which bytes go where is decided entirely by the schedule (schedules.ts).
//
// - A step is a barrier: its sends and receives all start at once (send to next, receive from previous
//   at the same time, so a ring of any size cannot deadlock), and the next step starts when all are done.
// - Sends go straight out of the vector's memory (Uint8Array views, no copy). That is safe because the
//   Transport contract says the payload is consumed by the time send() resolves, and a schedule never
//   writes a range in the step that sends it (checkSchedule).
// - Receives land as soon as they arrive, in schedule order. Several 'sum' receives into one range in
//   one step (naive all-reduce, the parameter server) are added in rank order with the local values in
//   their own rank's place, so every rank computes bit-identical sums whatever the arrival order.
// - Wire bytes are the platform's float32 layout (little-endian in every browser we target), or with
//   `wire: 'f16'` IEEE half floats: half the bytes, decoded and added in float32 on receipt. A rank
//   rounds each range to fp16 in place right before it sends it, so what it keeps is bit for bit what
//   its peers receive; in a ring that makes each chunk's owner round its reduced chunk before the
//   all-gather, and every rank ends with identical bits.

import { decodeFp16, encodeFp16, roundToFp16 } from './codecs';
import type { RecvAction, Schedule, ScheduleStep, SendAction } from './schedules';
import type { ChunkListener, CollectiveKind, Phase, Transport } from './types';

export interface StepInfo {
  runId: string;
  collective: CollectiveKind;
  round: number;
  rank: number;
  world: number;
  step: number;
  /** Total steps of this schedule. */
  steps: number;
  phase: Phase;
  sends: readonly SendAction[];
  recvs: readonly RecvAction[];
}

export interface RunOptions {
  /** The training step (or any counter the ranks agree on): first part of every message tag. */
  round: number;
  /** Numbers the collectives within a round, so two collectives of one round never mix messages. */
  collective: number;
  /** Added to every schedule message number (for a collective made of several schedules). */
  msgBase?: number;
  /** Divide the reduced ranges by world right after they are complete (gradient averaging). */
  average?: boolean;
  /** Element encoding on the wire: float32 (default, exact) or fp16 (half the bytes, rounded). */
  wire?: WireFormat;
  onEvent?: ChunkListener;
  /** Awaited before each step: the classroom mode releases one step at a time. */
  gate?: (info: StepInfo) => Promise<void>;
}

export type WireFormat = 'f32' | 'f16';

/** Bytes one element costs on the wire. */
export function wireElementBytes(wire: WireFormat = 'f32'): number {
  return wire === 'f16' ? 2 : 4;
}

export interface RunStats {
  bytesSent: number;
  bytesReceived: number;
  messagesSent: number;
  messagesReceived: number;
  ms: number;
}

/** A collective failed on this rank; `cause` is what the transport reported (e.g. a lost peer). */
export class CollectiveError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CollectiveError';
  }
}

function bytesOf(data: Float32Array, offset: number, length: number): Uint8Array {
  return new Uint8Array(data.buffer, data.byteOffset + offset * 4, length * 4);
}

/** Float view of a received payload; copies only when the payload is not 4-byte aligned (or is fp16). */
function floatsOf(payload: Uint8Array, length: number, wire: WireFormat = 'f32'): Float32Array {
  if (wire === 'f16') {
    const halves = payload.byteOffset % 2 === 0 ? new Uint16Array(payload.buffer, payload.byteOffset, length) : new Uint16Array(payload.slice().buffer, 0, length);
    return decodeFp16(halves);
  }
  if (payload.byteOffset % 4 === 0) return new Float32Array(payload.buffer, payload.byteOffset, length);
  return new Float32Array(payload.slice().buffer, 0, length);
}

/** The bytes that carry data[offset, offset + length) on the wire (fp16: rounds that range in place first). */
function outgoing(data: Float32Array, offset: number, length: number, wire: WireFormat = 'f32'): Uint8Array {
  if (wire === 'f32') return bytesOf(data, offset, length);
  const range = data.subarray(offset, offset + length);
  roundToFp16(range);
  const halves = encodeFp16(range);
  return new Uint8Array(halves.buffer);
}

export async function runSchedule(transport: Transport, schedule: Schedule, data: Float32Array, opts: RunOptions): Promise<RunStats> {
  if (transport.rank !== schedule.rank || transport.world !== schedule.world) {
    throw new RangeError(`schedule is for rank ${schedule.rank}/${schedule.world}, transport is rank ${transport.rank}/${transport.world}`);
  }
  if (data.length !== schedule.length) {
    throw new RangeError(`schedule is for ${schedule.length} elements, the vector has ${data.length}`);
  }
  const runId = `${opts.round}:${opts.collective}`;
  const msgBase = opts.msgBase ?? 0;
  const stats: RunStats = { bytesSent: 0, bytesReceived: 0, messagesSent: 0, messagesReceived: 0, ms: 0 };
  const t0 = performance.now();
  const averageAfter = (step: number): void => {
    if (!opts.average) return;
    for (const range of schedule.reduced) {
      if (range.afterStep !== step) continue;
      const view = data.subarray(range.offset, range.offset + range.length);
      for (let i = 0; i < view.length; i++) view[i] /= schedule.world;
    }
  };

  averageAfter(-1);
  for (const step of schedule.steps) {
    const info: StepInfo = {
      runId,
      collective: schedule.collective,
      round: opts.round,
      rank: schedule.rank,
      world: schedule.world,
      step: step.step,
      steps: schedule.steps.length,
      phase: step.phase,
      sends: step.sends,
      recvs: step.recvs,
    };
    if (opts.gate) await opts.gate(info);
    try {
      await runStep(transport, schedule, step, data, { ...opts, runId, msgBase }, stats);
    } catch (error) {
      const why = error instanceof Error ? error.message : String(error);
      throw new CollectiveError(`${schedule.collective} ${runId} rank ${schedule.rank} step ${step.step}: ${why}`, { cause: error });
    }
    averageAfter(step.step);
  }
  stats.ms = performance.now() - t0;
  return stats;
}

interface StepContext extends RunOptions {
  runId: string;
  msgBase: number;
}

async function runStep(transport: Transport, schedule: Schedule, step: ScheduleStep, data: Float32Array, ctx: StepContext, stats: RunStats): Promise<void> {
  const tag = (msg: number) => ({ round: ctx.round, collective: ctx.collective, chunk: ctx.msgBase + msg });
  const elementBytes = wireElementBytes(ctx.wire);
  const emit = (direction: 'send' | 'recv', action: SendAction | RecvAction, peer: number, tStart: number): void => {
    ctx.onEvent?.({
      type: 'chunk',
      direction,
      collective: schedule.collective,
      runId: ctx.runId,
      round: ctx.round,
      phase: action.phase,
      step: step.step,
      chunk: action.chunk,
      part: action.part,
      rank: schedule.rank,
      peer,
      bytes: action.length * elementBytes,
      offset: action.offset,
      length: action.length,
      tStart,
      tEnd: performance.now(),
    });
  };

  // Ask for every receive first so that nothing that arrives waits on our sends.
  const arrivals = step.recvs.map((recv) => {
    const tStart = performance.now();
    const arrival = transport.recv(recv.from, tag(recv.msg)).then((payload) => {
      if (payload.byteLength !== recv.length * elementBytes) {
        throw new Error(`message ${recv.msg} from rank ${recv.from} has ${payload.byteLength} bytes, expected ${recv.length * elementBytes}`);
      }
      stats.bytesReceived += payload.byteLength;
      stats.messagesReceived++;
      emit('recv', recv, recv.from, tStart);
      return payload;
    });
    arrival.catch(() => {}); // handled below; this only keeps a second failure from being "unhandled"
    return arrival;
  });

  const sends = step.sends.map(async (send) => {
    const tStart = performance.now();
    await transport.send(send.to, tag(send.msg), outgoing(data, send.offset, send.length, ctx.wire));
    stats.bytesSent += send.length * elementBytes;
    stats.messagesSent++;
    emit('send', send, send.to, tStart);
  });

  await Promise.all([...sends, landAll(schedule, step.recvs, arrivals, data, ctx.wire ?? 'f32')]);
}

/** Applies received payloads in schedule order; groups of 'sum's into one range are added in rank order. */
async function landAll(schedule: Schedule, recvs: readonly RecvAction[], arrivals: Promise<Uint8Array>[], data: Float32Array, wire: WireFormat): Promise<void> {
  const groups = new Map<string, number[]>();
  recvs.forEach((recv, i) => {
    if (recv.op !== 'sum') return;
    const key = `${recv.offset}:${recv.length}`;
    const members = groups.get(key);
    if (members) members.push(i);
    else groups.set(key, [i]);
  });
  const done = new Set<number>();
  for (let i = 0; i < recvs.length; i++) {
    if (done.has(i)) continue;
    const recv = recvs[i];
    const members = recv.op === 'sum' ? groups.get(`${recv.offset}:${recv.length}`)! : [i];
    if (members.length === 1) {
      land(recv, await arrivals[i], data, wire);
    } else {
      const payloads = await Promise.all(members.map((m) => arrivals[m]));
      const byRank = new Map(members.map((m, k) => [recvs[m].from, floatsOf(payloads[k], recv.length, wire)]));
      sumInRankOrder(schedule.rank, byRank, data.subarray(recv.offset, recv.offset + recv.length));
    }
    for (const m of members) done.add(m);
  }
}

function land(recv: RecvAction, payload: Uint8Array, data: Float32Array, wire: WireFormat): void {
  if (recv.op === 'copy' && wire === 'f32') {
    bytesOf(data, recv.offset, recv.length).set(payload); // bytes, not floats: bit-exact for any payload
    return;
  }
  const incoming = floatsOf(payload, recv.length, wire);
  if (recv.op === 'copy') {
    data.set(incoming, recv.offset);
    return;
  }
  const target = data.subarray(recv.offset, recv.offset + recv.length);
  for (let i = 0; i < target.length; i++) target[i] += incoming[i];
}

/** target = sum over ranks in ascending order, where the local rank's term is target's current value. */
function sumInRankOrder(self: number, others: Map<number, Float32Array>, target: Float32Array): void {
  const order = [...others.keys(), self].sort((a, b) => a - b);
  const local = order[0] === self ? null : target.slice();
  if (order[0] !== self) target.set(others.get(order[0])!);
  for (const q of order.slice(1)) {
    const values = q === self ? local! : others.get(q)!;
    for (let i = 0; i < target.length; i++) target[i] += values[i];
  }
}
