import { describe, expect, it } from 'vitest';
import type { PipelineLabEvent } from '../shared/events';
import { EMPTY_PIPELINE, reducePipelineEvent, type PipelineSlice } from './pipeline-slice';

const op = (round: number, rank: number, micro: number, tStart: number): PipelineLabEvent => ({
  type: 'pipeline',
  rank,
  kind: 'forward',
  stage: rank,
  micro,
  round,
  tStart,
  tEnd: tStart + 1,
});

describe('pipeline slice', () => {
  it('groups events by step in round order, and a repeated op replaces the first delivery', () => {
    let s: PipelineSlice = EMPTY_PIPELINE;
    for (const e of [op(2, 0, 0, 10), op(1, 0, 0, 1), op(2, 1, 0, 11), op(2, 0, 0, 10.5)]) s = reducePipelineEvent(s, e, 8);
    expect(s.steps.map((x) => x.round)).toEqual([1, 2]);
    expect(s.steps[1].events.map((e) => [e.rank, e.tStart])).toEqual([
      [0, 10.5],
      [1, 11],
    ]);
  });

  it('keeps the newest `limit` steps; a viewer replaying a step keeps it while older ones leave', () => {
    let s: PipelineSlice = EMPTY_PIPELINE;
    for (let round = 0; round < 5; round++) s = reducePipelineEvent(s, op(round, 0, 0, round), 3);
    expect(s.steps.map((x) => x.round)).toEqual([2, 3, 4]);
    s = { ...s, selected: 2 }; // round 4
    s = reducePipelineEvent(s, op(5, 0, 0, 5), 3);
    expect(s.steps[s.selected!].round).toBe(4);
    s = reducePipelineEvent(s, op(6, 0, 0, 6), 3);
    s = reducePipelineEvent(s, op(7, 0, 0, 7), 3);
    // Round 4 has left the window: the oldest kept step is shown instead.
    expect(s.selected).toBe(0);
    expect(s.steps.map((x) => x.round)).toEqual([5, 6, 7]);
  });
});
