// Node-only, for the CPU tuning scripts: the CPU reference backend with a cache-friendly matmul (same
// math, float64 accumulation, loops ordered i-k-j), because the reference's per-element closures make a
// 1,000-step MNIST run take half an hour. Every other op is the reference's own.
import type { MatmulOptions, View } from '../src/engine/backend';
import { CpuBackend } from '../src/engine/cpu-backend';
import { checkMatmul } from '../src/engine/op-checks';

function floats(v: View): Float32Array {
  // CpuBackend buffers carry their Float32Array as `f32` (see cpu-backend.ts).
  const f32 = (v.buf as unknown as { f32?: Float32Array }).f32;
  if (!f32) throw new Error('FastCpuBackend works on CpuBackend buffers only');
  return f32.subarray(v.offset, v.offset + v.length);
}

export class FastCpuBackend extends CpuBackend {
  override matmul(out: View, a: View, b: View, M: number, K: number, N: number, opts: MatmulOptions = {}): void {
    checkMatmul(out, a, b, M, K, N);
    const [o, A, B] = [floats(out), floats(a), floats(b)];
    const row = new Float64Array(N);
    const bT = opts.transB ? new Float64Array(K * N) : undefined;
    if (bT) for (let j = 0; j < N; j++) for (let k = 0; k < K; k++) bT[k * N + j] = B[j * K + k];
    const result = new Float64Array(M * N);
    for (let i = 0; i < M; i++) {
      row.fill(0);
      for (let k = 0; k < K; k++) {
        const aik = opts.transA ? A[k * M + i] : A[i * K + k];
        if (aik === 0) continue;
        const base = k * N;
        if (bT) for (let j = 0; j < N; j++) row[j] += aik * bT[base + j];
        else for (let j = 0; j < N; j++) row[j] += aik * B[base + j];
      }
      result.set(row, i * N);
    }
    for (let i = 0; i < M * N; i++) o[i] = opts.accumulate ? o[i] + result[i] : result[i];
  }
}
