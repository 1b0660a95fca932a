// Argument checks shared by both backends, so that a wrong shape fails the same way, with the same
// message, on the CPU reference and on WebGPU (where it would otherwise read garbage or nothing).
import type { DType, View } from './backend';

/** The view must hold at least `n` elements: views may be longer than one call needs (max batch). */
export function needLength(op: string, name: string, v: View, n: number): void {
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`${op}: bad size ${n} for ${name}`);
  if (v.length < n) {
    throw new RangeError(`${op}: ${name} (${v.buf.label}) holds ${v.length} elements, needs ${n}`);
  }
}

export function needDType(op: string, name: string, v: View, dtype: DType): void {
  if (v.buf.dtype !== dtype) {
    throw new TypeError(`${op}: ${name} (${v.buf.label}) must be ${dtype}, is ${v.buf.dtype}`);
  }
}

/** Elementwise ops: every operand has exactly the length of the first. */
export function needSameLength(op: string, views: Record<string, View>): number {
  const entries = Object.entries(views);
  const n = entries[0][1].length;
  for (const [name, v] of entries) {
    if (v.length !== n) {
      throw new RangeError(`${op}: ${name} (${v.buf.label}) has ${v.length} elements, expected ${n}`);
    }
  }
  return n;
}

export function needPositive(op: string, dims: Record<string, number>): void {
  for (const [name, d] of Object.entries(dims)) {
    if (!Number.isInteger(d) || d <= 0) throw new RangeError(`${op}: ${name} must be a positive integer, got ${d}`);
  }
}

export function checkMatmul(out: View, a: View, b: View, M: number, K: number, N: number): void {
  needPositive('matmul', { M, K, N });
  needLength('matmul', 'out', out, M * N);
  needLength('matmul', 'a', a, M * K);
  needLength('matmul', 'b', b, K * N);
}

export function checkAttention(qkv: View, att: View, other: View, B: number, T: number, C: number, nHead: number, op: string): void {
  needPositive(op, { B, T, C, nHead });
  if (C % nHead !== 0) throw new RangeError(`${op}: C=${C} is not a multiple of nHead=${nHead}`);
  needLength(op, 'qkv', qkv, B * T * 3 * C);
  needLength(op, 'att', att, B * nHead * T * T);
  needLength(op, 'out', other, B * T * C);
}

export function checkBiasAdd(out: View, x: View, bias: View, rows: number, cols: number): void {
  needPositive('biasAdd', { rows, cols });
  needLength('biasAdd', 'out', out, rows * cols);
  needLength('biasAdd', 'x', x, rows * cols);
  needLength('biasAdd', 'bias', bias, cols);
}

export function checkBiasBackward(dBias: View, dOut: View, rows: number, cols: number): void {
  needPositive('biasBackward', { rows, cols });
  needLength('biasBackward', 'dBias', dBias, cols);
  needLength('biasBackward', 'dOut', dOut, rows * cols);
}

/** The embedding forward's shapes; returns the vocabulary wte holds (whole rows of C). */
export function checkEmbedding(out: View, tokens: View, wte: View, wpe: View, B: number, T: number, C: number): number {
  const op = 'embedding';
  needPositive(op, { B, T, C });
  needDType(op, 'tokens', tokens, 'u32');
  needLength(op, 'out', out, B * T * C);
  needLength(op, 'tokens', tokens, B * T);
  needLength(op, 'wpe', wpe, T * C);
  return Math.floor(wte.length / C);
}

export function checkEmbeddingBackward(dWte: View, dWpe: View, dOut: View, tokens: View, B: number, T: number, C: number, vocab: number): void {
  const op = 'embeddingBackward';
  needPositive(op, { B, T, C, vocab });
  needDType(op, 'tokens', tokens, 'u32');
  needLength(op, 'dWte', dWte, vocab * C);
  needLength(op, 'dWpe', dWpe, T * C);
  needLength(op, 'dOut', dOut, B * T * C);
  needLength(op, 'tokens', tokens, B * T);
}
