// Binomial-tree all-reduce, as a pure schedule: reduce the whole vector to rank 0 along a binomial
// tree, then broadcast the sum back down the same tree. 2 * ceil(log2 N) hops, each carrying the whole
// vector: latency-optimal (few hops), bandwidth-poor (n bytes per hop). It wins where the per-message
// latency alpha dominates, i.e. on small vectors; cost-model.ts says where exactly.
//
// Phase 1, reduce ('gather'), N = 8. At level k a rank whose lowest set bit is 2^k sends its subtree's
// partial sum to rank - 2^k, which adds it to its own:
//
//   level 0:  1->0   3->2   5->4   7->6
//   level 1:  2->0          6->4
//   level 2:  4->0
//
// Phase 2, broadcast: the same edges in reverse order (level 2 first), the sum copied down.
//
// Summation order (why every rank ends with the same bits): the sum is formed once, at rank 0, as the
// binomial tree above fixes it, ((x0 + x1) + (x2 + x3)) + ((x4 + x5) + (x6 + x7)), whatever the
// arrival order (each level is its own step, a barrier), and phase 2 only copies those bits. So
// replicas stay bitwise equal, and the order depends on N alone, never on which rank computes.
//
// Pipelining: the vector travels in parts of at most `maxMessageElements`; with `pipeline` (default)
// part p of level k runs at step k + p, so rank 2 forwards part 0 up while part 1 is still arriving
// from rank 3. At one step every level touches a different part, so no range is both sent and written.

import { DEFAULT_MAX_MESSAGE_ELEMENTS, splitParts } from './chunking';
import type { RecvAction, Schedule, ScheduleOptions, SendAction } from './schedules';
import { type PlannedAction, checkLength, checkWorldAndRank, placeActions, placeStep } from './step-placement';
import type { Phase } from './types';

/** Tree depth: the number of levels of a binomial tree over `world` ranks, ceil(log2 world). */
export function treeLevels(world: number): number {
  let levels = 0;
  while (1 << levels < world) levels++;
  return levels;
}

/** The rank this one sends its partial sum to (its parent), or -1 for the root. */
export function treeParent(rank: number): number {
  return rank === 0 ? -1 : rank - (rank & -rank);
}

/** Binomial-tree all-reduce of `length` elements; `boundaries` is ignored (the whole vector moves). */
export function treeAllReduce(world: number, rank: number, length: number, opts: ScheduleOptions = {}): Schedule {
  checkWorldAndRank(world, rank);
  checkLength(length);
  const whole = { offset: 0, length };
  const parts = splitParts(whole, opts.maxMessageElements ?? DEFAULT_MAX_MESSAGE_ELEMENTS);
  const levels = treeLevels(world);
  const phases: Phase[] = [...new Array<Phase>(levels).fill('gather'), ...new Array<Phase>(levels).fill('broadcast')];
  const planned: PlannedAction[] = [];
  // Each (child, parent) edge is used once per phase; message numbers only need to be unique per pair.
  const msg = (logical: number, part: number) => logical * parts.length + part;

  for (let level = 0; level < levels; level++) {
    const span = 1 << level;
    const reduceStep = level;
    const broadcastStep = 2 * levels - 1 - level;
    const isChild = (rank & (2 * span - 1)) === span; // lowest set bit is 2^level
    const isParent = (rank & (2 * span - 1)) === 0 && rank + span < world;
    parts.forEach((range, part) => {
      if (isChild) {
        const parent = rank - span;
        const up: SendAction = { phase: 'gather', chunk: 0, part, ...range, to: parent, msg: msg(reduceStep, part) };
        const down: RecvAction = { phase: 'broadcast', chunk: 0, part, ...range, from: parent, msg: msg(broadcastStep, part), op: 'copy' };
        planned.push({ logical: reduceStep, part, send: up }, { logical: broadcastStep, part, recv: down });
      }
      if (isParent) {
        const child = rank + span;
        const up: RecvAction = { phase: 'gather', chunk: 0, part, ...range, from: child, msg: msg(reduceStep, part), op: 'sum' };
        const down: SendAction = { phase: 'broadcast', chunk: 0, part, ...range, to: child, msg: msg(broadcastStep, part) };
        planned.push({ logical: reduceStep, part, recv: up }, { logical: broadcastStep, part, send: down });
      }
    });
  }

  const placement = {
    collective: 'tree-allreduce' as const,
    world,
    rank,
    length,
    chunks: [whole],
    phases,
    maxParts: parts.length,
    pipeline: opts.pipeline ?? true,
  };
  // The root holds the complete sum of part p once it has heard from its last child (level levels-1);
  // the executor averages it there, before the broadcast copies it out.
  const reduced =
    rank !== 0 ? [] : parts.map((range, part) => ({ ...range, afterStep: levels === 0 ? -1 : placeStep(placement, levels - 1, part) }));
  if (rank === 0 && parts.length === 0) reduced.push({ ...whole, afterStep: -1 });
  return placeActions(placement, planned, reduced);
}
