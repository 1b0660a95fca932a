// Collectives as data. Each function below is PURE: given (world, rank, length, options) it lists,
// step by step, what this rank sends, to whom, what it receives, from whom, and whether the received
// data is added ('sum') or written ('copy'). The executor runs these lists over a Transport, the
// dashboard animates the events the executor emits for them, and the tests check them. There is no
// other copy of the ring logic anywhere (gloo's way: the chunk a rank touches at a step is arithmetic
// on rank, world and step).
//
// Execution model: a schedule step is a barrier. All sends and receives of a step run concurrently,
// and the next step starts when all of them completed. Within a step no range is both sent and
// written, so the executor can send straight out of the vector's memory.
//
// Sub-chunk pipelining: a chunk larger than `maxMessageElements` travels as several parts. With
// `pipeline: true` (default) part p of logical step s is placed at schedule step s + p, so a rank
// forwards part p of a chunk while part p + 1 of the same chunk is still arriving (a wavefront, as in
// a pipelined chain broadcast). With `pipeline: false` all parts of a logical step share one step.

import { DEFAULT_MAX_MESSAGE_ELEMENTS, type Range, chunksFromBoundaries, splitEven, splitParts } from './chunking';
import type { RecvAction, ReduceOp, ReducedRange, Schedule, SendAction } from './schedule-types';
import { type Placement, type PlannedAction, checkLength, checkWorldAndRank, placeActions, placeStep } from './step-placement';
import type { CollectiveKind, Phase } from './types';

export type { ReduceOp, RecvAction, ReducedRange, Schedule, ScheduleStep, SendAction } from './schedule-types';

export interface ScheduleOptions {
  /** Largest message in elements (default: what fits in a 256 KiB WebRTC message with a header). */
  maxMessageElements?: number;
  /** Explicit chunk boundaries [0, ..., length] with world + 1 entries, e.g. the ZeRO shard boundaries. */
  boundaries?: readonly number[];
  /** Wavefront placement of parts (see the header). Default true. */
  pipeline?: boolean;
}

const mod = (a: number, n: number): number => ((a % n) + n) % n;

/** Places planned actions at schedule steps (step-placement.ts); `reducedAt` learns where each (logical step, part) landed. */
function assemble(shape: Placement, planned: PlannedAction[], reducedAt: (placeStep: (logical: number, part: number) => number) => ReducedRange[]): Schedule {
  return placeActions(shape, planned, reducedAt((logical, part) => placeStep(shape, logical, part)));
}

function resolveChunks(world: number, length: number, opts: ScheduleOptions): Range[] {
  checkLength(length);
  if (opts.boundaries) {
    if (opts.boundaries.length !== world + 1) {
      throw new RangeError(`boundaries need world + 1 = ${world + 1} entries, got ${opts.boundaries.length}`);
    }
    return chunksFromBoundaries(opts.boundaries, length);
  }
  return splitEven(length, world);
}

function partsOf(chunks: Range[], maxElements: number): Range[][] {
  return chunks.map((chunk) => splitParts(chunk, maxElements));
}

function maxPartCount(parts: Range[][]): number {
  return parts.reduce((max, list) => Math.max(max, list.length), 0);
}

/**
 * The ring, in one formula. Logical steps 0..N-2 reduce-scatter, N-1..2N-3 all-gather. At logical step
 * s rank r sends chunk (r - s - 1) mod N to r + 1 and receives chunk (r - s - 2) mod N from r - 1. The
 * offset of -1 makes rank r finish the reduce-scatter owning chunk r, so with ZeRO boundaries each
 * rank ends up holding exactly its own shard, and the all-gather starts from it.
 */
function ring(
  collective: CollectiveKind,
  world: number,
  rank: number,
  length: number,
  opts: ScheduleOptions,
  firstLogical: number,
  lastLogical: number,
): Schedule {
  checkWorldAndRank(world, rank);
  const chunks = resolveChunks(world, length, opts);
  const parts = partsOf(chunks, opts.maxMessageElements ?? DEFAULT_MAX_MESSAGE_ELEMENTS);
  const maxParts = maxPartCount(parts);
  const reduceSteps = world - 1;
  const next = mod(rank + 1, world);
  const prev = mod(rank - 1, world);
  const phases: Phase[] = [];
  const planned: PlannedAction[] = [];
  for (let s = firstLogical; s < lastLogical; s++) {
    const phase: Phase = s < reduceSteps ? 'reduce-scatter' : 'all-gather';
    const logical = s - firstLogical;
    phases.push(phase);
    const sendChunk = mod(rank - s - 1, world);
    const recvChunk = mod(rank - s - 2, world);
    parts[sendChunk].forEach((range, part) => {
      const msg = s * maxParts + part;
      planned.push({ logical, part, send: { phase, chunk: sendChunk, part, ...range, to: next, msg } });
    });
    parts[recvChunk].forEach((range, part) => {
      const msg = s * maxParts + part;
      const op: ReduceOp = phase === 'reduce-scatter' ? 'sum' : 'copy';
      planned.push({ logical, part, recv: { phase, chunk: recvChunk, part, ...range, from: prev, msg, op } });
    });
  }
  const reducesHere = firstLogical === 0;
  const shape: Placement = { collective, world, rank, length, chunks, phases, maxParts, pipeline: opts.pipeline ?? true };
  return assemble(shape, planned, (place) => {
    if (!reducesHere) return [];
    // Part p of the owned chunk gets its last addend at logical step N-2 (none at all when N = 1).
    return parts[rank].map((range, part) => ({ ...range, afterStep: world === 1 ? -1 : place(reduceSteps - 1, part) }));
  });
}

/** Ring reduce-scatter: afterwards rank r holds the full sum of chunk r (chunk r = its ZeRO shard). */
export function ringReduceScatter(world: number, rank: number, length: number, opts: ScheduleOptions = {}): Schedule {
  return ring('reduce-scatter', world, rank, length, opts, 0, world - 1);
}

/** Ring all-gather: starts from chunk r valid on rank r, ends with every chunk everywhere. */
export function ringAllGather(world: number, rank: number, length: number, opts: ScheduleOptions = {}): Schedule {
  return ring('all-gather', world, rank, length, opts, world - 1, 2 * (world - 1));
}

/** Ring all-reduce = reduce-scatter then all-gather: sends 2(N-1)/N of the vector per rank. */
export function ringAllReduce(world: number, rank: number, length: number, opts: ScheduleOptions = {}): Schedule {
  return ring('ring-allreduce', world, rank, length, opts, 0, 2 * (world - 1));
}

export interface BroadcastOptions extends ScheduleOptions {
  /** 'chain' passes the vector along the ring (pipelined: bandwidth-optimal); 'star' sends from the root to everyone. */
  topology?: 'chain' | 'star';
}

/** Broadcast the root's vector to every rank. */
export function broadcast(root: number, world: number, rank: number, length: number, opts: BroadcastOptions = {}): Schedule {
  checkWorldAndRank(world, rank);
  checkWorldAndRank(world, root);
  return (opts.topology ?? 'chain') === 'chain'
    ? chainBroadcast('broadcast', root, world, rank, length, opts)
    : starBroadcast('broadcast', 'broadcast', root, world, rank, length, opts);
}

function wholeVector(length: number, maxElements: number | undefined): { chunks: Range[]; parts: Range[] } {
  checkLength(length);
  const chunk = { offset: 0, length };
  return { chunks: [chunk], parts: splitParts(chunk, maxElements ?? DEFAULT_MAX_MESSAGE_ELEMENTS) };
}

/** Hop d of the chain (d = distance from the root) receives at logical step d - 1 and forwards at step d. */
function chainBroadcast(collective: CollectiveKind, root: number, world: number, rank: number, length: number, opts: ScheduleOptions): Schedule {
  const { chunks, parts } = wholeVector(length, opts.maxMessageElements);
  const distance = mod(rank - root, world);
  const planned: PlannedAction[] = [];
  parts.forEach((range, part) => {
    if (distance > 0) {
      const recv: RecvAction = { phase: 'broadcast', chunk: 0, part, ...range, from: mod(rank - 1, world), msg: part, op: 'copy' };
      planned.push({ logical: distance - 1, part, recv });
    }
    if (distance < world - 1) {
      const send: SendAction = { phase: 'broadcast', chunk: 0, part, ...range, to: mod(rank + 1, world), msg: part };
      planned.push({ logical: distance, part, send });
    }
  });
  const phases: Phase[] = new Array(world - 1).fill('broadcast');
  const shape: Placement = { collective, world, rank, length, chunks, phases, maxParts: parts.length, pipeline: opts.pipeline ?? true };
  return assemble(shape, planned, () => []);
}

function starBroadcast(collective: CollectiveKind, phase: Phase, root: number, world: number, rank: number, length: number, opts: ScheduleOptions): Schedule {
  const { chunks, parts } = wholeVector(length, opts.maxMessageElements);
  const planned: PlannedAction[] = [];
  parts.forEach((range, part) => {
    if (rank === root) {
      for (let peer = 0; peer < world; peer++) {
        if (peer !== root) planned.push({ logical: 0, part, send: { phase, chunk: 0, part, ...range, to: peer, msg: part } });
      }
    } else {
      planned.push({ logical: 0, part, recv: { phase, chunk: 0, part, ...range, from: root, msg: part, op: 'copy' } });
    }
  });
  const phases: Phase[] = world > 1 ? [phase] : [];
  const shape: Placement = { collective, world, rank, length, chunks, phases, maxParts: parts.length, pipeline: false };
  return assemble(shape, planned, () => []);
}

/**
 * The baseline the ring is compared against: every rank sends its whole vector to every other rank
 * (step 0), then adds what it received (step 1). (N-1) times the vector leaves each rank. Several
 * receives add into the same range in step 1; the executor adds them in rank order with the local
 * vector in its own rank's place, so every rank computes bit-identical sums.
 */
export function naiveAllReduce(world: number, rank: number, length: number, opts: ScheduleOptions = {}): Schedule {
  checkWorldAndRank(world, rank);
  const { chunks, parts } = wholeVector(length, opts.maxMessageElements);
  const planned: PlannedAction[] = [];
  for (let peer = 0; peer < world; peer++) {
    if (peer === rank) continue;
    parts.forEach((range, part) => {
      planned.push({ logical: 0, part: 0, send: { phase: 'exchange', chunk: 0, part, ...range, to: peer, msg: part } });
      planned.push({ logical: 1, part: 0, recv: { phase: 'exchange', chunk: 0, part, ...range, from: peer, msg: part, op: 'sum' } });
    });
  }
  const phases: Phase[] = world > 1 ? ['exchange', 'exchange'] : [];
  const shape: Placement = { collective: 'naive-allreduce', world, rank, length, chunks, phases, maxParts: 1, pipeline: false };
  return assemble(shape, planned, () => [{ offset: 0, length, afterStep: world > 1 ? 1 : -1 }]);
}

export interface ParameterServerSchedules {
  /** Workers send their gradients to the server, which adds them (in rank order). */
  gather: Schedule;
  /** The server sends the updated parameters to every worker. */
  broadcast: Schedule;
}

/**
 * One synchronous parameter-server round: gather the gradients at `server` (a star: the server's link
 * carries (N-1) vectors each way, which is what the dashboard should show against the ring), the server
 * updates, then broadcasts the parameters. Two schedules because they run on two different vectors.
 */
export function parameterServerRound(server: number, world: number, rank: number, length: number, opts: ScheduleOptions = {}): ParameterServerSchedules {
  checkWorldAndRank(world, rank);
  checkWorldAndRank(world, server);
  const { chunks, parts } = wholeVector(length, opts.maxMessageElements);
  const planned: PlannedAction[] = [];
  parts.forEach((range, part) => {
    if (rank === server) {
      for (let peer = 0; peer < world; peer++) {
        if (peer === server) continue;
        planned.push({ logical: 0, part: 0, recv: { phase: 'gather', chunk: 0, part, ...range, from: peer, msg: part, op: 'sum' } });
      }
    } else {
      planned.push({ logical: 0, part: 0, send: { phase: 'gather', chunk: 0, part, ...range, to: server, msg: part } });
    }
  });
  const phases: Phase[] = world > 1 ? ['gather'] : [];
  const shape: Placement = { collective: 'ps-round', world, rank, length, chunks, phases, maxParts: 1, pipeline: false };
  const gather = assemble(shape, planned, () => (rank === server ? [{ offset: 0, length, afterStep: world > 1 ? 0 : -1 }] : []));
  return { gather, broadcast: starBroadcast('ps-round', 'broadcast', server, world, rank, length, opts) };
}

/**
 * Sparse (Top-K) all-gather of variable-length payloads. `words[q]` is how many 32-bit words rank q
 * contributes (2 per index/value pair). The vector is the concatenation of every rank's payload, so
 * this is a ring all-gather whose chunk boundaries are the payload sizes: every rank ends with every
 * payload, bit for bit (copies only, nothing is added on the way, so the result is exact).
 * The sizes themselves are learned first with a ring all-gather of one word per rank (see the executor).
 */
export function sparseAllGather(world: number, rank: number, words: readonly number[], opts: ScheduleOptions = {}): Schedule {
  checkWorldAndRank(world, rank);
  if (words.length !== world) throw new RangeError(`need one payload size per rank (${world}), got ${words.length}`);
  const boundaries = [0];
  for (const count of words) {
    if (!Number.isSafeInteger(count) || count < 0) throw new RangeError(`payload sizes must be integers >= 0, got ${count}`);
    boundaries.push(boundaries[boundaries.length - 1] + count);
  }
  const total = boundaries[world];
  return { ...ring('all-gather', world, rank, total, { ...opts, boundaries }, world - 1, 2 * (world - 1)), collective: 'sparse-allgather' };
}

// --- checking and printing ---------------------------------------------------------------------------

const overlaps = (a: Range, b: Range): boolean =>
  a.length > 0 && b.length > 0 && a.offset < b.offset + b.length && b.offset < a.offset + a.length;

const sameRange = (a: Range, b: Range): boolean => a.offset === b.offset && a.length === b.length;

/**
 * Local rules the executor relies on; returns the problems found (empty when the schedule is sound):
 * ranges inside the vector; within a step nothing is both sent and written; receives that write the same
 * elements in one step are all 'sum' over identical ranges (reduced in rank order); message numbers unique per peer.
 */
export function checkSchedule(schedule: Schedule): string[] {
  const problems: string[] = [];
  const inside = (r: Range): boolean => r.offset >= 0 && r.length >= 0 && r.offset + r.length <= schedule.length;
  const sentTo = new Set<string>();
  const heardFrom = new Set<string>();
  for (const step of schedule.steps) {
    for (const send of step.sends) {
      if (!inside(send)) problems.push(`step ${step.step}: send [${send.offset}+${send.length}] outside the vector`);
      const key = `${send.to}:${send.msg}`;
      if (sentTo.has(key)) problems.push(`step ${step.step}: message ${send.msg} to ${send.to} sent twice`);
      sentTo.add(key);
      for (const recv of step.recvs) {
        if (overlaps(send, recv)) problems.push(`step ${step.step}: sends and writes overlapping ranges`);
      }
    }
    step.recvs.forEach((recv, i) => {
      if (!inside(recv)) problems.push(`step ${step.step}: recv [${recv.offset}+${recv.length}] outside the vector`);
      const key = `${recv.from}:${recv.msg}`;
      if (heardFrom.has(key)) problems.push(`step ${step.step}: message ${recv.msg} from ${recv.from} received twice`);
      heardFrom.add(key);
      for (const other of step.recvs.slice(i + 1)) {
        if (!overlaps(recv, other)) continue;
        if (recv.op !== 'sum' || other.op !== 'sum' || !sameRange(recv, other)) {
          problems.push(`step ${step.step}: receives write overlapping ranges`);
        }
      }
    });
  }
  return problems;
}

const fmtRange = (a: Range): string => `[${a.offset}..${a.offset + a.length})`;

/** A schedule as text, one line per step: for logs, tests and the classroom view. */
export function formatSchedule(schedule: Schedule): string {
  const header = `${schedule.collective} rank ${schedule.rank}/${schedule.world}, ${schedule.length} elements, ${schedule.steps.length} steps`;
  const lines = schedule.steps.map((step) => {
    const sends = step.sends.map((a) => `send c${a.chunk}.p${a.part} ${fmtRange(a)} -> r${a.to}`);
    const recvs = step.recvs.map((a) => `recv c${a.chunk}.p${a.part} ${fmtRange(a)} <- r${a.from} ${a.op}`);
    const actions = [...sends, ...recvs];
    return `  step ${step.step} [${step.phase}] ${actions.length ? actions.join(' | ') : '(idle)'}`;
  });
  return [header, ...lines].join('\n');
}
