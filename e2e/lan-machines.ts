// The simulated machines of one across-machines e2e test (lan-class.spec.ts, lan-turn.spec.ts): the
// network namespaces and the Chromiums started inside them. `lanMachinesPerTest()` registers an
// afterEach hook that closes every such Chromium and removes the namespaces; a hook, not a `finally`,
// because a test that times out never reaches its own finally block.
import { test, type Browser, type Page } from '@playwright/test';
import { launchIn } from './class-network';
import { type Machine, NamespaceLab } from './netns';

export interface LanMachines {
  /** Creates this test's namespace lab (names prefixed `prefix`, addresses `subnet`.x). */
  start(prefix: string, subnet: string): NamespaceLab;
  /** A Chromium inside `machine` that trusts the certificate with fingerprint `spki`. */
  browserIn(machine: Machine, spki: string): Promise<Browser>;
  /**
   * A page of a fresh such Chromium, its page errors logged under the machine's name; its console is
   * printed if the test fails.
   */
  pageIn(machine: Machine, spki: string): Promise<Page>;
  /** Lines (a lab server's output) printed under `name` if the test fails; the array may still grow. */
  showOnFailure(name: string, lines: string[]): void;
  /** Closes the Chromiums started so far (a close that fails fails the test). */
  closeBrowsers(): Promise<void>;
}

export function lanMachinesPerTest(): LanMachines {
  let lab: NamespaceLab | null = null;
  const browsers: Browser[] = [];
  const shown = new Map<string, string[]>();
  test.afterEach(async ({}, testInfo) => {
    if (testInfo.status !== testInfo.expectedStatus) {
      for (const [name, lines] of shown) console.log(`--- ${name} (last 60 lines) ---\n${lines.slice(-60).join('\n')}`);
    }
    shown.clear();
    await Promise.all(browsers.splice(0).map((b) => b.close().catch(() => undefined)));
    lab?.remove();
    lab = null;
  });
  const started = (): NamespaceLab => {
    if (!lab) throw new Error('start the namespace lab before launching a browser in it');
    return lab;
  };
  const browserIn = async (machine: Machine, spki: string): Promise<Browser> => {
    const browser = await launchIn(started(), machine, spki);
    browsers.push(browser);
    return browser;
  };
  return {
    start: (prefix, subnet) => (lab = new NamespaceLab(prefix, subnet)),
    browserIn,
    pageIn: async (machine, spki) => {
      const page = await (await browserIn(machine, spki)).newPage();
      page.on('pageerror', (error) => console.error(`[${machine.name}] ${error.message}`));
      const consoleLines: string[] = [];
      shown.set(`console of a page on ${machine.name} #${shown.size}`, consoleLines);
      page.on('console', (message) => consoleLines.push(`${message.type()} ${message.text()}`));
      page.on('requestfailed', (request) => consoleLines.push(`request failed: ${request.url()} ${request.failure()?.errorText ?? ''}`));
      return page;
    },
    showOnFailure: (name, lines) => shown.set(name, lines),
    closeBrowsers: async () => {
      await Promise.all(browsers.splice(0).map((b) => b.close()));
    },
  };
}
