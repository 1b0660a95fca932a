import { describe, expect, it } from 'vitest';
import { viewOf } from '../src/engine/backend';
import { CpuBackend } from '../src/engine/cpu-backend';
import { Rng } from '../src/data/random';
import { FastCpuBackend } from './fast-cpu-backend';

describe('FastCpuBackend', () => {
  it.each([
    [false, false, false],
    [true, false, true],
    [false, true, false],
    [true, true, true],
  ])('matmul matches the reference bit for bit (transA %s, transB %s, accumulate %s)', async (transA, transB, accumulate) => {
    const [M, K, N] = [5, 7, 3];
    const results = await Promise.all(
      [new CpuBackend(), new FastCpuBackend()].map(async (b) => {
        const r = new Rng(1);
        const a = b.alloc(M * K, 'a', 'workspace');
        const w = b.alloc(K * N, 'b', 'workspace');
        const out = b.alloc(M * N, 'out', 'workspace');
        b.write(viewOf(a), Float32Array.from({ length: M * K }, () => r.normal()));
        b.write(viewOf(w), Float32Array.from({ length: K * N }, () => r.normal()));
        b.write(viewOf(out), Float32Array.from({ length: M * N }, () => r.normal()));
        b.matmul(viewOf(out), viewOf(a), viewOf(w), M, K, N, { transA, transB, accumulate });
        return b.read(viewOf(out));
      }),
    );
    expect(results[1]).toEqual(results[0]);
  });
});
