// The calls the trainer makes: build this rank's schedule, run it. Each is two lines on purpose; the
// logic lives in schedules.ts (what moves) and executor.ts (moving it).

import { type Range, chunksFromBoundaries, splitEven } from './chunking';
import { type RunOptions, type RunStats, runSchedule } from './executor';
import {
  type BroadcastOptions,
  type ScheduleOptions,
  broadcast,
  naiveAllReduce,
  ringAllGather,
  ringAllReduce,
  ringReduceScatter,
  sparseAllGather,
} from './schedules';
import type { Transport } from './types';

export type CollectiveOptions = RunOptions & ScheduleOptions;

/** Sum (or with `average`, mean) of `data` over all ranks, in place. Ring unless `algorithm: 'naive'`. */
export function runAllReduce(transport: Transport, data: Float32Array, opts: CollectiveOptions & { algorithm?: 'ring' | 'naive' }): Promise<RunStats> {
  const build = opts.algorithm === 'naive' ? naiveAllReduce : ringAllReduce;
  return runSchedule(transport, build(transport.world, transport.rank, data.length, opts), data, opts);
}

/**
 * Reduce-scatter in place: afterwards this rank's chunk (its ZeRO shard when `boundaries` are the
 * partition's) holds the sum (or mean) over all ranks; the rest of `data` holds partial sums. Returns
 * the owned range.
 */
export async function runReduceScatter(transport: Transport, data: Float32Array, opts: CollectiveOptions): Promise<{ owned: Range; stats: RunStats }> {
  const schedule = ringReduceScatter(transport.world, transport.rank, data.length, opts);
  const stats = await runSchedule(transport, schedule, data, opts);
  return { owned: schedule.chunks[transport.rank], stats };
}

/** All-gather in place: each rank contributes its own chunk of `data`; afterwards all of `data` is filled. */
export function runAllGather(transport: Transport, data: Float32Array, opts: CollectiveOptions): Promise<RunStats> {
  return runSchedule(transport, ringAllGather(transport.world, transport.rank, data.length, opts), data, opts);
}

/** Copies the root's `data` into every rank's `data`. */
export function runBroadcast(transport: Transport, data: Float32Array, root: number, opts: RunOptions & BroadcastOptions): Promise<RunStats> {
  return runSchedule(transport, broadcast(root, transport.world, transport.rank, data.length, opts), data, opts);
}

/**
 * Every rank contributes a byte payload of the SAME length, a multiple of 4 (a parameter hash, a size);
 * every rank gets all payloads back, bit for bit, indexed by rank. One ring all-gather: N-1 hops.
 */
export async function runFixedAllGather(transport: Transport, payload: Uint8Array, opts: CollectiveOptions): Promise<{ payloads: Uint8Array[]; stats: RunStats }> {
  const { world, rank } = transport;
  if (payload.byteLength % 4 !== 0) throw new RangeError(`payload must be whole 32-bit words, got ${payload.byteLength} bytes`);
  const each = payload.byteLength / 4;
  // Payloads travel as raw bits inside a float vector: an all-gather only copies bytes, never adds.
  const gathered = new Float32Array(world * each);
  const bytes = new Uint8Array(gathered.buffer);
  bytes.set(payload, rank * payload.byteLength);
  const boundaries = Array.from({ length: world + 1 }, (_, i) => i * each);
  const stats = await runSchedule(transport, ringAllGather(world, rank, gathered.length, { ...opts, boundaries }), gathered, { ...opts, average: false });
  const payloads = Array.from({ length: world }, (_, r) => bytes.subarray(r * payload.byteLength, (r + 1) * payload.byteLength));
  return { payloads, stats };
}

/**
 * Every rank contributes a byte payload of any length that is a multiple of 4 (e.g. the sparse wire
 * format of codecs.ts); every rank gets all payloads back, bit for bit, indexed by rank. Two ring
 * all-gathers: first the sizes (one word per rank), then the payloads cut at those sizes, each payload
 * one message whatever `opts.maxMessageElements` says. Message numbers of the second start after the
 * first's, so both share one collective id.
 */
export async function runSparseAllGather(transport: Transport, payload: Uint8Array, opts: CollectiveOptions): Promise<{ payloads: Uint8Array[]; stats: RunStats }> {
  const { world, rank } = transport;
  if (payload.byteLength % 4 !== 0) throw new RangeError(`payload must be whole 32-bit words, got ${payload.byteLength} bytes`);
  const size = new Uint8Array(new Uint32Array([payload.byteLength / 4]).buffer);
  const { payloads: sizes, stats: first } = await runFixedAllGather(transport, size, opts);

  const words = sizes.map((bytes) => new Uint32Array(bytes.slice().buffer)[0]);
  // Each rank's payload travels as one message, never cut into schedule parts: a receiver checks whole
  // messages (the Top-K check, peer/payload-checks.ts, reads the entry count a payload starts with),
  // and the data-channel transport splits a message larger than a channel takes into pieces and
  // joins them before the check.
  const schedule = sparseAllGather(world, rank, words, { ...opts, maxMessageElements: Math.max(1, ...words) });
  const gathered = new Float32Array(schedule.length);
  const bytes = new Uint8Array(gathered.buffer);
  const mine = schedule.chunks[rank];
  bytes.set(payload, mine.offset * 4);
  const msgBase = (opts.msgBase ?? 0) + 2 * world;
  const second = await runSchedule(transport, schedule, gathered, { ...opts, msgBase, average: false });
  const payloads = schedule.chunks.map((chunk) => bytes.subarray(chunk.offset * 4, (chunk.offset + chunk.length) * 4));
  const stats: RunStats = {
    bytesSent: first.bytesSent + second.bytesSent,
    bytesReceived: first.bytesReceived + second.bytesReceived,
    messagesSent: first.messagesSent + second.messagesSent,
    messagesReceived: first.messagesReceived + second.messagesReceived,
    ms: first.ms + second.ms,
  };
  return { payloads, stats };
}

/** The chunk each rank owns after a reduce-scatter with these options (for callers that need it up front). */
export function ownedChunks(world: number, length: number, opts: ScheduleOptions = {}): Range[] {
  return opts.boundaries ? chunksFromBoundaries(opts.boundaries, length) : splitEven(length, world);
}
