// Recursive halving-doubling all-reduce (Rabenseifner's algorithm), as a pure schedule: a
// reduce-scatter by recursive halving, then an all-gather by recursive doubling. 2 log2 N hops (like
// the tree) moving 2 (N-1)/N of the vector per rank (like the ring): good at every size, best in the
// middle; cost-model.ts says where exactly.
//
// Power-of-two world P (here 4; "v" is the rank among the P, blocks b0..b3 = splitEven(length, P)):
//
//   reduce-scatter, distance P/2 then P/4 ... 1: partners v and v^d swap halves of what they still
//   own; the lower rank keeps (and adds into) the lower half.
//     d=2:  0<->2  1<->3   rank 0 keeps b0 b1, rank 2 keeps b2 b3, ...
//     d=1:  0<->1  2<->3   rank v now owns the full sum of block v
//   all-gather, distance 1 then 2 ... P/2: the same pairs in reverse order copy what they own.
//
// Worlds that are not a power of two, the standard way (MPICH, Thakur-Rabenseifner-Gropp 2005): with
// P = the largest power of two <= N and R = N - P, the first 2R ranks fold in pairs before and unfold
// after. Even rank 2i < 2R sends its whole vector to rank 2i+1, which adds it ('fold'), and sits out;
// the P remaining ranks (odd ranks below 2R, and all ranks from 2R up) run the power-of-two algorithm
// as v = rank < 2R ? (rank - 1) / 2 : rank - R; at the end rank 2i+1 copies the result back to 2i.
// N = 6: 0->1, 2->3 fold; {1, 3, 4, 5} run as v = 0..3; 1->0, 3->2 unfold. Cost: 2 extra hops of n.
//
// Summation order (why every rank ends with the same bits): block b is summed only at its owner v = b,
// and every other rank receives copies of those bits. The owner's value is the butterfly's fixed tree:
// its partial after distance d covers the ranks that differ from it only in bits >= d, so the final sum
// of block b is S(all) with S(set) = S(set with bit 0 clear) + S(set with bit 0 set), splitting on
// bit 1 inside each, and so on, leaves x_v (x_2i+1 + x_2i for a folded pair). IEEE addition is
// commutative, so which partner adds which does not matter; the tree depends on N alone.
//
// No wavefront pipelining: the range a rank sends at step k+1 is half of what it received at step k,
// not the same parts, so every part of a step shares that step (`pipeline` is ignored).

import { DEFAULT_MAX_MESSAGE_ELEMENTS, type Range, splitEven, splitParts } from './chunking';
import type { ReducedRange, Schedule, ScheduleOptions } from './schedules';
import { type PlannedAction, checkLength, checkWorldAndRank, placeActions } from './step-placement';
import type { Phase } from './types';

/** The power-of-two core of a world: P, the largest power of two <= world, and R = world - P folded ranks. */
export function rhdCore(world: number): { core: number; folded: number } {
  let core = 1;
  while (core * 2 <= world) core *= 2;
  return { core, folded: world - core };
}

/** A rank's place in the power-of-two core (v), or -1 for an even rank below 2R that folds and sits out. */
export function rhdCoreRank(world: number, rank: number): number {
  const { folded } = rhdCore(world);
  if (rank < 2 * folded) return rank % 2 === 1 ? (rank - 1) / 2 : -1;
  return rank - folded;
}

/** The real rank of core rank v (inverse of rhdCoreRank). */
function realRank(world: number, v: number): number {
  const { folded } = rhdCore(world);
  return v < folded ? 2 * v + 1 : v + folded;
}

/** The range of core blocks [first, first + count) as one element range (blocks are adjacent). */
function blockSpan(blocks: Range[], first: number, count: number): Range {
  const offset = blocks[first].offset;
  const end = blocks[first + count - 1].offset + blocks[first + count - 1].length;
  return { offset, length: end - offset };
}

/** Recursive halving-doubling all-reduce of `length` elements; `boundaries` and `pipeline` are ignored. */
export function rhdAllReduce(world: number, rank: number, length: number, opts: ScheduleOptions = {}): Schedule {
  checkWorldAndRank(world, rank);
  checkLength(length);
  const maxElements = opts.maxMessageElements ?? DEFAULT_MAX_MESSAGE_ELEMENTS;
  const { core, folded } = rhdCore(world);
  const rounds = Math.log2(core);
  const blocks = splitEven(length, core);
  const whole: Range = { offset: 0, length };
  const v = rhdCoreRank(world, rank);

  // Logical steps: [fold] reduce-scatter x rounds, all-gather x rounds [unfold].
  const phases: Phase[] = [];
  if (folded > 0) phases.push('reduce-scatter');
  const firstHalving = phases.length;
  for (let k = 0; k < rounds; k++) phases.push('reduce-scatter');
  const firstDoubling = phases.length;
  for (let k = 0; k < rounds; k++) phases.push('all-gather');
  const unfoldStep = phases.length;
  if (folded > 0) phases.push('all-gather');

  const planned: PlannedAction[] = [];
  // One pair meets at most twice (on the way down and back up) and never twice in one logical step,
  // so logical step * (parts per step bound) + part is unique per pair.
  const stride = Math.max(1, Math.ceil(length / maxElements));
  const msg = (logical: number, part: number) => logical * stride + part;
  const send = (logical: number, phase: Phase, chunk: number, range: Range, to: number) =>
    splitParts(range, maxElements).forEach((piece, part) =>
      planned.push({ logical, part: 0, send: { phase, chunk, part, ...piece, to, msg: msg(logical, part) } }),
    );
  const recv = (logical: number, phase: Phase, chunk: number, range: Range, from: number, op: 'sum' | 'copy') =>
    splitParts(range, maxElements).forEach((piece, part) =>
      planned.push({ logical, part: 0, recv: { phase, chunk, part, ...piece, from, msg: msg(logical, part), op } }),
    );

  if (folded > 0 && rank < 2 * folded) {
    if (v < 0) {
      send(0, 'reduce-scatter', 0, whole, rank + 1);
      recv(unfoldStep, 'all-gather', 0, whole, rank + 1, 'copy');
    } else {
      recv(0, 'reduce-scatter', 0, whole, rank - 1, 'sum');
      send(unfoldStep, 'all-gather', 0, whole, rank - 1);
    }
  }

  const reduced: ReducedRange[] = [];
  if (v >= 0) {
    // What v owns before halving step k: `count` blocks from `first`.
    let first = 0;
    let count = core;
    for (let k = 0; k < rounds; k++) {
      const distance = core >> (k + 1);
      const partner = realRank(world, v ^ distance);
      const half = count / 2;
      const keepLower = (v & distance) === 0;
      const kept = keepLower ? first : first + half;
      const given = keepLower ? first + half : first;
      send(firstHalving + k, 'reduce-scatter', given, blockSpan(blocks, given, half), partner);
      recv(firstHalving + k, 'reduce-scatter', kept, blockSpan(blocks, kept, half), partner, 'sum');
      // Recursive doubling mirrors step k: send what v owns after step k, receive the partner's half.
      const doubling = firstDoubling + (rounds - 1 - k);
      send(doubling, 'all-gather', kept, blockSpan(blocks, kept, half), partner);
      recv(doubling, 'all-gather', given, blockSpan(blocks, given, half), partner, 'copy');
      first = kept;
      count = half;
    }
    // After the last halving step (or at once for a core of one) v holds the full sum of block v.
    const afterStep = rounds > 0 ? firstDoubling - 1 : folded > 0 ? 0 : -1;
    reduced.push({ ...blocks[v], afterStep });
  }

  const placement = { collective: 'rhd-allreduce' as const, world, rank, length, chunks: blocks, phases, maxParts: 1, pipeline: false };
  return placeActions(placement, planned, reduced);
}
