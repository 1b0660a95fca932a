// One rank of a tensor-parallel GPT (Megatron-LM's transformer layer, on our GPT of src/model/gpt.ts):
// in every block, attention is split by heads (rank r holds heads [r*NH/T, (r+1)*NH/T): their q, k and v
// columns of the fused qkv weight and bias, and the same rows of the output projection) and the MLP's
// first linear by columns, its second by rows. Each sub-layer then ends with a partial sum of its
// output on every rank, and one all-reduce (Megatron's g) completes it before the replicated bias and
// the residual add; in the backward, the gradient of each sub-layer's LayerNorm output is a partial sum
// and one all-reduce (Megatron's f) completes it. So a block costs two all-reduces of B·T·C floats in
// the forward and two in the backward.
//
// Replicated on every rank, and computed whole there on the same bits: the token and position
// embeddings, the LayerNorms, the output projections' biases, the final LayerNorm and the tied head
// (vocabulary splitting is not done: with the lab's character vocabularies the head is small). Their
// gradients come out the same on every rank (they read only all-reduced activations and gradients), so
// replicas stay bitwise equal without any further communication.
//
// The sub-layers are the whole GPT's own (gpt-block.ts) on this rank's widths (C/T channels of
// attention in NH/T heads, 4C/T hidden units); this class adds the awaits at the collectives.
import type { Backend, DeviceBuffer, View } from '../engine/backend';
import { viewOf } from '../engine/backend';
import { gptLayout, type GptConfig } from './gpt';
import { addBiasAndResidual, attentionBackward, attentionForward, blockActivations, blockGradientScratch, type BlockIo, layerNormBackwardInto, mlpBackward, mlpForward } from './gpt-block';
import type { ParamLayout } from './layout';
import { checkBatch } from './mlp';
import { ActivationArena, type Batch, type ForwardResult, tensorView } from './model';
import type { TensorAllReduce, TensorParallelModel, TensorRank } from './tensor-model';
import { initialShardParams, shardLayout, type SplitPlan, type TensorSplit } from './tensor-split';

/** Which tensors of the GPT are split, and how (everything else is replicated). */
export function gptSplitPlan(config: GptConfig): SplitPlan {
  const plan = new Map<string, TensorSplit>();
  for (let l = 0; l < config.nLayer; l++) {
    plan.set(`h${l}.qkv.w`, { split: 'columns', segments: 3 });
    plan.set(`h${l}.qkv.b`, { split: 'columns', segments: 3 });
    plan.set(`h${l}.proj.w`, { split: 'rows' });
    plan.set(`h${l}.fc.w`, { split: 'columns' });
    plan.set(`h${l}.fc.b`, { split: 'columns' });
    plan.set(`h${l}.fcproj.w`, { split: 'rows' });
  }
  return plan;
}

export class TensorGpt implements TensorParallelModel {
  readonly kind = 'gpt' as const;
  readonly layout: ParamLayout;
  readonly wholeLayout: ParamLayout;
  readonly plan: SplitPlan;
  readonly params: DeviceBuffer;
  readonly grads: DeviceBuffer;
  private readonly f: ActivationArena;
  private readonly u: ActivationArena;
  private B = 0;
  private T = 0;
  /** This rank's width of the attention (its heads) and of the MLP's hidden layer. */
  private readonly Cl: number;
  private readonly NHl: number;

  constructor(
    private readonly backend: Backend,
    readonly config: GptConfig,
    readonly maxRows: number,
    readonly tensor: TensorRank,
  ) {
    if (!Number.isInteger(maxRows) || maxRows <= 0) throw new RangeError(`maxRows must be a positive integer, got ${maxRows}`);
    if (config.moe) throw new Error('tensor parallelism splits the dense MLP: a mixture-of-experts GPT is not tensor-split');
    const { blockSize: T, nHead: NH, nEmbd: C, vocabSize: V, nLayer: L } = config;
    const R = tensor.ranks;
    if (!Number.isInteger(R) || R < 1 || !Number.isInteger(tensor.rank) || tensor.rank < 0 || tensor.rank >= R) throw new RangeError(`rank ${tensor.rank} of ${R} tensor-parallel ranks`);
    if (NH % R !== 0) throw new RangeError(`attention splits by heads: ${NH} heads do not split over ${R} ranks`);
    this.wholeLayout = gptLayout(config);
    this.plan = gptSplitPlan(config);
    this.layout = shardLayout(this.wholeLayout, this.plan, R);
    this.Cl = C / R;
    this.NHl = NH / R;
    this.params = backend.alloc(this.layout.totalLength, 'tensor-gpt.params', 'params');
    this.grads = backend.alloc(this.layout.totalLength, 'tensor-gpt.grads', 'grads');
    backend.fill(viewOf(this.grads), 0);
    const BT = maxRows * T;
    const Cl = this.Cl;
    this.f = new ActivationArena(backend, 'tensor-gpt.acts');
    this.f.reserve('encoded', BT * C);
    const widths = { rows: maxRows, T, C, width: Cl, heads: this.NHl, hidden: 4 * Cl };
    for (let l = 0; l < L; l++) {
      for (const [name, size] of blockActivations(widths)) this.f.reserve(`h${l}.${name}`, size);
    }
    for (const [name, size] of [
      ['lnf', BT * C], ['lnf.mean', BT], ['lnf.rstd', BT], ['logits', BT * V], ['probs', BT * V], ['losses', BT], ['d.logits', BT * V],
      ...blockGradientScratch(widths),
    ] as const) {
      this.f.reserve(name, size);
    }
    this.f.allocate();
    this.u = new ActivationArena(backend, 'tensor-gpt.tokens', 'u32');
    this.u.reserve('tokens', BT);
    this.u.reserve('targets', BT);
    this.u.allocate();
  }

  lossRowsOf(batch: Batch): number {
    return batch.rows * (batch.seqLen ?? this.config.blockSize);
  }

  init(seed: number): void {
    this.backend.write(viewOf(this.params), initialShardParams(this.wholeLayout, this.plan, this.tensor.rank, this.tensor.ranks, seed));
  }

  async forward(batch: Batch, gradScale: number, sum: TensorAllReduce): Promise<ForwardResult> {
    const { blockSize, nLayer: L, nEmbd: C, vocabSize: V } = this.config;
    const { Cl, NHl } = this;
    const T = batch.seqLen ?? blockSize;
    if (!Number.isInteger(T) || T <= 0 || T > blockSize) throw new RangeError(`seqLen ${T} outside 1..${blockSize}`);
    const B = checkBatch(batch, this.maxRows, T, T);
    if (!(batch.inputs instanceof Uint32Array)) throw new TypeError('GPT inputs must be token ids in a Uint32Array');
    const BT = B * T;
    this.B = B;
    this.T = T;
    const b = this.backend;
    const a = (name: string, length: number) => this.f.view(name, length);
    const p = (name: string) => this.param(name);
    const tokens = this.u.view('tokens', BT);
    const targets = this.u.view('targets', BT);
    b.write(tokens, batch.inputs.subarray(0, BT));
    b.write(targets, batch.targets.subarray(0, BT));
    const result: ForwardResult = { losses: a('losses', BT), probs: a('probs', BT * V), lossRows: BT, classes: V };
    b.embedding(a('encoded', BT * C), tokens, p('wte'), p('wpe'), B, T, C);
    const shape = { B, T, C, width: Cl, heads: NHl, hidden: 4 * Cl };
    for (let l = 0; l < L; l++) {
      const residual = l > 0 ? a(`h${l - 1}.resid3`, BT * C) : a('encoded', BT * C);
      const io = this.blockIo(l);
      const h = io.act;
      // attention: this rank's heads, then g over the output projection's partial sums
      const attproj = attentionForward(b, io, residual, shape);
      await sum(attproj, { pass: 'forward', block: l, sublayer: 'attention', elements: BT * C });
      addBiasAndResidual(b, h('resid2', BT * C), residual, attproj, io.param('proj.b'), BT, C);
      // MLP: this rank's hidden units, then g over the second linear's partial sums
      b.layerNorm(h('ln2', BT * C), h('ln2.mean', BT), h('ln2.rstd', BT), h('resid2', BT * C), io.param('ln2.g'), io.param('ln2.b'), BT, C);
      const fcproj = mlpForward(b, io, shape);
      await sum(fcproj, { pass: 'forward', block: l, sublayer: 'mlp', elements: BT * C });
      addBiasAndResidual(b, h('resid3', BT * C), h('resid2', BT * C), fcproj, io.param('fcproj.b'), BT, C);
    }
    const last = L > 0 ? a(`h${L - 1}.resid3`, BT * C) : a('encoded', BT * C);
    b.layerNorm(a('lnf', BT * C), a('lnf.mean', BT), a('lnf.rstd', BT), last, p('lnf.g'), p('lnf.b'), BT, C);
    b.matmul(a('logits', BT * V), a('lnf', BT * C), p('wte'), BT, C, V, { transB: true });
    b.softmaxCrossEntropy(result.losses, result.probs, a('d.logits', BT * V), a('logits', BT * V), targets, BT, V, gradScale);
    return result;
  }

  async backward(sum: TensorAllReduce): Promise<void> {
    if (this.B === 0) throw new Error('backward before forward');
    const { nLayer: L, nEmbd: C, vocabSize: V } = this.config;
    const { B, T, Cl, NHl } = this;
    const BT = B * T;
    const b = this.backend;
    const a = (name: string, length: number) => this.f.view(name, length);
    const p = (name: string) => this.param(name);
    const g = (name: string) => this.grad(name);
    const dres = a('d.res', BT * C);
    const dtmp = a('d.tmp', BT * C);
    const dln = a('d.ln', BT * C);
    const dlogits = a('d.logits', BT * V);
    // head (tied to wte, replicated)
    b.matmul(dln, dlogits, p('wte'), BT, V, C);
    b.matmul(g('wte'), dlogits, a('lnf', BT * C), V, BT, C, { transA: true, accumulate: true });
    const lastResidual = L > 0 ? a(`h${L - 1}.resid3`, BT * C) : a('encoded', BT * C);
    b.layerNormBackward(dres, g('lnf.g'), g('lnf.b'), dln, lastResidual, a('lnf.mean', BT), a('lnf.rstd', BT), p('lnf.g'), BT, C);
    const shape = { B, T, C, width: Cl, heads: NHl, hidden: 4 * Cl };
    for (let l = L - 1; l >= 0; l--) {
      const io = this.blockIo(l);
      const residual = l > 0 ? a(`h${l - 1}.resid3`, BT * C) : a('encoded', BT * C);
      // MLP: dres holds d(resid3) = d(fcproj), the same on every rank; f completes the gradient of ln2's output
      mlpBackward(b, io, dres, dln, shape);
      await sum(dln, { pass: 'backward', block: l, sublayer: 'mlp', elements: BT * C });
      layerNormBackwardInto(b, io, 'ln2', io.act('resid2', BT * C), dres, dtmp, dln, BT, C);
      // attention: dres holds d(resid2) = d(attproj); f completes the gradient of ln1's output
      attentionBackward(b, io, dres, dln, shape);
      await sum(dln, { pass: 'backward', block: l, sublayer: 'attention', elements: BT * C });
      layerNormBackwardInto(b, io, 'ln1', residual, dres, dtmp, dln, BT, C);
    }
    b.embeddingBackward(g('wte'), g('wpe'), dres, this.u.view('tokens', BT), B, T, C, V);
  }

  /** Block l's views for its sub-layers (gpt-block.ts). */
  private blockIo(l: number): BlockIo {
    return {
      act: (name, length) => this.f.view(`h${l}.${name}`, length),
      scratch: (name, length) => this.f.view(name, length),
      param: (name) => this.param(`h${l}.${name}`),
      grad: (name) => this.grad(`h${l}.${name}`),
      done: () => undefined,
    };
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
