// `npm run bench:gpu`: this project's WGSL kernels against TensorFlow.js's WebGPU, WebGL and WASM
// backends, measured in the same headless Chromium page on whatever adapter it finds (SwiftShader when
// there is no GPU), and against the fastest of them per benchmark. The page is cross-origin isolated so
// that the WASM backend runs its threads. Prints a table, then a last line of JSON. `--quick` runs the
// smallest sizes only.
import { loadavg } from 'node:os';
import { launchChromium } from '../scripts/lab-browser';
import type { BenchResult } from './gpu-page';
import { startIsolatedBenchServer } from './isolated-server';
import { TFJS_BACKENDS } from './tfjs-backends';

async function main(): Promise<void> {
  const quick = process.argv.includes('--quick');
  const server = await startIsolatedBenchServer();
  const browser = await launchChromium();
  try {
    const page = await browser.newPage();
    page.on('pageerror', (error) => console.error(`[page] ${error.message}`));
    await page.goto(`${server.url}/bench/gpu.html${quick ? '?quick=1' : ''}`);
    await page.waitForFunction(() => window.benchResult !== undefined, undefined, { timeout: 1_500_000, polling: 1000 });
    const result = (await page.evaluate(() => window.benchResult)) as BenchResult | { error: string };
    if ('error' in result) throw new Error(result.error);
    console.log(`adapter: ${result.adapter} (matmul variant: ${result.matmulVariant})`);
    for (const [backend, why] of Object.entries(result.tfjsMissing)) console.log(`TensorFlow.js ${backend}: ${why}`);
    console.log(`load average: ${loadavg()[0].toFixed(1)} (on a shared machine every figure is a lower bound)`);
    const tfjsHeads = TFJS_BACKENDS.map((backend) => `${backend} ms`.padStart(10));
    console.log(['benchmark'.padEnd(52), 'ours ms'.padStart(10), ...tfjsHeads, 'fastest'.padStart(8), 'vs fastest'.padStart(11)].join(' '));
    for (const row of result.rows) {
      const tfjs = TFJS_BACKENDS.map((backend) => (row.tfjsMs[backend]?.toFixed(2) ?? '-').padStart(10));
      console.log([row.name.padEnd(52), row.oursMs.toFixed(2).padStart(10), ...tfjs, row.fastest.padStart(8), `${row.speedup.toFixed(2)}x`.padStart(11)].join(' '));
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
