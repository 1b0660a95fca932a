// The store's record of expert and tensor parallelism (ExpertRoutingEvent, TensorCollectivesEvent in
// src/shared/events.ts): the newest steps of each, as they arrived, for the dashboard's routing heatmap
// and per-block collectives (src/ui/ExpertRoutingView.tsx, src/ui/TensorCollectivesView.tsx).
import type { ExpertRoutingEvent, TensorCollectivesEvent } from '../shared/events';

export interface ModelParallelSlice {
  /** Expert-parallel steps, oldest first. */
  expertSteps: ExpertRoutingEvent[];
  /** Tensor-parallel steps of this tab, oldest first. */
  tensorSteps: TensorCollectivesEvent[];
}

export const EMPTY_MODEL_PARALLEL: ModelParallelSlice = { expertSteps: [], tensorSteps: [] };

/** The slice after `event`, keeping the newest `limit` steps of each kind (a repeated step replaces the first). */
export function reduceModelParallelEvent(slice: ModelParallelSlice, event: ExpertRoutingEvent | TensorCollectivesEvent, limit: number): ModelParallelSlice {
  const keep = <T extends { step: number }>(steps: T[], next: T): T[] => [...steps.filter((s) => s.step !== next.step), next].sort((a, b) => a.step - b.step).slice(-limit);
  return event.type === 'expert-routing' ? { ...slice, expertSteps: keep(slice.expertSteps, event) } : { ...slice, tensorSteps: keep(slice.tensorSteps, event) };
}
