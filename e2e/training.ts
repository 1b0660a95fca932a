// Helpers of the training e2e tests: open tabs on a lab URL (one room), wait for the runs to finish,
// read what `window.lab` reports.
import { expect, type BrowserContext, type Page } from '@playwright/test';
import type { LabMetrics, LabStatus } from '../src/lab/api';
import { APP_URL, uniqueRoom } from './fixtures';

export interface TabResult {
  status: LabStatus;
  metrics: LabMetrics;
  params: number[];
  hash: string;
}

/** Opens `tabs` tabs that train together (a room when tabs > 1) with the given URL settings. */
export async function openTrainingTabs(context: BrowserContext, tabs: number, settings: Record<string, string | number>): Promise<Page[]> {
  const query = new URLSearchParams({ autostart: '1', world: String(tabs), room: tabs > 1 ? uniqueRoom('train') : '' });
  for (const [key, value] of Object.entries(settings)) query.set(key, String(value));
  const pages: Page[] = [];
  for (let i = 0; i < tabs; i++) {
    const page = await context.newPage();
    page.on('pageerror', (error) => console.error(`[tab ${i}] ${error.message}`));
    await page.goto(`${APP_URL}?${query}`);
    pages.push(page);
  }
  return pages;
}

/** Waits until every tab is done (fails at once with the tab's error), then reads each one. */
export async function finishTraining(pages: Page[], timeoutMs = 180_000): Promise<TabResult[]> {
  await Promise.all(
    pages.map((page) =>
      page.waitForFunction(
        () => {
          const state = window.lab?.status?.().state;
          if (state === 'error') throw new Error(window.lab.status().error ?? 'unknown error');
          return state === 'done';
        },
        undefined,
        { timeout: timeoutMs, polling: 250 },
      ),
    ),
  );
  const results = await Promise.all(
    pages.map((page) =>
      page.evaluate(async () => ({
        status: window.lab.status(),
        metrics: window.lab.metrics(),
        params: await window.lab.params(),
        hash: await window.lab.paramsHash(),
      })),
    ),
  );
  return results.sort((a, b) => a.status.rank - b.status.rank);
}

/** Largest |a - b| relative to max(1, |a|), over two parameter vectors of equal length. */
export function maxRelativeDifference(a: number[], b: number[]): number {
  expect(a.length).toBe(b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]) / Math.max(1, Math.abs(a[i])));
  return worst;
}
