// The store's copy of a classroom pipeline lesson (src/lab/pipeline-lesson.ts): what it runs and every
// report that reached this tab, in lesson-step order. A new lesson (another runId) starts over; a report
// repeated for the same step and stage replaces the first.
import type { PipelineLessonEvent, PipelineLessonReport } from '../shared/events';

export interface PipelineLessonSlice {
  runId: string | null;
  schedule: PipelineLessonEvent['schedule'];
  stages: number;
  micro: number;
  /** Ops of the whole lesson. */
  steps: number;
  /** This tab's stage. */
  stage: number;
  teaching: boolean;
  /** Sorted by step, then stage. */
  reports: PipelineLessonReport[];
}

export const NO_PIPELINE_LESSON: PipelineLessonSlice = { runId: null, schedule: 'gpipe', stages: 0, micro: 0, steps: 0, stage: 0, teaching: false, reports: [] };

export function reducePipelineLesson(slice: PipelineLessonSlice, event: PipelineLessonEvent): PipelineLessonSlice {
  const same = slice.runId === event.runId;
  const reports = (same ? slice.reports : []).filter((r) => r.step !== event.report.step || r.rank !== event.report.rank);
  reports.push(event.report);
  reports.sort((a, b) => a.step - b.step || a.rank - b.rank);
  const { runId, schedule, stages, micro, steps, stage, teaching } = event;
  return { runId, schedule, stages, micro, steps, stage, teaching, reports };
}
