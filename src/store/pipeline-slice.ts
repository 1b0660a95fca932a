// The store's record of pipeline steps (PipelineLabEvent, src/shared/events.ts): per optimizer step,
// every op event that reached this tab, from its own stage live and from the other tabs when they are
// sent to it. Events are kept as they arrived (no times invented, none moved); a repeat of the same op
// (a tab's own event, received again in the step's gathered set) replaces the first, so a step holds
// each (rank, op, micro-batch) once. Bounded: the newest LIMITS.pipelineSteps steps.
import type { PipelineLabEvent } from '../shared/events';

export interface PipelineStepRecord {
  round: number;
  events: PipelineLabEvent[];
}

export interface PipelineSlice {
  /** Recorded steps, oldest first. */
  steps: PipelineStepRecord[];
  /** The step on screen (index into `steps`), or null to follow the newest as it arrives. */
  selected: number | null;
}

export const EMPTY_PIPELINE: PipelineSlice = { steps: [], selected: null };

const opKey = (e: PipelineLabEvent): string => `${e.rank}|${e.kind}|${e.micro}`;

/** The slice after `event`; `limit` is how many steps are kept. */
export function reducePipelineEvent(slice: PipelineSlice, event: PipelineLabEvent, limit: number): PipelineSlice {
  const steps = slice.steps.slice();
  let at = steps.findIndex((s) => s.round === event.round);
  if (at < 0) {
    steps.push({ round: event.round, events: [] });
    steps.sort((a, b) => a.round - b.round);
    at = steps.findIndex((s) => s.round === event.round);
  }
  const events = steps[at].events.slice();
  const same = events.findIndex((e) => opKey(e) === opKey(event));
  if (same >= 0) events[same] = event;
  else events.push(event);
  steps[at] = { round: event.round, events };
  const dropped = Math.max(0, steps.length - limit);
  const kept = dropped > 0 ? steps.slice(dropped) : steps;
  // A viewer replaying an old step keeps it on screen while older steps leave the window.
  const selected = slice.selected === null ? null : slice.selected - dropped >= 0 ? slice.selected - dropped : 0;
  return { steps: kept, selected };
}
