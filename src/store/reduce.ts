// Turns one LabEvent into the change of the store's state. Ring buffers are appended in place (that is
// their point); every other slice is replaced, so React's selectors see new values.
import type { HashReport, LabEvent } from '../shared/events';
import { LIMITS, type HashRow, type LabData } from './lab-state';
import { reduceModelParallelEvent } from './model-parallel-slice';
import { reducePipelineEvent } from './pipeline-slice';
import { reducePipelineLesson } from './pipeline-lesson-slice';
import { reduceTensorLesson } from './tensor-lesson-slice';
import { reduceLinkFit } from './links-slice';

function appendBounded<T>(list: readonly T[], item: T, limit: number): T[] {
  const next = list.length >= limit ? list.slice(list.length - limit + 1) : list.slice();
  next.push(item);
  return next;
}

function hashAgreement(byRank: Record<number, string>, world: number): boolean | null {
  const distinct = new Set(Object.values(byRank));
  if (distinct.size > 1) return false;
  return Object.keys(byRank).length >= world ? true : null;
}

function reduceHash(state: LabData, event: HashReport): Partial<LabData> {
  const world = state.self?.world ?? 1;
  const rows = state.hashes;
  const at = rows.findIndex((row) => row.step === event.step);
  const before = at >= 0 ? rows[at] : { step: event.step, byRank: {}, agree: null };
  const byRank = { ...before.byRank, [event.rank]: event.hash };
  const row: HashRow = { step: event.step, byRank, agree: hashAgreement(byRank, world) };
  const newlyBroken = row.agree === false && before.agree !== false ? 1 : 0;
  let hashes: HashRow[];
  if (at >= 0) {
    hashes = rows.slice();
    hashes[at] = row;
  } else {
    hashes = appendBounded(rows, row, LIMITS.hashRows).sort((a, b) => a.step - b.step);
  }
  return { hashes, hashMismatches: state.hashMismatches + newlyBroken };
}

/** Counts a refusal by reason; a hostile peer inventing endless reasons cannot grow the table past the limit. */
function countReason(byReason: Record<string, number>, reason: string): Record<string, number> {
  const key = reason in byReason || Object.keys(byReason).length < LIMITS.refusalReasons ? reason : 'other reasons';
  return { ...byReason, [key]: (byReason[key] ?? 0) + 1 };
}

/** The partial state after `event`, or null when nothing changed. */
export function reduceLabEvent(state: LabData, event: LabEvent): Partial<LabData> | null {
  switch (event.type) {
    case 'chunk':
      state.chunks.push(event);
      return { chunkTick: state.chunkTick + 1 };
    case 'step':
      state.steps.push(event);
      return { metricsTick: state.metricsTick + 1 };
    case 'eval':
      state.evals.push(event);
      return { metricsTick: state.metricsTick + 1 };
    case 'room-loss':
      state.roomLosses.push(event);
      return { metricsTick: state.metricsTick + 1 };
    case 'hash':
      return reduceHash(state, event);
    case 'sample':
      return { samples: appendBounded(state.samples, event, LIMITS.samples) };
    case 'memory':
      return { memory: { ...state.memory, [event.rank]: event.bytes } };
    case 'peers':
      return { self: event.self, peers: event.peers };
    case 'state':
      return { run: { state: event.state, error: event.error ?? null } };
    case 'refused': {
      const { refused } = state;
      return {
        refused: {
          recent: appendBounded(refused.recent, event, LIMITS.refused),
          total: refused.total + 1,
          byReason: countReason(refused.byReason, event.reason),
        },
      };
    }
    case 'log':
      return { logs: appendBounded(state.logs, event, LIMITS.logs) };
    case 'zero-layout':
      return { zeroLayout: event };
    case 'membership':
      // A re-formed ring starts from even shares again (src/parallel/strategy.ts speedShares).
      return { ring: appendBounded(state.ring, event, LIMITS.ring), shares: null };
    case 'shares':
      return { shares: event };
    case 'parking':
      // Counted in window.lab.metrics().parking; the Shares panel already shows who has no samples.
      return null;
    case 'classroom': {
      const lesson = state.classroom;
      const sameLesson = lesson.runId === event.runId;
      const snapshots = sameLesson ? lesson.snapshots.slice() : [];
      // Keyed by step so that a repeated publication replaces rather than duplicates.
      const at = snapshots.findIndex((s) => s.step === event.snapshot.step);
      if (at >= 0) snapshots[at] = event.snapshot;
      else snapshots.push(event.snapshot);
      snapshots.sort((a, b) => a.step - b.step);
      // A viewer on the newest step follows the lesson forward; one who stepped back stays there.
      const atNewest = sameLesson && lesson.index >= lesson.snapshots.length - 1;
      // A new ring lesson replaces a pipeline or tensor lesson: that one can no longer be stepped from here.
      const replaced = !sameLesson ? { pipelineLesson: { ...state.pipelineLesson, teaching: false }, tensorLesson: { ...state.tensorLesson, teaching: false } } : {};
      return {
        ...replaced,
        classroom: {
          runId: event.runId,
          chunks: event.chunks,
          snapshots,
          index: !sameLesson ? 0 : atNewest ? snapshots.length - 1 : lesson.index,
          steps: event.steps ?? null,
          teaching: event.teaching === true,
        },
      };
    }
    case 'pipeline':
      return { pipeline: reducePipelineEvent(state.pipeline, event, LIMITS.pipelineSteps) };
    case 'expert-routing':
    case 'tensor-collectives':
      return { modelParallel: reduceModelParallelEvent(state.modelParallel, event, LIMITS.pipelineSteps) };
    case 'pipeline-lesson': {
      const pipelineLesson = reducePipelineLesson(state.pipelineLesson, event);
      // A tab runs one lesson at a time: the ring lesson it replaced can no longer be stepped from here.
      if (event.runId === state.pipelineLesson.runId) return { pipelineLesson };
      return { pipelineLesson, classroom: { ...state.classroom, teaching: false }, tensorLesson: { ...state.tensorLesson, teaching: false } };
    }
    case 'tensor-lesson': {
      const tensorLesson = reduceTensorLesson(state.tensorLesson, event);
      if (event.runId === state.tensorLesson.runId) return { tensorLesson };
      // A tab runs one lesson at a time: the lesson this one replaced can no longer be stepped from here.
      return { tensorLesson, classroom: { ...state.classroom, teaching: false }, pipelineLesson: { ...state.pipelineLesson, teaching: false } };
    }
    case 'link-fit':
      return { links: reduceLinkFit(state.links, event) };
    default: {
      // Compile-time exhaustiveness; at run time an unknown event (a newer peer) is ignored, because
      // the bus is synchronous and a throw here would land in the producer's step loop.
      const unknown: never = event;
      void unknown;
      return null;
    }
  }
}
