// Node-side plumbing shared by the swarm CLI, the benchmarks and the soak run: serve the lab with Vite,
// launch the system Chromium headless with WebGPU, open tabs on a lab URL.
import { chromium, type Browser, type BrowserContext, type Page } from '@playwright/test';
import { createServer, type ViteDevServer } from 'vite';
import { CHROMIUM_ARGS, requireChromium } from './chromium';

export interface LabServer {
  url: string;
  close(): Promise<void>;
}

/** Starts the Vite dev server for the lab on a free port of 127.0.0.1. */
export async function startLabServer(): Promise<LabServer> {
  const server: ViteDevServer = await createServer({
    configFile: 'vite.config.ts',
    logLevel: 'error',
    server: { host: '127.0.0.1', port: 0, strictPort: false, hmr: false },
  });
  await server.listen();
  const address = server.httpServer?.address();
  if (!address || typeof address === 'string') throw new Error('vite did not report its port');
  return { url: `http://127.0.0.1:${address.port}`, close: () => server.close() };
}

export async function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: requireChromium(), args: CHROMIUM_ARGS, headless: true });
}

/** Opens `count` tabs of one context (so BroadcastChannel joins them) at the same URL. */
export async function openTabs(context: BrowserContext, url: string, count: number): Promise<Page[]> {
  return openTabsAt(context, Array.from({ length: count }, () => url));
}

/** Opens one tab of one context per URL, in order (tabs of one room with settings of their own). */
export async function openTabsAt(context: BrowserContext, urls: string[]): Promise<Page[]> {
  const pages: Page[] = [];
  for (const [i, url] of urls.entries()) {
    const page = await context.newPage();
    page.on('pageerror', (error) => console.error(`[tab ${i}] ${error.message}`));
    // The earlier tabs of a room load their data and compile while later ones open: on a loaded
    // machine a page's load event can take longer than Playwright's default 30 s.
    await page.goto(url, { timeout: 120_000 });
    pages.push(page);
  }
  return pages;
}

/** A fresh room code per run so that runs never meet each other's tabs. */
export function uniqueRoom(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;
}

/**
 * The shape every headless job shares: serve the lab, run `job` against it, print its last line of
 * JSON (or `{ ok: false, error }` when it throws), stop the server, and exit non-zero unless it went well.
 */
export async function runHeadlessJob(name: string, job: (serverUrl: string) => Promise<{ ok: boolean; json: unknown }>): Promise<never> {
  const server = await startLabServer();
  let exitCode = 0;
  try {
    const { ok, json } = await job(server.url);
    if (!ok) exitCode = 1;
    console.log(JSON.stringify(json));
  } catch (error) {
    console.error(`${name} failed: ${(error as Error).stack ?? error}`);
    console.log(JSON.stringify({ ok: false, error: (error as Error).message }));
    exitCode = 1;
  } finally {
    await server.close();
  }
  process.exit(exitCode);
}
