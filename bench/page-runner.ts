// Node side of the page benchmarks (bench/cpu.ts, bench/gpu.ts): serves bench/ cross-origin isolated
// (bench/isolated-server.ts), opens one page of it in headless Chromium, waits for the result the page
// leaves on a `window` property, and hands it to the caller's report. A page that reports
// `{ error }` rejects with that error; the browser and the server close either way. `runBenchMain`
// turns a rejection into a message, a last JSON line `{ ok: false, error }` and exit status 1.
import { launchChromium } from '../scripts/lab-browser';
import { startIsolatedBenchServer } from './isolated-server';

/**
 * Opens `bench/<html>` (with `?quick=1` when `quick`), waits up to 25 minutes for
 * `window[resultProperty]` and passes the result to `report` while the page is still open.
 */
export async function runBenchPage<T extends object>(html: string, resultProperty: string, quick: boolean, report: (result: T) => Promise<void>): Promise<void> {
  const server = await startIsolatedBenchServer();
  const browser = await launchChromium();
  try {
    const page = await browser.newPage();
    page.on('pageerror', (error) => console.error(`[page] ${error.message}`));
    await page.goto(`${server.url}/bench/${html}${quick ? '?quick=1' : ''}`);
    const read = (property: string) => (window as unknown as Record<string, unknown>)[property];
    await page.waitForFunction((property) => (window as unknown as Record<string, unknown>)[property] !== undefined, resultProperty, { timeout: 1_500_000, polling: 1000 });
    const result = (await page.evaluate(read, resultProperty)) as T | { error: string };
    if ('error' in result) throw new Error(result.error);
    await report(result);
  } finally {
    await browser.close();
    await server.close();
  }
}

/** Runs a benchmark's main; on failure prints why, a last JSON line `{ ok: false }`, and exits 1. */
export function runBenchMain(name: string, main: () => Promise<void>): void {
  main().catch((error: unknown) => {
    console.error(`${name} failed: ${error instanceof Error ? error.message : error}`);
    console.log(JSON.stringify({ ok: false, error: String(error) }));
    process.exit(1);
  });
}
