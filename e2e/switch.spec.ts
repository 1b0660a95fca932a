// Switching strategy mid-run in real tabs (WebGPU on SwiftShader, a room over WebRTC): lab.switchStrategy
// from any tab goes to the room's rank 0, which announces the step; every tab switches there
// (src/lab/strategy-switch.ts), carrying its state (src/lab/switch-state.ts). The room goes
// ring -> fp16 -> DiLoCo -> ring and ends with equal replicas, having learned; a tab that joins a
// switched room trains with the room's strategy, not its URL's.
// A switch costs no re-form and no refused frame (each test checks both).
import { expect, test, type Page } from '@playwright/test';
import { APP_URL } from './fixtures';
import { finishTraining, openTrainingTabs, waitForStep } from './training';

const RUN = { model: 'mlp', dataset: 'mnist', hidden: 64, steps: 60, batch: 48, seed: 3 };
// The first two tests read the run through window.lab only: their tabs draw no dashboard, which on a
// 2-core machine with SwiftShader halves the time to open them and their first steps.
const HEADLESS = { dashboard: 0 };

const status = (page: Page) => page.evaluate(() => window.lab.status());

/**
 * A switch costs no re-form and no refused frame: the exchanges around it (the step's own hash check,
 * the state carried over, the check after the switch) are each tagged apart. A clash is refused as a
 * duplicate and leaves an all-gather waiting for its deadline, which the elastic room then hides by
 * re-forming: the run would still end equal, a minute late per switch.
 */
async function expectNoRefusals(pages: Page[]): Promise<void> {
  for (const page of pages) {
    const refused = await page.evaluate(() => window.lab.refused());
    expect(refused, `tab ${(await status(page)).rank} refused frames`).toEqual({ count: 0, reasons: {} });
  }
}

/** Pauses the room, asks `asker` for the switch, resumes: the switch lands mid-run whatever the machine's speed. */
async function switchFrom(pages: Page[], asker: Page, choice: Record<string, string | number>): Promise<{ step: number; strategy: string }> {
  await Promise.all(pages.map((p) => p.evaluate(() => window.lab.pause())));
  const answer = await asker.evaluate((c) => window.lab.switchStrategy(c), choice);
  await Promise.all(pages.map((p) => p.evaluate(() => window.lab.resume())));
  return answer;
}

test('3 tabs switch ring -> fp16 -> DiLoCo H=5 -> ring mid-run: every tab at the same step, replicas equal, the run learns', async ({ browser }) => {
  test.setTimeout(300_000);
  const context = await browser.newContext();
  const pages = await openTrainingTabs(context, 3, { ...RUN, ...HEADLESS });
  await waitForStep(pages, 3, 3);
  const ranks = await Promise.all(pages.map(async (p) => (await status(p)).rank));
  const byRank = (r: number) => pages[ranks.indexOf(r)];

  // Asked from rank 1, rank 2 and rank 0: whoever asks, rank 0 decides.
  const toFp16 = await switchFrom(pages, byRank(1), { compression: 'fp16' });
  expect(toFp16.strategy).toBe('ring fp16');
  await waitForStep(pages, toFp16.step + 2);
  const toDiloco = await switchFrom(pages, byRank(2), { mode: 'diloco', inner: 5 });
  expect(toDiloco.step).toBeGreaterThan(toFp16.step);
  await waitForStep(pages, toDiloco.step + 2);
  const toRing = await switchFrom(pages, byRank(0), {});
  // Out of DiLoCo only after an outer step, where replicas are equal.
  expect(toRing.step % 5).toBe(0);
  expect(toRing.step).toBeLessThan(RUN.steps);

  const results = await finishTraining(pages, 240_000);
  const expected = [
    { step: toFp16.step, strategy: 'ring fp16' },
    { step: toDiloco.step, strategy: 'diloco H=5' },
    { step: toRing.step, strategy: 'ring' },
  ];
  for (const r of results) {
    expect(r.status.step).toBe(RUN.steps);
    expect(r.metrics.strategy?.switches, `tab ${r.status.rank}'s switches`).toEqual(expected);
    expect(r.metrics.strategy?.now).toBe('ring');
    // Every hash exchange agreed: after every ring step, after DiLoCo's outer steps, after each switch.
    expect(r.metrics.hashesAgree).toBe(true);
    expect(r.hash).toBe(results[0].hash);
    expect(r.metrics.elastic?.reforms ?? 0, `tab ${r.status.rank} re-formed`).toBe(0);
  }
  await expectNoRefusals(pages);
  const log = await byRank(1).evaluate(() => window.lab.log().map((l) => l.message).filter((m) => /strategy|optimizer starts/.test(m)));
  console.log(log.join('\n'));
  console.log(`switches at steps ${expected.map((e) => `${e.step} (${e.strategy})`).join(', ')}; accuracy ${results[0].metrics.accuracy}`);
  // It learned across the switches: MNIST from 10% (chance) to well above it in 60 steps of 48.
  expect(results[0].metrics.accuracy).toBeGreaterThan(0.6);
  await context.close();
});

test('a tab that joins a room switched to DiLoCo trains with DiLoCo (the room\'s strategy, not its URL\'s)', async ({ browser }) => {
  test.setTimeout(300_000);
  const context = await browser.newContext();
  const run = { ...RUN, ...HEADLESS, steps: 50 };
  const pages = await openTrainingTabs(context, 2, run);
  const room = new URL(pages[0].url()).searchParams.get('room')!;
  await waitForStep(pages, 3, 2);
  const toDiloco = await switchFrom(pages, pages[1], { mode: 'diloco', inner: 4 });
  await waitForStep(pages, toDiloco.step + 1);

  // A third tab opens the room's link as it was first shared (mode=ring); the room is paused meanwhile
  // so that the join lands mid-run.
  await Promise.all(pages.map((p) => p.evaluate(() => window.lab.pause())));
  const joiner = await context.newPage();
  joiner.on('pageerror', (error) => console.error(`[joiner] ${error.message}`));
  await joiner.goto(`${APP_URL}?${new URLSearchParams({ autostart: '1', world: '2', room, ...Object.fromEntries(Object.entries(run).map(([k, v]) => [k, String(v)])) })}`);
  await joiner.waitForFunction(() => window.lab?.status?.().state === 'connecting', undefined, { timeout: 60_000 });
  await Promise.all(pages.map((p) => p.evaluate(() => window.lab.resume())));
  await waitForStep([...pages, joiner], (await status(pages[0])).step + 1, 3);
  expect(await joiner.evaluate(() => window.lab.config().mode)).toBe('diloco');

  const results = await finishTraining([...pages, joiner], 240_000);
  for (const r of results) {
    expect(r.status.world).toBe(3);
    expect(r.metrics.strategy?.now).toBe('diloco H=4');
    expect(r.metrics.hashesAgree).toBe(true);
    expect(r.hash).toBe(results[0].hash);
  }
  const joinerLog = await joiner.evaluate(() => window.lab.log().map((l) => l.message));
  expect(joinerLog.join('\n')).toMatch(/trains with the room's strategy: diloco H=4/);
  await expectNoRefusals([...pages, joiner]);
  await context.close();
});

test('from the dashboard: the Switch strategy panel switches the room to fp16, and Shape one link shapes a link', async ({ browser }) => {
  test.setTimeout(300_000);
  const context = await browser.newContext();
  const pages = await openTrainingTabs(context, 2, { ...RUN, steps: 40 });
  await waitForStep(pages, 2, 2);
  const [page] = pages;
  await Promise.all(pages.map((p) => p.evaluate(() => window.lab.pause())));
  await page.getByLabel('New strategy').selectOption({ label: 'ring, fp16 on the wire' });
  await page.getByRole('button', { name: 'Switch' }).click();
  const said = await page.locator('.strategy-switch [role=status]').textContent();
  const at = Number(/after step (\d+)/.exec(said ?? '')?.[1]);
  expect(said).toMatch(/^Every tab switches to ring fp16 after step \d+\.$/);
  await page.getByLabel('Latency (ms)').fill('30');
  await page.getByLabel('Bandwidth (MB/s, 0: unlimited)').fill('0');
  await page.getByRole('button', { name: 'Apply' }).click();
  await expect(page.locator('.link-shape [role=status]')).toHaveText(/^Link to rank \d+.*: 30 ms, unlimited\.$/);
  await Promise.all(pages.map((p) => p.evaluate(() => window.lab.resume())));
  const results = await finishTraining(pages, 240_000);
  for (const r of results) {
    expect(r.metrics.strategy?.switches).toEqual([{ step: at, strategy: 'ring fp16' }]);
    expect(r.metrics.hashesAgree).toBe(true);
    expect(r.hash).toBe(results[0].hash);
    expect(r.metrics.elastic?.reforms ?? 0, `tab ${r.status.rank} re-formed`).toBe(0);
  }
  await expectNoRefusals(pages);
  expect((await page.evaluate(() => window.lab.log().map((l) => l.message))).join('\n')).toMatch(/link to .+: 30 ms, unlimited/);
  await context.close();
});
