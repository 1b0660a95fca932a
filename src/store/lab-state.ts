// The shape of the dashboard's one store. Low-frequency slices are immutable values that React selects;
// high-frequency series (step metrics, chunk events) live in mutable ring buffers, and a `tick` counter
// tells imperative consumers (canvas, uPlot, the ring's marker layer) that there is something new.
import type { ChunkEvent } from '../collective/types';
import type { MemoryKind } from '../engine/backend';
import { DEFAULT_CONFIG, type LabConfig } from '../lab/config';
import type {
  SharesReport,
  ClassroomSnapshot,
  EvalMetrics,
  FrameRefused,
  LogLine,
  MembershipChange,
  PeerInfo,
  PeersReport,
  RoomLoss,
  RunState,
  SampleText,
  StepMetrics,
  ZeroLayoutReport,
} from '../shared/events';
import { EMPTY_MODEL_PARALLEL, type ModelParallelSlice } from './model-parallel-slice';
import { EMPTY_PIPELINE, type PipelineSlice } from './pipeline-slice';
import { NO_PIPELINE_LESSON, type PipelineLessonSlice } from './pipeline-lesson-slice';
import { NO_TENSOR_LESSON, type TensorLessonSlice } from './tensor-lesson-slice';
import { NO_LINKS, type LinksSlice } from './links-slice';
import { RingBuffer } from './ring-buffer';

/** Bounds on everything the store keeps: a long run must not grow the tab's memory. */
export const LIMITS = {
  steps: 20_000,
  evals: 2_000,
  chunks: 4_096,
  hashRows: 256,
  refused: 100,
  samples: 20,
  logs: 300,
  ring: 50,
  /** Pipeline steps whose op events are kept for the timeline's replay. */
  pipelineSteps: 64,
  /** Distinct refusal reasons counted one by one; the rest are counted under 'other reasons'. */
  refusalReasons: 64,
} as const;

/** Parameter hashes reported for one step, and whether they agree. */
export interface HashRow {
  step: number;
  byRank: Record<number, string>;
  /** true: every rank of the room reported the same hash; false: two differ; null: still waiting. */
  agree: boolean | null;
}

export interface ClassroomSlice {
  runId: string | null;
  chunks: { start: number; end: number }[];
  snapshots: ClassroomSnapshot[];
  /** The snapshot on screen. */
  index: number;
  /** Schedule steps of the lesson, when the producer said (the last snapshot may not be here yet). */
  steps: number | null;
  /** This tab loaded the lesson: its Next releases the steps on every tab. */
  teaching: boolean;
}

export interface LabData {
  run: { state: RunState; error: string | null };
  /** This tab in its room, from the mesh; null before it has joined one. */
  self: PeersReport['self'] | null;
  peers: PeerInfo[];
  config: LabConfig;

  /** High-frequency series: mutated in place, watched through `metricsTick` / `chunkTick`. */
  steps: RingBuffer<StepMetrics>;
  evals: RingBuffer<EvalMetrics>;
  /** The room's mean training loss per logged step (the loss chart's train curve where it exists). */
  roomLosses: RingBuffer<RoomLoss>;
  chunks: RingBuffer<ChunkEvent>;
  metricsTick: number;
  chunkTick: number;

  hashes: HashRow[];
  /** Steps whose hashes disagreed, over the whole run (rows may have left the window). */
  hashMismatches: number;
  memory: Record<number, Record<MemoryKind, number>>;
  refused: { recent: FrameRefused[]; total: number; byReason: Record<string, number> };
  samples: SampleText[];
  logs: LogLine[];
  zeroLayout: ZeroLayoutReport | null;
  /** The room's last agreed shares of the global batch by speed (shares=auto); null: even shares. */
  shares: SharesReport | null;
  /** The last re-forms of an elastic room's ring (newest last). */
  ring: MembershipChange[];
  classroom: ClassroomSlice;
  /** Pipeline runs: each step's op events, for the timeline (pipeline-slice.ts). */
  pipeline: PipelineSlice;
  /** A classroom pipeline lesson's reports (pipeline-lesson-slice.ts). */
  pipelineLesson: PipelineLessonSlice;
  /** Expert runs' routing and tensor runs' collectives, per step (model-parallel-slice.ts). */
  modelParallel: ModelParallelSlice;
  /** A classroom tensor-parallel lesson's reports (tensor-lesson-slice.ts). */
  tensorLesson: TensorLessonSlice;
  /** collective=auto: the room's newest link fit and refit (links-slice.ts). */
  links: LinksSlice;
}

export interface LabActions {
  setConfig(patch: Partial<LabConfig>): void;
  /** Shows snapshot `index` of the loaded lesson (clamped to what exists). */
  setClassroomIndex(index: number): void;
  /** Shows recorded pipeline step `index`, or null to follow the newest. */
  setPipelineStep(index: number | null): void;
  /** Forgets the metrics of the previous run (before a new one, or on reset). */
  clearRun(): void;
}

export type LabState = LabData & LabActions;

export function initialLabData(config: LabConfig = DEFAULT_CONFIG): LabData {
  return {
    run: { state: 'idle', error: null },
    self: null,
    peers: [],
    config,
    steps: new RingBuffer<StepMetrics>(LIMITS.steps),
    evals: new RingBuffer<EvalMetrics>(LIMITS.evals),
    roomLosses: new RingBuffer<RoomLoss>(LIMITS.steps),
    chunks: new RingBuffer<ChunkEvent>(LIMITS.chunks),
    metricsTick: 0,
    chunkTick: 0,
    hashes: [],
    hashMismatches: 0,
    memory: {},
    refused: { recent: [], total: 0, byReason: {} },
    samples: [],
    logs: [],
    zeroLayout: null,
    shares: null,
    ring: [],
    classroom: { runId: null, chunks: [], snapshots: [], index: 0, steps: null, teaching: false },
    pipeline: EMPTY_PIPELINE,
    pipelineLesson: NO_PIPELINE_LESSON,
    modelParallel: EMPTY_MODEL_PARALLEL,
    tensorLesson: NO_TENSOR_LESSON,
    links: NO_LINKS,
  };
}
