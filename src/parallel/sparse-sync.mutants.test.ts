// What the sparse gradient sync hands the optimizer (sparse-sync.ts), pinned where replica equality,
// byte counts and error-feedback conservation (compression.test.ts) all hold for a wrong average: a room
// that sums the ranks' sparse contributions instead of averaging them, or divides them by something
// else, still has bitwise-equal replicas, the same bytes and the same residuals. Here the gradient the
// optimizer sees is compared with the mean of what every rank put on the wire; the step report (what the
// dashboard shows: indices, compression error and its bound) is recomputed from what was sent; and DGC's
// rule for the optimizer is checked on each kind of optimizer.
import { describe, expect, it } from 'vitest';
import { viewOf } from '../engine/backend';
import { sparseHooks, type ParallelContext } from './strategy';
import { optimizerFor, type SparseStepReport } from './sparse-sync';
import { testConfig, trainRoom } from '../lab/parallel-test-support';

interface Seen {
  sent: { indices: Uint32Array; values: Float32Array }[];
  applied: Float32Array[];
  reports: SparseStepReport[];
  /** The residual right after each step's compression (what the step held back). */
  residuals: Float32Array[];
}

/** The real sparse hooks, wrapped to record what this rank sent and the gradient left for its update. */
function recording(kind: 'topk' | 'randomk', log: Seen[]) {
  return (ctx: ParallelContext) => {
    const hooks = sparseHooks(ctx, kind);
    const seen: Seen = { sent: [], applied: [], reports: [], residuals: [] };
    log[ctx.transport.rank] = seen;
    return {
      ...hooks,
      gradSync: async (c: Parameters<NonNullable<typeof hooks.gradSync>>[0]) => {
        const result = await hooks.gradSync!(c);
        seen.sent.push(hooks.sync().lastStep!.sent);
        seen.reports.push(hooks.sync().lastStep!);
        seen.residuals.push(hooks.sync().sparsifier.residual.slice());
        seen.applied.push(await ctx.backend.read(viewOf(c.grads)));
        return result;
      },
    };
  };
}

describe.each([
  ['topk', 'topk'],
  ['randk', 'randomk'],
] as const)('%s: the gradient the optimizer sees', (compression, kind) => {
  it.each([2, 3])('%i ranks: is the mean over ranks of what each sent (zero elsewhere), within 4 float32 ulps of the float64 mean', async (world) => {
    const log: Seen[] = [];
    const config = testConfig({ compression, ratio: 0.05, steps: 3 });
    await trainRoom(world, config, { makeHooks: recording(kind, log) });
    for (let step = 0; step < config.steps; step++) {
      const length = log[0].applied[step].length;
      const mean = new Float64Array(length);
      const largest = new Float64Array(length);
      for (const seen of log) {
        const { indices, values } = seen.sent[step];
        indices.forEach((index, i) => {
          mean[index] += values[i] / world;
          largest[index] = Math.max(largest[index], Math.abs(values[i]));
        });
      }
      let nonZero = 0;
      for (const seen of log) {
        const applied = seen.applied[step];
        for (let i = 0; i < length; i++) {
          // Float32 sums of `world` terms and one division: a few ulps of the largest term at most.
          expect(Math.abs(applied[i] - mean[i]), `step ${step}, entry ${i}`).toBeLessThanOrEqual(4 * 2 ** -23 * largest[i]);
          if (applied[i] !== 0) nonZero++;
        }
      }
      expect(nonZero).toBeGreaterThan(0);
    }
  });
});

describe.each([
  ['topk', 'topk'],
  ['randk', 'randomk'],
] as const)('%s: the step report', (compression, kind) => {
  it('lists each rank\'s indices (Top-K) or the shared ones (Random-K); the compression error is |held back|^2 / |everything| within 1e-12, under its bound (d - k) / d for Top-K', async () => {
    const log: Seen[] = [];
    const config = testConfig({ compression, ratio: 0.05, steps: 2 });
    await trainRoom(3, config, { makeHooks: recording(kind, log) });
    for (const seen of log) {
      seen.reports.forEach((report, step) => {
        const expectedIndices = kind === 'topk' ? log.map((s) => Array.from(s.sent[step].indices)) : [Array.from(seen.sent[step].indices)];
        expect(report.indices.map((i) => Array.from(i))).toEqual(expectedIndices);
        const length = seen.applied[step].length;
        expect(report.errorBound).toBe((length - report.k) / length);
        let kept = 0;
        let rest = 0;
        for (const v of report.sent.values) kept += v * v;
        for (const v of seen.residuals[step]) rest += v * v;
        expect(rest).toBeGreaterThan(0);
        expect(Math.abs(report.compressionError - rest / (kept + rest))).toBeLessThan(1e-12);
        if (kind === 'topk') expect(report.compressionError).toBeLessThanOrEqual(report.errorBound);
      });
    }
  });
});

describe('DGC\'s rule for the optimizer (optimizerFor)', () => {
  it('SGD with momentum: the optimizer loses its momentum and the sparsifier gets it', () => {
    const base = { kind: 'sgd' as const, lr: 0.1, momentum: 0.9, weightDecay: 0 };
    expect(optimizerFor(base)).toEqual({ optimizer: { ...base, momentum: 0 }, momentum: 0.9 });
  });

  it('SGD without momentum and AdamW: the optimizer is left as it is (the same object) and the sparsifier gets momentum 0', () => {
    const plain = { kind: 'sgd' as const, lr: 0.1, momentum: 0, weightDecay: 0 };
    const adamw = { kind: 'adamw' as const, lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 };
    for (const base of [plain, adamw]) {
      const chosen = optimizerFor(base);
      expect(chosen.optimizer).toBe(base);
      expect(chosen.momentum).toBe(0);
    }
  });
});
