// A multi-layer perceptron: Linear -> ReLU -> ... -> Linear -> softmax cross-entropy. Each layer's
// backward sits under its forward in the loop below, in llm.c's order.
//
// The first layer holds nearly all the parameters of an image MLP (MNIST: 98.6%) and its weight
// gradient is the LAST thing the backward pass computes, so a data-parallel ring could not start on it
// until the backward pass was over. So the batch is also uploaded transposed, in blocks of feature rows
// ([rows of features, batch rows], each block in its own aligned slot): each block of weight-gradient
// rows is then a contiguous matmul, computed and announced one by one (last rows first, so that
// announcements stay descending and adjacent), and the ring all-reduces a block while the GPU computes
// the next. Each gradient element is the same dot product as in one matmul.
//
// The forward uses the same blocks: the first layer's output is the sum of one matmul per row block of
// its weights (recorded last rows first, in that fixed order), so a data-parallel trainer can start the
// next step's forward on each block as soon as that block's update has landed (startForward).
//
// Built with a `part` (layers [from, to)), it is one stage of a pipeline (forwardStage/backwardStage):
// it holds only those layers' parameters; a stage after the first reads its input activation a{from}
// from the previous stage and hands back that activation's gradient da{from}; a stage before the last
// sends a{to} = relu(z{to}) and starts its backward from da{to}, the next stage's input gradient. The
// layer code is the same either way.
import { viewOf, VIEW_ALIGNMENT, type Backend, type DeviceBuffer, type View } from '../engine/backend';
import { heStd } from './init';
import { buildLayout, entry, groupRange, type FlatRange, type ParamLayout, type TensorSpec } from './layout';
import { initialParams, initialParamsOfPart } from './init';
import {
  ActivationArena,
  type Batch,
  type ForwardResult,
  fullStorage,
  type GradHooks,
  type ModelPart,
  type PassSegment,
  recordAll,
  resolvePart,
  type StagedModel,
  type StageForward,
  type StartedForward,
  type StorageFactory,
  type TensorStorage,
} from './model';

export interface MlpConfig {
  /** Layer widths from input to classes, e.g. [784, 128, 10]. */
  sizes: number[];
}

/** The layout of the whole MLP, or of its layers [part.from, part.to) (a pipeline stage). */
export function mlpLayout(config: MlpConfig, part?: ModelPart): ParamLayout {
  const { sizes } = config;
  if (sizes.length < 2 || sizes.some((s) => !Number.isInteger(s) || s <= 0)) {
    throw new RangeError(`MLP sizes must be >= 2 positive integers, got [${sizes.join(', ')}]`);
  }
  const { from, to } = resolvePart(part, sizes.length - 1, 'MLP layers');
  const specs: TensorSpec[] = [];
  for (let l = from; l < to; l++) {
    const group = `fc${l}`;
    specs.push({ name: `${group}.w`, shape: [sizes[l], sizes[l + 1]], group, decay: true, init: { kind: 'normal', std: heStd(sizes[l]) } });
    specs.push({ name: `${group}.b`, shape: [sizes[l + 1]], group, decay: false, init: { kind: 'constant', value: 0 } });
  }
  return buildLayout(specs);
}

export class Mlp implements StagedModel {
  readonly kind = 'mlp' as const;
  readonly layout: ParamLayout;
  /** The layers this instance holds: all of them unless it is a pipeline stage. */
  readonly part: ModelPart;
  readonly params: DeviceBuffer;
  readonly grads: DeviceBuffer;
  private readonly acts: ArenaSet;
  private readonly storage: TensorStorage;
  private rows = 0;
  /** Row blocks of the first layer's weight (and its gradient; see the file comment). */
  private readonly firstBlocks: FlatRange[];
  /**
   * The order the forward records the first layer's blocks in: last rows first, as the backward pass
   * announces their gradients, so the blocks whose updates land first are the first a trainer can use.
   */
  private readonly firstBlockOrder: number[];
  /** Counts forwards started: a StartedForward is current while no later one has started. */
  private forwards = 0;
  /** Host buffer the batch is transposed into (allocated once, not per step). */
  private readonly inputsT: Float32Array;

  constructor(
    private readonly backend: Backend,
    readonly config: MlpConfig,
    readonly maxRows: number,
    /** Where parameters and gradients live: full buffers unless ZeRO shards them. */
    storage: StorageFactory = fullStorage(backend),
    /** Layers [from, to) only: a pipeline stage. Default: the whole model. */
    part?: ModelPart,
  ) {
    if (!Number.isInteger(maxRows) || maxRows <= 0) throw new RangeError(`maxRows must be a positive integer, got ${maxRows}`);
    this.layout = mlpLayout(config, part);
    this.part = resolvePart(part, config.sizes.length - 1, 'MLP layers');
    this.storage = storage(this.layout, 'mlp');
    this.params = this.storage.params;
    this.grads = this.storage.grads;
    this.firstBlocks = this.isFirstStage ? firstLayerBlocks(config.sizes[0], config.sizes[1]) : [];
    this.firstBlockOrder = this.firstBlocks.map((_, k) => this.firstBlocks.length - 1 - k);
    this.inputsT = new Float32Array(this.isFirstStage ? maxRows * config.sizes[0] : 0);
    this.acts = new ArenaSet(backend, config.sizes, maxRows, this.firstBlocks, this.part);
  }

  get maxLossRows(): number {
    return this.maxRows;
  }

  lossRowsOf(batch: Batch): number {
    return batch.rows;
  }

  get layers(): number {
    return this.config.sizes.length - 1;
  }

  get units(): number {
    return this.layers;
  }

  get isFirstStage(): boolean {
    return this.part.from === 0;
  }

  get isLastStage(): boolean {
    return this.part.to === this.layers;
  }

  init(seed: number): void {
    const whole = this.isFirstStage && this.isLastStage;
    this.storage.writeParams(whole ? initialParams(this.layout, seed, this.storage.heldParams) : initialParamsOfPart(this.layout, mlpLayout(this.config), seed));
  }

  /** No tensor of an MLP is used by two layers. */
  get tiedTensors(): readonly string[] {
    return [];
  }

  inputLength(batch: Batch): number {
    return this.isFirstStage ? 0 : batch.rows * this.config.sizes[this.part.from];
  }

  outputLength(batch: Batch): number {
    return this.isLastStage ? 0 : batch.rows * this.config.sizes[this.part.to];
  }

  /** Layers from..to of one micro-batch: the loss on the last stage, the activation a{to} elsewhere. */
  forwardStage(batch: Batch, gradScale: number, input?: Float32Array): StageForward {
    const B = this.upload(batch, input);
    const result = this.isLastStage ? this.resultFor(B) : undefined;
    for (let l = this.part.from; l < this.part.to; l++) this.recordLayer(l, B, result, gradScale);
    if (result) return { result };
    const { sizes } = this.config;
    return { output: this.acts.f.view(`a${this.part.to}`, B * sizes[this.part.to]) };
  }

  /** From da{to} (the next stage's input gradient) or the loss, down to da{from} (undefined on stage 0). */
  backwardStage(outputGrad?: Float32Array, hooks?: GradHooks): View | undefined {
    if (this.rows === 0) throw new Error('backward before forward');
    const { sizes } = this.config;
    const B = this.rows;
    if (this.isLastStage) {
      if (outputGrad) throw new Error('the last stage starts its backward from the loss: it takes no output gradient');
    } else {
      const length = B * sizes[this.part.to];
      if (!outputGrad || outputGrad.length !== length) throw new RangeError(`output gradient of ${outputGrad?.length ?? 0} elements, need ${length} (${B} rows x ${sizes[this.part.to]})`);
      this.backend.write(this.acts.f.view(`da${this.part.to}`, length), outputGrad);
    }
    this.backward(hooks);
    return this.isFirstStage ? undefined : this.acts.f.view(`da${this.part.from}`, B * sizes[this.part.from]);
  }

  /** The whole-model entry points (forward, startForward, forwardSegments) on a stage would run half a model. */
  private requireWhole(what: string): void {
    if (!this.isFirstStage || !this.isLastStage) throw new Error(`${what} runs the whole model; a pipeline stage (layers ${this.part.from}..${this.part.to - 1}) runs forwardStage`);
  }

  forward(batch: Batch, gradScale: number): ForwardResult {
    return this.startForward(batch).finish(gradScale);
  }

  /**
   * Uploads the batch; the first layer's blocks are then recorded one by one (recordBlock) or all at
   * once by finish, always in the same order, so an early start changes no bit of the result.
   */
  startForward(batch: Batch): StartedForward {
    this.requireWhole('startForward');
    const B = this.upload(batch);
    const generation = this.forwards;
    const result = this.resultFor(B);
    const w0 = entry(this.layout, 'fc0.w');
    const nOut = this.config.sizes[1];
    const blocks = this.firstBlockOrder.map((k) => {
      const { offset: row, length: rows } = this.firstBlocks[k];
      return { offset: w0.offset + row * nOut, length: rows * nOut };
    });
    let recorded = 0;
    const isCurrent = () => this.forwards === generation;
    const live = () => {
      if (!isCurrent()) throw new Error('another forward has started on this model since: this one was overwritten');
    };
    return {
      blocks,
      lossRows: B,
      get recorded() {
        return recorded;
      },
      get current() {
        return isCurrent();
      },
      recordBlock: () => {
        live();
        if (recorded >= blocks.length) throw new Error(`all ${blocks.length} first-layer blocks are recorded already`);
        this.recordFirstLayerBlock(recorded++, B);
      },
      finish: (gradScale) => {
        live();
        this.recordLayer(0, B, result, gradScale, recorded);
        recorded = blocks.length;
        for (let l = 1; l < this.layers; l++) this.recordLayer(l, B, result, gradScale);
        return result;
      },
    };
  }

  /** One segment per layer (the loss rides with the last), so ZeRO-3 can gather one layer at a time. */
  forwardSegments(batch: Batch, gradScale: number): { result: ForwardResult; segments: PassSegment[] } {
    this.requireWhole('forwardSegments');
    const B = this.upload(batch);
    const result = this.resultFor(B);
    const segments: PassSegment[] = [];
    for (let l = 0; l < this.layers; l++) segments.push({ groups: [`fc${l}`], record: () => this.recordLayer(l, B, result, gradScale) });
    return { result, segments };
  }

  /**
   * Writes the batch (the inputs transposed, in the first layer's row blocks) and starts a new forward.
   * A later pipeline stage writes its input activation a{from} instead, and only the last the targets.
   */
  private upload(batch: Batch, input?: Float32Array): number {
    const { sizes } = this.config;
    const { from } = this.part;
    const B = checkBatch(batch, this.maxRows, this.isFirstStage ? sizes[0] : 0, 1);
    const b = this.backend;
    const f = this.acts.f;
    if (this.isFirstStage) {
      if (input) throw new Error('the first stage reads its input from the batch: it takes no input activation');
      if (!(batch.inputs instanceof Float32Array)) throw new TypeError('MLP inputs must be a Float32Array');
    } else if (!input || input.length !== B * sizes[from]) {
      throw new RangeError(`input activation of ${input?.length ?? 0} elements, need ${B * sizes[from]} (${B} rows x ${sizes[from]})`);
    }
    this.rows = B;
    this.forwards++;
    if (input) b.write(f.view(`a${from}`, B * sizes[from]), input);
    else {
      const inputsT = transposeInto(this.inputsT, batch.inputs as Float32Array, B, sizes[0]);
      this.firstBlocks.forEach(({ offset: row, length: rows }, k) => b.write(f.view(`a0T.${k}`, rows * B), inputsT.subarray(row * B, (row + rows) * B)));
    }
    if (this.isLastStage) b.write(this.acts.u.view('targets', B), batch.targets.subarray(0, B));
    return B;
  }

  private resultFor(B: number): ForwardResult {
    const { sizes } = this.config;
    const classes = sizes[sizes.length - 1];
    return { losses: this.acts.f.view('losses', B), probs: this.acts.f.view('probs', B * classes), lossRows: B, classes };
  }

  /**
   * z1 (+)= a0[:, rows] @ W0[rows, :] for the `i`-th block in recording order (the first one writes,
   * the others accumulate). The transposed input blocks the backward pass uses serve here as well.
   */
  private recordFirstLayerBlock(i: number, B: number): void {
    const nOut = this.config.sizes[1];
    const { offset: row, length: rows } = this.firstBlocks[this.firstBlockOrder[i]];
    const w = this.w(0);
    const f = this.acts.f;
    this.backend.matmul(f.view('z1', B * nOut), f.view(`a0T.${this.firstBlockOrder[i]}`, rows * B), viewOf(w.buf, w.offset + row * nOut, rows * nOut), B, rows, nOut, {
      transA: true,
      accumulate: i > 0,
    });
  }

  /**
   * Layer l's forward (from the first-layer block `fromBlock` on, for layer 0), then its ReLU or the
   * loss (`result` is there whenever l is the last layer: only the last stage holds it).
   */
  private recordLayer(l: number, B: number, result: ForwardResult | undefined, gradScale: number, fromBlock = 0): void {
    const { sizes } = this.config;
    const [nIn, nOut] = [sizes[l], sizes[l + 1]];
    const f = this.acts.f;
    const z = f.view(`z${l + 1}`, B * nOut);
    if (l === 0) for (let i = fromBlock; i < this.firstBlocks.length; i++) this.recordFirstLayerBlock(i, B);
    else this.backend.matmul(z, f.view(`a${l}`, B * nIn), this.w(l), B, nIn, nOut);
    this.backend.biasAdd(z, z, this.bias(l), B, nOut);
    if (l < this.layers - 1) this.backend.relu(f.view(`a${l + 1}`, B * nOut), z);
    else if (result) this.recordLoss(result, B, gradScale);
    else throw new Error('the last layer needs the forward result to record the loss into');
  }

  private recordLoss(result: ForwardResult, B: number, gradScale: number): void {
    const { sizes } = this.config;
    const classes = sizes[sizes.length - 1];
    const f = this.acts.f;
    this.backend.softmaxCrossEntropy(
      result.losses,
      result.probs,
      f.view(`dz${this.layers}`, B * classes),
      f.view(`z${this.layers}`, B * classes),
      this.acts.u.view('targets', B),
      B,
      classes,
      gradScale,
    );
  }

  backward(hooks?: GradHooks): void {
    recordAll(this.backwardSegments(hooks));
  }

  /**
   * Two segments per layer, last layer first: the gradient flowing to the layer's input (reads its
   * weights; the first layer has none to pass on, so it needs no weights in backward at all), then its
   * weight and bias gradients (read only activations). Both read dz of the layer, which nothing
   * overwrites in between.
   */
  backwardSegments(hooks?: GradHooks): PassSegment[] {
    if (this.rows === 0) throw new Error('backward before forward');
    const segments: PassSegment[] = [];
    const { from, to } = this.part;
    // A stage before the last starts from da{to}: dz{to} = relu'(z{to}) * da{to}.
    if (to < this.layers) segments.push({ groups: [], gradGroups: [], record: () => this.reluBackward(to) });
    for (let l = to - 1; l >= from; l--) {
      const group = `fc${l}`;
      if (l > 0) segments.push({ groups: [group], gradGroups: [], record: () => this.backwardInput(l) });
      segments.push({ groups: [], gradGroups: [group], record: () => this.backwardParams(l, hooks) });
    }
    return segments;
  }

  /**
   * dz{l} = relu'(z{l}) * (dz{l+1} @ W{l}^T). A stage's first layer stops at da{l}: z{l} and the ReLU
   * belong to the previous stage, which gets da{l} as its output gradient.
   */
  private backwardInput(l: number): void {
    const { sizes } = this.config;
    const B = this.rows;
    const f = this.acts.f;
    const [nIn, nOut] = [sizes[l], sizes[l + 1]];
    const da = f.view(`da${l}`, B * nIn);
    this.backend.matmul(da, f.view(`dz${l + 1}`, B * nOut), this.w(l), B, nOut, nIn, { transB: true });
    if (l > this.part.from) this.reluBackward(l);
  }

  /** dz{l} = relu'(z{l}) * da{l}. */
  private reluBackward(l: number): void {
    const n = this.rows * this.config.sizes[l];
    const f = this.acts.f;
    this.backend.reluBackward(f.view(`dz${l}`, n), f.view(`z${l}`, n), f.view(`da${l}`, n));
  }

  /** dW{l} += a{l}^T @ dz{l+1}; db{l} += sum over rows of dz{l+1}. */
  private backwardParams(l: number, hooks?: GradHooks): void {
    const { sizes } = this.config;
    const B = this.rows;
    const f = this.acts.f;
    const [nIn, nOut] = [sizes[l], sizes[l + 1]];
    const dz = f.view(`dz${l + 1}`, B * nOut);
    this.backend.biasBackward(this.dbias(l), dz, B, nOut);
    if (l > 0) {
      this.backend.matmul(this.dw(l), f.view(`a${l}`, B * nIn), dz, nIn, B, nOut, { transA: true, accumulate: true });
      hooks?.onGradReady(groupRange(this.layout, `fc${l}`), `fc${l}`);
      return;
    }
    // First layer: dW0[rows, :] += a0T[rows, :] @ dz1, block by block from the last rows to the first.
    const group = groupRange(this.layout, 'fc0');
    const dw = this.dw(0);
    let announcedFrom = group.offset + group.length; // the bias (and padding) go with the last block
    for (let k = this.firstBlocks.length - 1; k >= 0; k--) {
      const { offset: row, length: rows } = this.firstBlocks[k];
      this.backend.matmul(viewOf(dw.buf, dw.offset + row * nOut, rows * nOut), f.view(`a0T.${k}`, rows * B), dz, rows, B, nOut, { accumulate: true });
      const start = group.offset + row * nOut;
      hooks?.onGradReady({ offset: start, length: announcedFrom - start }, 'fc0');
      announcedFrom = start;
    }
  }

  /** Class with the highest probability for each row of the last forward's probabilities. */
  static argmax(probs: Float32Array, rows: number, classes: number): Uint32Array {
    const out = new Uint32Array(rows);
    for (let r = 0; r < rows; r++) {
      let best = 0;
      for (let c = 1; c < classes; c++) if (probs[r * classes + c] > probs[r * classes + best]) best = c;
      out[r] = best;
    }
    return out;
  }

  /** Predicted classes for a batch (reads the probabilities back). */
  async predict(batch: Batch): Promise<Uint32Array> {
    const result = this.forward(batch, 0);
    return Mlp.argmax(await this.backend.read(result.probs), result.lossRows, result.classes);
  }

  dispose(): void {
    this.acts.free();
    this.storage.dispose();
  }

  private w(l: number): View {
    return this.storage.param(`fc${l}.w`);
  }
  private bias(l: number): View {
    return this.storage.param(`fc${l}.b`);
  }
  private dw(l: number): View {
    return this.storage.grad(`fc${l}.w`);
  }
  private dbias(l: number): View {
    return this.storage.grad(`fc${l}.b`);
  }
}

/** The MLP's activations: a{l} (layer inputs), z{l} (pre-activations), their gradients, the loss. */
class ArenaSet {
  readonly f: ActivationArena;
  readonly u: ActivationArena;

  /** Slots of layers [part.from, part.to): a stage after the first holds its input a{from} and da{from}. */
  constructor(backend: Backend, sizes: number[], maxRows: number, firstBlocks: FlatRange[], part: ModelPart) {
    this.f = new ActivationArena(backend, 'mlp.acts');
    this.u = new ActivationArena(backend, 'mlp.targets', 'u32');
    const L = sizes.length - 1;
    const { from, to } = part;
    firstBlocks.forEach((block, k) => this.f.reserve(`a0T.${k}`, block.length * maxRows));
    if (from > 0) {
      this.f.reserve(`a${from}`, maxRows * sizes[from]);
      this.f.reserve(`da${from}`, maxRows * sizes[from]);
    }
    for (let l = from + 1; l <= to; l++) {
      this.f.reserve(`z${l}`, maxRows * sizes[l]);
      this.f.reserve(`dz${l}`, maxRows * sizes[l]);
      if (l < L) {
        this.f.reserve(`a${l}`, maxRows * sizes[l]);
        this.f.reserve(`da${l}`, maxRows * sizes[l]);
      }
    }
    if (to === L) {
      this.f.reserve('losses', maxRows);
      this.f.reserve('probs', maxRows * sizes[L]);
      this.u.reserve('targets', maxRows);
    }
    this.f.allocate();
    this.u.allocate();
  }

  free(): void {
    this.f.free();
    this.u.free();
  }
}

/** Blocks the first layer's weight gradient is computed and announced in, at most. */
export const FIRST_LAYER_BLOCKS = 8;

/**
 * Blocks of rows of the first layer's weight gradient ([nIn, nOut]), in row order. Every block starts
 * at a multiple of VIEW_ALIGNMENT elements (WebGPU binding offsets), so its rows are a multiple of
 * VIEW_ALIGNMENT / gcd(nOut, VIEW_ALIGNMENT); a layer too small for two such blocks is one block.
 */
export function firstLayerBlocks(nIn: number, nOut: number): FlatRange[] {
  const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));
  const unit = VIEW_ALIGNMENT / gcd(nOut, VIEW_ALIGNMENT);
  const size = Math.max(unit, Math.ceil(nIn / FIRST_LAYER_BLOCKS / unit) * unit);
  const blocks: FlatRange[] = [];
  for (let row = 0; row < nIn; row += size) blocks.push({ offset: row, length: Math.min(size, nIn - row) });
  return blocks;
}

/** [rows, cols] row-major -> [cols, rows] row-major, into the front of `out`. */
function transposeInto(out: Float32Array, data: Float32Array, rows: number, cols: number): Float32Array {
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = data[r * cols + c];
  return out.subarray(0, rows * cols);
}

/** Validates a batch against the model and returns its row count. */
export function checkBatch(batch: Batch, maxRows: number, inputsPerRow: number, targetsPerRow: number): number {
  const B = batch.rows;
  if (!Number.isInteger(B) || B <= 0 || B > maxRows) throw new RangeError(`batch of ${B} rows; this model takes 1..${maxRows}`);
  if (batch.inputs.length < B * inputsPerRow) throw new RangeError(`batch inputs hold ${batch.inputs.length}, need ${B * inputsPerRow}`);
  if (batch.targets.length < B * targetsPerRow) throw new RangeError(`batch targets hold ${batch.targets.length}, need ${B * targetsPerRow}`);
  return B;
}
