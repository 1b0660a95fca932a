// PowerSGD's gradient sync (powersgd-sync.ts) where powersgd-sync.test.ts leaves room for a wrong sync:
// the dense warm-up steps were checked for replica equality and bytes, both of which a ring that sums
// the gradients instead of averaging them keeps; and the refusal of a ZeRO shard never ran.
import { describe, expect, it } from 'vitest';
import { syntheticData } from '../data/synthetic';
import { viewOf } from '../engine/backend';
import type { Model } from '../model/model';
import { defaults, type ClassifierRecipe } from '../train/defaults';
import { powerSgdStrategy, trainCommRoom, type Strategy } from './comm-room';
import { PowerSgdSync, type PowerSgdSyncOptions } from './powersgd-sync';

const data = syntheticData({ kind: 'spirals', seed: 5 });
const short: ClassifierRecipe = { ...defaults.synthetic, globalBatch: 24, steps: 3, seed: 3 };

/** Wraps a strategy's gradSync to record each rank's gradient before and after it, per step. */
function recording(strategy: Strategy, before: Float32Array[][], after: Float32Array[][]): Strategy {
  return (env) => {
    const extras = strategy(env);
    before[env.rank] = [];
    after[env.rank] = [];
    return {
      ...extras,
      gradSync: async (ctx) => {
        const view = viewOf(env.run().model.grads);
        before[env.rank].push(await env.backend.read(view));
        const result = await extras.gradSync!(ctx);
        after[env.rank].push(await env.backend.read(view));
        return result;
      },
    };
  };
}

describe('PowerSGD sync, dense warm-up', () => {
  it.each([2, 3])('%i ranks: a dense step leaves every rank the mean of the ranks\' gradients, within 4 float32 ulps of the float64 mean', async (world) => {
    const before: Float32Array[][] = [];
    const after: Float32Array[][] = [];
    await trainCommRoom({ world, data, recipe: short, strategy: recording(powerSgdStrategy({ rank: 2, seed: 11, denseSteps: short.steps }), before, after) });
    for (let step = 0; step < short.steps; step++) {
      const length = before[0][step].length;
      let moved = 0;
      for (let i = 0; i < length; i++) {
        let mean = 0;
        let largest = 0;
        for (let r = 0; r < world; r++) {
          mean += before[r][step][i] / world;
          largest = Math.max(largest, Math.abs(before[r][step][i]));
        }
        for (let r = 0; r < world; r++) {
          expect(Math.abs(after[r][step][i] - mean), `step ${step}, rank ${r}, entry ${i}`).toBeLessThanOrEqual(4 * 2 ** -23 * largest);
          if (after[r][step][i] !== before[r][step][i]) moved++;
        }
      }
      expect(moved).toBeGreaterThan(0); // the ranks' gradients differed, so averaging changed them
    }
  });
});

describe('PowerSGD sync, options', () => {
  it('refuses a gradient buffer shorter than the layout (a ZeRO shard): PowerSGD factors whole matrices', () => {
    // A stand-in with only what the constructor reads before it refuses.
    const shard = { grads: { length: 10 }, layout: { totalLength: 40, entries: [] } } as unknown as Model;
    expect(() => new PowerSgdSync({ model: shard, rank: 2, seed: 1 } as unknown as PowerSgdSyncOptions)).toThrow(/full gradient buffer/);
  });
});
