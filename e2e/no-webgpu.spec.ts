// A browser without WebGPU still trains, on the CPU reference backend, and says so. Chromium launched
// without --enable-unsafe-webgpu has no WebGPU adapter in headless mode.
import { chromium, expect, test } from '@playwright/test';
import { CHROMIUM_ARGS, requireChromium } from '../scripts/chromium.ts';
import { APP_URL } from './fixtures';

test('without WebGPU the lab trains on the CPU backend, marked as such', async () => {
  const args = CHROMIUM_ARGS.filter((flag) => flag !== '--enable-unsafe-webgpu');
  const browser = await chromium.launch({ executablePath: requireChromium(), args, headless: true });
  try {
    const page = await browser.newPage();
    await page.goto(`${APP_URL}?model=mlp&dataset=xor&steps=30&autostart=1`);
    await page.waitForFunction(
      () => {
        const status = window.lab?.status();
        if (status?.state === 'error') throw new Error(status.error ?? 'unknown error');
        return status?.state === 'done';
      },
      undefined,
      { timeout: 120_000 },
    );
    const status = await page.evaluate(() => window.lab.status());
    expect(status.backend?.kind).toBe('cpu');
    expect(status.step).toBe(30);
    // The reason is shown to the person at the page, not only logged.
    await expect(page.getByText(/CPU reference backend/i).first()).toBeVisible();
    const metrics = await page.evaluate(() => window.lab.metrics());
    expect(metrics.accuracy).not.toBeNull();
  } finally {
    await browser.close();
  }
});
