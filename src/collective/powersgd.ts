// PowerSGD (Vogels, Karimireddy and Jaggi, 2019): each 2-D gradient matrix M (n x m) travels as two thin
// factors of rank r instead of n·m floats. One step of power iteration per training step:
//
//   M  = gradient + error                 (error feedback: what earlier steps did not send)
//   P  = M Q                    (n x r)   Q is last step's, warm-started, identical on every rank
//   P  = all-reduce mean of P
//   P^ = orthonormal columns of P          (Gram-Schmidt in one fixed order: every rank gets the same bits)
//   Qi = M^T P^                 (m x r)
//   Q  = all-reduce mean of Qi             (kept as next step's Q)
//   M' = P^ Q^T                            the averaged, rank-r gradient every rank applies
//   error = M - P^ Qi^T                    this rank's own residual: the part of M outside span(P^)
//
// The residual is the paper's (Algorithm 2: the local compression error), so on each rank, exactly in
// real arithmetic, what was sent plus the residual is everything accumulated. The mean of the local
// reconstructions P^ Qi^T is M', because Qi is linear in M.
//
// 1-D tensors (biases) and matrices that gain too little travel uncompressed in the first all-reduce,
// beside the P factors: two all-reduces per step whatever the model. "Too little" is PyTorch's
// min_compression_rate: a matrix is compressed only when n·m > rate · r(n + m).
//
// Every product accumulates in float64 in a fixed loop order and the all-reduces give every rank the
// same bits (collectives.ts), so replicas that start equal stay bitwise equal.
import { runAllReduce, type CollectiveOptions } from './collectives';
import type { RunStats } from './executor';
import { mulberry32 } from './codecs';
import type { Transport } from './types';

/** A tensor inside a flat vector: `shape` [rows, cols] for a matrix, [length] for a vector. */
export interface TensorSlot {
  name: string;
  offset: number;
  shape: readonly number[];
}

export interface CompressedMatrix {
  name: string;
  offset: number;
  rows: number;
  cols: number;
  /** Where this matrix's P factor sits in the first payload and its Q factor in the second. */
  pOffset: number;
  qOffset: number;
}

export interface DenseSlice {
  name: string;
  offset: number;
  length: number;
  /** Where it sits in the first payload (after every P factor). */
  payloadOffset: number;
}

/** Which tensors are compressed, which are sent as they are, and the two payloads' sizes. */
export interface PowerSgdPlan {
  rank: number;
  /** Length of the flat gradient vector (padding included). */
  length: number;
  matrices: CompressedMatrix[];
  dense: DenseSlice[];
  /** Floats in the first all-reduce: every P (rows x rank) and every dense tensor. */
  firstFloats: number;
  /** Floats in the second all-reduce: every Q (cols x rank). */
  secondFloats: number;
}

/** Floats a dense exchange of the same tensors would all-reduce (padding excluded). */
export function denseFloats(plan: PowerSgdPlan): number {
  return plan.matrices.reduce((sum, m) => sum + m.rows * m.cols, 0) + plan.dense.reduce((sum, d) => sum + d.length, 0);
}

/**
 * Splits the tensors of a flat vector of `length` into compressed matrices and dense slices. A matrix
 * is compressed when its factors are more than `minCompressionRate` times smaller than itself:
 * n·m > minCompressionRate · r(n + m). At 1 every matrix that gains is compressed; a larger rate keeps
 * small, low-rate matrices (a classifier's output layer) exact for a few more bytes.
 */
export function powerSgdPlan(tensors: readonly TensorSlot[], length: number, rank: number, minCompressionRate = 1): PowerSgdPlan {
  if (!Number.isSafeInteger(rank) || rank < 1) throw new RangeError(`PowerSGD rank must be an integer >= 1, got ${rank}`);
  if (!Number.isFinite(minCompressionRate) || minCompressionRate < 1) throw new RangeError(`PowerSGD minimum compression rate must be a number >= 1, got ${minCompressionRate}`);
  const matrices: CompressedMatrix[] = [];
  const denseTensors: { name: string; offset: number; length: number }[] = [];
  let pFloats = 0;
  let qFloats = 0;
  let covered = 0;
  for (const t of [...tensors].sort((a, b) => a.offset - b.offset)) {
    const size = t.shape.reduce((a, b) => a * b, 1);
    if (!Number.isSafeInteger(t.offset) || t.offset < covered || t.offset + size > length || t.shape.some((d) => !Number.isSafeInteger(d) || d < 1)) {
      throw new RangeError(`tensor ${t.name} [${t.shape.join(', ')}] at ${t.offset} overlaps another or lies outside a vector of ${length}`);
    }
    covered = t.offset + size;
    if (t.shape.length > 2) throw new RangeError(`tensor ${t.name} has ${t.shape.length} dimensions; PowerSGD takes matrices and vectors`);
    const [rows, cols] = t.shape.length === 2 ? t.shape : [1, t.shape[0]];
    if (t.shape.length === 2 && minCompressionRate * rank * (rows + cols) < rows * cols) {
      matrices.push({ name: t.name, offset: t.offset, rows, cols, pOffset: pFloats, qOffset: qFloats });
      pFloats += rows * rank;
      qFloats += cols * rank;
    } else denseTensors.push({ name: t.name, offset: t.offset, length: size });
  }
  let at = pFloats;
  const dense = denseTensors.map((d) => {
    const slice = { ...d, payloadOffset: at };
    at += d.length;
    return slice;
  });
  return { rank, length, matrices, dense, firstFloats: at, secondFloats: qFloats };
}

// --- the linear algebra (row-major, float64 accumulation, fixed loop order) ---------------------------

/** P (n x r) = M (n x m) · Q (m x r). */
export function multiplyMQ(M: Float32Array, n: number, m: number, Q: Float32Array, r: number, P: Float32Array): void {
  const row = new Float64Array(r);
  for (let i = 0; i < n; i++) {
    row.fill(0);
    for (let k = 0; k < m; k++) {
      const mik = M[i * m + k];
      if (mik === 0) continue;
      for (let j = 0; j < r; j++) row[j] += mik * Q[k * r + j];
    }
    for (let j = 0; j < r; j++) P[i * r + j] = row[j];
  }
}

/** Q (m x r) = M^T (m x n) · P (n x r). */
export function multiplyMtP(M: Float32Array, n: number, m: number, P: Float32Array, r: number, Q: Float32Array): void {
  const acc = new Float64Array(m * r);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < r; j++) {
      const pij = P[i * r + j];
      if (pij === 0) continue;
      for (let k = 0; k < m; k++) acc[k * r + j] += M[i * m + k] * pij;
    }
  }
  for (let x = 0; x < acc.length; x++) Q[x] = acc[x];
}

/** out (n x m) = P (n x r) · Q^T (r x m). */
export function multiplyPQt(P: Float32Array, Q: Float32Array, n: number, m: number, r: number, out: Float32Array): void {
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < m; k++) {
      let sum = 0;
      for (let j = 0; j < r; j++) sum += P[i * r + j] * Q[k * r + j];
      out[i * m + k] = sum;
    }
  }
}

/**
 * Makes the r columns of P (n x r, row-major) orthonormal in place: modified Gram-Schmidt, columns in
 * index order. A column with nothing left after removing the earlier ones (P was rank-deficient)
 * becomes zero rather than amplified rounding noise.
 */
export function orthogonalizeColumns(P: Float32Array, n: number, r: number): void {
  const col = new Float64Array(n);
  for (let j = 0; j < r; j++) {
    let original = 0;
    for (let i = 0; i < n; i++) {
      col[i] = P[i * r + j];
      original += col[i] * col[i];
    }
    for (let q = 0; q < j; q++) {
      let dot = 0;
      for (let i = 0; i < n; i++) dot += col[i] * P[i * r + q];
      for (let i = 0; i < n; i++) col[i] -= dot * P[i * r + q];
    }
    let norm = 0;
    for (let i = 0; i < n; i++) norm += col[i] * col[i];
    // Relative test: a column that was (numerically) a combination of earlier ones is dropped.
    const keep = norm > 0 && norm > 1e-12 * original;
    const inv = keep ? 1 / Math.sqrt(norm) : 0;
    for (let i = 0; i < n; i++) P[i * r + j] = col[i] * inv;
  }
}

/** Standard normal entries (Box-Muller over mulberry32): the shared starting Q of every rank. */
export function gaussianFill(out: Float32Array, random: () => number): void {
  for (let i = 0; i < out.length; i += 2) {
    const u = 1 - random(); // in (0, 1]: log is finite
    const v = random();
    const radius = Math.sqrt(-2 * Math.log(u));
    out[i] = radius * Math.cos(2 * Math.PI * v);
    if (i + 1 < out.length) out[i + 1] = radius * Math.sin(2 * Math.PI * v);
  }
}

// --- the compressor: state between the two all-reduces and across steps -------------------------------

/**
 * One rank's PowerSGD state: the warm-started Q of every matrix (equal on every rank), the error
 * feedback residual (this rank's own) and the step in progress. Call firstPayload, secondPayload and
 * finish in that order, with the all-reduced means in between (runPowerSgd does it over a Transport).
 */
export class PowerSgdCompressor {
  /** Error feedback: the gradient not yet sent, flat like the gradient (zero outside compressed matrices). */
  readonly residual: Float32Array;
  /** Q of each matrix (cols x rank), in plan order. */
  readonly qs: Float32Array[];
  /** This rank's local reconstruction P^ Qi^T of the last step, flat (what it contributed). */
  readonly lastSent: Float32Array;
  private readonly random: () => number;
  private folded: Float32Array | undefined;
  private pHat: Float32Array | undefined;
  private localQ: Float32Array | undefined;
  private meanFirst: Float32Array | undefined;

  constructor(readonly plan: PowerSgdPlan, seed: number) {
    this.residual = new Float32Array(plan.length);
    this.lastSent = new Float32Array(plan.length);
    this.random = mulberry32(seed);
    this.qs = plan.matrices.map((m) => {
      const q = new Float32Array(m.cols * plan.rank);
      gaussianFill(q, this.random);
      return q;
    });
  }

  /** Folds `grad` into the residual and returns the first payload: every P = M Q, then the dense tensors. */
  firstPayload(grad: Float32Array): Float32Array {
    const { plan } = this;
    if (grad.length !== plan.length) throw new RangeError(`gradient has ${grad.length} elements, PowerSGD plan ${plan.length}`);
    const folded = new Float32Array(plan.length);
    for (let i = 0; i < folded.length; i++) folded[i] = grad[i] + this.residual[i];
    const payload = new Float32Array(plan.firstFloats);
    plan.matrices.forEach((m, i) => {
      const M = folded.subarray(m.offset, m.offset + m.rows * m.cols);
      multiplyMQ(M, m.rows, m.cols, this.qs[i], plan.rank, payload.subarray(m.pOffset, m.pOffset + m.rows * plan.rank));
    });
    for (const d of plan.dense) payload.set(grad.subarray(d.offset, d.offset + d.length), d.payloadOffset);
    this.folded = folded;
    return payload;
  }

  /** From the all-reduced first payload: orthogonalizes every P and returns this rank's Qi = M^T P^. */
  secondPayload(meanFirst: Float32Array): Float32Array {
    const { plan, folded } = this;
    if (!folded) throw new Error('PowerSGD: secondPayload before firstPayload');
    if (meanFirst.length !== plan.firstFloats) throw new RangeError(`first payload has ${meanFirst.length} floats, plan ${plan.firstFloats}`);
    const pHat = meanFirst.slice(0, plan.firstFloats - plan.dense.reduce((sum, d) => sum + d.length, 0));
    const localQ = new Float32Array(plan.secondFloats);
    for (const m of plan.matrices) {
      const P = pHat.subarray(m.pOffset, m.pOffset + m.rows * plan.rank);
      orthogonalizeColumns(P, m.rows, plan.rank);
      const M = folded.subarray(m.offset, m.offset + m.rows * m.cols);
      multiplyMtP(M, m.rows, m.cols, P, plan.rank, localQ.subarray(m.qOffset, m.qOffset + m.cols * plan.rank));
    }
    this.pHat = pHat;
    this.localQ = localQ;
    this.meanFirst = meanFirst;
    return localQ.slice(); // the caller all-reduces in place; localQ stays this rank's own
  }

  /** From the all-reduced second payload: writes the averaged gradient into `out`, updates residual and Q. */
  finish(meanSecond: Float32Array, out: Float32Array): void {
    const { plan, folded, pHat, localQ, meanFirst } = this;
    if (!folded || !pHat || !localQ || !meanFirst) throw new Error('PowerSGD: finish before secondPayload');
    if (meanSecond.length !== plan.secondFloats) throw new RangeError(`second payload has ${meanSecond.length} floats, plan ${plan.secondFloats}`);
    if (out.length !== plan.length) throw new RangeError(`output has ${out.length} elements, PowerSGD plan ${plan.length}`);
    out.fill(0);
    this.lastSent.fill(0);
    const r = plan.rank;
    plan.matrices.forEach((m, i) => {
      const size = m.rows * m.cols;
      const P = pHat.subarray(m.pOffset, m.pOffset + m.rows * r);
      const Q = meanSecond.subarray(m.qOffset, m.qOffset + m.cols * r);
      multiplyPQt(P, Q, m.rows, m.cols, r, out.subarray(m.offset, m.offset + size));
      const sent = this.lastSent.subarray(m.offset, m.offset + size);
      multiplyPQt(P, localQ.subarray(m.qOffset, m.qOffset + m.cols * r), m.rows, m.cols, r, sent);
      for (let x = 0; x < size; x++) this.residual[m.offset + x] = folded[m.offset + x] - sent[x];
      this.qs[i].set(Q);
      this.redrawZeroColumns(this.qs[i], m.cols);
    });
    for (const d of plan.dense) {
      out.set(meanFirst.subarray(d.payloadOffset, d.payloadOffset + d.length), d.offset);
      this.lastSent.set(folded.subarray(d.offset, d.offset + d.length), d.offset);
    }
    this.folded = this.pHat = this.localQ = this.meanFirst = undefined;
  }

  /**
   * A Q column that came back all zeros (its P column was dropped as dependent, or the gradient was
   * zero) would stay zero for good under warm starts: it is redrawn from the shared generator, which
   * every rank advances identically because Q is identical on every rank.
   */
  private redrawZeroColumns(Q: Float32Array, cols: number): void {
    const r = this.plan.rank;
    for (let j = 0; j < r; j++) {
      let zero = true;
      for (let k = 0; k < cols && zero; k++) zero = Q[k * r + j] === 0;
      if (!zero) continue;
      const fresh = new Float32Array(cols);
      gaussianFill(fresh, this.random);
      for (let k = 0; k < cols; k++) Q[k * r + j] = fresh[k];
    }
  }
}

/** Runs one all-reduce of `data` in place (the ring by default; parallel/collective-choice.ts picks one per size). */
export type AllReduceRunner = (data: Float32Array, opts: CollectiveOptions) => Promise<RunStats>;

/**
 * One PowerSGD exchange over `transport`: `grad` (this rank's) becomes the room's rank-r average in
 * place. Two all-reduces with collective ids `opts.collective` and `opts.collective + 1`, by `allReduce`
 * (the ring unless given: any algorithm that leaves every rank the same bits keeps replicas equal).
 */
export async function runPowerSgd(
  transport: Transport,
  compressor: PowerSgdCompressor,
  grad: Float32Array,
  opts: CollectiveOptions & { collective: number },
  allReduce: AllReduceRunner = (data, o) => runAllReduce(transport, data, o),
): Promise<RunStats> {
  const first = compressor.firstPayload(grad);
  const s1 = first.length ? await allReduce(first, { ...opts, average: true }) : undefined;
  const second = compressor.secondPayload(first);
  const s2 = second.length ? await allReduce(second, { ...opts, collective: opts.collective + 1, average: true }) : undefined;
  compressor.finish(second, grad);
  const add = (key: keyof RunStats) => (s1?.[key] ?? 0) + (s2?.[key] ?? 0);
  return { bytesSent: add('bytesSent'), bytesReceived: add('bytesReceived'), messagesSent: add('messagesSent'), messagesReceived: add('messagesReceived'), ms: add('ms') };
}
