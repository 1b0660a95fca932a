// One rank of a tensor-parallel MLP (Megatron-LM's MLP block, applied to our MLP's layers): layers are
// taken in pairs (0, 1), (2, 3), ...; in each pair the first linear is split by columns (rank r holds
// output units [r*h/T, (r+1)*h/T) of the hidden layer, with their biases) and the second by rows (the
// same hidden units' rows of its weight). The hidden ReLU then runs on each rank's own units without any
// communication; the second linear gives each rank a partial sum of the pair's output, and one
// all-reduce (Megatron's g) makes the whole output, to which the replicated bias is added. In the
// backward, the gradient of the pair's input is likewise a partial sum on each rank and one all-reduce
// (Megatron's f) completes it; the first pair needs none (nothing upstream wants the input's gradient).
// With an odd number of layers the last one is replicated: every rank computes it whole, on the same
// bits. Replicated tensors get the same gradient bits on every rank (their inputs are the all-reduced,
// identical activations), so, updated alike, they stay bitwise equal.
//
// The whole model's tensor names are kept (src/model/tensor-split.ts), so T ranks' shards put together
// are the whole model's parameters, and rank r's initial shard is cut from the whole model's initial
// parameters.
import type { Backend, DeviceBuffer, View } from '../engine/backend';
import { viewOf } from '../engine/backend';
import type { ParamLayout } from './layout';
import { checkBatch, mlpLayout, type MlpConfig } from './mlp';
import { ActivationArena, type Batch, type ForwardResult, tensorView } from './model';
import type { TensorAllReduce, TensorParallelModel, TensorRank } from './tensor-model';
import { initialShardParams, shardLayout, type SplitPlan, type TensorSplit } from './tensor-split';

export type MlpLayerSplit = 'columns' | 'rows' | 'replicated';

/** How layer l is split: pairs (column, row); a last unpaired layer is replicated. */
export function mlpLayerSplit(config: MlpConfig, l: number): MlpLayerSplit {
  const L = config.sizes.length - 1;
  if (l % 2 === 1) return 'rows';
  return l + 1 < L ? 'columns' : 'replicated';
}

/** Which tensors of the MLP are split, and how. */
export function mlpSplitPlan(config: MlpConfig): SplitPlan {
  const plan = new Map<string, TensorSplit>();
  for (let l = 0; l < config.sizes.length - 1; l++) {
    const s = mlpLayerSplit(config, l);
    if (s === 'columns') {
      plan.set(`fc${l}.w`, { split: 'columns' });
      plan.set(`fc${l}.b`, { split: 'columns' });
    } else if (s === 'rows') plan.set(`fc${l}.w`, { split: 'rows' });
  }
  return plan;
}

export class TensorMlp implements TensorParallelModel {
  readonly kind = 'mlp' as const;
  readonly layout: ParamLayout;
  readonly wholeLayout: ParamLayout;
  readonly plan: SplitPlan;
  readonly params: DeviceBuffer;
  readonly grads: DeviceBuffer;
  private readonly f: ActivationArena;
  private readonly u: ActivationArena;
  private rows = 0;

  constructor(
    private readonly backend: Backend,
    readonly config: MlpConfig,
    readonly maxRows: number,
    readonly tensor: TensorRank,
  ) {
    if (!Number.isInteger(maxRows) || maxRows <= 0) throw new RangeError(`maxRows must be a positive integer, got ${maxRows}`);
    this.wholeLayout = mlpLayout(config);
    this.plan = mlpSplitPlan(config);
    this.layout = shardLayout(this.wholeLayout, this.plan, tensor.ranks);
    if (!Number.isInteger(tensor.rank) || tensor.rank < 0 || tensor.rank >= tensor.ranks) throw new RangeError(`rank ${tensor.rank} outside [0, ${tensor.ranks})`);
    this.params = backend.alloc(this.layout.totalLength, 'tensor-mlp.params', 'params');
    this.grads = backend.alloc(this.layout.totalLength, 'tensor-mlp.grads', 'grads');
    backend.fill(viewOf(this.grads), 0);
    this.f = new ActivationArena(backend, 'tensor-mlp.acts');
    this.u = new ActivationArena(backend, 'tensor-mlp.targets', 'u32');
    this.f.reserve('a0', maxRows * config.sizes[0]);
    for (let l = 1; l <= this.layers; l++) {
      const width = this.outWidth(l - 1);
      for (const name of ['z', 'dz', 'a', 'da']) this.f.reserve(`${name}${l}`, maxRows * width);
    }
    this.f.reserve('losses', maxRows);
    this.f.reserve('probs', maxRows * config.sizes[this.layers]);
    this.u.reserve('targets', maxRows);
    this.f.allocate();
    this.u.allocate();
  }

  get layers(): number {
    return this.config.sizes.length - 1;
  }

  /** Width of layer l's output on this rank: 1/T of it for a column-split layer. */
  private outWidth(l: number): number {
    const n = this.config.sizes[l + 1];
    return mlpLayerSplit(this.config, l) === 'columns' ? n / this.tensor.ranks : n;
  }

  /** Width of layer l's input on this rank: 1/T of it for a row-split layer. */
  private inWidth(l: number): number {
    const n = this.config.sizes[l];
    return mlpLayerSplit(this.config, l) === 'rows' ? n / this.tensor.ranks : n;
  }

  lossRowsOf(batch: Batch): number {
    return batch.rows;
  }

  init(seed: number): void {
    this.backend.write(viewOf(this.params), initialShardParams(this.wholeLayout, this.plan, this.tensor.rank, this.tensor.ranks, seed));
  }

  async forward(batch: Batch, gradScale: number, sum: TensorAllReduce): Promise<ForwardResult> {
    const { sizes } = this.config;
    const L = this.layers;
    const B = checkBatch(batch, this.maxRows, sizes[0], 1);
    if (!(batch.inputs instanceof Float32Array)) throw new TypeError('MLP inputs must be a Float32Array');
    const b = this.backend;
    const f = this.f;
    b.write(f.view('a0', B * sizes[0]), batch.inputs.subarray(0, B * sizes[0]));
    b.write(this.u.view('targets', B), batch.targets.subarray(0, B));
    this.rows = B;
    const classes = sizes[L];
    const result: ForwardResult = { losses: f.view('losses', B), probs: f.view('probs', B * classes), lossRows: B, classes };
    for (let l = 0; l < L; l++) {
      const [nIn, nOut] = [this.inWidth(l), this.outWidth(l)];
      const z = f.view(`z${l + 1}`, B * nOut);
      b.matmul(z, f.view(`a${l}`, B * nIn), this.param(`fc${l}.w`), B, nIn, nOut);
      // g: the row-split linear's partial outputs summed over the ranks, then the (replicated) bias.
      if (mlpLayerSplit(this.config, l) === 'rows') await sum(z, { pass: 'forward', block: (l - 1) / 2, sublayer: 'mlp', elements: B * nOut });
      b.biasAdd(z, z, this.param(`fc${l}.b`), B, nOut);
      if (l < L - 1) b.relu(f.view(`a${l + 1}`, B * nOut), z);
      else b.softmaxCrossEntropy(result.losses, result.probs, f.view(`dz${L}`, B * classes), z, this.u.view('targets', B), B, classes, gradScale);
    }
    return result;
  }

  async backward(sum: TensorAllReduce): Promise<void> {
    if (this.rows === 0) throw new Error('backward before forward');
    const B = this.rows;
    const b = this.backend;
    const f = this.f;
    for (let l = this.layers - 1; l >= 0; l--) {
      const [nIn, nOut] = [this.inWidth(l), this.outWidth(l)];
      const dz = f.view(`dz${l + 1}`, B * nOut);
      b.matmul(this.grad(`fc${l}.w`), f.view(`a${l}`, B * nIn), dz, nIn, B, nOut, { transA: true, accumulate: true });
      b.biasBackward(this.grad(`fc${l}.b`), dz, B, nOut);
      if (l === 0) continue;
      const da = f.view(`da${l}`, B * nIn);
      b.matmul(da, dz, this.param(`fc${l}.w`), B, nOut, nIn, { transB: true });
      // f: a column-split linear's input gradient is a partial sum on each rank.
      if (mlpLayerSplit(this.config, l) === 'columns') await sum(da, { pass: 'backward', block: l / 2, sublayer: 'mlp', elements: B * nIn });
      b.reluBackward(f.view(`dz${l}`, B * nIn), f.view(`z${l}`, B * nIn), da);
    }
  }

  private param(name: string): View {
    return tensorView(this.params, this.layout, name);
  }

  private grad(name: string): View {
    return tensorView(this.grads, this.layout, name);
  }

  dispose(): void {
    this.f.free();
    this.u.free();
    this.backend.free(this.params);
    this.backend.free(this.grads);
  }
}
