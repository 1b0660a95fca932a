// Communication-efficient strategies in real tabs (WebGPU on SwiftShader, a room over WebRTC):
// PowerSGD keeps every replica bitwise equal after every step while sending a small fraction of the
// dense ring's bytes; DiLoCo's replicas are equal after every outer step (the session checks them
// there, and at the end), and with H = 1 and outer SGD at lr 1 it ends where plain data parallelism
// ends within float rounding (a bound computed from the parameters, see that test).
import { expect, test } from '@playwright/test';
import { mlpLayout } from '../src/model/mlp';
import { finishTraining, mlpInitialParams, openTrainingTabs, relativeError, type TabResult } from './training';

const RUN = { model: 'mlp', dataset: 'mnist', steps: 4, batch: 48, seed: 3 };
const START = mlpInitialParams([784, 256, 10], RUN.seed);

async function train(browser: import('@playwright/test').Browser, tabs: number, settings: Record<string, string | number>): Promise<TabResult[]> {
  const context = await browser.newContext();
  const results = await finishTraining(await openTrainingTabs(context, tabs, { ...RUN, ...settings }));
  await context.close();
  for (const r of results) {
    expect(r.status.step).toBe(RUN.steps);
    expect(r.metrics.hashesAgree).toBe(true);
    expect(r.hash).toBe(results[0].hash);
  }
  return results;
}

test('PowerSGD rank 2, 2 tabs: replicas bitwise equal after every step; under 1/20 of the dense ring\'s bytes; the room\'s mean loss on both tabs', async ({ browser }) => {
  test.setTimeout(240_000);
  const results = await train(browser, 2, { compression: 'powersgd', rank: 2 });
  // Every step's hash exchange agreed (hashesAgree) and the runs end equal: now the bytes.
  const denseBytesPerTab = 4 * mlpLayout({ sizes: [784, 256, 10] }).totalLength * RUN.steps; // 2 tabs: each sends n floats per ring all-reduce
  for (const r of results) {
    console.log(`PowerSGD rank 2, tab ${r.status.rank}: ${r.metrics.bytesSent} bytes in ${RUN.steps} steps (dense: ${denseBytesPerTab})`);
    expect(r.metrics.bytesSent).toBeGreaterThan(0);
    expect(r.metrics.bytesSent * 20).toBeLessThan(denseBytesPerTab);
  }
  // The room's mean training loss rode with the hashes: the same on both tabs, the mean of their own losses.
  const [room0, room1] = results.map((r) => r.metrics.roomLosses ?? []);
  expect(room0.map((r) => r.step)).toContain(RUN.steps);
  expect(room1).toEqual(room0);
  for (const { step, loss, ranks } of room0) {
    const own = results.map((r) => r.metrics.losses[r.metrics.lossSteps.indexOf(step)]);
    expect(ranks).toBe(2);
    if (own.every((l) => l !== undefined)) expect(loss).toBe((own[0] + own[1]) / 2);
  }
});

test('DiLoCo H=2 with the Nesterov defaults, 2 tabs: replicas equal after each outer step and at the end', async ({ browser }) => {
  test.setTimeout(240_000);
  const results = await train(browser, 2, { mode: 'diloco', inner: 2 });
  // One float32 all-reduce of the whole vector per outer step (2 of 4 steps), plus the hash exchanges.
  for (const r of results) expect(r.metrics.bytesSent).toBeLessThan(4 * mlpLayout({ sizes: [784, 256, 10] }).totalLength * (RUN.steps / 2 + 1));
});

test('DiLoCo H=1, outer SGD lr 1, 2 tabs: ends where plain data parallelism ends, within the rounding bound steps x ulp(|param|)', async ({ browser }) => {
  test.setTimeout(240_000);
  const sgd = { optimizer: 'sgd', lr: 0.05 };
  const [ring] = await train(browser, 2, sgd);
  const [diloco] = await train(browser, 2, { ...sgd, mode: 'diloco', inner: 1, outerlr: 1, outermomentum: 0 });
  const error = relativeError(diloco.params, ring.params, START);
  // DiLoCo rounds each parameter twice more per step than the ring (the local update, then the outer
  // subtraction of the mean pseudo-gradient: half an ulp of the parameter each), while the ring rounds
  // the gradient mean at the gradient's own, far smaller, scale. Over a short run that moves parameters
  // by little, those ulps of the parameter are the whole difference.
  const bound = relativeError(ring.params.map((p) => p + RUN.steps * ulp(p)), ring.params, START);
  console.log(`DiLoCo H=1 outer SGD lr 1 vs the ring, 2 tabs: relative error ${error.toExponential(2)} of the distance trained (rounding bound ${bound.toExponential(2)})`);
  expect(error).toBeLessThan(bound);
  // An averaging bug of 1% shows as ~1e-2 (docs/testing.md): far above the bound.
  expect(bound).toBeLessThan(1e-3);
});

/** The distance between adjacent float32 values at x. */
function ulp(x: number): number {
  return x === 0 ? 2 ** -149 : 2 ** (Math.floor(Math.log2(Math.abs(x))) - 23);
}

test('link shaping (latency=40, bandwidth=2) and collective=auto, 2 tabs: the ring\'s ping-pong measures the shaped links (alpha >= 40 ms, at most 2 MB/s), the Links panel and metrics().links show the fit, and training agrees every step', async ({ browser }) => {
  test.setTimeout(240_000);
  const context = await browser.newContext();
  const pages = await openTrainingTabs(context, 2, { ...RUN, hidden: 32, steps: 3, latency: 40, bandwidth: 2, collective: 'auto' });
  const results = await finishTraining(pages);
  const logs = await Promise.all(pages.map((page) => page.evaluate(() => window.lab.log().map((l) => l.message))));
  // The dashboard's Links panel draws the same fit the log line and metrics().links carry.
  for (const [i, page] of pages.entries()) {
    const fit = results[i].metrics.links?.latest;
    expect(fit?.kind).toBe('formed');
    expect(fit?.world).toBe(2);
    expect(fit!.link.alpha).toBeGreaterThanOrEqual(0.039);
    const alphaMs = fit!.link.alpha * 1000;
    await expect(page.getByTestId('links-fit')).toHaveText(new RegExp(`^alpha ${alphaMs.toFixed(alphaMs < 10 ? 2 : 1)} ms, link [\\d.]+ MB/s, rank `));
    await expect(page.getByTestId('links-row')).toHaveCount(fit!.picks.length);
  }
  await context.close();
  for (const r of results) expect(r.metrics.hashesAgree).toBe(true);
  expect(results[1].hash).toBe(results[0].hash);
  for (const lines of logs) {
    const probed = lines.find((line) => line.startsWith('collective=auto, links probed'));
    console.log(probed);
    const [, alphaMs, mbps] = /alpha ([\d.]+) ms, beta ([\d.]+) MB\/s/.exec(probed ?? '') ?? [];
    // Each direction waits 40 ms after serialising at 2 MB/s, then crosses the real (loopback) channel.
    expect(Number(alphaMs)).toBeGreaterThanOrEqual(39);
    expect(Number(alphaMs)).toBeLessThan(200);
    expect(Number(mbps)).toBeLessThanOrEqual(2.05);
    expect(Number(mbps)).toBeGreaterThan(0.5);
  }
});

test('slow=300&slowrank=1, 2 tabs: the room runs at the straggler\'s pace (>= 300 ms per step on both tabs), rank 0 waits for it in its all-reduce', async ({ browser }) => {
  test.setTimeout(240_000);
  const context = await browser.newContext();
  // Step events come every 10 steps (the recipe's logEvery): 21 steps give the window steps 10 to 20.
  const results = await finishTraining(await openTrainingTabs(context, 2, { ...RUN, hidden: 32, steps: 21, slow: 300, slowrank: 1 }));
  await context.close();
  for (const r of results) {
    console.log(`slow=300 on rank 1: rank ${r.status.rank} wall ${r.metrics.wallMsPerStep?.toFixed(0)} ms/step, comm ${r.metrics.commMsPerStep.toFixed(0)} ms/step`);
    expect(r.metrics.wallMsPerStep).toBeGreaterThanOrEqual(300);
  }
  // Rank 0 reaches the all-reduce 300 ms early each step and waits there for rank 1.
  expect(results[0].metrics.commMsPerStep).toBeGreaterThan(results[1].metrics.commMsPerStep + 150);
});
