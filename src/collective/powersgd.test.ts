// PowerSGD's math and its exchange over the in-memory ring: exact on rank-r matrices, orthonormal
// factors, replicas bitwise equal, error feedback that loses nothing, and r(n + m) floats per matrix.
import { describe, expect, it } from 'vitest';
import { mulberry32 } from './codecs';
import { createMemoryMesh } from './memory-transport';
import {
  denseFloats,
  gaussianFill,
  multiplyMQ,
  multiplyMtP,
  multiplyPQt,
  orthogonalizeColumns,
  PowerSgdCompressor,
  powerSgdPlan,
  runPowerSgd,
  type TensorSlot,
} from './powersgd';

function gaussian(length: number, seed: number): Float32Array {
  const out = new Float32Array(length);
  gaussianFill(out, mulberry32(seed));
  return out;
}

/** A rank-r matrix A B^T (n x m). */
function lowRank(n: number, m: number, r: number, seed: number): Float32Array {
  const out = new Float32Array(n * m);
  multiplyPQt(gaussian(n * r, seed), gaussian(m * r, seed + 1), n, m, r, out);
  return out;
}

function maxAbs(a: Float32Array): number {
  return a.reduce((worst, v) => Math.max(worst, Math.abs(v)), 0);
}

function norm(a: Float32Array): number {
  return Math.sqrt(a.reduce((sum, v) => sum + v * v, 0));
}

function maxDiff(a: Float32Array, b: Float32Array): number {
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return worst;
}

/** One exchange on a world of one: the all-reduces are the identity. */
function stepAlone(compressor: PowerSgdCompressor, grad: Float32Array): Float32Array {
  const out = new Float32Array(grad.length);
  const second = compressor.secondPayload(compressor.firstPayload(grad));
  compressor.finish(second, out);
  return out;
}

// A small "model": a 24 x 16 matrix, a 16-vector, a 5 x 3 matrix (too small to gain at rank >= 2), padded.
const TENSORS: TensorSlot[] = [
  { name: 'w0', offset: 0, shape: [24, 16] },
  { name: 'b0', offset: 384, shape: [16] },
  { name: 'w1', offset: 448, shape: [5, 3] },
];
const LENGTH = 512;

describe('the plan', () => {
  it('compresses a matrix to r(n + m) floats when that is less than n·m; vectors and small matrices go dense', () => {
    const one = powerSgdPlan(TENSORS, LENGTH, 1);
    expect(one.matrices.map((m) => m.name)).toEqual(['w0', 'w1']); // 1·(5 + 3) = 8 < 15
    expect(one.firstFloats).toBe(24 + 5 + 16);
    expect(one.secondFloats).toBe(16 + 3);
    const two = powerSgdPlan(TENSORS, LENGTH, 2);
    expect(two.matrices.map((m) => m.name)).toEqual(['w0']); // 2·(5 + 3) = 16 >= 15
    expect(two.firstFloats + two.secondFloats).toBe(2 * (24 + 16) + 16 + 15);
    expect(denseFloats(two)).toBe(24 * 16 + 16 + 15);
  });

  it('a minimum compression rate keeps matrices that gain less dense (strictly more than the rate is compressed)', () => {
    // Rank 1: w0 (24 x 16) gains 384 / 40 = 9.6x, w1 (5 x 3) 15 / 8 = 1.875x.
    expect(powerSgdPlan(TENSORS, LENGTH, 1, 1).matrices.map((m) => m.name)).toEqual(['w0', 'w1']);
    const two = powerSgdPlan(TENSORS, LENGTH, 1, 2);
    expect(two.matrices.map((m) => m.name)).toEqual(['w0']);
    expect(two.firstFloats).toBe(24 + 16 + 15); // P of w0, then b0 and w1 whole
    expect(two.secondFloats).toBe(16);
    expect(powerSgdPlan(TENSORS, LENGTH, 1, 9.5).matrices.map((m) => m.name)).toEqual(['w0']);
    expect(powerSgdPlan(TENSORS, LENGTH, 1, 9.6).matrices).toEqual([]);
    for (const bad of [0.5, Number.NaN, Infinity]) expect(() => powerSgdPlan(TENSORS, LENGTH, 1, bad)).toThrow(/compression rate/);
  });

  it('refuses overlapping tensors, tensors outside the vector, 3-D tensors and rank 0', () => {
    expect(() => powerSgdPlan([{ name: 'a', offset: 0, shape: [4, 4] }, { name: 'b', offset: 8, shape: [4] }], 64, 1)).toThrow(/overlaps/);
    expect(() => powerSgdPlan([{ name: 'a', offset: 60, shape: [4, 4] }], 64, 1)).toThrow(/outside/);
    expect(() => powerSgdPlan([{ name: 'a', offset: 0, shape: [2, 2, 2] }], 64, 1)).toThrow(/dimensions/);
    expect(() => powerSgdPlan(TENSORS, LENGTH, 0)).toThrow(/rank/);
  });
});

describe('the linear algebra', () => {
  it('M Q, M^T P and P Q^T agree with the definition (float64 reference, 1e-5 relative)', () => {
    const [n, m, r] = [7, 5, 3];
    const M = gaussian(n * m, 1);
    const Q = gaussian(m * r, 2);
    const P = new Float32Array(n * r);
    multiplyMQ(M, n, m, Q, r, P);
    const Qt = new Float32Array(m * r);
    multiplyMtP(M, n, m, P, r, Qt);
    const back = new Float32Array(n * m);
    multiplyPQt(P, Q, n, m, r, back);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < r; j++) {
        let sum = 0;
        for (let k = 0; k < m; k++) sum += M[i * m + k] * Q[k * r + j];
        expect(P[i * r + j]).toBeCloseTo(sum, 5);
      }
      for (let k = 0; k < m; k++) {
        let sum = 0;
        for (let j = 0; j < r; j++) sum += P[i * r + j] * Q[k * r + j];
        expect(back[i * m + k]).toBeCloseTo(sum, 4);
      }
    }
    for (let k = 0; k < m; k++) {
      for (let j = 0; j < r; j++) {
        let sum = 0;
        for (let i = 0; i < n; i++) sum += M[i * m + k] * P[i * r + j];
        expect(Qt[k * r + j]).toBeCloseTo(sum, 3);
      }
    }
  });

  it.each([1, 2, 4, 8])('Gram-Schmidt gives orthonormal columns (rank %i; |P^T P - I| < 1e-6)', (r) => {
    const n = 50;
    const P = gaussian(n * r, 10 + r);
    orthogonalizeColumns(P, n, r);
    for (let a = 0; a < r; a++) {
      for (let b = 0; b < r; b++) {
        let dot = 0;
        for (let i = 0; i < n; i++) dot += P[i * r + a] * P[i * r + b];
        expect(Math.abs(dot - (a === b ? 1 : 0))).toBeLessThan(1e-6);
      }
    }
  });

  it('a dependent column becomes zero instead of amplified rounding noise', () => {
    const n = 6;
    const P = new Float32Array(n * 2);
    for (let i = 0; i < n; i++) P[i * 2] = P[i * 2 + 1] = i + 1; // two equal columns
    orthogonalizeColumns(P, n, 2);
    for (let i = 0; i < n; i++) expect(Math.abs(P[i * 2 + 1])).toBe(0);
    expect(P[0]).toBeGreaterThan(0);
  });
});

describe('compression', () => {
  it.each([1, 2, 4])('rank %i: a rank-r matrix comes back exactly (1e-5 of its largest entry) and leaves no residual', (r) => {
    const [n, m] = [30, 20];
    const compressor = new PowerSgdCompressor(powerSgdPlan([{ name: 'w', offset: 0, shape: [n, m] }], n * m, r), 7);
    const M = lowRank(n, m, r, 3 + r);
    const out = stepAlone(compressor, M);
    expect(maxDiff(out, M)).toBeLessThan(1e-5 * maxAbs(M));
    expect(maxAbs(compressor.residual)).toBeLessThan(1e-5 * maxAbs(M));
  });

  it('a full-rank matrix is not sent whole: the residual keeps the rest, and error feedback adds it to the next step', () => {
    const [n, m, r] = [30, 20, 2];
    const plan = powerSgdPlan([{ name: 'w', offset: 0, shape: [n, m] }], n * m, r);
    const compressor = new PowerSgdCompressor(plan, 7);
    const grads = [gaussian(n * m, 1), gaussian(n * m, 2), new Float32Array(n * m), new Float32Array(n * m)];
    const accumulated = new Float64Array(n * m);
    const delivered = new Float64Array(n * m);
    let residualBefore = 0;
    for (const g of grads) {
      residualBefore = norm(compressor.residual);
      const out = stepAlone(compressor, g);
      g.forEach((v, i) => (accumulated[i] += v));
      out.forEach((v, i) => (delivered[i] += v));
      // Sent + residual = all accumulated so far, every step (float32 rounding: 1e-5 of the scale).
      for (let i = 0; i < n * m; i++) expect(Math.abs(delivered[i] + compressor.residual[i] - accumulated[i])).toBeLessThan(1e-4);
    }
    // The zero-gradient steps still sent something: the residual carried from the steps before.
    // (The residual is M minus its projection onto span(P^): its Frobenius norm can only shrink.)
    expect(residualBefore).toBeGreaterThan(1);
    expect(norm(compressor.residual)).toBeLessThan(residualBefore);
  });

  it('biases travel uncompressed and leave no residual', () => {
    const compressor = new PowerSgdCompressor(powerSgdPlan(TENSORS, LENGTH, 2), 1);
    const g = gaussian(LENGTH, 4);
    for (let i = 400; i < 448; i++) g[i] = 0; // padding
    for (let i = 463; i < LENGTH; i++) g[i] = 0;
    const out = stepAlone(compressor, g);
    expect(Array.from(out.subarray(384, 400))).toEqual(Array.from(g.subarray(384, 400)));
    expect(Array.from(out.subarray(448, 463))).toEqual(Array.from(g.subarray(448, 463))); // w1 is dense at rank 2
    expect(maxAbs(compressor.residual.subarray(384))).toBe(0);
  });
});

describe('over the ring', () => {
  it.each([2, 3, 4])('%i ranks, 6 steps: every rank gets the same bits, equal to rank-r of the mean; bytes = 2(N-1)(first + second) floats', async (world) => {
    const r = 2;
    const plan = powerSgdPlan(TENSORS, LENGTH, r);
    const transports = createMemoryMesh(world);
    const compressors = transports.map(() => new PowerSgdCompressor(plan, 42));
    let roomBytes = 0;
    for (let step = 0; step < 6; step++) {
      const grads = transports.map((t) => gaussian(LENGTH, 100 * step + t.rank));
      const inputs = grads.map((g) => g.slice());
      const stats = await Promise.all(transports.map((t) => runPowerSgd(t, compressors[t.rank], grads[t.rank], { round: step, collective: 16 })));
      roomBytes += stats.reduce((sum, s) => sum + s.bytesSent, 0);
      for (const g of grads.slice(1)) expect(Buffer.from(g.buffer).equals(Buffer.from(grads[0].buffer))).toBe(true);
      for (const c of compressors.slice(1)) c.qs.forEach((q, i) => expect(Buffer.from(q.buffer).equals(Buffer.from(compressors[0].qs[i].buffer))).toBe(true));
      // The room's average is the mean of what each rank contributed (its local reconstruction).
      const meanSent = new Float32Array(LENGTH);
      for (const c of compressors) c.lastSent.forEach((v, i) => (meanSent[i] += v / world));
      expect(maxDiff(meanSent, grads[0])).toBeLessThan(1e-5 * Math.max(1, maxAbs(grads[0])));
      // Biases are the plain mean.
      for (let i = 384; i < 400; i++) expect(grads[0][i]).toBeCloseTo(inputs.reduce((s, g) => s + g[i], 0) / world, 5);
    }
    expect(roomBytes).toBe(6 * 2 * (world - 1) * (plan.firstFloats + plan.secondFloats) * 4);
    expect(plan.firstFloats + plan.secondFloats).toBeLessThan(denseFloats(plan));
    for (const t of transports) expect(t.pendingMessages).toBe(0);
  });
});
