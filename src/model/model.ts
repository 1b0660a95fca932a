// What the trainer, the data-parallel layer and the dashboard need from a model, whatever it is.
import type { Backend, DeviceBuffer, View } from '../engine/backend';
import { alignUp, viewOf } from '../engine/backend';
import { initialParams } from './init';
import type { FlatRange, ParamLayout } from './layout';

/** One micro-batch, already on the host in preallocated arrays. */
export interface Batch {
  /** MLP: float inputs [rows, features]. GPT: token ids [rows, seqLen]. */
  inputs: Float32Array | Uint32Array;
  /** MLP: class ids [rows]. GPT: next-token ids [rows, seqLen]. */
  targets: Uint32Array;
  /** Samples (MLP) or sequences (GPT); at most the model's `maxRows`. */
  rows: number;
  /** GPT only: sequence length, at most blockSize (default blockSize). */
  seqLen?: number;
}

export interface ForwardResult {
  /** Per-prediction losses: [rows] for the MLP, [rows * seqLen] for the GPT. */
  losses: View;
  /** Softmax probabilities [lossRows, classes]. */
  probs: View;
  lossRows: number;
  classes: number;
}

export interface GradHooks {
  /**
   * Called during `backward` as soon as the ops that finish a layer's gradients are recorded, in
   * reverse layer order. Reading the range through the backend is ordered after them, so a
   * data-parallel trainer can start all-reducing this bucket while earlier layers are still computed.
   */
  onGradReady(range: FlatRange, group: string): void;
}

export interface Model {
  readonly kind: 'mlp' | 'gpt';
  readonly layout: ParamLayout;
  /** The flat parameter buffer (kind 'params') and its gradient twin (kind 'grads'), same layout. */
  readonly params: DeviceBuffer;
  readonly grads: DeviceBuffer;
  /** Largest micro-batch the activations were allocated for. */
  readonly maxRows: number;
  /** Predictions (loss rows) in a full micro-batch: maxRows for the MLP, maxRows * blockSize for the GPT. */
  readonly maxLossRows: number;
  /** Predictions the batch makes: the mean loss of a step divides by these. */
  lossRowsOf(batch: Batch): number;
  /** Writes the seeded initial parameters to the device. */
  init(seed: number): void;
  /**
   * Uploads the batch and records the forward pass and the fused loss. The loss gradient is scaled by
   * `gradScale` (1 / (rows * microBatches) for a mean over the step; 0 for evaluation).
   */
  forward(batch: Batch, gradScale: number): ForwardResult;
  /** Records the backward pass of the last forward: parameter gradients are ACCUMULATED into `grads`. */
  backward(hooks?: GradHooks): void;
  /**
   * Optional: a forward whose first layer is recorded block by block, each block reading only its own
   * part of the parameters (see StartedForward). `forward` must equal startForward(batch).finish(scale)
   * bit for bit, so that a trainer may record blocks early or not at all.
   */
  startForward?(batch: Batch): StartedForward;
  /** Frees every buffer the model allocated. */
  dispose(): void;
}

/**
 * A contiguous part of a model, in its units (MLP layers, GPT blocks): [from, to). A pipeline stage
 * holds one part; the whole model is the part [0, units), and a model built without a part is exactly
 * the model built with the whole part (same layout, same bits).
 */
export interface ModelPart {
  from: number;
  to: number;
}

/** `part` checked against a model of `units` units; the whole model when absent. */
export function resolvePart(part: ModelPart | undefined, units: number, what: string): ModelPart {
  if (!part) return { from: 0, to: units };
  const { from, to } = part;
  if (!Number.isInteger(from) || !Number.isInteger(to) || from < 0 || to > units || from >= to) {
    throw new RangeError(`a model part must be a non-empty range of ${what} within [0, ${units}], got [${from}, ${to})`);
  }
  return { from, to };
}

/** What a pipeline stage's forward gives: the loss (the last stage) or the activation it sends on. */
export interface StageForward {
  /** The last stage: losses and probabilities, as Model.forward gives them. */
  result?: ForwardResult;
  /** Every other stage: the output activation for the next stage, [rows, ...] flat. */
  output?: View;
}

/**
 * A model that can be one stage of a pipeline (both of ours, built with a `part`). Each instance holds
 * one micro-batch's activations; instances of one stage share its parameters and gradients through
 * one TensorStorage (src/model/pipeline-stage.ts keeps as many as there are micro-batches in flight).
 */
export interface StagedModel extends SegmentedModel {
  readonly part: ModelPart;
  /** Units (MLP layers, GPT blocks) of the whole model. */
  readonly units: number;
  readonly isFirstStage: boolean;
  readonly isLastStage: boolean;
  /**
   * Tensors this stage holds a copy of that another stage holds too (a GPT's tied wte on its first and
   * last stage): their gradients must be summed across those stages before each update.
   */
  readonly tiedTensors: readonly string[];
  /** Elements of the activation this stage receives for `batch` (0 for the first stage). */
  inputLength(batch: Batch): number;
  /** Elements of the activation this stage sends on for `batch` (0 for the last stage). */
  outputLength(batch: Batch): number;
  /**
   * Records the stage's forward of one micro-batch. The first stage reads `batch.inputs`; the others
   * read `input` (the previous stage's output). Every stage reads the batch's shape; the last its
   * targets, and only the last computes the loss (its gradient scaled by `gradScale`).
   */
  forwardStage(batch: Batch, gradScale: number, input?: Float32Array): StageForward;
  /**
   * Records the backward of the last forwardStage from `outputGrad` (the next stage's input gradient;
   * absent on the last stage, which starts from its loss). Parameter gradients are ACCUMULATED.
   * Returns the gradient of this stage's input activation (undefined on the first stage).
   */
  backwardStage(outputGrad?: Float32Array, hooks?: GradHooks): View | undefined;
}

/**
 * A forward pass begun (the batch is uploaded) whose first layer is recorded in blocks, so that the
 * next step's forward can start on the blocks whose parameters are already updated while the rest are
 * still being averaged (train/forward-prefetch.ts). The blocks are recorded in one fixed order, whoever
 * records them and whenever: the first layer's sums are then the same on every rank and every run.
 */
export interface StartedForward {
  /** The parameters (flat layout ranges) each block reads, in the order the blocks are recorded. */
  readonly blocks: readonly FlatRange[];
  /** Blocks recorded so far. */
  readonly recorded: number;
  /** Prediction rows of the batch (lossRowsOf). */
  readonly lossRows: number;
  /** false once another forward has started on the model: its activations no longer hold this one. */
  readonly current: boolean;
  /** Records the next block (blocks[recorded]). */
  recordBlock(): void;
  /** Records the blocks not yet recorded and the rest of the forward, with the loss. */
  finish(gradScale: number): ForwardResult;
}

/**
 * Where a model's layers find their parameters and gradients. By default both are full flat buffers
 * (`fullStorage`); ZeRO (src/parallel/zero) keeps only this rank's shard and lends each layer group a
 * gathered slot while its ops are recorded. Models resolve every parameter and gradient view through
 * this, never through `params`/`grads` directly.
 */
export interface TensorStorage {
  /** What `Model.params` names: the full flat buffer, or (ZeRO-3) this rank's shard of it. */
  readonly params: DeviceBuffer;
  /** What `Model.grads` names: the full flat buffer, or (ZeRO-2/3) this rank's shard of it. */
  readonly grads: DeviceBuffer;
  param(name: string): View;
  grad(name: string): View;
  /** Stores the initial values: the full vector, or (a sharded storage) just the range it holds. */
  writeParams(values: Float32Array): void;
  /** The flat range of the parameters this storage holds (ZeRO-3: its shard); absent: all of them. */
  readonly heldParams?: FlatRange;
  dispose(): void;
}

/** Builds a model's storage once its layout is known (recipes pass ZeRO's factory through). */
export type StorageFactory = (layout: ParamLayout, label: string) => TensorStorage;

/** Plain storage: one full flat buffer each for parameters and gradients. */
export const fullStorage =
  (backend: Backend): StorageFactory =>
  (layout, label) => {
    const params = backend.alloc(layout.totalLength, `${label}.params`, 'params');
    const grads = backend.alloc(layout.totalLength, `${label}.grads`, 'grads');
    backend.fill(viewOf(grads), 0);
    return {
      params,
      grads,
      param: (name) => tensorView(params, layout, name),
      grad: (name) => tensorView(grads, layout, name),
      writeParams: (full) => backend.write(viewOf(params), full),
      dispose: () => {
        backend.free(params);
        backend.free(grads);
      },
    };
  };

/**
 * A piece of a forward or backward pass that reads only the parameters of `groups` (and, backward,
 * accumulates only the gradients of `gradGroups`). ZeRO-3 gathers `groups` before `record` and releases
 * them after; a plain pass just records the segments one after another.
 */
export interface PassSegment {
  /** Groups whose parameters the ops read (may be empty: a layer's weight gradient needs none). */
  readonly groups: readonly string[];
  /**
   * Backward only: groups whose gradients the ops accumulate into; `groups` when absent. Splitting a
   * layer's backward into an input-gradient segment (reads the weights, writes no parameter gradient)
   * and a weight-gradient segment (writes gradients, reads no weights) lets ZeRO-3 hold one layer-sized
   * slot at a time: the gathered weights' slot is handed to the gradients once it is released.
   */
  readonly gradGroups?: readonly string[];
  record(): void;
}

/** The groups a backward segment writes gradients into. */
export function gradGroupsOf(segment: PassSegment): readonly string[] {
  return segment.gradGroups ?? segment.groups;
}

/** Models that can hand out their passes segment by segment (both of ours). */
export interface SegmentedModel extends Model {
  forwardSegments(batch: Batch, gradScale: number): { result: ForwardResult; segments: PassSegment[] };
  /** The backward of the last forward. `hooks` get each group's final gradient range, as in `backward`. */
  backwardSegments(hooks?: GradHooks): PassSegment[];
}

export function recordAll(segments: readonly PassSegment[]): void {
  for (const s of segments) s.record();
}

/** Helper shared by the models: the named view of a flat parameter-layout buffer. */
export function tensorView(buf: DeviceBuffer, layout: ParamLayout, name: string): View {
  const e = layout.entries.find((x) => x.name === name);
  if (!e) throw new Error(`no tensor named "${name}"`);
  return viewOf(buf, e.offset, e.length);
}

export function writeInitialParams(backend: Backend, model: Model, seed: number): void {
  backend.write(viewOf(model.params), initialParams(model.layout, seed));
}

/**
 * Activations of one model in one buffer with aligned named slots (llm.c's acts). Views are cut to the
 * size of the current micro-batch at use, always starting at the slot's aligned offset.
 */
export class ActivationArena {
  private readonly slots = new Map<string, { offset: number; capacity: number }>();
  private next = 0;
  private buffer: DeviceBuffer | undefined;

  constructor(private readonly backend: Backend, private readonly label: string, private readonly dtype: 'f32' | 'u32' = 'f32') {}

  reserve(name: string, capacity: number): void {
    if (this.buffer) throw new Error(`${this.label}: reserve "${name}" after allocation`);
    if (this.slots.has(name)) throw new Error(`${this.label}: slot "${name}" reserved twice`);
    this.slots.set(name, { offset: this.next, capacity });
    this.next += alignUp(capacity);
  }

  allocate(): void {
    this.buffer = this.backend.alloc(Math.max(this.next, alignUp(1)), this.label, 'activations', this.dtype);
  }

  /** The first `length` elements of slot `name`. */
  view(name: string, length: number): View {
    const slot = this.slots.get(name);
    if (!slot || !this.buffer) throw new Error(`${this.label}: no slot "${name}" (or not allocated)`);
    if (length > slot.capacity) throw new RangeError(`${this.label}: ${name} needs ${length}, holds ${slot.capacity}`);
    return viewOf(this.buffer, slot.offset, length);
  }

  free(): void {
    if (this.buffer) this.backend.free(this.buffer);
    this.buffer = undefined;
  }
}
