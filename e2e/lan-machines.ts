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
  /** A page of a fresh such Chromium, its page errors logged under the machine's name. */
  pageIn(machine: Machine, spki: string): Promise<Page>;
  /** Closes the Chromiums started so far (a close that fails fails the test). */
  closeBrowsers(): Promise<void>;
}

export function lanMachinesPerTest(): LanMachines {
  let lab: NamespaceLab | null = null;
  const browsers: Browser[] = [];
  test.afterEach(async () => {
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
      return page;
    },
    closeBrowsers: async () => {
      await Promise.all(browsers.splice(0).map((b) => b.close()));
    },
  };
}
