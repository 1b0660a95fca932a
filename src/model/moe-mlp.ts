// The mixture-of-experts MLP of a GPT block (Switch Transformer / GShard) on Backend ops, so that it
// runs wherever the GPT runs (WebGPU, the CPU reference, WebAssembly): a router `x Wr` ([C, E], no
// bias) picks each token's top-k experts, a capacity per expert drops the overflow (the residual stream
// carries a dropped token unchanged), each expert is a GELU MLP C -> H -> C on its slot rows (one
// matmul per expert), and the gates combine the outputs. The load-balancing loss of each MoE block goes
// to its element of the model's aux vector, which the GPT adds to every row's loss, so that the
// gradient (auxScale = gradScale x rows) is the gradient of the loss the model reports.
//
// The whole micro-batch is one capacity group (a tab routes its own tokens). Routing, slots and gates
// are the ops' (src/engine/moe-reference.ts); this module owns the block's tensors, its activation
// slots and the order of ops, forward and backward.
import { alignUp, type Backend, type MoeShape, type View } from '../engine/backend';
import { moeCapacity } from '../engine/moe-reference';
import type { ActivationArena } from './model';
import type { TensorSpec } from './layout';

export interface GptMoeConfig {
  /** Experts per MoE block. */
  experts: number;
  /** Experts per token: 1 (Switch) or 2 (GShard). */
  topk: 1 | 2;
  /** Slots per expert = ceil(capacityFactor x tokens x topk / experts). */
  capacityFactor: number;
  /** Hidden width of each expert; default 4 x nEmbd, the dense MLP's (so top-1 has its active size). */
  hidden?: number;
  /** Weight of the load-balancing loss; default 0.01 (Switch Transformer's). */
  auxWeight?: number;
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
}

/** The tensors that replace the dense MLP's fc / fcproj in block group `g`. */
export function moeBlockSpecs(g: string, C: number, m: GptMoeConfig, std: number, residualStd: number): TensorSpec[] {
  const H = m.hidden ?? 4 * C;
  const normal = (s: number) => ({ kind: 'normal', std: s }) as const;
  const zero = { kind: 'constant', value: 0 } as const;
  const specs: TensorSpec[] = [{ name: `${g}.router.w`, shape: [C, m.experts], group: g, decay: true, init: normal(std) }];
  for (let e = 0; e < m.experts; e++) {
    specs.push(
      { name: `${g}.e${e}.fc.w`, shape: [C, H], group: g, decay: true, init: normal(std) },
      { name: `${g}.e${e}.fc.b`, shape: [H], group: g, decay: false, init: zero },
      { name: `${g}.e${e}.fcproj.w`, shape: [H, C], group: g, decay: true, init: normal(residualStd) },
      { name: `${g}.e${e}.fcproj.b`, shape: [C], group: g, decay: false, init: zero },
    );
  }
  return specs;
}

/** Views the block reads and writes, by name (the GPT's arenas and parameter storage). */
export interface MoeBlockIo {
  /** Per-block f32 activation `h{l}.<name>` or shared scratch `<name>` (names starting with 'd.'). */
  f(name: string, length: number): View;
  /** Per-block u32 activation `h{l}.<name>`. */
  u(name: string, length: number): View;
  param(name: string): View;
  grad(name: string): View;
  /** The gradients of tensors first..last (adjacent in the layout, within the block) are final. */
  done(first: string, last: string): void;
}

export class MoeMlp {
  readonly experts: number;
  readonly topk: number;
  readonly hidden: number;
  readonly auxWeight: number;
  /** The stride between experts in the slot buffers: the largest capacity, aligned so that each expert's rows start on a view boundary. */
  readonly slotsPerExpert: number;

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
    // Rows of C and of H floats: expert e's slice starts at e x slotsPerExpert rows, a multiple of 64 floats.
    const rowsPerAlignment = Math.max(64 / gcd(64, C), 64 / gcd(64, this.hidden));
    this.slotsPerExpert = alignUp(this.capacity(maxTokens), rowsPerAlignment);
  }

  capacity(tokens: number): number {
    return moeCapacity(this.config.capacityFactor, tokens, this.topk, this.experts);
  }

  shape(tokens: number): MoeShape {
    return { tokens, experts: this.experts, topk: this.topk, groups: 1, capacity: this.capacity(tokens), slotsPerExpert: this.slotsPerExpert };
  }

  /** Per-block slots `h{l}.moe.*`. */
  reserveBlock(f: ActivationArena, u: ActivationArena, group: string): void {
    const { experts: E, topk: k, hidden: H, C, maxTokens: n } = this;
    const rows = E * this.slotsPerExpert;
    for (const [name, size] of [
      ['logits', n * E], ['probs', n * E], ['gates', n * k], ['fractions', E],
      ['disp', rows * C], ['h', rows * H], ['act', rows * H], ['out', rows * C],
    ] as const) {
      f.reserve(`${group}.moe.${name}`, size);
    }
    for (const [name, size] of [['choice', n * k], ['slot', n * k], ['slotToken', rows]] as const) u.reserve(`${group}.moe.${name}`, size);
  }

  /** Gradient scratch shared by every MoE block (each is consumed before the next block's backward). */
  reserveShared(f: ActivationArena): void {
    const { experts: E, topk: k, hidden: H, C, maxTokens: n } = this;
    const rows = E * this.slotsPerExpert;
    for (const [name, size] of [
      ['d.moe.out', rows * C], ['d.moe.act', rows * H], ['d.moe.h', rows * H], ['d.moe.disp', rows * C],
      ['d.moe.gates', n * k], ['d.moe.logits', n * E],
    ] as const) {
      f.reserve(name, size);
    }
  }

  /** y = MoE(x) for n tokens; the aux loss into aux[auxIndex]. */
  forward(b: Backend, io: MoeBlockIo, group: string, x: View, y: View, n: number, aux: View, auxIndex: number): void {
    const { experts: E, hidden: H, C } = this;
    const shape = this.shape(n);
    const rows = E * this.slotsPerExpert;
    const a = (name: string, length: number) => io.f(`${group}.moe.${name}`, length);
    const r = this.routing(io, group, n, aux);
    const logits = a('logits', n * E);
    b.matmul(logits, x, io.param(`${group}.router.w`), n, C, E);
    b.moeRoute(r, logits, shape, this.auxWeight, auxIndex);
    const disp = a('disp', rows * C);
    const out = a('out', rows * C);
    b.moeDispatch(disp, x, r.slotToken, shape, C);
    for (let e = 0; e < E; e++) {
      const [xe, he, ae, oe] = [this.rowsOf(disp, e, C, shape), this.rowsOf(a('h', rows * H), e, H, shape), this.rowsOf(a('act', rows * H), e, H, shape), this.rowsOf(out, e, C, shape)];
      const w = (name: string) => io.param(`${group}.e${e}.${name}`);
      b.matmul(he, xe, w('fc.w'), shape.capacity, C, H);
      b.biasAdd(he, he, w('fc.b'), shape.capacity, H);
      b.gelu(ae, he);
      b.matmul(oe, ae, w('fcproj.w'), shape.capacity, H, C);
      b.biasAdd(oe, oe, w('fcproj.b'), shape.capacity, C);
    }
    b.moeCombine(y, out, r.slot, r.gates, shape, C);
  }

  /**
   * From dy (the gradient of the block's output y) to dx (overwritten), accumulating every expert's
   * and the router's gradients, announced expert by expert from the last, then the router.
   */
  backward(b: Backend, io: MoeBlockIo, group: string, x: View, dy: View, dx: View, n: number, auxScale: number): void {
    const { experts: E, topk: k, hidden: H, C } = this;
    const shape = this.shape(n);
    const rows = E * this.slotsPerExpert;
    const a = (name: string, length: number) => io.f(`${group}.moe.${name}`, length);
    const r = this.routing(io, group, n, undefined);
    const dOut = io.f('d.moe.out', rows * C);
    const dGates = io.f('d.moe.gates', n * k);
    const dDisp = io.f('d.moe.disp', rows * C);
    b.moeCombineBackward(dOut, dGates, dy, a('out', rows * C), r.slot, r.slotToken, r.gates, shape, C);
    for (let e = E - 1; e >= 0; e--) {
      const rowsOf = (v: View, width: number) => this.rowsOf(v, e, width, shape);
      const [xe, he, ae] = [rowsOf(a('disp', rows * C), C), rowsOf(a('h', rows * H), H), rowsOf(a('act', rows * H), H)];
      const [doe, dae, dhe, dxe] = [rowsOf(dOut, C), rowsOf(io.f('d.moe.act', rows * H), H), rowsOf(io.f('d.moe.h', rows * H), H), rowsOf(dDisp, C)];
      const name = (t: string) => `${group}.e${e}.${t}`;
      const cap = shape.capacity;
      b.matmul(io.grad(name('fcproj.w')), ae, doe, H, cap, C, { transA: true, accumulate: true });
      b.biasBackward(io.grad(name('fcproj.b')), doe, cap, C);
      b.matmul(dae, doe, io.param(name('fcproj.w')), cap, C, H, { transB: true });
      b.geluBackward(dhe, he, dae);
      b.matmul(io.grad(name('fc.w')), xe, dhe, C, cap, H, { transA: true, accumulate: true });
      b.biasBackward(io.grad(name('fc.b')), dhe, cap, H);
      b.matmul(dxe, dhe, io.param(name('fc.w')), cap, H, C, { transB: true });
      io.done(name('fc.w'), name('fcproj.b'));
    }
    b.moeDispatchBackward(dx, dDisp, r.slot, shape, C);
    const dLogits = io.f('d.moe.logits', n * E);
    b.moeRouteBackward(dLogits, dGates, r.probs, r.choice, r.fractions, shape, this.auxWeight, auxScale);
    b.matmul(io.grad(`${group}.router.w`), x, dLogits, C, n, E, { transA: true, accumulate: true });
    b.matmul(dx, dLogits, io.param(`${group}.router.w`), n, E, C, { transB: true, accumulate: true });
    io.done(`${group}.router.w`, `${group}.router.w`);
  }

  /** Reads a block's routing after a forward: tokens kept per expert and assignments dropped. */
  async routingStats(b: Backend, io: MoeBlockIo, group: string, n: number): Promise<{ tokensPerExpert: number[]; dropped: number }> {
    const r = this.routing(io, group, n, undefined);
    const choice = new Uint32Array((await b.read(r.choice)).buffer);
    const slot = new Uint32Array((await b.read(r.slot)).buffer);
    const tokensPerExpert = new Array<number>(this.experts).fill(0);
    let dropped = 0;
    choice.forEach((e, i) => {
      if (slot[i] === 0xffffffff) dropped++;
      else tokensPerExpert[e]++;
    });
    return { tokensPerExpert, dropped };
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
      fractions: a('fractions', E),
      // The backward never reads it: any view stands in.
      aux: aux ?? a('fractions', E),
    };
  }

  /** Expert e's first `capacity` slot rows of a slot buffer of row width `width`. */
  private rowsOf(v: View, e: number, width: number, shape: MoeShape): View {
    return { buf: v.buf, offset: v.offset + e * this.slotsPerExpert * width, length: shape.capacity * width };
  }
}

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}
