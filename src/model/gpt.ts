// A tiny GPT-2 character model (nanoGPT's model.py, llm.c's gpt2_forward/gpt2_backward): token +
// position embeddings, pre-LayerNorm blocks (attention, then a GELU MLP, each added to the residual
// stream), a final LayerNorm and a head tied to the token embedding.
//
// Built with a `part` (blocks [from, to)), it is one stage of a pipeline (forwardStage/backwardStage):
// the first stage also holds the embedding, the last the final LayerNorm, the head and the loss. A
// stage after the first reads the residual stream h{from-1}.resid3 from the previous stage and hands
// back its gradient; a stage before the last sends h{to-1}.resid3 and starts its backward from its
// gradient. The tied head needs wte on the last stage too: there it is a copy (group 'head') that starts
// from the same values; its gradient and the first stage's must be summed before each update
// (`tiedTensors`), as Megatron-LM does for its embedding group, so that both copies stay equal.
//
// With `moe` in the config, the MLP of every block is a mixture of experts (src/model/moe-mlp.ts): a
// router and E expert MLPs in place of fc / fcproj, and each block's load-balancing loss added to every
// row's loss (so the reported loss is cross-entropy + the aux losses). Whole models only, no stages.
//
// A block's attention and MLP sub-layers are gpt-block.ts's, which a tensor-parallel rank
// (tensor-gpt.ts) runs too on its share of the heads and hidden units.
import type { Backend, DeviceBuffer, View } from '../engine/backend';
import { deriveSeed, Rng } from '../data/random';
import { addBiasAndResidual, attentionBackward, attentionForward, blockActivations, blockGradientScratch, type BlockIo, layerNormBackwardInto, mlpBackward, mlpForward } from './gpt-block';
import { buildLayout, entry, type FlatRange, groupRange, type ParamLayout, type TensorSpec } from './layout';
import { checkBatch } from './mlp';
import { checkMoeConfig, type GptMoeConfig, moeBlockSpecs, type MoeAllToAll, type MoeExchangeRows, MoeMlp } from './moe-mlp';
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
  type StorageFactory,
  type TensorStorage,
} from './model';

export interface GptConfig {
  vocabSize: number;
  blockSize: number;
  nLayer: number;
  nHead: number;
  nEmbd: number;
  /** Every block's MLP becomes a mixture of experts. Absent: the dense GPT. */
  moe?: GptMoeConfig;
}

const INIT_STD = 0.02;

/**
 * A pass segment of the GPT. `moeExperts` marks the experts phase of MoE block l (forward or backward):
 * its `record` runs every expert on this tab; under expert parallelism the caller runs
 * `expertsForwardExchanged` / `expertsBackwardExchanged` in its place, awaiting the all-to-all.
 */
export interface GptPassSegment extends PassSegment {
  readonly moeExperts?: number;
}

/**
 * The layout of the whole GPT, or of blocks [part.from, part.to) (a pipeline stage): the embedding when
 * the part starts at block 0, the final norm when it ends at the last block, and there also the head's
 * copy of wte (group 'head') unless the part holds the embedding itself.
 */
export function gptLayout(config: GptConfig, part?: ModelPart): ParamLayout {
  const { vocabSize: V, blockSize: T, nLayer: L, nHead, nEmbd: C, moe } = config;
  for (const [name, v] of Object.entries({ vocabSize: V, blockSize: T, nLayer: L, nHead, nEmbd: C })) {
    if (!Number.isInteger(v) || v <= 0) throw new RangeError(`GPT ${name} must be a positive integer, got ${v}`);
  }
  if (C % nHead !== 0) throw new RangeError(`GPT nEmbd (${C}) must be a multiple of nHead (${nHead})`);
  if (moe) checkMoeConfig(moe, C);
  const normal = (std: number) => ({ kind: 'normal', std }) as const;
  const constant = (value: number) => ({ kind: 'constant', value }) as const;
  // GPT-2: projections into the residual stream are scaled down by 1/sqrt(2 * nLayer) so that the
  // stream's variance does not grow with depth.
  const residualStd = INIT_STD / Math.sqrt(2 * L);
  const { from, to } = resolvePart(part, L, 'GPT blocks');
  if (moe && (from !== 0 || to !== L)) throw new Error('a mixture-of-experts GPT is not split into pipeline stages');
  const wte: TensorSpec = { name: 'wte', shape: [V, C], group: 'embed', decay: true, init: normal(INIT_STD) };
  const specs: TensorSpec[] = [];
  if (from === 0) specs.push(wte, { name: 'wpe', shape: [T, C], group: 'embed', decay: true, init: normal(INIT_STD / 2) });
  for (let l = from; l < to; l++) {
    const g = `h${l}`;
    specs.push(
      { name: `${g}.ln1.g`, shape: [C], group: g, decay: false, init: constant(1) },
      { name: `${g}.ln1.b`, shape: [C], group: g, decay: false, init: constant(0) },
      { name: `${g}.qkv.w`, shape: [C, 3 * C], group: g, decay: true, init: normal(INIT_STD) },
      { name: `${g}.qkv.b`, shape: [3 * C], group: g, decay: false, init: constant(0) },
      { name: `${g}.proj.w`, shape: [C, C], group: g, decay: true, init: normal(residualStd) },
      { name: `${g}.proj.b`, shape: [C], group: g, decay: false, init: constant(0) },
      { name: `${g}.ln2.g`, shape: [C], group: g, decay: false, init: constant(1) },
      { name: `${g}.ln2.b`, shape: [C], group: g, decay: false, init: constant(0) },
    );
    if (moe) {
      specs.push(...moeBlockSpecs(g, C, moe, INIT_STD, residualStd));
      continue;
    }
    specs.push(
      { name: `${g}.fc.w`, shape: [C, 4 * C], group: g, decay: true, init: normal(INIT_STD) },
      { name: `${g}.fc.b`, shape: [4 * C], group: g, decay: false, init: constant(0) },
      { name: `${g}.fcproj.w`, shape: [4 * C, C], group: g, decay: true, init: normal(residualStd) },
      { name: `${g}.fcproj.b`, shape: [C], group: g, decay: false, init: constant(0) },
    );
  }
  if (to === L) {
    specs.push(
      { name: 'lnf.g', shape: [C], group: 'lnf', decay: false, init: constant(1) },
      { name: 'lnf.b', shape: [C], group: 'lnf', decay: false, init: constant(0) },
    );
    if (from > 0) specs.push({ ...wte, group: 'head' });
  }
  return buildLayout(specs);
}

/**
 * The flat range from tensor `first` to the end of tensor `last`, which must follow it in the layout
 * with nothing but alignment padding between (a weight and its bias, a layer norm's gain and bias).
 */
export function tensorSpan(layout: ParamLayout, first: string, last: string): FlatRange {
  const [from, to] = [entry(layout, first), entry(layout, last)];
  const index = (name: string) => layout.entries.findIndex((e) => e.name === name);
  if (index(last) !== index(first) + 1 && first !== last) {
    throw new Error(`tensors "${first}" and "${last}" are not adjacent in the layout`);
  }
  return { offset: from.offset, length: to.offset + to.length - from.offset };
}

export class Gpt implements StagedModel {
  readonly kind = 'gpt' as const;
  readonly layout: ParamLayout;
  /** The blocks this instance holds: all of them unless it is a pipeline stage. */
  readonly part: ModelPart;
  readonly params: DeviceBuffer;
  readonly grads: DeviceBuffer;
  private readonly f: ActivationArena;
  private readonly u: ActivationArena;
  private readonly storage: TensorStorage;
  /** The blocks' mixture-of-experts MLP, when the config has `moe`. */
  private readonly moe: MoeMlp | undefined;
  /** Shape of the last forward. */
  private B = 0;
  private T = 0;
  /** The last forward's gradScale: the aux losses' gradient scale is gradScale x rows. */
  private gradScale = 0;

  constructor(
    private readonly backend: Backend,
    readonly config: GptConfig,
    /** Sequences per micro-batch. */
    readonly maxRows: number,
    /** Where parameters and gradients live: full buffers unless ZeRO shards them. */
    storage: StorageFactory = fullStorage(backend),
    /** Blocks [from, to) only: a pipeline stage. Default: the whole model. */
    part?: ModelPart,
  ) {
    if (!Number.isInteger(maxRows) || maxRows <= 0) throw new RangeError(`maxRows must be a positive integer, got ${maxRows}`);
    this.layout = gptLayout(config, part);
    this.part = resolvePart(part, config.nLayer, 'GPT blocks');
    this.storage = storage(this.layout, 'gpt');
    this.params = this.storage.params;
    this.grads = this.storage.grads;
    const { blockSize: T, nHead: NH, nEmbd: C, vocabSize: V } = config;
    const { from, to } = this.part;
    const BT = maxRows * T;
    this.moe = config.moe ? new MoeMlp(config.moe, C, BT) : undefined;
    this.u = new ActivationArena(backend, 'gpt.tokens', 'u32');
    // Activations saved for backward, per layer (llm.c's ActivationTensors). A later stage's input is
    // the residual stream out of the block before its first.
    this.f = new ActivationArena(backend, 'gpt.acts');
    this.f.reserve(from === 0 ? 'encoded' : `h${from - 1}.resid3`, BT * C);
    const widths = { rows: maxRows, T, C, width: C, heads: NH, hidden: this.moe ? 0 : 4 * C };
    for (let l = from; l < to; l++) {
      for (const [name, size] of blockActivations(widths)) this.f.reserve(`h${l}.${name}`, size);
      this.moe?.reserveBlock(this.f, this.u, `h${l}`);
    }
    if (this.moe) {
      this.moe.reserveShared(this.f);
      this.f.reserve('moe.aux', config.nLayer);
      this.f.reserve('moe.ones', BT * config.nLayer);
    }
    if (this.isLastStage) {
      this.f.reserve('lnf', BT * C);
      this.f.reserve('lnf.mean', BT);
      this.f.reserve('lnf.rstd', BT);
      this.f.reserve('logits', BT * V);
      this.f.reserve('probs', BT * V);
      this.f.reserve('losses', BT);
      this.f.reserve('d.logits', BT * V);
    }
    // Gradients of activations: reused by every layer, since each is consumed before the next layer.
    for (const [name, size] of blockGradientScratch(widths)) this.f.reserve(name, size);
    this.f.allocate();
    // The aux losses reach every row's loss as losses += ones[rows, L] @ aux[L].
    if (this.moe) backend.fill(this.f.view('moe.ones', BT * config.nLayer), 1);
    if (this.isFirstStage) this.u.reserve('tokens', BT);
    if (this.isLastStage) this.u.reserve('targets', BT);
    this.u.allocate();
  }

  get units(): number {
    return this.config.nLayer;
  }

  get isFirstStage(): boolean {
    return this.part.from === 0;
  }

  get isLastStage(): boolean {
    return this.part.to === this.config.nLayer;
  }

  /**
   * Tensors this stage holds a copy of that another stage holds too: wte on the first and the last
   * stage of a split model. Their gradients must be summed across the two before each update.
   */
  get tiedTensors(): readonly string[] {
    return this.isFirstStage !== this.isLastStage ? ['wte'] : [];
  }

  inputLength(batch: Batch): number {
    return this.isFirstStage ? 0 : this.residualLength(batch);
  }

  outputLength(batch: Batch): number {
    return this.isLastStage ? 0 : this.residualLength(batch);
  }

  private residualLength(batch: Batch): number {
    return batch.rows * (batch.seqLen ?? this.config.blockSize) * this.config.nEmbd;
  }

  /** Blocks from..to of one micro-batch: the loss on the last stage, the residual stream elsewhere. */
  forwardStage(batch: Batch, gradScale: number, input?: Float32Array): StageForward {
    const { result, segments } = this.stageSegments(batch, gradScale, input);
    recordAll(segments);
    if (result) return { result };
    return { output: this.f.view(`h${this.part.to - 1}.resid3`, this.B * this.T * this.config.nEmbd) };
  }

  /** From the gradient of the residual stream this stage sent on (or the loss) to that of its input. */
  backwardStage(outputGrad?: Float32Array, hooks?: GradHooks): View | undefined {
    if (this.B === 0) throw new Error('backward before forward');
    const length = this.B * this.T * this.config.nEmbd;
    if (this.isLastStage) {
      if (outputGrad) throw new Error('the last stage starts its backward from the loss: it takes no output gradient');
    } else {
      if (!outputGrad || outputGrad.length !== length) throw new RangeError(`output gradient of ${outputGrad?.length ?? 0} elements, need ${length} (${this.B} x ${this.T} x ${this.config.nEmbd})`);
      this.backend.write(this.f.view('d.res', length), outputGrad);
    }
    this.backward(hooks);
    return this.isFirstStage ? undefined : this.f.view('d.res', length);
  }

  get maxLossRows(): number {
    return this.maxRows * this.config.blockSize;
  }

  lossRowsOf(batch: Batch): number {
    return batch.rows * (batch.seqLen ?? this.config.blockSize);
  }

  init(seed: number): void {
    const whole = this.isFirstStage && this.isLastStage && !this.config.moe?.held;
    // A stage, or a tab holding some of the experts: its tensors as the whole model's seeded initialisation has them.
    const wholeConfig = this.config.moe ? { ...this.config, moe: { ...this.config.moe, held: undefined } } : this.config;
    this.storage.writeParams(whole ? initialParams(this.layout, seed, this.storage.heldParams) : initialParamsOfPart(this.layout, gptLayout(wholeConfig), seed));
  }

  forward(batch: Batch, gradScale: number): ForwardResult {
    const { result, segments } = this.forwardSegments(batch, gradScale);
    recordAll(segments);
    return result;
  }

  backward(hooks?: GradHooks): void {
    recordAll(this.backwardSegments(hooks));
  }

  /**
   * Segments: the embedding, one per block, then the final LayerNorm with the tied head (which needs
   * the embedding's wte again), so ZeRO-3 gathers at most two layer groups at a time.
   */
  forwardSegments(batch: Batch, gradScale: number): { result: ForwardResult; segments: GptPassSegment[] } {
    if (!this.isFirstStage || !this.isLastStage) {
      throw new Error(`forward runs the whole model; a pipeline stage (blocks ${this.part.from}..${this.part.to - 1}) runs forwardStage`);
    }
    const { result, segments } = this.stageSegments(batch, gradScale, undefined);
    if (!result) throw new Error('the whole model computes its loss');
    return { result, segments };
  }

  /**
   * The forward segments of this model's part: the embedding (first stage; the others write their
   * input activation), one per block, the final norm with the head and the loss (last stage).
   */
  private stageSegments(batch: Batch, gradScale: number, input: Float32Array | undefined): { result?: ForwardResult; segments: GptPassSegment[] } {
    const { blockSize, nLayer: L, nHead: NH, nEmbd: C, vocabSize: V } = this.config;
    const { from, to } = this.part;
    const first = this.isFirstStage;
    const T = batch.seqLen ?? blockSize;
    if (!Number.isInteger(T) || T <= 0 || T > blockSize) throw new RangeError(`seqLen ${T} outside 1..${blockSize}`);
    const B = checkBatch(batch, this.maxRows, first ? T : 0, T);
    const BT = B * T;
    if (first) {
      if (input) throw new Error('the first stage reads its input from the batch: it takes no input activation');
      if (!(batch.inputs instanceof Uint32Array)) throw new TypeError('GPT inputs must be token ids in a Uint32Array');
    } else if (!input || input.length !== BT * C) {
      throw new RangeError(`input activation of ${input?.length ?? 0} elements, need ${BT * C} (${B} x ${T} x ${C})`);
    }
    this.B = B;
    this.T = T;
    this.gradScale = gradScale;
    const b = this.backend;
    const a = (name: string, length: number) => this.f.view(name, length);
    const p = (name: string) => this.storage.param(name);
    const tokens = first ? this.u.view('tokens', BT) : undefined;
    const targets = this.isLastStage ? this.u.view('targets', BT) : undefined;
    if (tokens) b.write(tokens, (batch.inputs as Uint32Array).subarray(0, BT));
    if (targets) b.write(targets, batch.targets.subarray(0, BT));
    if (input) b.write(a(`h${from - 1}.resid3`, BT * C), input);
    const result: ForwardResult | undefined = targets ? { losses: a('losses', BT), probs: a('probs', BT * V), lossRows: BT, classes: V } : undefined;
    const segments: GptPassSegment[] = [];

    if (tokens) segments.push({ groups: ['embed'], record: () => b.embedding(a('encoded', BT * C), tokens, p('wte'), p('wpe'), B, T, C) });
    /** Block l up to its MLP's input (ln2); an MoE block also routes and dispatches. */
    const shape = { B, T, C, width: C, heads: NH, hidden: 4 * C };
    const block = (l: number) => {
      const residual = l > 0 ? a(`h${l - 1}.resid3`, BT * C) : a('encoded', BT * C);
      const io = this.blockIo(l);
      const h = io.act;
      // attention sub-block
      const attproj = attentionForward(b, io, residual, shape);
      addBiasAndResidual(b, h('resid2', BT * C), residual, attproj, io.param('proj.b'), BT, C);
      // MLP sub-block
      b.layerNorm(h('ln2', BT * C), h('ln2.mean', BT), h('ln2.rstd', BT), h('resid2', BT * C), io.param('ln2.g'), io.param('ln2.b'), BT, C);
      if (this.moe) {
        this.moe.forwardRoute(b, this.moeIo(), `h${l}`, h('ln2', BT * C), BT, a('moe.aux', L), l);
        return;
      }
      const fcproj = mlpForward(b, io, shape);
      addBiasAndResidual(b, h('resid3', BT * C), h('resid2', BT * C), fcproj, io.param('fcproj.b'), BT, C);
    };
    for (let l = from; l < to; l++) {
      segments.push({ groups: [`h${l}`], record: () => block(l) });
      const moe = this.moe;
      if (!moe) continue;
      // MoE: the experts phase, then the gated combine and the residual add.
      const group = `h${l}`;
      segments.push({ groups: [group], moeExperts: l, record: () => moe.forwardExperts(b, this.moeIo(), group, BT) });
      segments.push({
        groups: [group],
        record: () => {
          moe.forwardCombine(b, this.moeIo(), group, a(`${group}.fcproj`, BT * C), BT);
          b.add(a(`${group}.resid3`, BT * C), a(`${group}.resid2`, BT * C), a(`${group}.fcproj`, BT * C));
        },
      });
    }
    if (result && targets) {
      segments.push({
        groups: this.headGroups,
        record: () => {
          const residual = L > 0 ? a(`h${L - 1}.resid3`, BT * C) : a('encoded', BT * C);
          b.layerNorm(a('lnf', BT * C), a('lnf.mean', BT), a('lnf.rstd', BT), residual, p('lnf.g'), p('lnf.b'), BT, C);
          // Tied head: logits = lnf @ wte^T (wte is stored [V, C]).
          b.matmul(a('logits', BT * V), a('lnf', BT * C), p('wte'), BT, C, V, { transB: true });
          b.softmaxCrossEntropy(result.losses, result.probs, a('d.logits', BT * V), a('logits', BT * V), targets, BT, V, gradScale);
          if (this.moe) b.matmul(result.losses, a('moe.ones', BT * L), a('moe.aux', L), BT, L, 1, { accumulate: true });
        },
      });
    }
    return { result, segments };
  }

  /** Groups the head reads: the final norm and wte, the embedding's or (a later last stage) the head's copy. */
  private get headGroups(): string[] {
    return ['lnf', this.isFirstStage ? 'embed' : 'head'];
  }

  /**
   * Segments mirror the forward's (head, blocks in reverse, embedding). Within a block each layer's
   * weight gradient is recorded before its input gradient and announced to `hooks` at once, one tensor
   * pair at a time (fcproj, fc, ln2, proj, qkv, ln1: descending layout order, as the hooks' buckets
   * need). Announcing a whole block at its end would leave a data-parallel all-reduce nothing to send
   * while the block is computed; this way small buckets start one matmul after their gradient is final.
   */
  backwardSegments(hooks?: GradHooks): GptPassSegment[] {
    if (this.B === 0) throw new Error('backward before forward');
    const { nLayer: L, nHead: NH, nEmbd: C, vocabSize: V } = this.config;
    const { B, T } = this;
    const BT = B * T;
    const b = this.backend;
    const a = (name: string, length: number) => this.f.view(name, length);
    const p = (name: string) => this.storage.param(name);
    const g = (name: string) => this.storage.grad(name);
    const ready = (group: string) => hooks?.onGradReady(groupRange(this.layout, group), group);
    /** The gradients of tensors `first`..`last` (adjacent in the layout) are final. */
    const readyTensors = (group: string, first: string, last: string) =>
      hooks?.onGradReady(tensorSpan(this.layout, first, last), group);
    const dres = a('d.res', BT * C);
    const dtmp = a('d.tmp', BT * C);
    const dln = a('d.ln', BT * C);
    const { from, to } = this.part;

    const segments: GptPassSegment[] = [];
    if (this.isLastStage) {
      const dlogits = a('d.logits', BT * V);
      segments.push({
        groups: this.headGroups,
        record: () => {
          // head (tied): dlnf = dlogits @ wte; dwte += dlogits^T @ lnf (final only after the embedding's
          // backward, or here on a later last stage, whose copy the pipeline sums with the first's)
          b.matmul(dln, dlogits, p('wte'), BT, V, C);
          b.matmul(g('wte'), dlogits, a('lnf', BT * C), V, BT, C, { transA: true, accumulate: true });
          if (!this.isFirstStage) ready('head');
          const lastResidual = L > 0 ? a(`h${L - 1}.resid3`, BT * C) : a('encoded', BT * C);
          b.layerNormBackward(dres, g('lnf.g'), g('lnf.b'), dln, lastResidual, a('lnf.mean', BT), a('lnf.rstd', BT), p('lnf.g'), BT, C);
          ready('lnf');
        },
      });
    }

    const shape = { B, T, C, width: C, heads: NH, hidden: 4 * C };
    const block = (l: number) => {
      const group = `h${l}`;
      const io = this.blockIo(l, (first, last) => readyTensors(group, `${group}.${first}`, `${group}.${last}`));
      const residual = l > 0 ? a(`h${l - 1}.resid3`, BT * C) : a('encoded', BT * C);
      // dres holds d(resid3); resid3 = resid2 + fcproj, so d(fcproj) = dres.
      if (this.moe) {
        // After the experts phase (its own segment): the dispatch's and the router's backward.
        this.moe.backwardRoute(b, this.moeHookedIo(group, hooks), group, io.act('ln2', BT * C), dln, BT, this.gradScale * BT);
      } else {
        mlpBackward(b, io, dres, dln, shape);
      }
      layerNormBackwardInto(b, io, 'ln2', io.act('resid2', BT * C), dres, dtmp, dln, BT, C); // dres now holds d(resid2); resid2 = residual + attproj
      attentionBackward(b, io, dres, dln, shape);
      layerNormBackwardInto(b, io, 'ln1', residual, dres, dtmp, dln, BT, C); // dres now holds d(residual) = d(resid3 of the layer below)
    };
    for (let l = to - 1; l >= from; l--) {
      const moe = this.moe;
      if (moe) {
        // MoE: dres holds d(resid3) = d(fcproj) = dy; the combine's backward, then the experts phase.
        const group = `h${l}`;
        segments.push({ groups: [group], record: () => moe.backwardCombine(b, this.moeIo(), group, dres, BT) });
        segments.push({ groups: [group], moeExperts: l, record: () => moe.backwardExperts(b, this.moeHookedIo(group, hooks), group, BT) });
      }
      segments.push({ groups: [`h${l}`], record: () => block(l) });
    }
    if (this.isFirstStage) {
      segments.push({
        groups: ['embed'],
        record: () => {
          b.embeddingBackward(g('wte'), g('wpe'), dres, this.u.view('tokens', BT), B, T, C, V);
          ready('embed');
        },
      });
    }
    return segments;
  }

  /** Block l's views for its sub-layers (gpt-block.ts); `done` hears which tensors' gradients are final. */
  private blockIo(l: number, done: BlockIo['done'] = () => undefined): BlockIo {
    return {
      act: (name, length) => this.f.view(`h${l}.${name}`, length),
      scratch: (name, length) => this.f.view(name, length),
      param: (name) => this.storage.param(`h${l}.${name}`),
      grad: (name) => this.storage.grad(`h${l}.${name}`),
      done,
    };
  }

  /** MoE block l's experts phase of the last forward, through `exchange` (expert parallelism: this tab holds some experts). */
  expertsForwardExchanged(block: number, exchange: MoeAllToAll): Promise<MoeExchangeRows> {
    if (!this.moe || this.B === 0) throw new Error('the experts phase of an MoE block needs an MoE GPT after its forward began');
    return this.moe.forwardExpertsExchanged(this.backend, this.moeIo(), `h${block}`, this.B * this.T, exchange);
  }

  /** MoE block l's experts phase of the backward, through `exchange`; the held experts' gradients go to `hooks`. */
  expertsBackwardExchanged(block: number, exchange: MoeAllToAll, hooks?: GradHooks): Promise<MoeExchangeRows> {
    if (!this.moe || this.B === 0) throw new Error('backward before forward');
    return this.moe.backwardExpertsExchanged(this.backend, this.moeHookedIo(`h${block}`, hooks), `h${block}`, exchange);
  }

  /** The MoE views with `done` announcing an expert's four tensors (or the router alone: one run of the layout) to `hooks`. */
  private moeHookedIo(group: string, hooks?: GradHooks) {
    const span = (first: string, last: string): FlatRange => {
      const [from, to] = [entry(this.layout, first), entry(this.layout, last)];
      return { offset: from.offset, length: to.offset + to.length - from.offset };
    };
    return { ...this.moeIo(), done: (first: string, last: string) => hooks?.onGradReady(span(first, last), group) };
  }

  /** The MoE blocks' views: this model's arenas and parameter storage. */
  private moeIo() {
    return {
      f: (name: string, length: number) => this.f.view(name, length),
      u: (name: string, length: number) => this.u.view(name, length),
      param: (name: string) => this.storage.param(name),
      grad: (name: string) => this.storage.grad(name),
      done: () => undefined,
    };
  }

  /**
   * The last forward's routing, per MoE block: tokens kept per expert, assignments dropped, and the
   * load-balancing loss. Empty for a dense GPT.
   */
  async moeStats(): Promise<{ tokensPerExpert: number[]; dropped: number; aux: number }[]> {
    if (!this.moe || this.B === 0) return [];
    const L = this.config.nLayer;
    const BT = this.B * this.T;
    const moe = this.moe;
    const blocks = Array.from({ length: L }, (_, l) => moe.routingViews(this.moeIo(), `h${l}`, BT));
    // One read of every block's routing and the aux losses: one wait for the device, not 2L + 1.
    const [aux, ...routing] = await this.backend.readMany([this.f.view('moe.aux', L), ...blocks.flat()]);
    return blocks.map((_, l) => ({ ...moe.routingStatsOf(routing[2 * l], routing[2 * l + 1]), aux: aux[l] }));
  }

  /**
   * Continues `prompt` by `length` characters, one forward pass per character over the last blockSize
   * tokens (B = 1). `temperature` divides the logits; the draw is seeded, so a sample is reproducible.
   */
  async sample(
    prompt: Uint32Array,
    length: number,
    options: {
      temperature?: number;
      seed?: number;
      /**
       * The forward pass to sample with (default this model's own): under ZeRO-3 the room's layer-by-layer
       * one, which gathers each layer group (every rank samples alike, so every rank joins each gather).
       */
      forward?: (batch: Batch) => Promise<ForwardResult> | ForwardResult;
    } = {},
  ): Promise<Uint32Array> {
    const { temperature = 1, seed = 0, forward = (batch: Batch) => this.forward(batch, 0) } = options;
    if (!(temperature > 0)) throw new RangeError(`temperature must be > 0, got ${temperature}`);
    if (prompt.length === 0) throw new Error('sampling needs a prompt of at least one token');
    const V = this.config.vocabSize;
    for (const t of prompt) if (t >= V) throw new RangeError(`prompt token ${t} outside a vocabulary of ${V}`);
    const rng = new Rng(deriveSeed(seed, 0x5a));
    const out = new Uint32Array(prompt.length + length);
    out.set(prompt);
    const targets = new Uint32Array(this.config.blockSize); // unused by sampling; the loss op needs some
    const logits = new Float64Array(V);
    for (let n = prompt.length; n < out.length; n++) {
      const start = Math.max(0, n - this.config.blockSize);
      const context = out.subarray(start, n);
      const result = await forward({ inputs: context, targets, rows: 1, seqLen: context.length });
      const probs = await this.backend.read(result.probs);
      // softmax(logits / temperature) = p^(1/temperature), renormalised.
      const last = (context.length - 1) * V;
      let total = 0;
      for (let c = 0; c < V; c++) {
        logits[c] = Math.pow(Math.max(probs[last + c], 1e-30), 1 / temperature);
        total += logits[c];
      }
      let u = rng.uniform() * total;
      let pick = V - 1;
      for (let c = 0; c < V; c++) {
        u -= logits[c];
        if (u < 0) {
          pick = c;
          break;
        }
      }
      out[n] = pick;
    }
    this.B = 0; // the sampling forwards leave nothing to differentiate
    return out.subarray(prompt.length);
  }

  dispose(): void {
    this.f.free();
    this.u.free();
    this.storage.dispose();
  }
}
