// A room of unequal tabs: two WebGPU tabs and one `backend=cpu` tab (WebAssembly) train MNIST together.
// The forward and backward passes differ between backends, but after the all-reduce every rank applies
// the same averaged gradient, and the CPU backends update in float32 exactly as the WGSL kernels do
// (src/engine/f32-update.ts), so the replicas are bitwise equal after every step (each tab checks the
// room's parameter hashes after each step and stops on any difference), and the room ends where one
// WebGPU tab ends on the same global batch. The room re-splits the global batch by each tab's measured
// speed every 2 steps (shares=auto, rebalance=2), which moves the time per step, never the math; a tab
// too slow to be worth one sample gets none: it sits those steps out (src/lab/parked-tabs.ts), moving no
// gradient bytes, and is brought back to the room's state (a contributor's checkpoint) when it must
// hold it again.
import { expect, test } from '@playwright/test';
import { proportionalCounts } from '../src/train/batch-shares';
import { parkedBackupEvery } from '../src/lab/parked-tabs';
import { SHARES_CHECK_LAG } from '../src/lab/replica-check';
import { ELASTIC_RUN, ELASTIC_TOLERANCE, oneTabReference, waitForNewRing } from './elastic-fixtures';
import { finishTraining, maxRelativeDifference, mlpInitialParams, openTrainingTabs, relativeError, waitForStep } from './training';

// 10 steps: splits agreed after steps 1, 3, 5 and 7 are in force at steps 3, 5, 7 and 9. The first
// window is step 1 alone and may still pay for warm-up, so its split need not show the steady speeds;
// the later windows do (a CI run of 6 steps saw all three tabs keep samples at steps 3-5, then [0, 64, 0]).
const RUN = { model: 'mlp', dataset: 'mnist', steps: 10, batch: 64, seed: 3 };
const START = mlpInitialParams([784, 256, 10], RUN.seed);
// Relative to the distance trained, as e2e/data-parallel.spec.ts (same run, same tolerance): the CPU
// tab's float32 matmul sums in another order than WGSL, well inside it (the test prints the figure).
const TOLERANCE = 1e-5;

test(`2 WebGPU tabs + 1 CPU tab with shares by speed: replicas bitwise equal every step, and end where one tab ends within ${TOLERANCE.toExponential()} of the distance trained`, async ({ browser }) => {
  test.setTimeout(600_000);
  const solo = await browser.newContext();
  const [reference] = await finishTraining(await openTrainingTabs(solo, 1, RUN));
  await solo.close();

  const context = await browser.newContext();
  const backends = ['webgpu', 'webgpu', 'cpu'] as const;
  const pages = await openTrainingTabs(context, 3, { ...RUN, shares: 'auto', rebalance: 2 }, backends.map((backend) => ({ backend })));
  const results = await finishTraining(pages, 480_000, [...backends]);
  // The dashboard shows each tab's share and speed once the room has re-balanced.
  const panel = pages[0].getByRole('region', { name: 'Shares by speed' });
  await expect(panel).toBeVisible();
  await expect(panel.getByTestId('share')).toHaveCount(3);
  await context.close();
  expect(results.map((r) => r.status.backend?.kind).sort()).toEqual(['cpu', 'webgpu', 'webgpu']);
  for (const r of results) {
    expect(r.status.step).toBe(RUN.steps);
    expect(r.metrics.hashesAgree).toBe(true);
    expect(r.hash).toBe(results[0].hash);
    // Agreed after every second step (0-based 1, 3, 5, 7 and 9), each split in force two steps later
    // (the last, from step 11, is after the run): every tab holds the same split.
    expect(r.metrics.shares?.fromStep).toBe(11);
    expect(r.metrics.shares?.counts).toEqual(results[0].metrics.shares?.counts);
  }
  const counts = results[0].metrics.shares!.counts;
  console.log(`shares by speed: [${counts.join(', ')}] from [${results[0].metrics.shares!.samplesPerSec.map(Math.round).join(', ')}] samples/s`);
  expect(counts.reduce((a, b) => a + b, 0)).toBe(RUN.batch);
  // The split is the rule's on the agreed speeds: a SwiftShader tab too slow to be worth one sample
  // gets none (it still all-reduces and was hash-checked every step above).
  expect(counts).toEqual(proportionalCounts(results[0].metrics.shares!.samplesPerSec, RUN.batch));
  // A tab with no samples at a step sits it out: it trains nothing and moves no gradient bytes; it is
  // brought back (a contributor's checkpoint: parameters and AdamW's two moments, CRC-checked, then
  // every tab's hash compared) when its share returns and after the last step at least.
  const gradientBytes = START.length * 4;
  const parked = results.filter((r) => (r.metrics.parking?.satOut ?? 0) > 0);
  expect(parked.length, 'tabs that sat some step out').toBeGreaterThan(0);
  for (const r of parked) {
    const p = r.metrics.parking!;
    console.log(`tab ${r.status.rank}: sat ${p.satOut} steps out, brought back ${p.broughtBack} times (${p.bytesReceived} state bytes received)`);
    expect(p.broughtBack).toBeGreaterThan(0);
    expect(p.broughtBack).toBeLessThanOrEqual(p.satOut);
    expect(p.bytesReceived).toBeGreaterThan(p.broughtBack * 3 * gradientBytes);
    expect(r.metrics.sharesIdle?.bytesSent ?? 0, `tab ${r.status.rank} sent gradient bytes at a step it had no samples of`).toBe(0);
    expect(r.metrics.sharesIdle?.bytesReceived ?? 0, `tab ${r.status.rank} received gradient bytes at a step it had no samples of`).toBe(0);
  }
  // Every state a parked tab received was sent by a tab that trained the step.
  const received = parked.reduce((sum, r) => sum + r.metrics.parking!.bytesReceived, 0);
  expect(results.reduce((sum, r) => sum + (r.metrics.parking?.bytesSent ?? 0), 0)).toBe(received);
  const error = relativeError(results[0].params, reference.params, START);
  console.log(`mixed room (2 WebGPU + 1 CPU) vs 1 WebGPU tab: relative error ${error.toExponential(2)} of the distance trained`);
  expect(error).toBeLessThan(TOLERANCE);
});

// The CPU tab alone takes a few milliseconds a step at this batch, so the 19 steps after the split would
// be over before a tab closed mid-run: `slow` (session.ts straggle: a pause before each step a tab
// trains, outside the measured compute, so the split and the math are unchanged) keeps them apart.
const PACED_MS = 250;

// With shares by speed the tabs with samples run up to three steps ahead of the tabs with none (the
// replica check and the speeds' all-gather are settled three steps late: docs/shares.md). A tab closed
// then leaves exchanges in flight on every survivor: they are forgiven as a lost peer, the survivors
// re-form (even shares again) and must still end where one tab ends, with equal replicas.
test(`shares=auto: a zero-share tab closed while the others run ahead is dropped; the survivors end where one tab ends within ${ELASTIC_TOLERANCE.toExponential()}, replicas equal`, async ({ browser }) => {
  test.setTimeout(600_000);
  // rebalance=4 (above SPEEDS_LAG): the speeds gathered after step 3 are awaited after step 6.
  const reference = await oneTabReference(browser, ELASTIC_RUN);
  const context = await browser.newContext();
  const backends = ['webgpu', 'webgpu', 'cpu'] as const;
  const pages = await openTrainingTabs(context, 3, { ...ELASTIC_RUN, shares: 'auto', rebalance: 4, slow: PACED_MS }, backends.map((backend) => ({ backend })));
  await waitForStep(pages, 10, 3);
  const tabs = await Promise.all(pages.map((page) => page.evaluate(() => ({ rank: window.lab.status().rank, backend: window.lab.status().backend?.kind, shares: window.lab.metrics().shares }))));
  // A tab with no samples in the split in force, else a WebGPU tab (the speeds decide; the test says which).
  const idle = tabs.findIndex((t) => t.shares != null && t.shares.counts[t.rank] === 0);
  const victimIndex = idle >= 0 ? idle : tabs.findIndex((t) => t.backend === 'webgpu');
  console.log(`split [${tabs[0].shares?.counts.join(', ')}]; closing rank ${tabs[victimIndex].rank} (${tabs[victimIndex].backend}, ${idle >= 0 ? 'no samples' : 'a share'})`);
  const survivors = pages.filter((_, i) => i !== victimIndex);
  await pages[victimIndex].close();
  await waitForNewRing(survivors, 2, 20_000);
  const results = await finishTraining(survivors, 480_000, backends.filter((_, i) => i !== victimIndex));
  await context.close();
  for (const r of results) {
    expect(r.status).toMatchObject({ step: ELASTIC_RUN.steps, world: 2, state: 'done' });
    expect(r.metrics.hashesAgree).toBe(true);
    expect(r.hash).toBe(results[0].hash);
    expect(r.metrics.elastic?.departures).toBe(1);
  }
  const difference = maxRelativeDifference(reference, results[0].params);
  console.log(`mixed room, shares=auto, 3 -> 2 tabs vs 1 tab, ${ELASTIC_RUN.steps} steps: max relative parameter difference ${difference.toExponential(2)}`);
  expect(difference).toBeLessThan(ELASTIC_TOLERANCE);
});

// The only tab with samples closes while the others sit steps out (src/lab/parked-tabs.ts). The lowest
// parked tab holds the later of the last step it trained and its last backup (every
// parkedBackupEvery(4, elastic) = 40 steps here), so the re-formed ring goes back fewer than 40 steps
// and trains the steps since again, ending where one tab ends with equal replicas.
test(`shares=auto: the only tab with samples closes while the others are parked; they roll the room back fewer than parkedBackupEvery steps and end where one tab ends within ${ELASTIC_TOLERANCE.toExponential()}`, async ({ browser }) => {
  test.setTimeout(600_000);
  const rebalance = 4;
  const backupEvery = parkedBackupEvery(rebalance, true);
  const reference = await oneTabReference(browser, ELASTIC_RUN);
  const context = await browser.newContext();
  const backends = ['webgpu', 'webgpu', 'cpu'] as const;
  const pages = await openTrainingTabs(context, 3, { ...ELASTIC_RUN, shares: 'auto', rebalance, slow: PACED_MS }, backends.map((backend) => ({ backend })));
  await waitForStep(pages, 10, 3);
  const tabs = await Promise.all(pages.map((page) => page.evaluate(() => ({ rank: window.lab.status().rank, step: window.lab.status().step, shares: window.lab.metrics().shares, parking: window.lab.metrics().parking }))));
  const counts = tabs[0].shares?.counts ?? [];
  const contributors = tabs.filter((t) => counts[t.rank] > 0);
  // The CPU tab is 4x+ faster than a SwiftShader tab here, so it takes the whole batch (batch-shares.ts).
  expect(contributors.length, `one tab with samples in the split [${counts.join(', ')}]`).toBe(1);
  const victimIndex = tabs.indexOf(contributors[0]);
  console.log(`split [${counts.join(', ')}]; closing rank ${contributors[0].rank} (the only one with samples) at step ${contributors[0].step}`);
  const survivors = pages.filter((_, i) => i !== victimIndex);
  await pages[victimIndex].close();
  await waitForNewRing(survivors, 2, 20_000);
  const logs = await Promise.all(survivors.map((page) => page.evaluate(() => window.lab.log().map((l) => l.message))));
  const results = await finishTraining(survivors, 480_000, backends.filter((_, i) => i !== victimIndex));
  await context.close();
  for (const log of logs) {
    const from = Number(/^ring epoch 2: rank \d+ of 2 from step (\d+)/.exec(log.find((l) => l.startsWith('ring epoch 2:')) ?? '')?.[1]);
    console.log(`survivor: ring epoch 2 from step ${from}; ${log.find((l) => l.startsWith('the ring starts again')) ?? 'no step lost'}`);
    // The steps past the state the survivors hold are gone, and the log says which (none if the
    // contributor closed right at a backup). A parked tab's own step runs up to the replica check's lag
    // ahead of the contributor's, which is fewer than backupEvery steps past that state.
    const back = log.find((l) => l.startsWith('the ring starts again from step '));
    if (back) {
      expect(back).toMatch(new RegExp(`^the ring starts again from step ${from}, behind this tab's step \\d+: steps? ${from + 1}\\b`));
      const reached = Number(/behind this tab's step (\d+)/.exec(back)![1]);
      expect(reached - from, 'steps the room trains again').toBeLessThanOrEqual(backupEvery + SHARES_CHECK_LAG);
    }
  }
  for (const r of results) {
    expect(r.status).toMatchObject({ step: ELASTIC_RUN.steps, world: 2, state: 'done' });
    expect(r.metrics.hashesAgree).toBe(true);
    expect(r.hash).toBe(results[0].hash);
  }
  const difference = maxRelativeDifference(reference, results[0].params);
  console.log(`mixed room, the contributor closed, 3 -> 2 tabs vs 1 tab, ${ELASTIC_RUN.steps} steps: max relative parameter difference ${difference.toExponential(2)}`);
  expect(difference).toBeLessThan(ELASTIC_TOLERANCE);
});

// A strategy switch needs every tab's state (src/lab/switch-state.ts carries it over): a parked tab is
// brought back after the step before it (src/lab/parked-tabs.ts), and the check after the switch
// compares every tab's hash. Asked while the SwiftShader tabs sit steps out.
test('shares=auto: a strategy switch (to fp16) while tabs are parked: the parked tabs are brought back at its step, every tab switches there with equal replicas, no re-form', async ({ browser }) => {
  test.setTimeout(600_000);
  // rebalance=9: the split agreed after step 2 (share-balancer.ts FIRST_GATHER_AFTER) gives the
  // SwiftShader tabs none from step 4; apart from the lowest parked tab's backups (every 90 steps)
  // nothing brings them back before the last step but the switch. With the CPU tab alone a step takes
  // milliseconds, so the run is long enough for the switch asked after step 19 to land well before its end.
  const rebalance = 9;
  const run = { ...ELASTIC_RUN, steps: 300, shares: 'auto', rebalance };
  const context = await browser.newContext();
  const backends = ['webgpu', 'webgpu', 'cpu'] as const;
  const pages = await openTrainingTabs(context, 3, run, backends.map((backend) => ({ backend })));
  await waitForStep(pages, 19, 3);
  const before = await Promise.all(pages.map((page) => page.evaluate(() => ({ rank: window.lab.status().rank, satOut: window.lab.metrics().parking?.satOut ?? 0 }))));
  expect(Math.max(...before.map((b) => b.satOut)), 'steps sat out before the switch').toBeGreaterThan(0);
  await Promise.all(pages.map((p) => p.evaluate(() => window.lab.pause())));
  const answer = await pages[2].evaluate(() => window.lab.switchStrategy({ compression: 'fp16' }));
  await Promise.all(pages.map((p) => p.evaluate(() => window.lab.resume())));
  console.log(`switch to ${answer.strategy} at step ${answer.step}; steps sat out before it by rank: ${before.map((b) => `${b.rank}: ${b.satOut}`).join(', ')}`);
  const results = await finishTraining(pages, 480_000, [...backends]);
  await context.close();
  for (const r of results) {
    expect(r.status.step).toBe(run.steps);
    expect(r.metrics.strategy?.switches).toEqual([{ step: answer.step, strategy: 'ring fp16' }]);
    expect(r.metrics.hashesAgree).toBe(true);
    expect(r.hash).toBe(results[0].hash);
    expect(r.metrics.elastic?.reforms ?? 0, `tab ${r.status.rank} re-formed`).toBe(0);
  }
  // The tabs parked before the switch were brought back right before it (at a re-balancing boundary only by chance: said below).
  console.log(`switch step ${answer.step} ${answer.step % rebalance === 0 ? 'is' : 'is not'} a re-balancing boundary; bring-backs by rank: ${results.map((r) => `${r.status.rank}: [${r.metrics.parking?.broughtBackAt.join(', ') ?? ''}]`).join(', ')}`);
  for (const r of results) {
    const parked = before.find((b) => b.rank === r.status.rank)!.satOut > 0;
    if (parked) expect(r.metrics.parking?.broughtBackAt, `rank ${r.status.rank}'s bring-backs`).toContain(answer.step);
  }
});
