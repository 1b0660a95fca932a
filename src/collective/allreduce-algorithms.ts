// Every all-reduce the lab has, behind one name: the schedule for an algorithm (ring, binomial tree,
// recursive halving-doubling, naive) and the call that runs it. This is what a `collective=` setting
// and a per-bucket picker (cost-model.ts pickFastest) select from; the algorithms themselves live in
// their own files, and all of them leave every rank with the same bits.

import type { Schedule, ScheduleOptions } from './schedules';
import { naiveAllReduce, ringAllReduce } from './schedules';
import { type RunOptions, type RunStats, runSchedule } from './executor';
import { rhdAllReduce } from './rhd-allreduce';
import { treeAllReduce } from './tree-allreduce';
import type { Transport } from './types';

export type AllReduceSchedule = 'ring' | 'tree' | 'rhd' | 'naive';

export const ALL_REDUCE_SCHEDULES: readonly AllReduceSchedule[] = ['ring', 'tree', 'rhd', 'naive'];

const BUILDERS: Record<AllReduceSchedule, (world: number, rank: number, length: number, opts: ScheduleOptions) => Schedule> = {
  ring: ringAllReduce,
  tree: treeAllReduce,
  rhd: rhdAllReduce,
  naive: naiveAllReduce,
};

/** This rank's schedule for an all-reduce of `length` elements by `algorithm`. */
export function allReduceSchedule(algorithm: AllReduceSchedule, world: number, rank: number, length: number, opts: ScheduleOptions = {}): Schedule {
  const build = BUILDERS[algorithm];
  if (!build) throw new RangeError(`unknown all-reduce algorithm "${String(algorithm)}"; expected one of ${ALL_REDUCE_SCHEDULES.join(', ')}`);
  return build(world, rank, length, opts);
}

/** Sum (or with `average`, mean) of `data` over all ranks, in place, by the named algorithm. */
export function runAllReduceBy(
  algorithm: AllReduceSchedule,
  transport: Transport,
  data: Float32Array,
  opts: RunOptions & ScheduleOptions,
): Promise<RunStats> {
  return runSchedule(transport, allReduceSchedule(algorithm, transport.world, transport.rank, data.length, opts), data, opts);
}
