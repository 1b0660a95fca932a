// What a student sees when a class link is wrong or the room cannot take it: a link to a signalling
// server that cannot be reached, or a room that is full, ends the run attempt with a message saying
// what happened (in the page and in window.lab.log()), and the page stays usable. A certificate that
// changed under an open page is lan-class-errors.spec.ts (it needs the HTTPS lab server).
import { expect, test } from '@playwright/test';
import { startSignallingServer } from '../server/server';
import { APP_URL, uniqueRoom } from './fixtures';
import { finishTraining, openTrainingTabs } from './training';

test('a link to an unreachable signalling server says which server, and the page stays usable', async ({ page }) => {
  const unreachable = 'ws://127.0.0.1:9/signal';
  const query = new URLSearchParams({ room: uniqueRoom('gone'), world: '2', autostart: '1', model: 'mlp', dataset: 'spirals', signal: unreachable });
  await page.goto(`${APP_URL}?${query}`);
  await expect(page.getByRole('alert')).toContainText(`cannot reach signalling server ${unreachable}`, { timeout: 30_000 });
  await expect(page.getByTestId('run-state')).toHaveText(/^error/);
  await expect(page.getByRole('button', { name: 'Start' })).toBeEnabled();
});

test('a tab turned away from a full room says so and what to do; the room trains on without losing anything', async ({ browser }) => {
  // A signalling server of its own that takes 2 tabs a room (port chosen by the system: no clash).
  const server = await startSignallingServer({ port: 0, host: '127.0.0.1', allowOrigins: [new URL(APP_URL).origin], limits: { maxPeersPerRoom: 2 } });
  try {
    const signal = `ws://127.0.0.1:${server.port}/signal`;
    const run = { model: 'mlp', dataset: 'spirals', steps: 30, batch: 32, seed: 4, backend: 'cpu', signal };
    const context = await browser.newContext();
    const pages = await openTrainingTabs(context, 2, run);
    await Promise.all(pages.map((p) => p.waitForFunction(() => window.lab?.status?.().step >= 1, undefined, { timeout: 120_000 })));
    const room = new URL(pages[0].url()).searchParams.get('room')!;
    const third = await context.newPage();
    const query = new URLSearchParams({ ...Object.fromEntries(Object.entries(run).map(([k, v]) => [k, String(v)])), room, world: '2', autostart: '1' });
    await third.goto(`${APP_URL}?${query}`);
    await expect(third.getByRole('alert')).toContainText('room full: at most 2 peers. This tab did not join', { timeout: 30_000 });
    await expect(third.getByRole('button', { name: 'Start' })).toBeEnabled();
    const log = await third.evaluate(() => window.lab.log().map((l) => l.message));
    expect(log.some((l) => /room full/.test(l)), 'the refusal is in window.lab.log() too').toBe(true);
    // The two tabs in the room were not disturbed: they finish together, replicas equal.
    const results = await finishTraining(pages, 180_000, 'cpu');
    for (const r of results) expect(r).toMatchObject({ status: { step: run.steps, world: 2, state: 'done' }, metrics: { hashesAgree: true }, hash: results[0].hash });
    await context.close();
  } finally {
    await server.close();
  }
});
