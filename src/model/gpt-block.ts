// The transformer block's sub-layers, as the whole GPT (gpt.ts) and a tensor-parallel rank of it
// (tensor-gpt.ts) both run them: pre-LayerNorm attention, then a GELU MLP, each closed by its bias and
// the residual add. Each function stops where a tensor-parallel rank holds only a partial sum (the
// output projection before its bias; the gradient of a LayerNorm's output), so the whole GPT calls the
// next one at once and a tensor rank awaits its all-reduce in between. `shape.width` and `shape.heads`
// are the attention channels and heads the caller computes (all of them, or a rank's 1/T), and
// `shape.hidden` the MLP's hidden units (4C, or a rank's 4C/T). The ops and their order are those of
// llm.c's gpt2_forward / gpt2_backward, so the whole GPT's bits do not depend on this split.
import type { Backend, View } from '../engine/backend';

/** A block's views, in the caller's arenas and parameter storage. */
export interface BlockIo {
  /** The block's own activation `name` (h{l}.name) of `length` elements. */
  act(name: string, length: number): View;
  /** A backward scratch every block reuses ('d.fch', 'd.qkv', ...). */
  scratch(name: string, length: number): View;
  /** The block's parameter and gradient `name` (h{l}.name). */
  param(name: string): View;
  grad(name: string): View;
  /** The gradients of the block's tensors `first`..`last` (adjacent in the layout) are final. */
  done(first: string, last: string): void;
}

export interface BlockShape {
  B: number;
  T: number;
  C: number;
  /** Attention channels and heads computed here. */
  width: number;
  heads: number;
  /** The dense MLP's hidden units computed here; 0 when the MLP is a mixture of experts (moe-mlp.ts). */
  hidden: number;
}

/** The activations a block saves for its backward (llm.c's ActivationTensors), for micro-batches of up to `rows` sequences. */
export function blockActivations(s: Omit<BlockShape, 'B'> & { rows: number }): [name: string, length: number][] {
  const { rows, T, C, width, heads, hidden } = s;
  const BT = rows * T;
  return [
    ['ln1', BT * C], ['ln1.mean', BT], ['ln1.rstd', BT], ['qkv', BT * 3 * width], ['atty', BT * width],
    ['att', rows * heads * T * T], ['attproj', BT * C], ['resid2', BT * C], ['ln2', BT * C],
    ['ln2.mean', BT], ['ln2.rstd', BT], ...(hidden > 0 ? ([['fch', BT * hidden], ['fch.gelu', BT * hidden]] as [string, number][]) : []),
    ['fcproj', BT * C], ['resid3', BT * C],
  ];
}

/** The backward's scratch, reused by every block since each is consumed before the next block's backward. */
export function blockGradientScratch(s: Omit<BlockShape, 'B' | 'heads'> & { rows: number }): [name: string, length: number][] {
  const { rows, T, C, width, hidden } = s;
  const BT = rows * T;
  return [
    ['d.res', BT * C], ['d.tmp', BT * C], ['d.ln', BT * C], ['d.atty', BT * width],
    ['d.qkv', BT * 3 * width], ...(hidden > 0 ? ([['d.fch', BT * hidden], ['d.fch.gelu', BT * hidden]] as [string, number][]) : []),
  ];
}

/** ln1, this caller's heads, and their output projection: returns `attproj` holding its (partial) sum, no bias yet. */
export function attentionForward(b: Backend, io: BlockIo, residual: View, s: BlockShape): View {
  const { B, T, C, width, heads } = s;
  const BT = B * T;
  const h = (name: string, length: number) => io.act(name, length);
  b.layerNorm(h('ln1', BT * C), h('ln1.mean', BT), h('ln1.rstd', BT), residual, io.param('ln1.g'), io.param('ln1.b'), BT, C);
  const qkv = h('qkv', BT * 3 * width);
  b.matmul(qkv, h('ln1', BT * C), io.param('qkv.w'), BT, C, 3 * width);
  b.biasAdd(qkv, qkv, io.param('qkv.b'), BT, 3 * width);
  b.attention(h('atty', BT * width), h('att', B * heads * T * T), qkv, B, T, width, heads);
  const attproj = h('attproj', BT * C);
  b.matmul(attproj, h('atty', BT * width), io.param('proj.w'), BT, width, C);
  return attproj;
}

/** From ln2's output through this caller's hidden units to `fcproj` holding its (partial) sum, no bias yet. */
export function mlpForward(b: Backend, io: BlockIo, s: BlockShape): View {
  const { B, T, C, hidden } = s;
  const BT = B * T;
  const h = (name: string, length: number) => io.act(name, length);
  const fch = h('fch', BT * hidden);
  b.matmul(fch, h('ln2', BT * C), io.param('fc.w'), BT, C, hidden);
  b.biasAdd(fch, fch, io.param('fc.b'), BT, hidden);
  b.gelu(h('fch.gelu', BT * hidden), fch);
  const fcproj = h('fcproj', BT * C);
  b.matmul(fcproj, h('fch.gelu', BT * hidden), io.param('fcproj.w'), BT, hidden, C);
  return fcproj;
}

/** Closes a sub-layer whose output is whole: `stream` = `residual` + `out` + `bias` (the bias added into `out`). */
export function addBiasAndResidual(b: Backend, stream: View, residual: View, out: View, bias: View, BT: number, C: number): void {
  b.biasAdd(out, out, bias, BT, C);
  b.add(stream, residual, out);
}

/**
 * The MLP's backward from `dres` = d(fcproj) to `dln` = the (partial) gradient of ln2's output; the
 * weight gradients accumulate, fcproj's then fc's announced to `io.done` as each is final.
 */
export function mlpBackward(b: Backend, io: BlockIo, dres: View, dln: View, s: BlockShape): void {
  const { B, T, C, hidden } = s;
  const BT = B * T;
  const [w, dw] = [io.param, io.grad];
  const dfchGelu = io.scratch('d.fch.gelu', BT * hidden);
  const dfch = io.scratch('d.fch', BT * hidden);
  b.matmul(dw('fcproj.w'), io.act('fch.gelu', BT * hidden), dres, hidden, BT, C, { transA: true, accumulate: true });
  b.biasBackward(dw('fcproj.b'), dres, BT, C);
  io.done('fcproj.w', 'fcproj.b');
  b.matmul(dfchGelu, dres, w('fcproj.w'), BT, C, hidden, { transB: true });
  b.geluBackward(dfch, io.act('fch', BT * hidden), dfchGelu);
  b.matmul(dw('fc.w'), io.act('ln2', BT * C), dfch, C, BT, hidden, { transA: true, accumulate: true });
  b.biasBackward(dw('fc.b'), dfch, BT, hidden);
  io.done('fc.w', 'fc.b');
  b.matmul(dln, dfch, w('fc.w'), BT, hidden, C, { transB: true });
}

/**
 * The attention's backward from `dres` = d(attproj) to `dln` = the (partial) gradient of ln1's output;
 * the weight gradients accumulate, proj's then qkv's announced to `io.done` as each is final.
 */
export function attentionBackward(b: Backend, io: BlockIo, dres: View, dln: View, s: BlockShape): void {
  const { B, T, C, width, heads } = s;
  const BT = B * T;
  const [w, dw] = [io.param, io.grad];
  const datty = io.scratch('d.atty', BT * width);
  const dqkv = io.scratch('d.qkv', BT * 3 * width);
  b.matmul(dw('proj.w'), io.act('atty', BT * width), dres, width, BT, C, { transA: true, accumulate: true });
  b.biasBackward(dw('proj.b'), dres, BT, C);
  io.done('proj.w', 'proj.b');
  b.matmul(datty, dres, w('proj.w'), BT, C, width, { transB: true });
  b.attentionBackward(dqkv, datty, io.act('qkv', BT * 3 * width), io.act('att', B * heads * T * T), B, T, width, heads);
  b.matmul(dw('qkv.w'), io.act('ln1', BT * C), dqkv, C, BT, 3 * width, { transA: true, accumulate: true });
  b.biasBackward(dw('qkv.b'), dqkv, BT, 3 * width);
  io.done('qkv.w', 'qkv.b');
  b.matmul(dln, dqkv, w('qkv.w'), BT, 3 * width, C, { transB: true });
}

/**
 * LayerNorm `norm` ('ln1' or 'ln2') backward from the whole gradient of its output (`dln`) to its
 * input `input`, added into `dres` (the residual stream's gradient) through `dtmp`.
 */
export function layerNormBackwardInto(b: Backend, io: BlockIo, norm: 'ln1' | 'ln2', input: View, dres: View, dtmp: View, dln: View, BT: number, C: number): void {
  b.layerNormBackward(dtmp, io.grad(`${norm}.g`), io.grad(`${norm}.b`), dln, input, io.act(`${norm}.mean`, BT), io.act(`${norm}.rstd`, BT), io.param(`${norm}.g`), BT, C);
  io.done(`${norm}.g`, `${norm}.b`);
  b.addInPlace(dres, dtmp);
}
