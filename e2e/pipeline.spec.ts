// Pipeline parallelism with real tabs (WebGPU on SwiftShader, WebRTC data channels): P tabs each hold
// one stage of the MLP, activations and their gradients travel between them, and the room ends where
// one tab ends on the same global batch with the same micro-batches (within float tolerance, relative
// to the distance trained), for both schedules, 2 and 4 stages, 1F1B with forwards run ahead (ahead=1),
// and two pipelines side by side (DP2 x
// PP2: each stage's replicas bitwise equal after every step, checked by the room's hash exchange). A
// stage tab that vanishes stops the room with a message naming its stage, and the same room opened
// again with resume=1 goes on from each stage's autosave to the bits of a run that never stopped; stages
// whose newest autosaves differ (a tab lost mid-save) resume from the newest step both hold. A
// pipeline setting that cannot run is refused when the page loads, saying what to change. The
// dashboard of a stage's tab draws every stage's real ops and replays a finished run's steps.
import { expect, test } from '@playwright/test';
import type { PipelineFigures } from '../src/lab/partitioned-run';
import { APP_URL, uniqueRoom } from './fixtures';
import { finishTraining, mlpInitialParams, openTrainingTabs, relativeError, type TabResult } from './training';

// A small MLP on spirals, 4 layers so that it splits into 4 stages; a few steps.
const HIDDEN = [16, 16, 16];
const RUN = { model: 'mlp', dataset: 'spirals', hidden: HIDDEN.join(','), steps: 4, batch: 16, seed: 3, micro: 4 };
const START = mlpInitialParams([2, ...HIDDEN, 3], RUN.seed);
// Relative to the distance trained, as the data-parallel spec; the unit tests measure 0 (one pipeline)
// and 2.2e-7 (DP2 x PP2) on the CPU backend (src/lab/pipeline-run.test.ts).
const TOLERANCE = 1e-5;

/** The stages of pipeline 0 put together in the whole model's layout. */
function wholeParams(results: TabResult[], length: number): Float32Array {
  const whole = new Float32Array(length);
  for (const r of results) {
    const figures = r.metrics.partition as PipelineFigures;
    if (figures.pipeline !== 0) continue;
    for (const p of figures.placement) whole.set(r.params.slice(p.partOffset, p.partOffset + p.length), p.wholeOffset);
  }
  return whole;
}

const ROOMS = [
  { name: '2 stages, gpipe', tabs: 2, pipeline: 2, schedule: 'gpipe' },
  { name: '2 stages, 1f1b', tabs: 2, pipeline: 2, schedule: '1f1b' },
  { name: '4 stages, gpipe', tabs: 4, pipeline: 4, schedule: 'gpipe' },
  { name: '4 stages, 1f1b', tabs: 4, pipeline: 4, schedule: '1f1b' },
  // Forwards run ahead of the list while gradients travel: the same bits (backwards keep their order).
  { name: '4 stages, 1f1b, ahead=1', tabs: 4, pipeline: 4, schedule: '1f1b', ahead: 1 },
  { name: 'DP2 x PP2, 1f1b', tabs: 4, pipeline: 2, schedule: '1f1b' },
] as const;

test(`pipelines end where one tab ends within ${TOLERANCE.toExponential()} of the distance trained; each stage's replicas hash-equal`, async ({ browser }) => {
  test.setTimeout(600_000);
  const solo = await browser.newContext();
  const [reference] = await finishTraining(await openTrainingTabs(solo, 1, { ...RUN, micro: 0, accum: RUN.micro }));
  await solo.close();
  for (const room of ROOMS) {
    const context = await browser.newContext();
    const results = await finishTraining(await openTrainingTabs(context, room.tabs, { ...RUN, pipeline: room.pipeline, schedule: room.schedule, ahead: 'ahead' in room ? room.ahead : 0, dashboard: 0 }));
    await context.close();
    const pipelines = room.tabs / room.pipeline;
    for (const r of results) {
      expect(r.status.step).toBe(RUN.steps);
      expect(r.metrics.hashesAgree).toBe(true);
      const figures = r.metrics.partition as PipelineFigures;
      expect([figures.stage, figures.pipeline]).toEqual([r.status.rank % room.pipeline, Math.floor(r.status.rank / room.pipeline)]);
      // Every tab shows the room's loss (the last stages'), the same figure on every tab.
      expect(r.metrics.losses.at(-1)).toBe(results[0].metrics.losses.at(-1));
    }
    // Each stage's replicas (one per pipeline) hold the same bits.
    for (let stage = 0; stage < room.pipeline; stage++) {
      const hashes = new Set(Array.from({ length: pipelines }, (_, d) => results[d * room.pipeline + stage].hash));
      expect(hashes.size, `stage ${stage}'s replicas`).toBe(1);
    }
    const error = relativeError(wholeParams(results, reference.params.length), reference.params, START);
    console.log(`${room.name}: relative error ${error.toExponential(2)} of the distance trained`);
    expect(error).toBeLessThan(TOLERANCE);
  }
});

test('a vanished stage stops the room; the same room restarted with resume=1 goes on from each stage\'s autosave to the bits of an unbroken run', async ({ browser }) => {
  test.setTimeout(480_000);
  const settings = { ...RUN, steps: 16, pipeline: 2, schedule: '1f1b', autosave: 4, dashboard: 0 };
  const solo = await browser.newContext();
  const unbroken = await finishTraining(await openTrainingTabs(solo, 2, { ...settings, autosave: 0 }));
  await solo.close();

  // One browser profile (IndexedDB) for the room's tabs, before and after the loss, as on one machine.
  const context = await browser.newContext();
  const room = uniqueRoom('pipe-resume');
  const pages = await openTrainingTabs(context, 2, { ...settings, room });
  // Close stage 1's tab between two autosaves (the step after one), once both tabs have saved at least once.
  const seen = await pages[1].waitForFunction(
    () => {
      const step = window.lab?.status?.().step ?? 0;
      return step >= 6 && step % 4 === 1 ? step : 0;
    },
    undefined,
    { timeout: 180_000, polling: 10 },
  );
  const stoppedAt = (await seen.jsonValue()) as number;
  await pages[1].close();
  await pages[0].waitForFunction(() => window.lab.status().state === 'error', undefined, { timeout: 120_000, polling: 250 }).catch(async (error: unknown) => {
    console.error(`stage 1 closed at step ${stoppedAt}; stage 0 still: ${JSON.stringify(await pages[0].evaluate(() => window.lab.status()))}`);
    throw error;
  });
  expect((await pages[0].evaluate(() => window.lab.status())).error).toMatch(/the tab holding stage 1 of 2 \(rank 1\) left the room .* resume=1 restarts every tab from its part's last autosave/);
  const stored = await pages[0].evaluate(() => window.lab.storedCheckpoints());
  await pages[0].close();
  // Each stage saved its own part, under its rank's key, at the same steps: its two newest, the newest a
  // multiple of 4 from before the loss on.
  const savedStep = Math.max(...stored.map((s) => s.step));
  expect(stored.map((s) => [s.key, s.step]).sort()).toEqual(
    [0, 1].flatMap((rank) => [savedStep, savedStep - 4].map((step) => [`mlp/spirals/seed3/world2/rank${rank}/pipeline2@step${step}`, step])).sort(),
  );
  expect(savedStep % 4).toBe(0);
  expect(savedStep).toBeGreaterThanOrEqual(stoppedAt - 1);
  expect(savedStep).toBeLessThan(settings.steps);

  const resumed = await finishTraining(await openTrainingTabs(context, 2, { ...settings, room, resume: 1 }));
  await context.close();
  for (const r of resumed) {
    // It went on from the autosave (its first logged loss is after it), not from the start.
    expect(r.metrics.lossSteps[0]).toBeGreaterThan(savedStep);
    expect(r.status.step).toBe(settings.steps);
    expect(r.hash, `rank ${r.status.rank} (stage ${r.status.rank})`).toBe(unbroken.find((u) => u.status.rank === r.status.rank)!.hash);
  }
});

test("stages whose newest autosaves differ resume from the newest step both hold, to the bits of the unbroken run, and say so; with none in common resume=1 refuses, naming each stage's steps", async ({ browser }) => {
  test.setTimeout(300_000);
  const settings = { ...RUN, steps: 8, pipeline: 2, schedule: '1f1b', autosave: 2, dashboard: 0 };
  const context = await browser.newContext();
  const first = await openTrainingTabs(context, 2, { ...settings, room: uniqueRoom('pipe-saves') });
  const unbroken = await finishTraining(first);
  for (const page of first) await page.close();
  // Stage 1's tab as if lost while the room wrote step 8's autosave: its step-8 part is gone, stage 0's is there.
  const page = await context.newPage();
  await page.goto(APP_URL);
  const dropSave = (key: string) =>
    page.evaluate(
      (key) =>
        new Promise<void>((resolve, reject) => {
          const open = indexedDB.open('webgpu-lab-checkpoints', 1);
          open.onerror = () => reject(open.error);
          open.onsuccess = () => {
            const remove = open.result.transaction('checkpoints', 'readwrite').objectStore('checkpoints').delete(key);
            remove.onsuccess = () => (open.result.close(), resolve());
            remove.onerror = () => reject(remove.error);
          };
        }),
      key,
    );
  const key = (rank: number, step: number) => `mlp/spirals/seed3/world2/rank${rank}/pipeline2@step${step}`;
  expect((await page.evaluate(() => window.lab.storedCheckpoints())).map((s) => s.key).sort()).toEqual([key(0, 6), key(0, 8), key(1, 6), key(1, 8)]);
  await dropSave(key(1, 8));

  const resumedPages = await openTrainingTabs(context, 2, { ...settings, room: uniqueRoom('pipe-saves'), resume: 1 });
  const resumed = await finishTraining(resumedPages);
  const logs = await Promise.all(resumedPages.map((p) => p.evaluate(() => ({ rank: window.lab.status().rank, log: window.lab.log().map((l) => l.message) }))));
  for (const r of resumed) {
    // It went on from step 6, the newest step both stages hold (its first logged loss is step 7's).
    expect(r.metrics.lossSteps[0]).toBe(7);
    expect(r.hash, `rank ${r.status.rank} (stage ${r.status.rank})`).toBe(unbroken[r.status.rank].hash);
    const { log } = logs.find((l) => l.rank === r.status.rank)!;
    expect(log).toContainEqual(expect.stringMatching(/resumed stage \d of 2 .*from a checkpoint of step 6 \(autosave, the newest step every tab holds\)/));
    expect(log).toContainEqual(expect.stringMatching(/newer autosaves passed over, not every tab holds them \(rank 0: step 8\)/));
  }
  for (const p of resumedPages) await p.close();

  // The resumed run saved steps 8 (and kept 6) again; stage 1's tab now loses both, stage 0 keeps its two.
  await dropSave(key(1, 8));
  await dropSave(key(1, 6));
  const refused = await openTrainingTabs(context, 2, { ...settings, room: uniqueRoom('pipe-saves'), resume: 1 });
  for (const p of refused) {
    await p.waitForFunction(() => window.lab.status().state === 'error', undefined, { timeout: 120_000, polling: 250 });
    expect((await p.evaluate(() => window.lab.status())).error).toMatch(/resume=1: no step whose part every tab holds \(rank 0: step 8, step 6; rank 1: none\)/);
    expect(await p.evaluate(() => window.lab.status().step)).toBe(0);
  }
  await context.close();
});

test('a pipeline setting that cannot run is refused on page load with what to change, and nothing trains', async ({ page }) => {
  const cases = [
    ['room=r&world=4&pipeline=3&model=mlp&dataset=spirals&hidden=8,8,8', /pipeline=3 needs a room whose size it divides \(tabs = pipelines x 3 stages\), got world=4/],
    ['room=r&world=4&pipeline=4&schedule=foo', /schedule must be one of gpipe, 1f1b/],
    ['room=r&world=4&pipeline=4&model=gpt&dataset=sotu', /pipeline=4 gives each stage at least one of the GPT's blocks, and it has 2 .*: set layers=4 or more/],
    ['room=r&world=2&pipeline=2&model=mlp&dataset=spirals&micro=7', /the global batch \(64, the recipe's\) does not split into 1 pipeline\(s\) x 7 equal micro-batches/],
  ] as const;
  for (const [query, message] of cases) {
    await page.goto(`${APP_URL}?autostart=1&${query}`);
    await expect(page.getByText(/Bad URL setting: /)).toContainText(message);
    await page.waitForTimeout(500);
    expect(await page.evaluate(() => window.lab.status().step)).toBe(0);
    expect(await page.evaluate(() => window.lab.status().state)).not.toBe('training');
  }
});

test("the dashboard draws every stage's real ops as a timeline, with the bubble beside the formula, and replays a finished run's steps", async ({ browser }) => {
  test.setTimeout(240_000);
  const context = await browser.newContext();
  const P = 2;
  const M = RUN.micro;
  const pages = await openTrainingTabs(context, P, { ...RUN, pipeline: P, schedule: '1f1b' });
  const results = await finishTraining(pages);
  const page = pages[results.findIndex((r) => r.status.rank === 0)];
  const panel = page.getByRole('region', { name: 'Pipeline timeline' });
  const measured = panel.getByRole('img', { name: /Measured timeline of step/ });
  // The newest step, complete: both stages' rows (the other tab's ops gathered), every forward and backward.
  await expect(panel.getByTestId('pipeline-step')).toHaveText(/^step \d+$/);
  const newest = Number((await panel.getByTestId('pipeline-step').textContent())!.slice('step '.length));
  await expect(panel.getByTestId('pipeline-bubble')).toContainText(`1f1b · ${P} stages × ${M} micro-batches`);
  await expect(panel.getByTestId('pipeline-bubble')).toContainText(/measured bubble \d+\.\d% vs \(P-1\)\/\(M\+P-1\) = 20\.0%/);
  await expect(measured.locator('g.pipeline-block')).toHaveCount(P * M * 2);
  for (let stage = 0; stage < P; stage++) await expect(measured.locator(`g.pipeline-block[data-row="${stage}"]`)).toHaveCount(M * 2);
  await expect(panel.getByRole('img', { name: 'Ideal 1f1b timeline' }).locator('g.pipeline-block')).toHaveCount(P * M * 2);

  // After the run: an earlier step comes back whole, and plays back from its start.
  // Every step of the run is kept: the first of them is newest - (steps - 1).
  await expect(panel.getByRole('slider', { name: 'Recorded step' })).toHaveAttribute('max', String(RUN.steps - 1));
  await panel.getByRole('slider', { name: 'Recorded step' }).fill('1');
  await expect(panel.getByTestId('pipeline-step')).toHaveText(`step ${newest - (RUN.steps - 2)}`);
  await expect(measured.locator('g.pipeline-block')).toHaveCount(P * M * 2);
  await panel.getByRole('button', { name: 'Replay step' }).click();
  await expect(panel.getByTestId('pipeline-replay')).toHaveText(/^\d+\.\d of \d+\.\d ms$/);
  await expect(measured.locator('line.pipeline-cursor')).toHaveCount(1);
  expect(await measured.locator('g.pipeline-block').count()).toBeLessThan(P * M * 2);
  await expect(panel.getByTestId('pipeline-replay')).toHaveText('whole step', { timeout: 10_000 });
  await expect(measured.locator('g.pipeline-block')).toHaveCount(P * M * 2);
  await context.close();
});
