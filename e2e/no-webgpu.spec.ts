// A browser without WebGPU still trains, on its CPU backend (WebAssembly SIMD), and says so. Chromium launched
// without --enable-unsafe-webgpu has no WebGPU adapter in headless mode. "Trains" means learns: the
// loss falls and the held-out accuracy is well above chance (xor: two classes, chance 50%).
import { chromium, expect, test } from '@playwright/test';
import { CHROMIUM_ARGS, requireChromium } from '../scripts/chromium.ts';
import { APP_URL } from './fixtures';

test('without WebGPU the lab trains on the CPU backend, marked as such, on every core: loss falls by a third, accuracy above 75% (chance 50%)', async () => {
  const args = CHROMIUM_ARGS.filter((flag) => flag !== '--enable-unsafe-webgpu');
  const browser = await chromium.launch({ executablePath: requireChromium(), args, headless: true });
  try {
    const page = await browser.newPage();
    // The kernels arrive as a file (never inlined): the threaded build, served as application/wasm.
    const wasmFiles: string[] = [];
    page.on('response', (r) => {
      if (/\.wasm($|\?)/.test(r.url())) wasmFiles.push(`${new URL(r.url()).pathname} ${r.status()} ${r.headers()['content-type']}`);
    });
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
    // The lab's servers isolate the page (COOP/COEP), so its kernels run on every core (at most 8).
    const { isolated, cores } = await page.evaluate(() => ({ isolated: crossOriginIsolated, cores: navigator.hardwareConcurrency }));
    expect(isolated).toBe(true);
    expect(status.backend?.adapter).toContain(`threads: ${Math.min(8, cores)}`);
    expect(wasmFiles).toEqual([expect.stringMatching(/kernels-threads[^/]*\.wasm 200 application\/wasm$/)]);
    expect(status.step).toBe(30);
    // The reason is shown to the person at the page, not only logged.
    await expect(page.getByText(/training on the CPU backend/i).first()).toBeVisible();
    const metrics = await page.evaluate(() => window.lab.metrics());
    const { losses } = metrics;
    console.log(`CPU backend, xor: loss ${losses[0].toFixed(3)} -> ${losses[losses.length - 1].toFixed(3)}, accuracy ${metrics.accuracy}`);
    expect(losses.length).toBeGreaterThanOrEqual(3);
    expect(losses[losses.length - 1]).toBeLessThan((2 / 3) * losses[0]);
    expect(metrics.accuracy).toBeGreaterThan(0.75);
  } finally {
    await browser.close();
  }
});
