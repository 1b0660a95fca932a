// P pipeline stages in one process (a CPU backend each, the in-memory transport) and the one-tab
// reference they are compared against, on seeded random batches of a tiny MLP and GPT: for the unit
// tests and for scripts/pipeline-sim.ts, never for the product.
import { GroupTransport } from '../collective/group-transport';
import { createMemoryMesh, type MemoryMeshOptions } from '../collective/memory-transport';
import type { PipelineEvent } from '../collective/pipeline-executor';
import type { PipelineScheduleKind } from '../collective/pipeline-schedules';
import { deriveSeed, Rng } from '../data/random';
import { type Backend, viewOf } from '../engine/backend';
import { CpuBackend } from '../engine/cpu-backend';
import { Gpt } from '../model/gpt';
import { Mlp } from '../model/mlp';
import type { Batch } from '../model/model';
import { PipelineStage, type StageModelSpec } from '../model/pipeline-stage';
import { mlpLayout } from '../model/mlp';
import { gptLayout } from '../model/gpt';
import { paramsHash, type ParamLayout } from '../model/layout';
import type { BatchSource } from '../train/batches';
import { Optimizer, type OptimizerConfig } from '../train/optimizer';
import { Trainer } from '../train/trainer';
import { PipelineTrainer } from './pipeline-trainer';

export const TINY_MLP: StageModelSpec = { kind: 'mlp', config: { sizes: [6, 9, 7, 8, 5, 3] }, maxRows: 8 };
export const TINY_GPT: StageModelSpec = { kind: 'gpt', config: { vocabSize: 7, blockSize: 5, nLayer: 4, nHead: 2, nEmbd: 8 }, maxRows: 8 };

export const SGD: OptimizerConfig = { kind: 'sgd', lr: 0.1, momentum: 0.9, weightDecay: 0 };
export const ADAMW: OptimizerConfig = { kind: 'adamw', lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01 };

/**
 * Seeded random batches: the global batch of each step is drawn whole, then cut into `micro` equal
 * micro-batches, so any split of it sees the same rows.
 */
export class RandomBatches implements BatchSource {
  readonly rowsPerStep: number;
  private readonly rows: number;

  constructor(
    private readonly spec: StageModelSpec,
    private readonly globalRows: number,
    readonly microBatches: number,
    /** Data parallelism: this replica takes share `index` of `count` of every micro-batch. */
    private readonly replica = { index: 0, count: 1 },
    private readonly seed = 11,
  ) {
    if (globalRows % (microBatches * replica.count) !== 0) throw new RangeError(`${globalRows} rows do not split into ${microBatches} micro-batches x ${replica.count} replicas`);
    this.rowsPerStep = globalRows / replica.count;
    this.rows = globalRows / microBatches / replica.count;
  }

  next(step: number, micro: number): Batch {
    const rng = new Rng(deriveSeed(this.seed, step));
    const [inPerRow, outPerRow, inRange, classes] =
      this.spec.kind === 'mlp'
        ? [this.spec.config.sizes[0], 1, 0, this.spec.config.sizes[this.spec.config.sizes.length - 1]]
        : [this.spec.config.blockSize, this.spec.config.blockSize, this.spec.config.vocabSize, this.spec.config.vocabSize];
    const all = this.globalRows;
    const inputs = this.spec.kind === 'mlp' ? Float32Array.from({ length: all * inPerRow }, () => rng.normal()) : Uint32Array.from({ length: all * inPerRow }, () => rng.int(inRange));
    const targets = Uint32Array.from({ length: all * outPerRow }, () => rng.int(classes));
    const r = this.rows;
    const first = (micro * this.replica.count + this.replica.index) * r;
    return { inputs: inputs.subarray(first * inPerRow, (first + r) * inPerRow), targets: targets.subarray(first * outPerRow, (first + r) * outPerRow), rows: r };
  }
}

export function wholeLayout(spec: StageModelSpec): ParamLayout {
  return spec.kind === 'mlp' ? mlpLayout(spec.config) : gptLayout(spec.config);
}

/** One tab: the whole model, `micro` micro-batches of gradient accumulation per step. */
export async function trainOneTab(
  spec: StageModelSpec,
  optimizer: OptimizerConfig,
  globalRows: number,
  micro: number,
  steps: number,
  options: { seed?: number; backend?: () => Backend } = {},
): Promise<Float32Array> {
  const seed = options.seed ?? 5;
  const backend = options.backend?.() ?? new CpuBackend();
  // Room for the whole micro-batch (the size of the activation buffers changes no value).
  const maxRows = Math.max(spec.maxRows, globalRows / micro);
  const model = spec.kind === 'mlp' ? new Mlp(backend, spec.config, maxRows) : new Gpt(backend, spec.config, maxRows);
  model.init(seed);
  const opt = new Optimizer(backend, model.layout, optimizer);
  const trainer = new Trainer({ backend, model, optimizer: opt, batches: new RandomBatches(spec, globalRows, micro) });
  await trainer.train(steps);
  const params = await backend.read(viewOf(model.params));
  trainer.dispose();
  opt.dispose();
  model.dispose();
  return params;
}

export interface PipelineRun {
  /** The stages' parameters (of the first pipeline) put together in the whole model's layout. */
  params: Float32Array;
  /** Every stage's events (of the first pipeline), step by step. */
  events: PipelineEvent[][];
  stages: PipelineStage[];
  /** Mean loss of each step over the replicas' last stages. */
  losses: number[];
  /** Per stage, the parameter hash of each replica at the end (all equal when DP keeps them in step). */
  replicaHashes: string[][];
}

/** The replicas' all-reduces number their layer groups from here (the pipeline's own messages use 0 and 1). */
const REPLICA_COLLECTIVES = 16;

export interface PipelineRunOptions {
  steps?: number;
  seed?: number;
  mesh?: MemoryMeshOptions;
  computeDelayMs?: (kind: 'forward' | 'backward', micro: number) => number;
  /** Each stage's backend (default: a CpuBackend each). */
  backend?: (stage: number) => Backend;
  /** DP x PP: this many pipelines, each on its share of every micro-batch (default 1). */
  replicas?: number;
  /** Forwards each stage may run ahead of its list while a gradient is on its way (PipelineTrainer's). */
  ahead?: number;
}

/**
 * P stages, one backend each (CPU unless `options.backend`), over the in-memory transport; with
 * `replicas` D, D pipelines (room rank = replica * P + stage), each stage's replicas averaging their
 * gradients over a GroupTransport.
 */
export async function trainPipeline(
  spec: StageModelSpec,
  optimizer: OptimizerConfig,
  schedule: PipelineScheduleKind,
  stages: number,
  globalRows: number,
  micro: number,
  options: PipelineRunOptions = {},
): Promise<PipelineRun> {
  const D = options.replicas ?? 1;
  const P = stages;
  const room = createMemoryMesh(D * P, options.mesh);
  const parts = room.map((transport) => {
    const [replica, s] = [Math.floor(transport.rank / P), transport.rank % P];
    const backend = options.backend?.(s) ?? new CpuBackend();
    const stage = new PipelineStage(backend, spec, s, P);
    stage.init(options.seed ?? 5);
    const opt = new Optimizer(backend, stage.layout, optimizer);
    const group = Array.from({ length: D }, (_, d) => d * P + s);
    const trainer = new PipelineTrainer({
      backend,
      stage,
      optimizer: opt,
      batches: new RandomBatches(spec, globalRows, micro, { index: replica, count: D }),
      transport,
      rankOfStage: (st) => replica * P + st,
      schedule,
      computeDelayMs: options.computeDelayMs,
      ahead: options.ahead,
      ...(D > 1 ? { dataParallel: { transport: new GroupTransport(transport, group), firstCollective: REPLICA_COLLECTIVES } } : {}),
    });
    return { backend, stage, trainer, opt, replica };
  });
  const events: PipelineEvent[][] = [];
  const losses: number[] = [];
  for (let step = 0; step < (options.steps ?? 3); step++) {
    const reports = await Promise.all(parts.map((p) => p.trainer.trainStep()));
    events.push(reports.slice(0, P).flatMap((r) => r.events));
    const lastStages = reports.filter((_, r) => r % P === P - 1);
    losses.push(lastStages.reduce((sum, r) => sum + (r.loss ?? NaN), 0) / D);
  }
  const whole = wholeLayout(spec);
  const params = new Float32Array(whole.totalLength);
  const placed = new Map<string, Float32Array>();
  const replicaHashes: string[][] = Array.from({ length: P }, () => []);
  for (const { backend, stage, replica } of parts) {
    const own = await backend.read(viewOf(stage.model.params));
    replicaHashes[stage.stage].push(paramsHash(own));
    if (replica > 0) continue;
    for (const e of stage.layout.entries) {
      const values = own.subarray(e.offset, e.offset + e.length);
      const earlier = placed.get(e.name);
      if (earlier && !earlier.every((v, i) => Object.is(v, values[i]))) throw new Error(`the two copies of the tied ${e.name} differ`);
      placed.set(e.name, values);
      params.set(values, whole.entries.find((w) => w.name === e.name)!.offset);
    }
  }
  for (const { stage, opt } of parts) {
    stage.dispose();
    opt.dispose();
  }
  // The stages' figures (activation sets, peak bytes) stay readable after dispose.
  return { params, events, stages: parts.slice(0, P).map((p) => p.stage), losses, replicaHashes };
}

/** max |a - b| / max |b|: the largest difference relative to the largest parameter. */
export function maxRelativeDifference(a: Float32Array, b: Float32Array): number {
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < b.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return scale > 0 ? diff / scale : diff;
}
