// All-to-all (personalised exchange), as a pure schedule: every rank sends a distinct block to every
// other rank, and block sizes may differ per pair, as a mixture-of-experts router's assignment makes
// them (counts[i][j] = elements rank i sends to rank j). Nothing is added: every block arrives bit for
// bit, so the result is exact and the same on every rank by construction.
//
// Pairwise exchange, N - 1 steps (MPI's classic pairwise algorithm): at step s = 1..N-1 rank r sends
// its block for (r + s) mod N and receives the block from (r - s) mod N. Each rank talks to exactly one
// peer each way per step, so no link carries two blocks at once and no rank is swamped by N - 1
// senders at the same moment. N = 4:
//
//   step 1:  0->1  1->2  2->3  3->0
//   step 2:  0->2  1->3  2->0  3->1
//   step 3:  0->3  1->0  2->1  3->2
//
// Layout of rank r's vector (allToAllLayout): first the blocks it sends, by destination (skipping
// itself), then the blocks it receives, by source, with its own block at source r. The block a rank
// keeps for itself never moves: send[r] and recv[r] are the same range, so a caller packs block j at
// send[j] for every j and reads block i from recv[i] for every i. The way back (an expert's outputs to
// the tokens' tabs) is the all-to-all with the transposed counts.
//
// Every rank must know the whole count matrix (its row is its own; the column is learned first, e.g.
// with an all-gather of the rows). A block larger than `maxMessageElements` travels as several parts,
// all in the step of its pair (there is nothing to forward, so nothing to pipeline).

import { DEFAULT_MAX_MESSAGE_ELEMENTS, type Range, splitParts } from './chunking';
import type { Schedule, ScheduleOptions } from './schedules';
import { type PlannedAction, checkWorldAndRank, placeActions } from './step-placement';
import type { Phase } from './types';

export interface AllToAllLayout {
  /** send[j]: where the block for rank j sits (send[rank] = recv[rank], the block kept). */
  send: Range[];
  /** recv[i]: where the block from rank i lands. */
  recv: Range[];
  /** Elements in this rank's vector. */
  length: number;
}

/** Checks that `counts` is a world x world matrix of integers >= 0; throws a RangeError naming the cell. */
export function checkCounts(world: number, counts: readonly (readonly number[])[]): void {
  if (counts.length !== world) throw new RangeError(`counts needs ${world} rows (one per sending rank), got ${counts.length}`);
  counts.forEach((row, i) => {
    if (row.length !== world) throw new RangeError(`counts[${i}] needs ${world} entries (one per receiving rank), got ${row.length}`);
    row.forEach((count, j) => {
      if (!Number.isSafeInteger(count) || count < 0) throw new RangeError(`counts[${i}][${j}] must be an integer >= 0, got ${count}`);
    });
  });
}

/** Where rank `rank` keeps each outgoing and incoming block (see the header). */
export function allToAllLayout(world: number, rank: number, counts: readonly (readonly number[])[]): AllToAllLayout {
  checkWorldAndRank(world, rank);
  checkCounts(world, counts);
  const send: Range[] = new Array(world);
  const recv: Range[] = new Array(world);
  let offset = 0;
  for (let j = 0; j < world; j++) {
    if (j === rank) continue;
    send[j] = { offset, length: counts[rank][j] };
    offset += counts[rank][j];
  }
  for (let i = 0; i < world; i++) {
    recv[i] = { offset, length: counts[i][rank] };
    offset += counts[i][rank];
  }
  send[rank] = recv[rank];
  return { send, recv, length: offset };
}

/** The all-to-all schedule for rank `rank`; `chunk` in its actions is the block's source rank. */
export function allToAll(world: number, rank: number, counts: readonly (readonly number[])[], opts: ScheduleOptions = {}): Schedule {
  const layout = allToAllLayout(world, rank, counts);
  const maxElements = opts.maxMessageElements ?? DEFAULT_MAX_MESSAGE_ELEMENTS;
  const planned: PlannedAction[] = [];
  const phases: Phase[] = [];
  for (let s = 1; s < world; s++) {
    const logical = s - 1;
    phases.push('exchange');
    const to = (rank + s) % world;
    const from = (rank - s + world) % world;
    // Each ordered pair meets once, so the part number alone is unique per (sender, receiver).
    splitParts(layout.send[to], maxElements).forEach((piece, part) =>
      planned.push({ logical, part: 0, send: { phase: 'exchange', chunk: rank, part, ...piece, to, msg: part } }),
    );
    splitParts(layout.recv[from], maxElements).forEach((piece, part) =>
      planned.push({ logical, part: 0, recv: { phase: 'exchange', chunk: from, part, ...piece, from, msg: part, op: 'copy' } }),
    );
  }
  const placement = { collective: 'all-to-all' as const, world, rank, length: layout.length, chunks: layout.recv, phases, maxParts: 1, pipeline: false };
  return placeActions(placement, planned, []);
}

/** Elements rank `rank` puts on the wire: the sum of its row without the kept block. */
export function allToAllSentElements(rank: number, counts: readonly (readonly number[])[]): number {
  return counts[rank].reduce((total, count, j) => (j === rank ? total : total + count), 0);
}
