// The dashboard shows the live run: three tabs train one MLP together, and each tab's views must show
// what its run is doing while it does it (chunks on the ring, loss points, peers with agreeing hashes,
// step times), the room panel must offer the code, the link and a QR code, and the controls must be
// reachable by keyboard. Screenshots of the main states are kept under e2e-artifacts/screenshots/.
import { expect, test, type Page } from '@playwright/test';
import { mkdirSync } from 'node:fs';
import { APP_URL } from './fixtures';
import { finishTraining, openTrainingTabs } from './training';

const SHOTS = 'e2e-artifacts/screenshots';
const WORLD = 3;
// The global batch must split evenly over the three tabs.
const RUN = { model: 'mlp', dataset: 'spirals', steps: 40, batch: 48, seed: 2 };

const chunkEventsShown = (page: Page) => page.locator('.ring-view g.chunks').evaluate((g) => Number((g as SVGGElement).dataset.events ?? 0));
const lossPointsShown = (page: Page) => page.locator('.loss-chart .chart-host').evaluate((el) => Number((el as HTMLElement).dataset.points ?? 0));

test('three training tabs: every view shows the live run', async ({ browser }) => {
  mkdirSync(SHOTS, { recursive: true });
  const context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
  const pages = await openTrainingTabs(context, WORLD, RUN);
  const page = pages[1];

  // Live: part-way through the run, while the tabs still train.
  await page.waitForFunction(
    () => {
      const status = window.lab.status();
      if (status.state === 'error') throw new Error(status.error ?? 'run failed');
      return status.step >= 5;
    },
    undefined,
    { timeout: 120_000, polling: 100 },
  );
  await expect(page.getByTestId('run-state')).toHaveText(/training · step \d+ \/ 40 · rank \d of 3/);
  // The ring view counts chunk events in its next animation frame: wait for it rather than race it.
  await expect.poll(() => chunkEventsShown(page), { timeout: 10_000 }).toBeGreaterThan(0);
  const eventsEarly = await chunkEventsShown(page);
  await page.screenshot({ path: `${SHOTS}/dashboard-training.png`, fullPage: true });

  // The ring's chunk count goes on rising with the run, and the chart gains points.
  await expect.poll(() => chunkEventsShown(page), { timeout: 60_000 }).toBeGreaterThan(eventsEarly);
  await expect.poll(() => lossPointsShown(page), { timeout: 60_000 }).toBeGreaterThan(1);

  const [result] = await finishTraining(pages);
  expect(result.metrics.hashesAgree).toBe(true);
  for (const tab of pages) {
    await expect(tab.getByTestId('run-state')).toHaveText(/^done · step 40 \/ 40/);
    // Peers: this tab and the two others, every hash agreeing.
    const peers = tab.getByRole('region', { name: /Peers/ });
    await expect(peers.getByRole('heading')).toHaveText(/3 ranks/);
    await expect(peers.locator('tbody tr')).toHaveCount(WORLD);
    const ranks = await peers.locator('tbody tr').evaluateAll((rows) => rows.map((r) => Number((r as HTMLElement).dataset.rank)).sort());
    expect(ranks).toEqual([0, 1, 2]);
    for (const row of await peers.locator('tbody tr:not(.self)').all()) {
      await expect(row.locator('[data-testid^="state-"]')).toHaveText('connected');
      await expect(row.locator('[data-testid^="hash-"]')).toHaveText('✓ agrees');
    }
    // The ZeRO panel in plain data parallelism: stage 0, every rank holding everything (what ZeRO's stages shard).
    const zeroPanel = tab.getByRole('region', { name: /ZeRO stage 0 shard layout/ });
    await expect(zeroPanel.locator('tbody tr[data-rank]')).toHaveCount(WORLD * 3);
    await expect(zeroPanel.getByText('optimizer state: full replica')).toHaveCount(WORLD);
  }

  // Loss chart: a point per logged step, and a readout with numbers.
  expect(await lossPointsShown(page)).toBeGreaterThanOrEqual(RUN.steps / 10);
  await expect(page.getByTestId('loss-readout')).toHaveText(/\d\.\d/);
  // Step time: a mean with its split, and one bar per step with real times.
  await expect(page.getByTestId('step-time-mean')).toHaveText(/mean over \d+ steps: \d+\.\d ms = compute only \d+\.\d ms .*at once \d+\.\d ms/);
  const barMs = await page.locator('.step-svg rect[data-ms]').evaluateAll((rects) => rects.map((r) => Number((r as SVGElement).dataset.ms)));
  expect(barMs.length).toBeGreaterThan(0);
  expect(barMs.some((ms) => ms > 0)).toBe(true);
  expect(await chunkEventsShown(page)).toBeGreaterThan(eventsEarly);

  // Room: the code, a link that opens this room, and a QR code of that link.
  const room = result.status.room;
  const roomPanel = page.getByRole('region', { name: 'Room' });
  await expect(roomPanel.getByTestId('room-code')).toHaveText(room);
  const link = await roomPanel.getByRole('link').getAttribute('href');
  expect(new URL(link!).searchParams.get('room')).toBe(room);
  const qr = roomPanel.getByRole('img', { name: /QR code of the room link/ });
  await expect(qr).toBeVisible();
  expect(await qr.evaluate((img) => (img as HTMLImageElement).naturalWidth)).toBeGreaterThan(0);
  await page.screenshot({ path: `${SHOTS}/dashboard-done.png`, fullPage: true });

  // Large type, as on a projector.
  await page.getByRole('button', { name: 'Large type' }).click();
  await expect(page.getByRole('button', { name: 'Large type' })).toHaveAttribute('aria-pressed', 'true');
  await page.screenshot({ path: `${SHOTS}/dashboard-done-large.png`, fullPage: true });
  await context.close();
});

test('keyboard: Tab reaches the room, the run controls and Start, and Enter starts', async ({ browser }) => {
  const context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
  const page = await context.newPage();
  await page.goto(`${APP_URL}?model=mlp&dataset=spirals&steps=2`);
  await expect(page.getByTestId('run-state')).toHaveText(/^idle/);
  const reached: string[] = [];
  for (let i = 0; i < 60 && !reached.includes('Start'); i++) {
    await page.keyboard.press('Tab');
    reached.push(await page.evaluate(() => {
      const el = document.activeElement as HTMLElement | null;
      if (!el) return '';
      const label = el.id ? document.querySelector(`label[for="${el.id}"]`)?.textContent : null;
      return (label ?? el.getAttribute('aria-label') ?? el.textContent ?? '').trim();
    }));
  }
  for (const control of ['Large type', 'Create room', 'Room code', 'Model', 'Dataset', 'Steps', 'Start']) expect(reached).toContain(control);
  await page.keyboard.press('Enter');
  await expect(page.getByTestId('run-state')).toHaveText(/^(loading|training|done)/);
  await page.waitForFunction(() => window.lab.status().state === 'done', undefined, { timeout: 120_000 });
  await context.close();
});
