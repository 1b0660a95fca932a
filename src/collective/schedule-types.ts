// The data a collective's schedule is made of: per-step send and receive actions, the barrier steps,
// and the Schedule itself. They live apart from schedules.ts (which builds the ring and star
// schedules and re-exports these types) so that step-placement.ts can build steps without importing
// the module that uses it.

import type { Range } from './chunking';
import type { CollectiveKind, Phase } from './types';

export type ReduceOp = 'sum' | 'copy';

/** One outgoing message: elements [offset, offset + length) of the vector, to rank `to`. */
export interface SendAction {
  phase: Phase;
  chunk: number;
  part: number;
  offset: number;
  length: number;
  to: number;
  /** Message number within the collective; unique per (sender, receiver) pair. Becomes MessageTag.chunk. */
  msg: number;
}

/** One incoming message: lands on elements [offset, offset + length), added or copied. */
export interface RecvAction {
  phase: Phase;
  chunk: number;
  part: number;
  offset: number;
  length: number;
  from: number;
  msg: number;
  op: ReduceOp;
}

/**
 * One barrier step. `sends`/`recvs` are lists, not single actions, because a step can move several
 * parts (pipelining) or talk to several peers (naive all-reduce, parameter server, star broadcast).
 */
export interface ScheduleStep {
  step: number;
  /** The phase this step belongs to; while a pipeline drains across a phase change, the newer phase. */
  phase: Phase;
  sends: SendAction[];
  recvs: RecvAction[];
}

/** A range of this rank's vector that holds the complete reduction once `afterStep` is done (-1: from the start). */
export interface ReducedRange extends Range {
  afterStep: number;
}

export interface Schedule {
  collective: CollectiveKind;
  world: number;
  rank: number;
  /** Elements in the vector. */
  length: number;
  /** The logical chunks (one per rank for ring collectives, one chunk for whole-vector ones). */
  chunks: Range[];
  steps: ScheduleStep[];
  /**
   * Where the reduction is complete on this rank, and when: the executor averages exactly these
   * ranges (once each) right after their step, before anyone copies them on.
   */
  reduced: ReducedRange[];
}
