// Runs an all-to-all for a caller that holds one block per destination (an expert layer's dispatch:
// the tokens this tab routes to each tab's experts) and wants one block per source back. It learns the
// count matrix first when the caller does not know it (each rank knows only its own row: a ring
// all-gather of one word per destination), packs the blocks by allToAllLayout, runs the pairwise
// schedule of all-to-all.ts and slices the result. Both exchanges share one collective id; the
// exchange's message numbers start after the all-gather's.

import { allToAll, allToAllLayout, checkCounts } from './all-to-all';
import { runFixedAllGather } from './collectives';
import { type RunOptions, type RunStats, runSchedule } from './executor';
import type { ScheduleOptions } from './schedules';
import type { Transport } from './types';

export interface AllToAllResult {
  /** received[i]: the block rank i sent to this rank (received[rank] is this rank's own block, a copy). */
  received: Float32Array[];
  /** The count matrix used (counts[i][j] = elements i sent to j); transpose it for the way back. */
  counts: number[][];
  stats: RunStats;
}

const addStats = (a: RunStats, b: RunStats): RunStats => ({
  bytesSent: a.bytesSent + b.bytesSent,
  bytesReceived: a.bytesReceived + b.bytesReceived,
  messagesSent: a.messagesSent + b.messagesSent,
  messagesReceived: a.messagesReceived + b.messagesReceived,
  ms: a.ms + b.ms,
});

/**
 * `blocks[j]` goes to rank j (blocks[rank] stays here). Pass `counts` when every rank already knows
 * the whole matrix (the way back is the transposed matrix of the way there), to skip learning it.
 */
export async function runAllToAll(
  transport: Transport,
  blocks: readonly Float32Array[],
  opts: Omit<RunOptions, 'average'> & ScheduleOptions & { counts?: number[][] },
): Promise<AllToAllResult> {
  const { world, rank } = transport;
  if (blocks.length !== world) throw new RangeError(`need one block per rank (${world}), got ${blocks.length}`);
  let counts = opts.counts;
  let learned: RunStats | null = null;
  if (counts) {
    checkCounts(world, counts);
    blocks.forEach((block, j) => {
      if (block.length !== counts![rank][j]) throw new RangeError(`block for rank ${j} has ${block.length} elements, counts[${rank}][${j}] says ${counts![rank][j]}`);
    });
  } else {
    const row = new Uint32Array(blocks.map((block) => block.length));
    // Counts travel as raw 32-bit words: never as fp16, and in one message per hop (so the message
    // numbers stay below 2 * world whatever maxMessageElements the exchange uses).
    const gathered = await runFixedAllGather(transport, new Uint8Array(row.buffer), { ...opts, wire: 'f32', maxMessageElements: undefined });
    counts = gathered.payloads.map((bytes) => Array.from(new Uint32Array(bytes.slice().buffer)));
    learned = gathered.stats;
  }
  const layout = allToAllLayout(world, rank, counts);
  const data = new Float32Array(layout.length);
  blocks.forEach((block, j) => data.set(block, layout.send[j].offset));
  // A ring all-gather's message numbers stay below 2 * world; the exchange's start there.
  const msgBase = (opts.msgBase ?? 0) + 2 * world;
  const exchanged = await runSchedule(transport, allToAll(world, rank, counts, opts), data, { ...opts, msgBase, average: false });
  const received = layout.recv.map((range) => data.slice(range.offset, range.offset + range.length));
  return { received, counts, stats: learned ? addStats(learned, exchanged) : exchanged };
}
