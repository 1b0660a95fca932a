// One swarm run: serve nothing itself (the caller's lab server URL), open N headless Chromium tabs in
// one room with the config's URL, show a progress bar until every tab is done, and summarise what the
// tabs report (swarm-summary.ts). Shared by the swarm CLI (swarm.ts) and the strategy table (compare.ts).
import cliProgress from 'cli-progress';
import type { Browser, Page } from '@playwright/test';
import { configToQuery, type LabConfig } from '../src/lab/config';
import type { LabMetrics, LabStatus } from '../src/lab/api';
import { hostLoadBetween, sampleCpu, type CpuSample } from './host-load';
import { launchChromium, openTabsAt, uniqueRoom } from './lab-browser';
import { summariseRun, type RunSummary } from './swarm-summary';

export interface TabReport {
  status: LabStatus;
  metrics: LabMetrics;
}

async function readTabs(pages: Page[]): Promise<TabReport[]> {
  return Promise.all(
    pages.map((page) =>
      page.evaluate(() =>
        window.lab ? { status: window.lab.status(), metrics: window.lab.metrics() } : (null as unknown as TabReport),
      ),
    ),
  );
}

/**
 * `backends`: each tab's own backend (else the config's). `collect`: reads what it needs from the
 * finished tabs before the browser closes. `browser`: run in this browser (a fresh context, closed at
 * the end) instead of launching one; a caller with many runs (compare.ts) saves a launch per run.
 */
export async function runSwarm(
  baseUrl: string,
  tabs: number,
  config: LabConfig,
  timeoutSec: number,
  { backends, collect, browser: shared }: { backends?: string[]; collect?: (pages: Page[]) => Promise<void>; browser?: Browser } = {},
): Promise<RunSummary> {
  const browser = shared ?? (await launchChromium());
  const context = await browser.newContext();
  try {
    const room = uniqueRoom('swarm');
    // Every setting the flags changed reaches the tabs through the same URL contract users have.
    const query = new URLSearchParams(configToQuery({ ...config, room: tabs > 1 ? room : '', world: tabs }));
    query.set('autostart', '1');
    const urls = Array.from({ length: tabs }, (_, i) => {
      const own = new URLSearchParams(query);
      if (backends) own.set('backend', backends[i]);
      return `${baseUrl}/?${own}`;
    });
    const pages = await openTabsAt(context, urls);
    const bar = new cliProgress.SingleBar(
      {
        format: 'step {value}/{total} |{bar}| loss {loss} | {speed} steps/s | {state}',
        hideCursor: true,
        noTTYOutput: true,
        notTTYSchedule: 5000,
      },
      cliProgress.Presets.shades_classic,
    );
    bar.start(config.steps, 0, { loss: '-', speed: '-', state: 'starting' });
    const started = performance.now();
    const deadline = started + timeoutSec * 1000;
    let reports: TabReport[] = [];
    // The host's load is measured from the first finished step (setup and shader compilation excluded).
    let cpuAtFirstStep: CpuSample | null = null;
    for (;;) {
      await new Promise((resolve) => setTimeout(resolve, 500));
      reports = (await readTabs(pages)).filter(Boolean);
      const steps = reports.map((r) => r.status.step);
      const minStep = steps.length === tabs ? Math.min(...steps) : 0;
      if (!cpuAtFirstStep && minStep >= 1) {
        cpuAtFirstStep = sampleCpu();
      }
      const lossSeries = reports[0]?.metrics.losses ?? [];
      const lastLoss = lossSeries.length ? lossSeries[lossSeries.length - 1].toFixed(4) : '-';
      // steps=0 means the model's default: the tabs know the real total.
      const total = reports[0]?.status.steps;
      if (total && total !== bar.getTotal()) bar.setTotal(total);
      const elapsed = (performance.now() - started) / 1000;
      const states = [...new Set(reports.map((r) => r.status.state))].join(',');
      bar.update(minStep, { loss: lastLoss, speed: (minStep / elapsed).toFixed(2), state: states });
      const failed = reports.find((r) => r.status.state === 'error');
      if (failed) {
        bar.stop();
        throw new Error(`rank ${failed.status.rank} failed: ${failed.status.error}`);
      }
      if (reports.length === tabs && reports.every((r) => r.status.state === 'done')) break;
      if (performance.now() > deadline) {
        bar.stop();
        throw new Error(`timed out after ${timeoutSec}s at step ${minStep}/${config.steps} (states: ${states})`);
      }
    }
    bar.stop();
    await collect?.(pages);
    const hostCpu = cpuAtFirstStep && hostLoadBetween(cpuAtFirstStep, sampleCpu());
    return summariseRun(config, reports, (performance.now() - started) / 1000, hostCpu);
  } finally {
    await (shared ? context.close() : browser.close());
  }
}
