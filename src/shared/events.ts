// Everything the trainer and the mesh tell the rest of the tab. One zustand store reduces these
// (src/store), React views select from it, the automation API (`window.lab`) reads it. Producers never
// wait on consumers: they publish and move on.
import type { PipelineEvent } from '../collective/pipeline-executor';
import type { PipelineOpKind } from '../collective/pipeline-schedules';
import type { ChunkEvent, Phase } from '../collective/types';
import type { BackendInfo, MemoryKind } from '../engine/backend';

/** 'reforming': an elastic room lost or gained a tab and is re-forming its ring (src/lab/elastic/). */
export type RunState = 'idle' | 'connecting' | 'loading' | 'training' | 'reforming' | 'paused' | 'done' | 'error';

export interface StepMetrics {
  type: 'step';
  rank: number;
  step: number;
  /** Mean training loss of this rank's shard for the step. */
  loss: number;
  /** Samples per second over the whole room for this step. */
  samplesPerSec: number;
  computeMs: number;
  commMs: number;
  /**
   * Of computeMs and commMs, the time both ran at once (data parallelism all-reduces buckets while the
   * backward pass runs). So a step splits exactly into compute only (computeMs - overlapMs), both at once
   * (overlapMs), communication only (commMs - overlapMs), waiting, and the rest.
   */
  overlapMs: number;
  /** Time spent waiting on slower peers (barrier), apart from moving bytes. */
  waitMs: number;
  stepMs: number;
  bytesSent: number;
  bytesReceived: number;
  t: number;
}

export interface EvalMetrics {
  type: 'eval';
  rank: number;
  step: number;
  valLoss: number;
  /** Classifiers only. */
  accuracy?: number;
  t: number;
}

/**
 * The room's mean training loss of a step: every tab's own loss, carried by the replica check's hash
 * exchange (no round trip of its own) and averaged in rank order, so every tab shows the same number.
 */
export interface RoomLoss {
  type: 'room-loss';
  step: number;
  loss: number;
  /** Tabs whose loss went into the mean. */
  ranks: number;
}

export interface HashReport {
  type: 'hash';
  step: number;
  rank: number;
  hash: string;
}

export interface SampleText {
  type: 'sample';
  step: number;
  text: string;
}

export interface MemoryReport {
  type: 'memory';
  rank: number;
  bytes: Record<MemoryKind, number>;
}

export interface PeerInfo {
  peerId: string;
  rank: number;
  state: 'connecting' | 'connected' | 'disconnected' | 'failed';
  rttMs?: number;
  throughputBytesPerSec?: number;
  /** The link's ICE path: host (direct), srflx/prflx (through a NAT, found by STUN), relay (through TURN). */
  path?: 'host' | 'srflx' | 'prflx' | 'relay';
  backend?: BackendInfo;
  hashAgrees?: boolean;
  /** From the peer's presence card (src/peer/presence.ts): the name shown for it, its step and step time. */
  name?: string;
  step?: number;
  msPerStep?: number;
}

export interface PeersReport {
  type: 'peers';
  self: { peerId: string; rank: number; world: number; room: string; name?: string; step?: number; msPerStep?: number };
  peers: PeerInfo[];
}

export interface StateChange {
  type: 'state';
  state: RunState;
  error?: string;
}

export interface FrameRefused {
  type: 'refused';
  from: string;
  reason: string;
  t: number;
}

export interface LogLine {
  type: 'log';
  level: 'info' | 'warn' | 'error';
  message: string;
  t: number;
}

/** How the flat parameter vector is split across ranks for ZeRO (the dashboard's shard layout). */
export interface ZeroLayoutReport {
  type: 'zero-layout';
  stage: 0 | 1 | 2 | 3;
  /** Parameter elements in the flat vector. */
  total: number;
  /** Element range [start, end) each rank owns. */
  partition: { rank: number; start: number; end: number }[];
  /** Floats of optimizer state per parameter (AdamW 2, SGD with momentum 1). */
  optimizerFloatsPerParam: number;
}

/**
 * A room of unequal tabs agreed on new shares of the global batch (src/parallel/share-balancer.ts):
 * samples per rank from `fromStep` on, and the speeds they were computed from.
 */
export interface SharesReport {
  type: 'shares';
  /** The rank that published it (every rank publishes the same counts). */
  rank: number;
  fromStep: number;
  counts: number[];
  samplesPerSec: number[];
  t: number;
}

/**
 * shares=auto, parked tabs (src/lab/parked-tabs.ts): 'sat-out' a step this tab had no samples of and
 * did not train; 'brought-back' such a step after which it took a contributor's state (`bytes`
 * received); 'handed-over' a contributor sent its state (`bytes` per receiver) to `receivers` parked tabs.
 * `step` counts completed steps.
 */
export interface ParkingEvent {
  type: 'parking';
  kind: 'sat-out' | 'brought-back' | 'handed-over';
  rank: number;
  step: number;
  bytes: number;
  receivers: number;
  t: number;
}

/** One rank's vector in classroom mode after a schedule step, and the chunk it just received. */
export interface ClassroomRankState {
  rank: number;
  values: number[];
  received?: { chunk: number; from: number; values: number[] };
}

/** The whole room's state after one step of a gated all-reduce (step 0: before anything moved). */
export interface ClassroomSnapshot {
  step: number;
  phase: Phase | 'initial';
  perRank: ClassroomRankState[];
}

/**
 * Classroom mode: the lab runs one all-reduce on a small vector over the real mesh, one schedule step
 * per click, and publishes the state after each step. A new runId starts a new lesson.
 */
export interface ClassroomSnapshotEvent {
  type: 'classroom';
  runId: string;
  /** Element range [start, end) of each logical chunk, as the schedule chunked the vector. */
  chunks: { start: number; end: number }[];
  snapshot: ClassroomSnapshot;
  /** Schedule steps of the whole lesson (its last snapshot is step `steps`). */
  steps?: number;
  /** True in the tab that loaded the lesson: its Next releases the steps; the other tabs follow. */
  teaching?: boolean;
}

/** An elastic room's ring re-formed: who is in it now, who came and went, and the step it resumes at. */
export interface MembershipChange {
  type: 'membership';
  epoch: number;
  members: string[];
  rank: number;
  world: number;
  step: number;
  joined: string[];
  left: string[];
  reason: string;
  /** Whether this tab received the state it starts the epoch from (it was new, or behind). */
  receivedState: boolean;
}

/**
 * One op of a pipeline stage's schedule as it ran in this tab (src/collective/pipeline-executor.ts's
 * PipelineEvent: type 'pipeline', kind, stage, micro, peer?, bytes?, round, tStart, tEnd; plus the tab's
 * rank). tStart and tEnd are on this tab's clock (performance.now);
 * clockOffsetMs is this tab's performance.timeOrigin, so tStart + clockOffsetMs is epoch milliseconds and
 * several tabs' events draw on one time axis (to the precision the tabs' wall clocks agree).
 */
export interface PipelineLabEvent extends PipelineEvent {
  rank: number;
  clockOffsetMs?: number;
}

/** One report of a classroom pipeline lesson (src/lab/pipeline-lesson.ts): a stage's setup or an op it ran. */
export interface PipelineLessonReport {
  /** 0: the stage's setup (weights, and its inputs or targets); k >= 1: the k-th op of the pipeline. */
  step: number;
  /** The stage (= rank) that reported it. */
  rank: number;
  op?: { kind: PipelineOpKind; micro: number; peer?: number };
  /** The tensors that stage really held, computed, sent or received, by name. */
  tensors: { name: string; values: number[] }[];
}

/** A classroom pipeline lesson's report, published on every tab once it is known there. */
export interface PipelineLessonEvent {
  type: 'pipeline-lesson';
  runId: string;
  schedule: 'gpipe' | '1f1b';
  stages: number;
  micro: number;
  /** Ops of the whole lesson (its last step). */
  steps: number;
  /** This tab's stage. */
  stage: number;
  /** True in the tab that loaded the lesson: its Next releases the ops. */
  teaching: boolean;
  report: PipelineLessonReport;
}

/** The ops of a classroom tensor-parallel lesson (src/lab/tensor-class-lesson.ts), in lesson order. */
export const TENSOR_LESSON_OPS = ['layer1', 'layer2', 'all-reduce-output', 'layer2-grad', 'layer1-grad', 'all-reduce-input-grad', 'check'] as const;
export type TensorLessonOpKind = (typeof TENSOR_LESSON_OPS)[number];

/** One report of a classroom tensor-parallel lesson: a rank's shards (step 0) or an op it ran. */
export interface TensorLessonReport {
  step: number;
  rank: number;
  op?: { kind: TensorLessonOpKind };
  /** Matrices the rank really held or computed: row-major values, `cols` per row. */
  tensors: { name: string; values: number[]; cols?: number }[];
}

/** A classroom tensor-parallel lesson's report, published on every tab once it is known there. */
export interface TensorLessonEvent {
  type: 'tensor-lesson';
  runId: string;
  ranks: number;
  /** The last step. */
  steps: number;
  /** This tab's rank. */
  rank: number;
  teaching: boolean;
  report: TensorLessonReport;
}

/**
 * Expert parallelism, one step (src/lab/expert-run.ts): the tokens each tab of the room routed to each
 * expert (kept assignments, summed over the MoE blocks and micro-batches), the assignments each tab
 * dropped for want of capacity, and the load-balancing loss per block (the room's mean).
 */
export interface ExpertRoutingEvent {
  type: 'expert-routing';
  step: number;
  /** routed[tab][expert]. */
  routed: number[][];
  dropped: number[];
  /** Assignments each tab made (tokens x topk x blocks). */
  assignments: number[];
  auxLoss: number[];
  /** Bytes this tab sent in the step's all-to-alls, and the formula from the router's assignment. */
  wireBytes: number;
  wireFormulaBytes: number;
}

/** Tensor parallelism, one step (src/lab/tensor-run.ts): this tab's collectives per block and pass, with their bytes. */
export interface TensorCollectivesEvent {
  type: 'tensor-collectives';
  step: number;
  rank: number;
  collectives: { pass: 'forward' | 'backward'; block: number; sublayer: 'mlp' | 'attention'; micro: number; elements: number; bytesSent: number; ms: number }[];
}

/**
 * collective=auto's fit of the cost model (src/collective/cost-model.ts), agreed by the room: when the
 * ring formed (its probes) or at a refit during training (the probes and the buckets' timings).
 */
export interface LinkFit {
  /** 'formed': the ring's first fit (its probes); 'refit': the room's new fit during training. */
  kind: 'formed' | 'refit';
  /** The step it was made at (0-based; a refit takes effect from the next). */
  step: number;
  world: number;
  /** Seconds per round, per byte on one link, per byte a rank receives. */
  link: { alpha: number; beta: number; gamma: number };
  /** Root mean square relative error of the fit over its samples, and how many samples (the room's). */
  rmsRelativeError: number;
  samples: number;
  /** Refits: the buckets of the step before, each with the old fit's prediction and the measured time. */
  buckets: { bytes: number; algorithm: string; predictedMs: number; measuredMs: number }[];
  /**
   * What the room picks for those sizes (the probe sizes when formed): every candidate's prediction,
   * the pick's latency bound, and (auto) whether the pick followed measured times of the size's class
   * (`measuredMs`, each measured candidate's median) or the model alone.
   */
  picks: { bytes: number; algorithm: string; predictedMs: Record<string, number>; latencyBoundMs: number; source?: 'measured' | 'model'; measuredMs?: Record<string, number> }[];
  /** The room's measured medians per algorithm and size class (bytes: the median timed size), beside the new fit's prediction of that size. */
  measured?: { bytes: number; algorithm: string; measuredMs: number; predictedMs: number; samples: number }[];
  /** This rank's all-reduces so far, per size picked for and algorithm (trials included). */
  usage?: { bytes: number; algorithm: string; buckets: number }[];
}

export interface LinkFitEvent extends LinkFit {
  type: 'link-fit';
  t: number;
}

export type LabEvent =
  | ChunkEvent
  | MembershipChange
  | StepMetrics
  | EvalMetrics
  | HashReport
  | SampleText
  | MemoryReport
  | PeersReport
  | StateChange
  | FrameRefused
  | LogLine
  | ZeroLayoutReport
  | SharesReport
  | ParkingEvent
  | ClassroomSnapshotEvent
  | TensorLessonEvent
  | ExpertRoutingEvent
  | TensorCollectivesEvent
  | PipelineLabEvent
  | PipelineLessonEvent
  | RoomLoss
  | LinkFitEvent;

export type LabEventListener = (event: LabEvent) => void;

/** A tiny synchronous event bus: producers publish, subscribers (the store, tests) listen. */
export class EventBus {
  private listeners = new Set<LabEventListener>();

  subscribe(listener: LabEventListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  publish(event: LabEvent): void {
    for (const listener of this.listeners) listener(event);
  }
}
