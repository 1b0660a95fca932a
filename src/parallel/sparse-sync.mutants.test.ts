// What the sparse gradient sync hands the optimizer (sparse-sync.ts), pinned where replica equality,
// byte counts and error-feedback conservation (compression.test.ts) all hold for a wrong average: a room
// that sums the ranks' sparse contributions instead of averaging them, or divides them by something
// else, still has bitwise-equal replicas, the same bytes and the same residuals. Here the gradient the
// optimizer sees is compared with the mean of what every rank put on the wire.
import { describe, expect, it } from 'vitest';
import { viewOf } from '../engine/backend';
import { sparseHooks, type ParallelContext } from './strategy';
import { testConfig, trainRoom } from '../lab/parallel-test-support';

interface Seen {
  sent: { indices: Uint32Array; values: Float32Array }[];
  applied: Float32Array[];
}

/** The real sparse hooks, wrapped to record what this rank sent and the gradient left for its update. */
function recording(kind: 'topk' | 'randomk', log: Seen[]) {
  return (ctx: ParallelContext) => {
    const hooks = sparseHooks(ctx, kind);
    const seen: Seen = { sent: [], applied: [] };
    log[ctx.transport.rank] = seen;
    return {
      ...hooks,
      gradSync: async (c: Parameters<NonNullable<typeof hooks.gradSync>>[0]) => {
        const result = await hooks.gradSync!(c);
        seen.sent.push(hooks.sync().lastStep!.sent);
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
