// The mixture-of-experts MLP of a GPT block (Switch Transformer / GShard) on Backend ops, so that it
// runs wherever the GPT runs (WebGPU, the CPU reference, WebAssembly): a router `x Wr` ([C, E], no
// bias) picks each token's top-k experts, a capacity per expert drops the overflow (the residual stream
// carries a dropped token unchanged), each expert is a GELU MLP C -> H -> C on its slot rows (one
// matmul per expert), and the gates combine the outputs. The load-balancing loss of each MoE block goes
// to its element of the model's aux vector, which the GPT adds to every row's loss, so that the
// gradient (auxScale = gradScale x rows) is the gradient of the loss the model reports.
//
// A micro-batch is one capacity group (a tab routes its own tokens), or `groups` equal runs of it.
// Routing, slots and gates are the ops' (src/engine/moe-reference.ts); this module owns the block's
// tensors, its activation slots and the order of ops, forward and backward, in three phases each: route
// and dispatch, the experts, combine (backward: combine, experts, dispatch and route). The experts phase
// runs here on one tab holding every expert, or, under expert parallelism (`held`: a tab holds E/N of
// them), through an all-to-all the caller provides (MoeAllToAll): the model layer never talks to tabs.
import { alignUp, type Backend, type MoeShape, type View } from '../engine/backend';
import { MOE_NONE, moeCapacity } from '../engine/moe-reference';
import type { ActivationArena } from './model';
import type { TensorSpec } from './layout';

export interface GptMoeConfig {
  /** Experts per MoE block. */
  experts: number;
  /** Experts per token: 1 (Switch) or 2 (GShard). */
  topk: 1 | 2;
  /** Slots per expert and capacity group = ceil(capacityFactor x group tokens x topk / experts). */
  capacityFactor: number;
  /** Hidden width of each expert; default 4 x nEmbd, the dense MLP's (so top-1 has its active size). */
  hidden?: number;
  /** Weight of the load-balancing loss; default 0.01 (Switch Transformer's). */
  auxWeight?: number;
  /**
   * Capacity groups per micro-batch (equal consecutive runs of tokens, each with its own capacity and
   * load-balancing loss, averaged); default 1. One tab routing its micro-batch as G groups routes it as
   * G tabs each holding one of those runs would: the reference an expert-parallel room is checked against.
   */
  groups?: number;
  /**
   * The experts this model holds, [first, first + count) (expert parallelism: the others are on other
   * tabs and the block's experts phase runs through an all-to-all); default all.
   */
  held?: { first: number; count: number };
}

export const DEFAULT_AUX_WEIGHT = 0.01;

export function checkMoeConfig(m: GptMoeConfig, C: number): void {
  if (!Number.isInteger(m.experts) || m.experts < 2) throw new RangeError(`MoE experts must be an integer >= 2, got ${m.experts}`);
  if (m.topk !== 1 && m.topk !== 2) throw new RangeError(`MoE topk must be 1 or 2, got ${m.topk}`);
  if (!(m.capacityFactor > 0) || !Number.isFinite(m.capacityFactor)) throw new RangeError(`MoE capacity factor must be > 0, got ${m.capacityFactor}`);
  const hidden = m.hidden ?? 4 * C;
  if (!Number.isInteger(hidden) || hidden <= 0) throw new RangeError(`MoE expert hidden width must be a positive integer, got ${hidden}`);
  const aux = m.auxWeight ?? DEFAULT_AUX_WEIGHT;
  if (!(aux >= 0) || !Number.isFinite(aux)) throw new RangeError(`MoE aux weight must be >= 0, got ${aux}`);
  const groups = m.groups ?? 1;
  if (!Number.isInteger(groups) || groups < 1) throw new RangeError(`MoE capacity groups must be a positive integer, got ${groups}`);
  if (m.held) {
    const { first, count } = m.held;
    if (!Number.isInteger(count) || count < 1 || m.experts % count !== 0 || !Number.isInteger(first) || first % count !== 0 || first + count > m.experts) {
      throw new RangeError(`a tab holds an equal share of the ${m.experts} experts: experts ${first}..${first + count - 1} is not one`);
    }
  }
}

/** The experts a model of this config holds: [first, first + count). */
export function heldExperts(m: GptMoeConfig): { first: number; count: number } {
  return m.held ?? { first: 0, count: m.experts };
}

/** The tensors that replace the dense MLP's fc / fcproj in block group `g` (the held experts' only). */
export function moeBlockSpecs(g: string, C: number, m: GptMoeConfig, std: number, residualStd: number): TensorSpec[] {
  const H = m.hidden ?? 4 * C;
  const normal = (s: number) => ({ kind: 'normal', std: s }) as const;
  const zero = { kind: 'constant', value: 0 } as const;
  const specs: TensorSpec[] = [{ name: `${g}.router.w`, shape: [C, m.experts], group: g, decay: true, init: normal(std) }];
  const { first, count } = heldExperts(m);
  for (let e = first; e < first + count; e++) {
    specs.push(
      { name: `${g}.e${e}.fc.w`, shape: [C, H], group: g, decay: true, init: normal(std) },
      { name: `${g}.e${e}.fc.b`, shape: [H], group: g, decay: false, init: zero },
      { name: `${g}.e${e}.fcproj.w`, shape: [H, C], group: g, decay: true, init: normal(residualStd) },
      { name: `${g}.e${e}.fcproj.b`, shape: [C], group: g, decay: false, init: zero },
    );
  }
  return specs;
}

/** Whether a GPT tensor belongs to an expert (held by its expert's tabs only, under expert parallelism). */
export function isExpertTensor(name: string): boolean {
  return /^h\d+\.e\d+\./.test(name);
}

/** Views the block reads and writes, by name (the GPT's arenas and parameter storage). */
export interface MoeBlockIo {
  /** Per-block f32 activation `h{l}.<name>` or shared scratch `<name>` (names starting with 'd.' or 'ep.'). */
  f(name: string, length: number): View;
  /** Per-block u32 activation `h{l}.<name>`. */
  u(name: string, length: number): View;
  param(name: string): View;
  grad(name: string): View;
  /** The gradients of tensors first..last (adjacent in the layout, within the block) are final. */
  done(first: string, last: string): void;
}

/**
 * The all-to-all over the tabs of one expert-parallel group: `blocks[j]` goes to rank j of the group,
 * the result holds the block from each rank. `counts[i][j]` = elements rank i sends rank j; only this
 * rank's row and column need be right (the pairwise exchange reads nothing else).
 */
export type MoeAllToAll = (blocks: Float32Array[], counts: number[][]) => Promise<Float32Array[]>;

/** What an exchanged experts phase sent, in rows of C floats: per pass, to every rank of the group. */
export interface MoeExchangeRows {
  /** This tab's kept token rows per expert (all E), of this block's last forward. */
  keptPerExpert: number[];
  /** Rows this tab sent to each rank: the dispatch (and the gradients' way to the experts). */
  sentRows: number[];
  /** Rows this tab's experts returned to each rank (and the input gradients' way back). */
  returnedRows: number[];
}

/** Per block, what the forward's exchange learned and the backward's needs again. */
interface ExchangeState {
  kept: number[];
  /** perSource[src][k]: rows source `src` sent to held expert k. */
  perSource: number[][];
}

export class MoeMlp {
  readonly experts: number;
  readonly topk: number;
  readonly hidden: number;
  readonly auxWeight: number;
  readonly groups: number;
  /** The experts this model holds, and the tabs their group spreads all experts over. */
  readonly held: { first: number; count: number };
  readonly ranks: number;
  /** The stride between experts in the slot buffers: the largest capacity, aligned so that each expert's rows start on a view boundary. */
  readonly slotsPerExpert: number;
  private readonly exchanges = new Map<string, ExchangeState>();

  constructor(
    private readonly config: GptMoeConfig,
    private readonly C: number,
    /** Most tokens in one forward (rows x blockSize). */
    private readonly maxTokens: number,
  ) {
    checkMoeConfig(config, C);
    this.experts = config.experts;
    this.topk = config.topk;
    this.hidden = config.hidden ?? 4 * C;
    this.auxWeight = config.auxWeight ?? DEFAULT_AUX_WEIGHT;
    this.groups = config.groups ?? 1;
    this.held = heldExperts(config);
    this.ranks = this.experts / this.held.count;
    if (this.ranks > 1 && this.groups !== 1) throw new RangeError('under expert parallelism each tab routes its tokens as one capacity group');
    if (maxTokens % this.groups !== 0) throw new RangeError(`${maxTokens} tokens do not split into ${this.groups} capacity groups`);
    // Rows of C and of H floats: expert e's slice starts at e x slotsPerExpert rows, a multiple of 64 floats.
    const rowsPerAlignment = Math.max(64 / gcd(64, C), 64 / gcd(64, this.hidden));
    this.slotsPerExpert = alignUp(this.groups * this.capacity(maxTokens), rowsPerAlignment);
  }

  /**
   * The capacity groups of a forward of `tokens` tokens: the config's, or one when the tokens do not
   * split into them (sampling one sequence: no gradient, nothing to compare with a room).
   */
  groupsOf(tokens: number): number {
    return tokens % this.groups === 0 ? this.groups : 1;
  }

  /** Slots per expert in each capacity group of a forward of `tokens` tokens. */
  capacity(tokens: number): number {
    return moeCapacity(this.config.capacityFactor, tokens / this.groupsOf(tokens), this.topk, this.experts);
  }

  shape(tokens: number): MoeShape {
    return { tokens, experts: this.experts, topk: this.topk, groups: this.groupsOf(tokens), capacity: this.capacity(tokens), slotsPerExpert: this.slotsPerExpert };
  }

  /** Whether the experts are spread over tabs (the experts phase needs an all-to-all). */
  get exchanged(): boolean {
    return this.ranks > 1;
  }

  /** Per-block slots `h{l}.moe.*`. */
  reserveBlock(f: ActivationArena, u: ActivationArena, group: string): void {
    const { experts: E, topk: k, hidden: H, C, maxTokens: n } = this;
    const rows = E * this.slotsPerExpert;
    for (const [name, size] of [
      ['logits', n * E], ['probs', n * E], ['gates', n * k], ['fractions', this.groups * E],
      ['disp', rows * C], ['h', rows * H], ['act', rows * H], ['out', rows * C],
    ] as const) {
      f.reserve(`${group}.moe.${name}`, size);
    }
    // Expert parallelism: the rows the held experts received (h and act hold their hidden rows).
    if (this.exchanged) f.reserve(`${group}.moe.recv`, rows * C);
    for (const [name, size] of [['choice', n * k], ['slot', n * k], ['slotToken', rows]] as const) u.reserve(`${group}.moe.${name}`, size);
  }

  /** Gradient scratch shared by every MoE block (each is consumed before the next block's backward). */
  reserveShared(f: ActivationArena): void {
    const { experts: E, topk: k, hidden: H, C, maxTokens: n } = this;
    const rows = E * this.slotsPerExpert;
    for (const [name, size] of [
      ['d.moe.out', rows * C], ['d.moe.act', rows * H], ['d.moe.h', rows * H], ['d.moe.disp', rows * C],
      ['d.moe.gates', n * k], ['d.moe.logits', n * E],
      ...(this.exchanged ? ([['ep.out', rows * C], ['d.ep.out', rows * C], ['d.ep.x', rows * C]] as const) : []),
    ] as const) {
      f.reserve(name, size);
    }
  }

  /** y = MoE(x) for n tokens; the aux loss into aux[auxIndex]. One tab holding every expert. */
  forward(b: Backend, io: MoeBlockIo, group: string, x: View, y: View, n: number, aux: View, auxIndex: number): void {
    this.forwardRoute(b, io, group, x, n, aux, auxIndex);
    this.forwardExperts(b, io, group, n);
    this.forwardCombine(b, io, group, y, n);
  }

  /** The router, top-k and capacity, and the dispatch of the tokens to their experts' slots. */
  forwardRoute(b: Backend, io: MoeBlockIo, group: string, x: View, n: number, aux: View, auxIndex: number): void {
    const { experts: E, C } = this;
    const shape = this.shape(n);
    const r = this.routing(io, group, n, aux);
    const logits = this.a(io, group, 'logits', n * E);
    b.matmul(logits, x, io.param(`${group}.router.w`), n, C, E);
    b.moeRoute(r, logits, shape, this.auxWeight, auxIndex);
    b.moeDispatch(this.a(io, group, 'disp', this.slotRows * C), x, r.slotToken, shape, C);
  }

  /** Every expert on its slots (one tab holding them all). */
  forwardExperts(b: Backend, io: MoeBlockIo, group: string, n: number): void {
    this.requireAllHeld();
    const { experts: E, hidden: H, C } = this;
    const shape = this.shape(n);
    const rows = this.slotRows;
    const rowsOf = (name: string, e: number, width: number) => this.rowsOf(this.a(io, group, name, rows * width), e * this.slotsPerExpert, width, shape.groups * shape.capacity);
    for (let e = 0; e < E; e++) this.expertForward(b, io, group, e, rowsOf('disp', e, C), rowsOf('h', e, H), rowsOf('act', e, H), rowsOf('out', e, C), shape.groups * shape.capacity);
  }

  /** y from the experts' outputs in their slots, gated. */
  forwardCombine(b: Backend, io: MoeBlockIo, group: string, y: View, n: number): void {
    const r = this.routing(io, group, n, undefined);
    b.moeCombine(y, this.a(io, group, 'out', this.slotRows * this.C), r.slot, r.gates, this.shape(n), this.C);
  }

  /**
   * From dy (the gradient of the block's output y) to dx (overwritten), accumulating every expert's
   * and the router's gradients, announced expert by expert from the last, then the router.
   */
  backward(b: Backend, io: MoeBlockIo, group: string, x: View, dy: View, dx: View, n: number, auxScale: number): void {
    this.backwardCombine(b, io, group, dy, n);
    this.backwardExperts(b, io, group, n);
    this.backwardRoute(b, io, group, x, dx, n, auxScale);
  }

  /** The gradients of the experts' outputs per slot (d.moe.out) and of the gates. */
  backwardCombine(b: Backend, io: MoeBlockIo, group: string, dy: View, n: number): void {
    const { topk: k, C } = this;
    const r = this.routing(io, group, n, undefined);
    b.moeCombineBackward(io.f('d.moe.out', this.slotRows * C), io.f('d.moe.gates', n * k), dy, this.a(io, group, 'out', this.slotRows * C), r.slot, r.slotToken, r.gates, this.shape(n), C);
  }

  /** Every expert's backward on its slots, from the last (one tab holding them all): d.moe.disp. */
  backwardExperts(b: Backend, io: MoeBlockIo, group: string, n: number): void {
    this.requireAllHeld();
    const { experts: E, hidden: H, C } = this;
    const shape = this.shape(n);
    const rows = this.slotRows;
    const used = shape.groups * shape.capacity;
    const rowsOf = (v: View, e: number, width: number) => this.rowsOf(v, e * this.slotsPerExpert, width, used);
    const a = (name: string, width: number) => this.a(io, group, name, rows * width);
    const d = (name: string, width: number) => io.f(name, rows * width);
    for (let e = E - 1; e >= 0; e--) {
      this.expertBackward(b, io, group, e, { x: rowsOf(a('disp', C), e, C), h: rowsOf(a('h', H), e, H), act: rowsOf(a('act', H), e, H) }, {
        dOut: rowsOf(d('d.moe.out', C), e, C), dAct: rowsOf(d('d.moe.act', H), e, H), dH: rowsOf(d('d.moe.h', H), e, H), dx: rowsOf(d('d.moe.disp', C), e, C),
      }, used);
    }
  }

  /** From the slots' input gradients (d.moe.disp) and the gates' to dx, and the router's gradient. */
  backwardRoute(b: Backend, io: MoeBlockIo, group: string, x: View, dx: View, n: number, auxScale: number): void {
    const { experts: E, C } = this;
    const shape = this.shape(n);
    const r = this.routing(io, group, n, undefined);
    b.moeDispatchBackward(dx, io.f('d.moe.disp', this.slotRows * C), r.slot, shape, C);
    const dLogits = io.f('d.moe.logits', n * E);
    b.moeRouteBackward(dLogits, io.f('d.moe.gates', n * this.topk), r.probs, r.choice, r.fractions, shape, this.auxWeight, auxScale);
    b.matmul(io.grad(`${group}.router.w`), x, dLogits, C, n, E, { transA: true, accumulate: true });
    b.matmul(dx, dLogits, io.param(`${group}.router.w`), n, E, C, { transB: true, accumulate: true });
    io.done(`${group}.router.w`, `${group}.router.w`);
  }

  /**
   * The experts phase of expert parallelism (this tab holds experts held.first.. of E, its group's
   * other tabs the rest): the kept rows per expert are exchanged first (a header of one count per
   * held expert), then each expert's slot rows travel to its tab, which runs them in source order
   * (the order of one tab routing the group's tokens as consecutive capacity groups) and sends the
   * outputs back into this tab's `out` slots. Rows of dropped or empty slots never travel.
   */
  async forwardExpertsExchanged(b: Backend, io: MoeBlockIo, group: string, n: number, exchange: MoeAllToAll): Promise<MoeExchangeRows> {
    const { C, hidden: H, ranks: N, held } = this;
    const El = held.count;
    const S = this.slotsPerExpert;
    const rows = this.slotRows;
    const shape = this.shape(n);
    const [slotToken, disp] = await b.readMany([io.u(`${group}.moe.slotToken`, rows), this.a(io, group, 'disp', rows * C)]);
    const tokens = new Uint32Array(slotToken.buffer, slotToken.byteOffset, slotToken.length);
    const kept = Array.from({ length: this.experts }, (_, e) => {
      let count = 0;
      while (count < shape.capacity && tokens[e * S + count] !== MOE_NONE) count++;
      return count;
    });
    const expertsOf = (j: number) => Array.from({ length: El }, (_, k) => j * El + k);
    const headers = await exchange(
      Array.from({ length: N }, (_, j) => Float32Array.from(expertsOf(j).map((e) => kept[e]))),
      Array.from({ length: N }, () => new Array<number>(N).fill(El)),
    );
    const perSource = headers.map((h) => Array.from(h));
    this.exchanges.set(group, { kept, perSource });
    const counts = this.dataCounts(kept, perSource);
    const sent = await exchange(
      Array.from({ length: N }, (_, j) => gatherRows(disp, expertsOf(j).map((e) => ({ row: e * S, rows: kept[e] })), C)),
      counts,
    );
    // The received rows, per held expert in source order, into its region of N x S rows.
    const recv = this.a(io, group, 'recv', rows * C);
    const inputs = new Float32Array(rows * C);
    for (let k = 0; k < El; k++) scatterRows(inputs, this.fromSources(sent, perSource, k), k * N * S, C);
    b.write(recv, inputs);
    for (let k = 0; k < El; k++) {
      const count = perSource.reduce((s, p) => s + p[k], 0);
      const region = (v: View, width: number) => this.rowsOf(v, k * N * S, width, count);
      this.expertForward(b, io, group, held.first + k, region(recv, C), region(this.a(io, group, 'h', rows * H), H), region(this.a(io, group, 'act', rows * H), H), region(io.f('ep.out', rows * C), C), count);
    }
    const outputs = await b.read(io.f('ep.out', rows * C));
    const returned = await exchange(this.toSources(outputs, perSource), transpose(counts));
    const out = new Float32Array(rows * C);
    for (let j = 0; j < N; j++) scatterExpertRows(out, returned[j], expertsOf(j).map((e) => ({ row: e * S, rows: kept[e] })), C);
    b.write(this.a(io, group, 'out', rows * C), out);
    return this.exchangeRows(kept, perSource);
  }

  /**
   * The experts phase of the backward under expert parallelism: the output gradients of this tab's
   * kept slots travel to their experts' tabs, each held expert runs its backward on the rows it
   * received (its gradients accumulate here), and the input gradients come back into d.moe.disp.
   */
  async backwardExpertsExchanged(b: Backend, io: MoeBlockIo, group: string, exchange: MoeAllToAll): Promise<MoeExchangeRows> {
    const { C, hidden: H, ranks: N, held } = this;
    const state = this.exchanges.get(group);
    if (!state) throw new Error(`backward of ${group}'s experts before their forward`);
    const { kept, perSource } = state;
    const El = held.count;
    const S = this.slotsPerExpert;
    const rows = this.slotRows;
    const expertsOf = (j: number) => Array.from({ length: El }, (_, k) => j * El + k);
    const counts = this.dataCounts(kept, perSource);
    const dOut = await b.read(io.f('d.moe.out', rows * C));
    const sent = await exchange(Array.from({ length: N }, (_, j) => gatherRows(dOut, expertsOf(j).map((e) => ({ row: e * S, rows: kept[e] })), C)), counts);
    const dOutRows = new Float32Array(rows * C);
    for (let k = 0; k < El; k++) scatterRows(dOutRows, this.fromSources(sent, perSource, k), k * N * S, C);
    b.write(io.f('d.ep.out', rows * C), dOutRows);
    for (let k = El - 1; k >= 0; k--) {
      const count = perSource.reduce((s, p) => s + p[k], 0);
      const region = (v: View, width: number) => this.rowsOf(v, k * N * S, width, count);
      const e = held.first + k;
      if (count > 0) {
        this.expertBackward(b, io, group, e, { x: region(this.a(io, group, 'recv', rows * C), C), h: region(this.a(io, group, 'h', rows * H), H), act: region(this.a(io, group, 'act', rows * H), H) }, {
          dOut: region(io.f('d.ep.out', rows * C), C), dAct: region(io.f('d.moe.act', rows * H), H), dH: region(io.f('d.moe.h', rows * H), H), dx: region(io.f('d.ep.x', rows * C), C),
        }, count);
      } else {
        io.done(`${group}.e${e}.fc.w`, `${group}.e${e}.fcproj.b`);
      }
    }
    const inputGrads = await b.read(io.f('d.ep.x', rows * C));
    const returned = await exchange(this.toSources(inputGrads, perSource), transpose(counts));
    const dDisp = new Float32Array(rows * C);
    for (let j = 0; j < N; j++) scatterExpertRows(dDisp, returned[j], expertsOf(j).map((e) => ({ row: e * S, rows: kept[e] })), C);
    b.write(io.f('d.moe.disp', rows * C), dDisp);
    return this.exchangeRows(kept, perSource);
  }

  /** What a block's routing statistics read after a forward (`routingStatsOf` counts them): each assignment's expert and slot. */
  routingViews(io: MoeBlockIo, group: string, n: number): [choice: View, slot: View] {
    const r = this.routing(io, group, n, undefined);
    return [r.choice, r.slot];
  }

  /** Tokens kept per expert and assignments dropped, from the values of `routingViews` (u32 bits, as read). */
  routingStatsOf(choiceBits: Float32Array, slotBits: Float32Array): { tokensPerExpert: number[]; dropped: number } {
    const choice = new Uint32Array(choiceBits.buffer, choiceBits.byteOffset, choiceBits.length);
    const slot = new Uint32Array(slotBits.buffer, slotBits.byteOffset, slotBits.length);
    const tokensPerExpert = new Array<number>(this.experts).fill(0);
    let dropped = 0;
    choice.forEach((e, i) => {
      if (slot[i] === MOE_NONE) dropped++;
      else tokensPerExpert[e]++;
    });
    return { tokensPerExpert, dropped };
  }

  /** Expert e's two linears on `rows` rows of x (views of exactly those rows). */
  private expertForward(b: Backend, io: MoeBlockIo, group: string, e: number, x: View, h: View, act: View, out: View, rows: number): void {
    if (rows === 0) return;
    const { hidden: H, C } = this;
    const w = (name: string) => io.param(`${group}.e${e}.${name}`);
    b.matmul(h, x, w('fc.w'), rows, C, H);
    b.biasAdd(h, h, w('fc.b'), rows, H);
    b.gelu(act, h);
    b.matmul(out, act, w('fcproj.w'), rows, H, C);
    b.biasAdd(out, out, w('fcproj.b'), rows, C);
  }

  /** Expert e's backward on `rows` rows: its gradients accumulate, dx is overwritten, then announced. */
  private expertBackward(b: Backend, io: MoeBlockIo, group: string, e: number, saved: { x: View; h: View; act: View }, d: { dOut: View; dAct: View; dH: View; dx: View }, rows: number): void {
    const { hidden: H, C } = this;
    const name = (t: string) => `${group}.e${e}.${t}`;
    b.matmul(io.grad(name('fcproj.w')), saved.act, d.dOut, H, rows, C, { transA: true, accumulate: true });
    b.biasBackward(io.grad(name('fcproj.b')), d.dOut, rows, C);
    b.matmul(d.dAct, d.dOut, io.param(name('fcproj.w')), rows, C, H, { transB: true });
    b.geluBackward(d.dH, saved.h, d.dAct);
    b.matmul(io.grad(name('fc.w')), saved.x, d.dH, C, rows, H, { transA: true, accumulate: true });
    b.biasBackward(io.grad(name('fc.b')), d.dH, rows, H);
    b.matmul(d.dx, d.dH, io.param(name('fc.w')), rows, H, C, { transB: true });
    io.done(name('fc.w'), name('fcproj.b'));
  }

  /** counts[i][j] in floats for the row exchanges: this rank's row (what it sends) and column (what it receives). */
  private dataCounts(kept: number[], perSource: number[][]): number[][] {
    const { ranks: N, C } = this;
    const El = this.held.count;
    const rank = this.held.first / El;
    const counts = Array.from({ length: N }, () => new Array<number>(N).fill(0));
    for (let j = 0; j < N; j++) {
      let rowsTo = 0;
      for (let k = 0; k < El; k++) rowsTo += kept[j * El + k];
      counts[rank][j] = rowsTo * C;
      counts[j][rank] = perSource[j].reduce((s, v) => s + v, 0) * C;
    }
    return counts;
  }

  /** Held expert k's rows from every source, concatenated in source order. */
  private fromSources(received: Float32Array[], perSource: number[][], k: number): Float32Array {
    const C = this.C;
    const parts = received.map((block, src) => {
      const before = perSource[src].slice(0, k).reduce((s, v) => s + v, 0);
      return block.subarray(before * C, (before + perSource[src][k]) * C);
    });
    const out = new Float32Array(parts.reduce((s, p) => s + p.length, 0));
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }

  /** One block per source of the held experts' output rows (regions of N x S rows each), expert by expert. */
  private toSources(values: Float32Array, perSource: number[][]): Float32Array[] {
    const { C, ranks: N } = this;
    const S = this.slotsPerExpert;
    const El = this.held.count;
    return perSource.map((counts, src) => {
      const ranges = counts.map((rows, k) => ({ row: k * N * S + perSource.slice(0, src).reduce((s, p) => s + p[k], 0), rows }));
      return gatherRows(values, ranges.slice(0, El), C);
    });
  }

  private exchangeRows(kept: number[], perSource: number[][]): MoeExchangeRows {
    const El = this.held.count;
    return {
      keptPerExpert: kept.slice(),
      sentRows: Array.from({ length: this.ranks }, (_, j) => kept.slice(j * El, (j + 1) * El).reduce((s, v) => s + v, 0)),
      returnedRows: perSource.map((p) => p.reduce((s, v) => s + v, 0)),
    };
  }

  private requireAllHeld(): void {
    if (this.exchanged) throw new Error(`this tab holds experts ${this.held.first}..${this.held.first + this.held.count - 1} of ${this.experts}: the experts phase needs the exchange of expert parallelism`);
  }

  private get slotRows(): number {
    return this.experts * this.slotsPerExpert;
  }

  private a(io: MoeBlockIo, group: string, name: string, length: number): View {
    return io.f(`${group}.moe.${name}`, length);
  }

  private routing(io: MoeBlockIo, group: string, n: number, aux: View | undefined) {
    const { experts: E, topk: k } = this;
    const a = (name: string, length: number) => io.f(`${group}.moe.${name}`, length);
    const u = (name: string, length: number) => io.u(`${group}.moe.${name}`, length);
    return {
      probs: a('probs', n * E),
      choice: u('choice', n * k),
      slot: u('slot', n * k),
      gates: a('gates', n * k),
      slotToken: u('slotToken', E * this.slotsPerExpert),
      fractions: a('fractions', this.groupsOf(n) * E),
      // The backward never reads it: any view stands in.
      aux: aux ?? a('fractions', this.groupsOf(n) * E),
    };
  }

  /** `rows` rows of width `width` starting at row `row` of a slot buffer. */
  private rowsOf(v: View, row: number, width: number, rows: number): View {
    return { buf: v.buf, offset: v.offset + row * width, length: rows * width };
  }
}

/** The given row ranges of `values` (rows of C), concatenated. */
function gatherRows(values: Float32Array, ranges: { row: number; rows: number }[], C: number): Float32Array {
  const out = new Float32Array(ranges.reduce((s, r) => s + r.rows, 0) * C);
  let at = 0;
  for (const { row, rows } of ranges) {
    out.set(values.subarray(row * C, (row + rows) * C), at);
    at += rows * C;
  }
  return out;
}

/** Writes `rows` (rows of C) at row `row` of `into`. */
function scatterRows(into: Float32Array, rows: Float32Array, row: number, C: number): void {
  into.set(rows, row * C);
}

/** The inverse of gatherRows: consecutive rows of `block` into the given ranges of `into`. */
function scatterExpertRows(into: Float32Array, block: Float32Array, ranges: { row: number; rows: number }[], C: number): void {
  let at = 0;
  for (const { row, rows } of ranges) {
    into.set(block.subarray(at, at + rows * C), row * C);
    at += rows * C;
  }
}

function transpose(counts: number[][]): number[][] {
  return counts[0].map((_, i) => counts.map((row) => row[i]));
}

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}
