// The point of ZeRO-3, in real tabs: a deeper MLP that plain data parallelism cannot hold under a
// per-tab memory budget is refused (with the figures, and the advice to set zero=3), and the same
// model under the same budget trains with zero=3: the tabs' real WebGPU allocations stay under the
// budget and their (gathered) parameters agree.
import { expect, test, type Page } from '@playwright/test';
import { finishTraining, openTrainingTabs } from './training';

// Four hidden layers of 512 on the 2-D spirals: ~790 K parameters, 12 MiB of parameters, gradients
// and Adam moments per tab without ZeRO; about half that plus one 1 MiB layer slot under ZeRO-3 on 2
// tabs. Small enough for SwiftShader; the test set (256 points) keeps stage 3's per-batch gathers of
// the evaluation few. autosave=0: a checkpoint's whole-buffer reads would add a staging buffer.
const RUN = { model: 'mlp', dataset: 'spirals', hidden: '512,512,512,512', steps: 2, batch: 64, seed: 7, autosave: 0 };
const BUDGET_MIB = 10;
const MiB = 1 << 20;

async function refusal(page: Page): Promise<string> {
  await page.waitForFunction(() => ['error', 'done'].includes(window.lab?.status?.().state ?? ''), undefined, { timeout: 60_000, polling: 250 });
  const status = await page.evaluate(() => window.lab.status());
  expect(status.state).toBe('error');
  return status.error ?? '';
}

test('a model over the budget for plain data parallelism trains under zero=3 on 2 tabs', async ({ browser }) => {
  test.setTimeout(120_000);
  const t0 = performance.now();
  const plainContext = await browser.newContext();
  const plain = await openTrainingTabs(plainContext, 2, { ...RUN, zero: 0, budget: BUDGET_MIB });
  for (const page of plain) {
    const message = await refusal(page);
    console.log(`zero=0: ${message}`);
    expect(message).toMatch(/memory budget exceeded: plain data parallelism holds [\d.]+ MiB per tab, the budget is 10 MiB; ZeRO-3 would hold about [\d.]+ MiB: set zero=3/);
    // The figures are real: the refused run needs more than the budget, ZeRO-3 (predicted) less.
    const [need, three] = [...message.matchAll(/([\d.]+) MiB/g)].map((m) => Number(m[1])).filter((_, i) => i !== 1);
    expect(need).toBeGreaterThan(BUDGET_MIB);
    expect(three).toBeLessThan(BUDGET_MIB);
  }
  await plainContext.close();
  console.log(`zero=0 refused in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  const t1 = performance.now();

  const context = await browser.newContext();
  const results = await finishTraining(await openTrainingTabs(context, 2, { ...RUN, zero: 3, budget: BUDGET_MIB }), 100_000);
  await context.close();
  console.log(`zero=3 trained ${RUN.steps} steps in ${((performance.now() - t1) / 1000).toFixed(1)} s`);
  for (const r of results) {
    const memory = r.metrics.memory!;
    const total = Object.values(memory).reduce((a, b) => a + b, 0);
    console.log(`zero=3 rank ${r.status.rank}: ${(total / MiB).toFixed(2)} MiB on ${r.status.backend?.adapter}: ${JSON.stringify(memory)}`);
    console.log(`  step ${r.metrics.stepMsPerStep.toFixed(0)} ms (compute ${r.metrics.computeMsPerStep.toFixed(0)}, comm ${r.metrics.commMsPerStep.toFixed(0)}, wait ${r.metrics.waitMsPerStep.toFixed(0)})`);
    expect(r.status.step).toBe(RUN.steps);
    expect(total).toBeLessThan(BUDGET_MIB * MiB);
    expect(r.metrics.zero).toMatchObject({ stage: 3, world: 2 });
    expect(r.metrics.hashesAgree).toBe(true);
    expect(r.metrics.lastHash).toBe(results[0].metrics.lastHash);
  }
});
