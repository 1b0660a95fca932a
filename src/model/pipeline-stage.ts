// One stage of a pipeline-parallel model: the contiguous part of the MLP's layers or the GPT's blocks
// that one tab holds (its own flat parameter and gradient buffers; the optimizer state follows the same
// layout), and the activations of every micro-batch it has run forward and not yet backward. A model
// instance holds one micro-batch's activations, so the stage keeps one instance per micro-batch in
// flight, all sharing the stage's parameters and gradients through one TensorStorage: a schedule that
// keeps k micro-batches in flight allocates k activation sets, and the backend's byte count of
// activations (real allocations) shows it. Sets are reused once released, never freed before dispose.
import type { Backend, View } from '../engine/backend';
import { Gpt, type GptConfig } from './gpt';
import type { ParamLayout } from './layout';
import { Mlp, type MlpConfig } from './mlp';
import { type Batch, fullStorage, type GradHooks, type ModelPart, type StagedModel, type StageForward, type StorageFactory, type TensorStorage } from './model';

export type StageModelSpec =
  | { kind: 'mlp'; config: MlpConfig; maxRows: number }
  | { kind: 'gpt'; config: GptConfig; maxRows: number };

/** Units (MLP layers, GPT blocks) of the whole model a spec describes. */
export function unitsOf(spec: StageModelSpec): number {
  return spec.kind === 'mlp' ? spec.config.sizes.length - 1 : spec.config.nLayer;
}

/**
 * `units` split into `stages` contiguous parts as even as can be (the first `units % stages` stages
 * take one unit more). Each stage needs at least one unit.
 */
export function splitUnits(units: number, stages: number): ModelPart[] {
  if (!Number.isInteger(stages) || stages < 1) throw new RangeError(`stages must be an integer >= 1, got ${stages}`);
  if (!Number.isInteger(units) || units < stages) {
    throw new RangeError(`${units} layers/blocks cannot be split into ${stages} stages: each stage needs at least one`);
  }
  const base = Math.floor(units / stages);
  const extra = units % stages;
  const parts: ModelPart[] = [];
  let from = 0;
  for (let s = 0; s < stages; s++) {
    const to = from + base + (s < extra ? 1 : 0);
    parts.push({ from, to });
    from = to;
  }
  return parts;
}

export class PipelineStage {
  readonly part: ModelPart;
  /** The instance that owns the storage (and the first activation set). */
  private readonly primary: StagedModel;
  private readonly idle: StagedModel[] = [];
  private readonly inFlight = new Map<number, StagedModel>();
  private sets = 0;
  private activationBytesPeak = 0;
  private readonly makeInstance: (storage: StorageFactory) => StagedModel;
  /** The primary's storage, lent to every further activation set (whose dispose leaves it alone). */
  private readonly sharedStorage: StorageFactory;

  constructor(
    private readonly backend: Backend,
    readonly spec: StageModelSpec,
    readonly stage: number,
    readonly stages: number,
  ) {
    if (!Number.isInteger(stage) || stage < 0 || stage >= stages) throw new RangeError(`stage must be an integer in [0, ${stages}), got ${stage}`);
    this.part = splitUnits(unitsOf(spec), stages)[stage];
    this.makeInstance = (storage) =>
      spec.kind === 'mlp' ? new Mlp(backend, spec.config, spec.maxRows, storage, this.part) : new Gpt(backend, spec.config, spec.maxRows, storage, this.part);
    let shared: TensorStorage | undefined;
    this.primary = this.makeInstance((layout, label) => (shared = fullStorage(backend)(layout, label)));
    const storage = shared;
    if (!storage) throw new Error('the stage model did not build its storage');
    // Further activation sets read and write the same parameters and gradients; only the primary frees them.
    this.sharedStorage = () => ({ ...storage, dispose: () => undefined });
    this.noteAllocation();
    this.idle.push(this.primary);
  }

  get layout(): ParamLayout {
    return this.primary.layout;
  }
  get model(): StagedModel {
    return this.primary;
  }
  get isFirst(): boolean {
    return this.primary.isFirstStage;
  }
  get isLast(): boolean {
    return this.primary.isLastStage;
  }

  /** Activation sets allocated so far: the most micro-batches this stage has held at once. */
  get activationSets(): number {
    return this.sets;
  }

  /** The backend's activation bytes, at most, since the stage was built (real allocations). */
  get peakActivationBytes(): number {
    return this.activationBytesPeak;
  }

  /** Micro-batches forwarded and not yet released. */
  get microBatchesInFlight(): number {
    return this.inFlight.size;
  }

  init(seed: number): void {
    this.primary.init(seed);
  }

  /** Records micro-batch `micro`'s forward in an activation set of its own. */
  forward(micro: number, batch: Batch, gradScale: number, input?: Float32Array): StageForward {
    if (this.inFlight.has(micro)) throw new Error(`stage ${this.stage}: micro-batch ${micro} is already in flight`);
    const instance = this.idle.pop() ?? this.allocateSet();
    this.inFlight.set(micro, instance);
    try {
      return instance.forwardStage(batch, gradScale, input);
    } catch (error) {
      this.release(micro);
      throw error;
    }
  }

  /** Records micro-batch `micro`'s backward; returns its input gradient (undefined on the first stage). */
  backward(micro: number, outputGrad?: Float32Array, hooks?: GradHooks): View | undefined {
    const instance = this.inFlight.get(micro);
    if (!instance) throw new Error(`stage ${this.stage}: backward of micro-batch ${micro}, which is not in flight`);
    return instance.backwardStage(outputGrad, hooks);
  }

  /** Gives micro-batch `micro`'s activation set back for reuse (after its input gradient was read). */
  release(micro: number): void {
    const instance = this.inFlight.get(micro);
    if (!instance) return;
    this.inFlight.delete(micro);
    this.idle.push(instance);
  }

  dispose(): void {
    for (const instance of [...this.idle, ...this.inFlight.values()]) if (instance !== this.primary) instance.dispose();
    this.primary.dispose();
    this.idle.length = 0;
    this.inFlight.clear();
  }

  private allocateSet(): StagedModel {
    const instance = this.makeInstance(this.sharedStorage);
    this.noteAllocation();
    return instance;
  }

  private noteAllocation(): void {
    this.sets++;
    this.activationBytesPeak = Math.max(this.activationBytesPeak, this.backend.memory().activations);
  }
}
