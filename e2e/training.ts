// Helpers of the training e2e tests: open tabs on a lab URL (one room), wait for the runs to finish,
// read what `window.lab` reports, and check that each tab ran on the backend the test is about
// (WebGPU unless it says otherwise: `backend` defaults to auto, which would fall back to the CPU
// silently and let a spec about WebGPU pass without it).
import { expect, type Browser, type BrowserContext, type Page } from '@playwright/test';
import type { LabMetrics, LabStatus } from '../src/lab/api';
import type { ExpertFigures, TensorFigures } from '../src/lab/partitioned-run';
import { initialParams } from '../src/model/init';
import { mlpLayout } from '../src/model/mlp';
import { APP_URL, uniqueRoom } from './fixtures';

type BackendKind = 'webgpu' | 'cpu';

export interface TabResult {
  status: LabStatus;
  metrics: LabMetrics;
  params: number[];
  hash: string;
}

/**
 * Opens `tabs` tabs that train together (a room when tabs > 1) with the given URL settings, and tab i
 * with `perTab[i]` on top (a room of unequal tabs: `backend=cpu` on one of them).
 */
export async function openTrainingTabs(
  context: BrowserContext,
  tabs: number,
  settings: Record<string, string | number>,
  perTab: Record<string, string | number>[] = [],
): Promise<Page[]> {
  const room = tabs > 1 ? uniqueRoom('train') : '';
  const pages: Page[] = [];
  for (let i = 0; i < tabs; i++) {
    const query = new URLSearchParams({ autostart: '1', world: String(tabs), room });
    for (const [key, value] of Object.entries({ ...settings, ...perTab[i] })) query.set(key, String(value));
    const page = await context.newPage();
    page.on('pageerror', (error) => console.error(`[tab ${i}] ${error.message}`));
    await page.goto(`${APP_URL}?${query}`);
    pages.push(page);
  }
  return pages;
}

/** Waits until every tab has completed `atLeast` steps (in a ring of `world` tabs, when given); fails at once on a tab's error. */
export async function waitForStep(pages: Page[], atLeast: number, world?: number): Promise<void> {
  await Promise.all(
    pages.map((page) =>
      page.waitForFunction(
        ([step, world]) => {
          const s = window.lab?.status?.();
          if (s?.state === 'error') throw new Error(s.error ?? 'error');
          return s !== undefined && s.step >= step && (world === undefined || s.world === world);
        },
        [atLeast, world] as const,
        { timeout: 120_000, polling: 100 },
      ),
    ),
  );
}

/** Fails unless the tab computes on `kind` (window.lab.status().backend). */
export async function expectBackend(page: Page, kind: 'webgpu' | 'cpu' = 'webgpu'): Promise<void> {
  const backend = await page.evaluate(() => window.lab.status().backend);
  expect(backend?.kind, `the tab ran on ${JSON.stringify(backend)}, not ${kind}`).toBe(kind);
}

/**
 * Waits until every tab is done (fails at once with the tab's error), checks that each ran on
 * `backend` (page i on backend[i] when it is a list), then reads each one.
 */
export async function finishTraining(pages: Page[], timeoutMs = 180_000, backend: BackendKind | BackendKind[] = 'webgpu'): Promise<TabResult[]> {
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
  results.forEach((r, i) => {
    const want = typeof backend === 'string' ? backend : backend[i];
    expect(r.status.backend?.kind, `tab ${r.status.rank} ran on ${JSON.stringify(r.status.backend)}`).toBe(want);
  });
  return results.sort((a, b) => a.status.rank - b.status.rank);
}

/**
 * ||candidate - reference|| / ||reference - start||: how far two runs end apart, relative to how far
 * training moved the reference from its initial parameters (src/parallel/test-support.ts relativeError).
 */
export function relativeError(candidate: ArrayLike<number>, reference: ArrayLike<number>, start: ArrayLike<number>): number {
  expect(candidate.length).toBe(reference.length);
  expect(start.length).toBe(reference.length);
  let off = 0;
  let moved = 0;
  for (let i = 0; i < reference.length; i++) {
    off += (candidate[i] - reference[i]) ** 2;
    moved += (reference[i] - start[i]) ** 2;
  }
  expect(moved).toBeGreaterThan(0);
  return Math.sqrt(off / moved);
}

/** The MLP's parameters before its first step (what every tab's model.init(seed) writes). */
export function mlpInitialParams(sizes: number[], seed: number): Float32Array {
  return initialParams(mlpLayout({ sizes }), seed);
}

/** Largest |a - b| relative to max(1, |a|), over two parameter vectors of equal length. */
export function maxRelativeDifference(a: number[], b: number[]): number {
  expect(a.length).toBe(b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]) / Math.max(1, Math.abs(a[i])));
  return worst;
}

/**
 * Model-parallel rooms are not elastic: opens `tabs` tabs of a long run, closes rank 1 once rank 0 has
 * trained two steps, and returns the error rank 0 stops with (the message must name what was lost).
 */
export async function errorAfterLosingRank1(browser: Browser, tabs: number, settings: Record<string, string | number>): Promise<string> {
  const context = await browser.newContext();
  const pages = await openTrainingTabs(context, tabs, { ...settings, steps: 100_000, dashboard: 0 });
  await pages[0].waitForFunction(() => window.lab?.status?.().step >= 2, undefined, { timeout: 180_000, polling: 250 });
  await pages[1].close();
  await pages[0].waitForFunction(() => window.lab.status().state === 'error', undefined, { timeout: 120_000, polling: 250 });
  const { error } = await pages[0].evaluate(() => window.lab.status());
  await context.close();
  return error ?? '';
}

/** Trains `tabs` tabs (one room when tabs > 1) with `settings` in a browser context of their own, and reads each when done. */
export async function trainInNewContext(browser: Browser, tabs: number, settings: Record<string, string | number>, timeoutMs?: number): Promise<TabResult[]> {
  const context = await browser.newContext();
  const results = await finishTraining(await openTrainingTabs(context, tabs, settings), timeoutMs);
  await context.close();
  return results;
}

/**
 * The checks every model-parallel room's tabs pass (groups of `groupSize` consecutive ranks, each rank
 * holding part `rank % groupSize` of group `rank / groupSize`): every tab trained `steps` steps with
 * the room's hash exchange agreeing, sits where its rank says (`placeOf` reads its part rank and group
 * from its figures), shows the room's loss, and sent the bytes its formula says; and the tabs holding
 * the same part (`part` names it in a failure: 'shard', 'expert rank') hold the same bits.
 */
export function expectModelParallelRoom<F extends TensorFigures | ExpertFigures>(
  results: TabResult[],
  o: { steps: number; groupSize: number; part: string; placeOf: (figures: F) => [number, number] },
): void {
  const G = o.groupSize;
  for (const r of results) {
    expect(r.status.step).toBe(o.steps);
    expect(r.metrics.hashesAgree).toBe(true);
    const figures = r.metrics.partition as F;
    expect(o.placeOf(figures)).toEqual([r.status.rank % G, Math.floor(r.status.rank / G)]);
    // The room's loss on every tab, and the bytes of the step's collectives as the formula says.
    expect(r.metrics.losses.at(-1)).toBe(results[0].metrics.losses.at(-1));
    expect(figures.wireBytesPerStep).toBe(figures.wireFormulaBytesPerStep);
  }
  for (let k = 0; k < G; k++) {
    const hashes = new Set(results.filter((r) => r.status.rank % G === k).map((r) => r.hash));
    expect(hashes.size, `${o.part} ${k}'s replicas`).toBe(1);
  }
}
