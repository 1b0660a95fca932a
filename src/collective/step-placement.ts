// Turns a list of planned actions (each tagged with its logical step and part) into the barrier steps
// of a Schedule, for every collective: the ring and star ones in schedules.ts and those in their own
// files (tree-allreduce.ts, rhd-allreduce.ts, all-to-all.ts). With `pipeline` part p of logical
// step s runs at schedule step s + p (a wavefront), without it every part of a logical step shares
// step s. Every rank of a collective computes the same logical steps and the same part count, so
// every rank gets the same number of steps.

import type { Range } from './chunking';
import type { RecvAction, ReducedRange, Schedule, SendAction } from './schedule-types';
import type { CollectiveKind, Phase } from './types';

/** An action before it is placed at a schedule step. */
export interface PlannedAction {
  logical: number;
  part: number;
  send?: SendAction;
  recv?: RecvAction;
}

export interface Placement {
  collective: CollectiveKind;
  world: number;
  rank: number;
  length: number;
  chunks: Range[];
  /** Phase of each logical step (the same list on every rank). */
  phases: Phase[];
  /** Most parts any logical step has on any rank (with pipelining it sets the drain length). */
  maxParts: number;
  pipeline: boolean;
}

/** Where part `part` of logical step `logical` runs. */
export function placeStep(placement: Pick<Placement, 'pipeline'>, logical: number, part: number): number {
  return placement.pipeline ? logical + part : logical;
}

/** Builds the Schedule; `reduced` uses placeStep to say after which step each reduced range is final. */
export function placeActions(placement: Placement, planned: readonly PlannedAction[], reduced: ReducedRange[]): Schedule {
  const logicalCount = placement.phases.length;
  const stepCount = logicalCount === 0 ? 0 : placeStep(placement, logicalCount - 1, Math.max(placement.maxParts, 1) - 1) + 1;
  const steps = Array.from({ length: stepCount }, (_, t) => ({
    step: t,
    phase: placement.phases[Math.min(t, logicalCount - 1)],
    sends: [] as SendAction[],
    recvs: [] as RecvAction[],
  }));
  for (const action of planned) {
    const step = steps[placeStep(placement, action.logical, action.part)];
    if (action.send) step.sends.push(action.send);
    if (action.recv) step.recvs.push(action.recv);
  }
  const { collective, world, rank, length, chunks } = placement;
  return { collective, world, rank, length, chunks, steps, reduced };
}

export function checkWorldAndRank(world: number, rank: number): void {
  if (!Number.isSafeInteger(world) || world < 1) throw new RangeError(`world must be an integer >= 1, got ${world}`);
  if (!Number.isSafeInteger(rank) || rank < 0 || rank >= world) {
    throw new RangeError(`rank must be an integer in [0, ${world}), got ${rank}`);
  }
}

export function checkLength(length: number): void {
  if (!Number.isSafeInteger(length) || length < 0) throw new RangeError(`length must be an integer >= 0, got ${length}`);
}
