// `npm run bench:gpu`: this project's WGSL kernels against TensorFlow.js's WebGPU backend, measured in
// the same headless Chromium page on whatever adapter it finds (SwiftShader when there is no GPU).
// Prints a table, then a last line of JSON. `--quick` runs the smallest sizes only.
import { launchChromium, startLabServer } from '../scripts/lab-browser';
import type { BenchResult } from './gpu-page';

async function main(): Promise<void> {
  const quick = process.argv.includes('--quick');
  const server = await startLabServer();
  const browser = await launchChromium();
  try {
    const page = await browser.newPage();
    page.on('pageerror', (error) => console.error(`[page] ${error.message}`));
    await page.goto(`${server.url}/bench/gpu.html${quick ? '?quick=1' : ''}`);
    await page.waitForFunction(() => window.benchResult !== undefined, undefined, { timeout: 1_500_000, polling: 1000 });
    const result = (await page.evaluate(() => window.benchResult)) as BenchResult | { error: string };
    if ('error' in result) throw new Error(result.error);
    console.log(`adapter: ${result.adapter} (matmul variant: ${result.matmulVariant})`);
    console.log(['benchmark'.padEnd(52), 'ours ms'.padStart(10), 'tfjs ms'.padStart(10), 'speedup'.padStart(9)].join(' '));
    for (const row of result.rows) {
      console.log(
        [row.name.padEnd(52), row.oursMs.toFixed(2).padStart(10), row.tfjsMs.toFixed(2).padStart(10), `${row.speedup.toFixed(2)}x`.padStart(9)].join(' '),
      );
    }
    console.log(JSON.stringify({ ok: true, ...result }));
  } finally {
    await browser.close();
    await server.close();
  }
}

main().catch((error: unknown) => {
  console.error(`bench:gpu failed: ${error instanceof Error ? error.message : error}`);
  console.log(JSON.stringify({ ok: false, error: String(error) }));
  process.exit(1);
});
