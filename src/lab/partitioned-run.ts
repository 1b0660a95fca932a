// The seam between the run loop of model-parallel runs (partitioned-session.ts) and the kinds of such
// runs (pipeline-run.ts, tensor-run.ts, expert-run.ts). A partitioned run is one in
// which a tab holds a part of the model that no other pipeline, tensor or expert group holds: its run
// is built for its rank and world, trains one step as a collective of the whole room, hashes its part
// for a replica check within the group of tabs that hold the same part, evaluates (a collective too),
// and checkpoints its own part only, with the partition recorded in the file.
//
// A kind plugs in by implementing PartitionedRunKind and naming itself in partitionedKindOf
// (sessions.ts). The loop owns everything else: backend, data, room, the step loop, the
// replica check and its events, autosave and resume, the stop with a clear message when a tab is lost.
import type { Backend } from '../engine/backend';
import type { Transport } from '../collective/types';
import type { LabEvent } from '../shared/events';
import type { PipelineOpKind, PipelineScheduleKind } from '../collective/pipeline-schedules';
import type { TrainingRecipe } from '../train/defaults';
import type { GptConfig } from '../model/gpt';
import type { MlpConfig } from '../model/mlp';
import type { LabConfig } from './config';
import type { LoadedData } from './datasets';

/** What a kind is given to build this tab's part. */
export interface PartitionedBuildContext {
  config: LabConfig;
  backend: Backend;
  data: LoadedData;
  /** The whole room, in rank order. */
  transport: Transport;
  publish: (event: LabEvent) => void;
}

/** What one step or evaluation gives the loop to publish (the same figures on every tab). */
export interface PartitionedStepResult {
  /** Mean training loss of the room's global batch (every tab gets it, not only the tab that computed it). */
  loss: number;
  computeMs: number;
  commMs: number;
  waitMs: number;
}

export interface PartitionedEvalResult {
  valLoss: number;
  accuracy?: number;
}

export interface PartitionedRun {
  /** Shown in logs: 'pipeline 1f1b, stage 1 of 2, pipeline 0 of 2'. */
  readonly description: string;
  /** Which part this tab holds ('stage 1 of 2'): named in the replica check and in a lost tab's message. */
  readonly part: string;
  /**
   * The ranks (of the room) that hold the same part as this tab, this tab included: their hashes must
   * be equal after every step.
   */
  readonly replicaGroup: readonly number[];
  /** What part rank `rank` holds (for the message when it is lost). */
  partOf(rank: number): string;
  /** Completed steps (settable: a resumed run continues from its checkpoint's). */
  step: number;
  /** One optimizer step; a collective of the whole room (every tab calls it at the same step). */
  trainStep(): Promise<PartitionedStepResult>;
  /** The validation loss of the whole model; a collective of the whole room. */
  evaluate(): Promise<PartitionedEvalResult>;
  /**
   * A text sample of the whole model (a collective of the tabs that hold it), for a model that writes
   * text; absent or undefined otherwise.
   */
  sample?(): Promise<string | undefined>;
  /** This tab's part of the parameters (what the replica check hashes, what `params()` returns). */
  partParams(): Promise<Float32Array>;
  /** This tab's part as a checkpoint file (parameters, optimizer state, step, the partition). */
  checkpoint(meta: { world: number; rank: number; vocab: string[] | null }): Promise<Uint8Array>;
  /** Restores this tab's part from its own checkpoint; throws (leaving the run as it was) when it does not fit. Returns warnings. */
  restore(bytes: Uint8Array, world: number): string[];
  /** The recipe the kind resolved for this room (steps, evaluation and autosave cadence). */
  readonly recipe: TrainingRecipe;
  /** What the kind measured, for window.lab.metrics().partition (the swarm's figures). */
  figures(): PartitionFigures;
  /** Frees the part's device memory. */
  dispose(): void;
}

export interface PartitionedRunKind {
  /** 'pipeline' */
  readonly name: string;
  /** The tabs one copy of the model is split across (the room's size when none is given, part of the autosave key). */
  groupSize(config: LabConfig): number;
  /** Why this room cannot run the kind (checked once the room has formed), or null. */
  refuses(config: LabConfig, world: number): string | null;
  build(context: PartitionedBuildContext): PartitionedRun;
}

/** One op as it ran, in epoch milliseconds (performance.timeOrigin + the tab's clock). */
export interface TimedOp {
  kind: PipelineOpKind;
  stage: number;
  micro: number;
  /** The stage sent to or received from (messages only). */
  peer?: number;
  bytes?: number;
  tStart: number;
  tEnd: number;
}

/** A pipeline stage's own figures (pipeline-run.ts): what scripts/swarm.ts puts beside the formulas. */
export interface PipelineFigures {
  kind: 'pipeline';
  schedule: PipelineScheduleKind;
  stages: number;
  pipelines: number;
  micro: number;
  stage: number;
  pipeline: number;
  /** Device bytes of one micro-batch's activations on this stage (real allocation). */
  activationBytesPerSet: number;
  /** The most activation bytes this stage held at once (real allocations). */
  peakActivationBytes: number;
  /** The schedule's peak of micro-batches in flight on this stage (+ ahead, at most M) x activationBytesPerSet. */
  expectedPeakActivationBytes: number;
  /** Forwards a stage may run ahead of its list (config `ahead`; absent: 0). */
  ahead?: number;
  /** M x the activation bytes of each boundary this stage sends across (forward or back). */
  wireFormulaBytesPerStep: number;
  /** Where each tensor of this part sits in the part's vector and in the whole model's. */
  placement: { name: string; partOffset: number; wholeOffset: number; length: number }[];
  /** The last steps' ops as they ran. */
  steps: { round: number; ops: TimedOp[] }[];
}

/** A tensor shard's own figures (tensor-run.ts): measured bytes beside their formulas. */
export interface TensorFigures {
  kind: 'tensor';
  /** The whole model's shape (its layout and split plan put the shards together: tensor-split.ts gatherShards). */
  model: { kind: 'mlp'; config: MlpConfig } | { kind: 'gpt'; config: GptConfig };
  tensor: number;
  groups: number;
  tensorRank: number;
  group: number;
  micro: number;
  rowsPerMicro: number;
  /** Device bytes of this tab's parameters (real allocation) and the formula: (replicated + split / T) x 4. */
  paramBytes: number;
  paramFormulaBytes: number;
  /** Device bytes of this tab's optimizer state (real allocation) and the formula: the parameter formula x states per parameter. */
  optimizerBytes: number;
  optimizerFormulaBytes: number;
  /** The last step's tensor all-reduces. */
  collectivesPerStep: { forward: number; backward: number };
  /** Bytes this tab sent for them, and the formula: a ring's 2(T-1)/T of each all-reduced activation (GPT: 2 of B·S·C per block per pass). */
  wireBytesPerStep: number;
  wireFormulaBytesPerStep: number;
  /** Bytes sent averaging the shard over its replicas, and the ring's 2(D-1)/D of the shard. */
  dataParallelBytesPerStep: number;
  dataParallelFormulaBytesPerStep: number;
}

/** An expert-parallel tab's own figures (expert-run.ts): measured bytes beside their formulas, and the last step's routing. */
export interface ExpertFigures {
  kind: 'experts';
  /** The whole model's shape (every tab's part: the replicated tensors and experts expertRank·E/ep..). */
  model: GptConfig;
  experts: number;
  topk: number;
  capacityFactor: number;
  /** Tabs per expert-parallel group, and groups side by side (EP x DP). */
  ep: number;
  groups: number;
  expertRank: number;
  group: number;
  micro: number;
  /** Device bytes of this tab's parameters (real allocation) and the formula: (replicated + experts / ep) x 4. */
  paramBytes: number;
  paramFormulaBytes: number;
  /** Device bytes of this tab's optimizer state and the formula: the parameter formula x states per parameter. */
  optimizerBytes: number;
  optimizerFormulaBytes: number;
  /** The last step's all-to-alls. */
  exchangesPerStep: number;
  /** Bytes this tab sent in them, and the formula from the router's real assignment: (rows to other tabs x C + the count headers) x 4. */
  wireBytesPerStep: number;
  wireFormulaBytesPerStep: number;
  /** Bytes sent averaging gradients (replicated tensors over the room, experts over their replicas), and the rings' formula. */
  dataParallelBytesPerStep: number;
  dataParallelFormulaBytesPerStep: number;
  /** The last step's routing of every tab: routed[tab][expert] kept assignments, dropped and made assignments per tab. */
  routed: number[][];
  dropped: number[];
  assignments: number[];
  /** The last step's load-balancing loss per block (this tab's routing). */
  auxLoss: number[];
}

/** Each kind's figures. */
export type PartitionFigures = PipelineFigures | TensorFigures | ExpertFigures;
