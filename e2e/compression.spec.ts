// Gradient compression in real tabs: Top-K 1% with error feedback keeps every replica bitwise equal
// (each tab adds the all-gathered sparse contributions in rank order) while sending a small fraction
// of the dense ring's bytes; fp16 on the wire halves them, replicas still equal.
import { expect, test } from '@playwright/test';
import { finishTraining, openTrainingTabs } from './training';

const RUN = { model: 'mlp', dataset: 'mnist', steps: 3, batch: 48, seed: 3 };

test('Top-K 1% and fp16: replicas agree every step, and far fewer bytes than dense', async ({ browser }) => {
  const bytesOf = async (settings: Record<string, string | number>) => {
    const context = await browser.newContext();
    const results = await finishTraining(await openTrainingTabs(context, 2, { ...RUN, ...settings }));
    await context.close();
    for (const r of results) {
      expect(r.status.step).toBe(RUN.steps);
      expect(r.metrics.hashesAgree).toBe(true);
      expect(r.hash).toBe(results[0].hash);
    }
    return results.reduce((sum, r) => sum + r.metrics.bytesSent, 0);
  };
  const dense = await bytesOf({ compression: 'none' });
  const topk = await bytesOf({ compression: 'topk', ratio: 0.01 });
  const fp16 = await bytesOf({ compression: 'fp16' });
  console.log(`bytes sent by 2 tabs in ${RUN.steps} steps: dense ${dense}, top-k 1% ${topk} (${(dense / topk).toFixed(1)}x fewer), fp16 ${fp16}`);
  // Top-K 1% with compact indices: ~5 bytes per kept entry vs 4 bytes per entry of the dense ring.
  expect(topk * 30).toBeLessThan(dense);
  // fp16: half the gradient bytes (the per-step hash exchange is the only float32 traffic left).
  expect(fp16 / dense).toBeGreaterThan(0.49);
  expect(fp16 / dense).toBeLessThan(0.51);
});
