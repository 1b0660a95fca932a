// The store's copy of a classroom tensor-parallel lesson (src/lab/tensor-class-lesson.ts): its size and
// every report that reached this tab, in lesson-step order. A new lesson (another runId) starts over; a
// report repeated for the same step and rank replaces the first.
import type { TensorLessonEvent, TensorLessonReport } from '../shared/events';

export interface TensorLessonSlice {
  runId: string | null;
  ranks: number;
  /** The last step. */
  steps: number;
  /** This tab's rank. */
  rank: number;
  teaching: boolean;
  /** Sorted by step, then rank. */
  reports: TensorLessonReport[];
}

export const NO_TENSOR_LESSON: TensorLessonSlice = { runId: null, ranks: 0, steps: 0, rank: 0, teaching: false, reports: [] };

export function reduceTensorLesson(slice: TensorLessonSlice, event: TensorLessonEvent): TensorLessonSlice {
  const same = slice.runId === event.runId;
  const reports = (same ? slice.reports : []).filter((r) => r.step !== event.report.step || r.rank !== event.report.rank);
  reports.push(event.report);
  reports.sort((a, b) => a.step - b.step || a.rank - b.rank);
  const { runId, ranks, steps, rank, teaching } = event;
  return { runId, ranks, steps, rank, teaching, reports };
}
