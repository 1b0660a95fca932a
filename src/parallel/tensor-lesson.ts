// The textbook example of tensor parallelism as data: a two-layer MLP Y = relu(X W1 + b1) W2 + b2 split
// across R ranks the Megatron way (W1 and b1 by columns, W2 by rows, b2 replicated), forward and
// backward, one op at a time, with every rank's real numbers. The classroom lesson
// (src/lab/tensor-class-lesson.ts) runs the same example on real tabs with these helpers and
// integerLessonValues, and its tests check every tab's report against this list. Nothing here runs
// a collective or touches a device: the all-reduces are computed in place (the sum of the ranks'
// partial matrices, which every rank then holds), with the bytes a ring all-reduce of them sends per
// rank. The loss is half the squared error to a target, so the backward starts from
// dY = Y - target. The last ops check every result against the unsplit layer's: the output, the loss,
// each rank's gradient shards put back together, and the input gradient.
//
// Arithmetic is JavaScript's (float64): the split and unsplit results differ only by the order of their
// sums, far below the check's tolerance. (The lab's tabs compute in float32; their exactness is tested in
// src/parallel/tensor-trainer.test.ts.)
import { Rng } from '../data/random';

/** A row-major matrix of plain numbers (a vector is one row). */
export interface Matrix {
  rows: number;
  cols: number;
  data: number[];
}

export interface LessonShape {
  /** Batch rows, input width, hidden width (divisible by ranks), output width. */
  batch: number;
  input: number;
  hidden: number;
  output: number;
  ranks: number;
}

export interface LessonValues {
  X: Matrix;
  W1: Matrix;
  b1: Matrix;
  W2: Matrix;
  b2: Matrix;
  target: Matrix;
}

export type LessonOpKind = 'split-columns' | 'split-rows' | 'replicate' | 'local' | 'all-reduce' | 'check';

export interface LessonOp {
  /** Position in the list, from 0. */
  step: number;
  pass: 'setup' | 'forward' | 'backward' | 'check';
  kind: LessonOpKind;
  /** What the op computes, in the lesson's notation (r is the rank). */
  formula: string;
  /** Per rank, the matrices this op produced on it (by name). */
  ranks: Record<string, Matrix>[];
  /** all-reduce: elements summed, and bytes each rank sends in a ring all-reduce of float32 values. */
  collective?: { elements: number; ringBytesPerRank: number };
  /** check: the largest absolute difference from the unsplit layer's value, and whether it is within tolerance. */
  check?: { name: string; maxAbsDifference: number; ok: boolean };
}

export interface Lesson {
  shape: LessonShape;
  values: LessonValues;
  ops: LessonOp[];
  /** Every check passed. */
  ok: boolean;
}

/** Tolerance of the checks: float64 sums in another order. */
export const LESSON_TOLERANCE = 1e-12;

// ---- small matrix helpers (plain numbers) ----

export function matrix(rows: number, cols: number, fill: (r: number, c: number) => number): Matrix {
  const data: number[] = [];
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) data.push(fill(r, c));
  return { rows, cols, data };
}

const at = (m: Matrix, r: number, c: number) => m.data[r * m.cols + c];

export function matmul(a: Matrix, b: Matrix): Matrix {
  if (a.cols !== b.rows) throw new RangeError(`cannot multiply ${a.rows}x${a.cols} by ${b.rows}x${b.cols}`);
  return matrix(a.rows, b.cols, (r, c) => {
    let s = 0;
    for (let k = 0; k < a.cols; k++) s += at(a, r, k) * at(b, k, c);
    return s;
  });
}

export const transpose = (m: Matrix): Matrix => matrix(m.cols, m.rows, (r, c) => at(m, c, r));
export const addRow = (m: Matrix, row: Matrix): Matrix => matrix(m.rows, m.cols, (r, c) => at(m, r, c) + row.data[c]);
export const map2 = (a: Matrix, b: Matrix, f: (x: number, y: number) => number): Matrix => matrix(a.rows, a.cols, (r, c) => f(at(a, r, c), at(b, r, c)));
export const relu = (m: Matrix): Matrix => matrix(m.rows, m.cols, (r, c) => Math.max(0, at(m, r, c)));
export const sumRows = (m: Matrix): Matrix => matrix(1, m.cols, (_, c) => {
  let s = 0;
  for (let r = 0; r < m.rows; r++) s += at(m, r, c);
  return s;
});
export const columns = (m: Matrix, from: number, count: number): Matrix => matrix(m.rows, count, (r, c) => at(m, r, from + c));
export const rowsOf = (m: Matrix, from: number, count: number): Matrix => matrix(count, m.cols, (r, c) => at(m, from + r, c));
const concatColumns = (parts: Matrix[]): Matrix => {
  const cols = parts.reduce((s, p) => s + p.cols, 0);
  return matrix(parts[0].rows, cols, (r, c) => {
    let k = c;
    for (const p of parts) {
      if (k < p.cols) return at(p, r, k);
      k -= p.cols;
    }
    throw new RangeError('column outside the parts');
  });
};
const concatRows = (parts: Matrix[]): Matrix => ({ rows: parts.reduce((s, p) => s + p.rows, 0), cols: parts[0].cols, data: parts.flatMap((p) => p.data) });
export const sumAll = (parts: Matrix[]): Matrix => parts.slice(1).reduce((s, p) => map2(s, p, (x, y) => x + y), parts[0]);
export const maxAbsDifference = (a: Matrix, b: Matrix): number => {
  if (a.rows !== b.rows || a.cols !== b.cols) return Infinity;
  return a.data.reduce((m, v, i) => Math.max(m, Math.abs(v - b.data[i])), 0);
};

/**
 * Seeded small values for a lesson of `shape` (weights and inputs standard normal, scaled down, two
 * decimals). The default seed gives the default shapes (2 x 3 -> 4 -> 2 on 2 or 4 ranks) hidden units
 * that are on and off on every rank, so each screen shows both halves of relu.
 */
export function lessonValues(shape: LessonShape, seed = 2): LessonValues {
  const rng = new Rng(seed);
  const round = (v: number) => Math.round(v * 100) / 100; // two decimals: readable on a classroom screen
  const random = (rows: number, cols: number, scale: number) => matrix(rows, cols, () => round(scale * rng.normal()));
  const { batch: B, input: D, hidden: H, output: O } = shape;
  return { X: random(B, D, 1), W1: random(D, H, 0.5), b1: random(1, H, 0.1), W2: random(H, O, 0.5), b2: random(1, O, 0.1), target: random(B, O, 1) };
}

/**
 * Small integers for a lesson of `shape` (X from -2 to 2, W1, b1 and W2 from -1 to 1, b2 from 0 to 1,
 * the target from 0 to 2), seeded: every product and sum of the lesson is then an integer that
 * float32 holds exactly, so tabs computing in float32 show the very numbers this module computes and a
 * student can check them by hand. W1's first column is kept positive on X's first row and its last
 * column negative, so relu shows both halves (on the first and last rank at least).
 */
export function integerLessonValues(shape: LessonShape, seed: number): LessonValues {
  const rng = new Rng(seed);
  const { batch: B, input: D, hidden: H, output: O } = shape;
  const ints = (rows: number, cols: number, low: number, high: number) => matrix(rows, cols, () => low + Math.floor(rng.uniform() * (high - low + 1)));
  const X = ints(B, D, -2, 2);
  const W1 = ints(D, H, -1, 1);
  const b1 = ints(1, H, -1, 1);
  // Make hidden unit 0 on and unit H-1 off for the first input row (sign of X's first row dotted with the column).
  const row0 = X.data.slice(0, D);
  for (const [col, sign] of [[0, 1], [H - 1, -1]] as const) {
    for (let d = 0; d < D; d++) W1.data[d * H + col] = row0[d] === 0 ? 0 : sign * Math.sign(row0[d]);
    b1.data[col] = row0.every((v) => v === 0) ? sign : 0;
  }
  return { X, W1, b1, W2: ints(H, O, -1, 1), b2: ints(1, O, 0, 1), target: ints(B, O, 0, 2) };
}

/**
 * The ordered ops of the two-layer example split over `shape.ranks` ranks, forward and backward, and
 * the checks against the unsplit layer. `values` defaults to lessonValues(shape).
 */
export function twoLayerLesson(shape: LessonShape, values: LessonValues = lessonValues(shape)): Lesson {
  const { batch: B, input: D, hidden: H, output: O, ranks: R } = shape;
  for (const [k, v] of Object.entries(shape)) if (!Number.isInteger(v) || v < 1) throw new RangeError(`lesson ${k} must be a positive integer, got ${v}`);
  if (H % R !== 0) throw new RangeError(`the hidden width ${H} does not split over ${R} ranks`);
  const expect = (name: string, m: Matrix, rows: number, cols: number) => {
    if (m.rows !== rows || m.cols !== cols || m.data.length !== rows * cols) throw new RangeError(`${name} must be ${rows}x${cols}, got ${m.rows}x${m.cols}`);
  };
  const { X, W1, b1, W2, b2, target } = values;
  expect('X', X, B, D);
  expect('W1', W1, D, H);
  expect('b1', b1, 1, H);
  expect('W2', W2, H, O);
  expect('b2', b2, 1, O);
  expect('target', target, B, O);

  const h = H / R;
  const rankList = Array.from({ length: R }, (_, r) => r);
  const ops: LessonOp[] = [];
  const push = (op: Omit<LessonOp, 'step'>) => ops.push({ step: ops.length, ...op });
  const perRank = (f: (r: number) => Record<string, Matrix>) => rankList.map(f);
  const ringBytes = (elements: number) => (R === 1 ? 0 : Math.round(((2 * (R - 1)) / R) * elements * 4));

  // setup: who holds what
  const W1r = rankList.map((r) => columns(W1, r * h, h));
  const b1r = rankList.map((r) => columns(b1, r * h, h));
  const W2r = rankList.map((r) => rowsOf(W2, r * h, h));
  push({ pass: 'setup', kind: 'replicate', formula: 'every rank holds the whole input X and the bias b2', ranks: perRank(() => ({ X, b2 })) });
  push({ pass: 'setup', kind: 'split-columns', formula: `W1 and b1 split by columns: rank r holds hidden units [r*${h}, (r+1)*${h})`, ranks: perRank((r) => ({ W1_r: W1r[r], b1_r: b1r[r] })) });
  push({ pass: 'setup', kind: 'split-rows', formula: 'W2 split by rows: rank r holds the rows of its own hidden units', ranks: perRank((r) => ({ W2_r: W2r[r] })) });

  // forward
  const Z1r = rankList.map((r) => addRow(matmul(X, W1r[r]), b1r[r]));
  push({ pass: 'forward', kind: 'local', formula: 'Z_r = X W1_r + b1_r (no communication: each rank has the whole X)', ranks: perRank((r) => ({ Z_r: Z1r[r] })) });
  const Ar = Z1r.map(relu);
  push({ pass: 'forward', kind: 'local', formula: 'A_r = relu(Z_r) (elementwise, on the rank\'s own hidden units)', ranks: perRank((r) => ({ A_r: Ar[r] })) });
  const Pr = rankList.map((r) => matmul(Ar[r], W2r[r]));
  push({ pass: 'forward', kind: 'local', formula: 'P_r = A_r W2_r: a partial sum of the output, over this rank\'s hidden units', ranks: perRank((r) => ({ P_r: Pr[r] })) });
  const P = sumAll(Pr);
  push({ pass: 'forward', kind: 'all-reduce', formula: 'g: P = sum over ranks of P_r, all-reduced so every rank holds it', ranks: perRank(() => ({ P })), collective: { elements: B * O, ringBytesPerRank: ringBytes(B * O) } });
  const Y = addRow(P, b2);
  push({ pass: 'forward', kind: 'local', formula: 'Y = P + b2 (the replicated bias, added once after the sum)', ranks: perRank(() => ({ Y })) });
  const dY = map2(Y, target, (y, t) => y - t);
  const loss = dY.data.reduce((s, v) => s + 0.5 * v * v, 0);
  push({ pass: 'forward', kind: 'local', formula: 'loss = 1/2 |Y - target|^2 (the same on every rank)', ranks: perRank(() => ({ loss: matrix(1, 1, () => loss) })) });

  // backward
  push({ pass: 'backward', kind: 'local', formula: 'dY = Y - target', ranks: perRank(() => ({ dY })) });
  const db2 = sumRows(dY);
  const dW2r = rankList.map((r) => matmul(transpose(Ar[r]), dY));
  push({ pass: 'backward', kind: 'local', formula: 'dW2_r = A_r^T dY (this rank\'s rows of dW2); db2 = column sums of dY (replicated, equal everywhere)', ranks: perRank((r) => ({ dW2_r: dW2r[r], db2 })) });
  const dAr = rankList.map((r) => matmul(dY, transpose(W2r[r])));
  push({ pass: 'backward', kind: 'local', formula: 'dA_r = dY W2_r^T (no communication: dY is on every rank)', ranks: perRank((r) => ({ dA_r: dAr[r] })) });
  const dZr = rankList.map((r) => map2(Z1r[r], dAr[r], (z, d) => (z > 0 ? d : 0)));
  push({ pass: 'backward', kind: 'local', formula: 'dZ_r = dA_r where Z_r > 0, else 0 (relu\')', ranks: perRank((r) => ({ dZ_r: dZr[r] })) });
  const dW1r = rankList.map((r) => matmul(transpose(X), dZr[r]));
  const db1r = dZr.map(sumRows);
  push({ pass: 'backward', kind: 'local', formula: 'dW1_r = X^T dZ_r; db1_r = column sums of dZ_r (this rank\'s columns)', ranks: perRank((r) => ({ dW1_r: dW1r[r], db1_r: db1r[r] })) });
  const dXr = rankList.map((r) => matmul(dZr[r], transpose(W1r[r])));
  push({ pass: 'backward', kind: 'local', formula: 'dX_r = dZ_r W1_r^T: a partial sum of the input gradient', ranks: perRank((r) => ({ dX_r: dXr[r] })) });
  const dX = sumAll(dXr);
  push({ pass: 'backward', kind: 'all-reduce', formula: 'f: dX = sum over ranks of dX_r, all-reduced so every rank holds it', ranks: perRank(() => ({ dX })), collective: { elements: B * D, ringBytesPerRank: ringBytes(B * D) } });

  // the unsplit layer, and the checks
  const Z = addRow(matmul(X, W1), b1);
  const A = relu(Z);
  const Yref = addRow(matmul(A, W2), b2);
  const dYref = map2(Yref, target, (y, t) => y - t);
  const lossRef = dYref.data.reduce((s, v) => s + 0.5 * v * v, 0);
  const dZ = map2(Z, matmul(dYref, transpose(W2)), (z, d) => (z > 0 ? d : 0));
  const reference: Record<string, [Matrix, Matrix]> = {
    Y: [Y, Yref],
    loss: [matrix(1, 1, () => loss), matrix(1, 1, () => lossRef)],
    dW2: [concatRows(dW2r), matmul(transpose(A), dYref)],
    db2: [db2, sumRows(dYref)],
    dW1: [concatColumns(dW1r), matmul(transpose(X), dZ)],
    db1: [concatColumns(db1r), sumRows(dZ)],
    dX: [dX, matmul(dZ, transpose(W1))],
  };
  let ok = true;
  for (const [name, [split, whole]] of Object.entries(reference)) {
    const difference = maxAbsDifference(split, whole);
    const within = difference <= LESSON_TOLERANCE * Math.max(1, ...whole.data.map(Math.abs));
    ok &&= within;
    push({ pass: 'check', kind: 'check', formula: `${name} from the ${R} ranks equals the unsplit layer's`, ranks: perRank(() => ({ [name]: split })), check: { name, maxAbsDifference: difference, ok: within } });
  }
  return { shape, values, ops, ok };
}

/** One line per op, for a terminal or a test log (numbers rounded to 4 decimals). */
export function formatLesson(lesson: Lesson): string {
  const show = (m: Matrix) => {
    const rows: string[] = [];
    for (let r = 0; r < m.rows; r++) rows.push(m.data.slice(r * m.cols, (r + 1) * m.cols).map((v) => v.toFixed(4)).join(' '));
    return `[${rows.join(' | ')}]`;
  };
  const lines: string[] = [];
  for (const op of lesson.ops) {
    lines.push(`${op.step}. ${op.pass === 'check' ? 'check' : `${op.pass} ${op.kind}`}: ${op.formula}${op.collective ? ` (${op.collective.elements} floats, ${op.collective.ringBytesPerRank} B sent per rank by a ring)` : ''}${op.check ? ` -> max |diff| ${op.check.maxAbsDifference.toExponential(1)} ${op.check.ok ? 'ok' : 'FAILED'}` : ''}`);
    if (op.kind === 'check') continue;
    op.ranks.forEach((tensors, r) => lines.push(`   rank ${r}: ${Object.entries(tensors).map(([name, m]) => `${name} = ${show(m)}`).join('  ')}`));
  }
  return lines.join('\n');
}
