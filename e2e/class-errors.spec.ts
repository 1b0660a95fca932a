// What a student sees when a class link is wrong: a link to a signalling server that cannot be
// reached ends the run attempt with a message naming the server, and the page stays usable.
import { expect, test } from '@playwright/test';
import { APP_URL, uniqueRoom } from './fixtures';

test('a link to an unreachable signalling server says which server, and the page stays usable', async ({ page }) => {
  const unreachable = 'ws://127.0.0.1:9/signal';
  const query = new URLSearchParams({ room: uniqueRoom('gone'), world: '2', autostart: '1', model: 'mlp', dataset: 'spirals', signal: unreachable });
  await page.goto(`${APP_URL}?${query}`);
  await expect(page.getByRole('alert')).toContainText(`cannot reach signalling server ${unreachable}`, { timeout: 30_000 });
  await expect(page.getByTestId('run-state')).toHaveText(/^error/);
  await expect(page.getByRole('button', { name: 'Start' })).toBeEnabled();
});
