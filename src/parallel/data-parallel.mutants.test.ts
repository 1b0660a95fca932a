// Checks of data-parallel.ts that mutation testing (npm run mutate) showed missing. A bucket of a step
// that failed can still complete after the next step began (its peers finish late); its average belongs
// to a step that is over, so it must not trigger an update in the new one, where the gradients are the
// new step's. And the bytes received that gradSync reports were never compared with anything.
import { describe, expect, it } from 'vitest';
import { COLLECTIVE_IDS } from '../collective/collective-ids';
import { runAllReduce } from '../collective/collectives';
import { createMemoryMesh } from '../collective/memory-transport';
import { syntheticData } from '../data/synthetic';
import { CpuBackend } from '../engine/cpu-backend';
import type { FlatRange } from '../model/layout';
import { defaults } from '../train/defaults';
import { classifierRun } from '../train/recipes';
import { DataParallelSync } from './data-parallel';

const data = syntheticData({ kind: 'spirals', seed: 5 });
const recipe = { ...defaults.synthetic, globalBatch: 24, steps: 1, microBatches: 1 };

describe('DataParallelSync across steps', () => {
  it('a bucket of an earlier step that lands after the next step began triggers no update in the new step', async () => {
    const [t0, t1] = createMemoryMesh(2);
    const backend = new CpuBackend();
    const run = classifierRun(backend, data, recipe, { world: 2, rank: 0 });
    const sync = new DataParallelSync({ backend, transport: t0, model: run.model, bucketElements: 64, microBatches: 1 });
    const stale: FlatRange = { offset: 0, length: 64 };
    // Step 0: rank 0 launches a bucket; rank 1 has not joined its all-reduce yet (its step failed there).
    sync.hooks(0, 0)!.onGradReady(stale, 'test');
    // Rank 0 moves on to step 1 before that bucket completes.
    sync.hooks(1, 0);
    // Now the straggling peer completes step 0's all-reduce, and rank 0's old bucket lands.
    await runAllReduce(t1, new Float32Array(64), { round: 0, collective: COLLECTIVE_IDS.gradientBuckets.first, average: true });
    await new Promise((resolve) => setTimeout(resolve, 20));
    const updated: FlatRange[] = [];
    const applyUpdate = (range: FlatRange) => {
      updated.push(range);
      return true;
    };
    // Step 1 announced nothing, so its gradSync ends by naming an unannounced tensor; what matters here
    // is that step 0's range was not handed to step 1's update on the way.
    await expect(sync.gradSync({ step: 1, grads: run.model.grads, model: run.model, applyUpdate })).rejects.toThrow(/never announced/);
    expect(updated).toEqual([]);
  });

  it('gradSync reports the bytes received: in a ring of two, exactly the bytes sent (4 per element)', async () => {
    const transports = createMemoryMesh(2);
    const ranks = transports.map((transport, rank) => {
      const backend = new CpuBackend();
      const run = classifierRun(backend, data, recipe, { world: 2, rank });
      return { run, sync: new DataParallelSync({ backend, transport, model: run.model, bucketElements: 100, microBatches: 1 }) };
    });
    const entries = ranks[0].run.model.layout.entries;
    const elements = entries.reduce((sum, e) => sum + e.length, 0);
    const results = await Promise.all(
      ranks.map(async ({ run, sync }) => {
        const hooks = sync.hooks(0, 0)!;
        // The backward pass announces tensors in reverse layer order.
        for (const e of [...entries].reverse()) hooks.onGradReady({ offset: e.offset, length: e.length }, e.name);
        return sync.gradSync({ step: 0, grads: run.model.grads, model: run.model });
      }),
    );
    for (const r of results) {
      expect(r.bytesReceived).toBe(r.bytesSent);
      // Buckets are spans of the layout, padding included: at least every element travels once each way.
      expect(r.bytesSent).toBeGreaterThanOrEqual(4 * elements);
    }
  });
});
