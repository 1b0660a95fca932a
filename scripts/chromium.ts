// Where the lab finds a Chromium, for Playwright (e2e, swarm, soak, benches) and vitest's browser mode (the
// GPU kernel tests), and the flags it is launched with. The search order: CHROMIUM_PATH when set (it
// always wins, and a path that does not exist is an error naming the variable, never a silent fallback);
// then Playwright's own Chromium, where `npx playwright install chromium` puts it (Playwright reports the
// path for its own version, honouring PLAYWRIGHT_BROWSERS_PATH); then Debian's /usr/bin/chromium.
import { existsSync } from 'node:fs';
import { chromium } from '@playwright/test';

export const DEBIAN_CHROMIUM = '/usr/bin/chromium';

/** What the search looks at; injectable so that the order can be tested without touching the machine. */
export interface ChromiumSources {
  /** The CHROMIUM_PATH environment variable. */
  override: string | undefined;
  /** The path of Playwright's own Chromium for the installed Playwright version, installed or not; throws
   * on a platform Playwright ships no Chromium for. */
  playwrightChromium: () => string;
  exists: (path: string) => boolean;
}

export const MACHINE_SOURCES: ChromiumSources = {
  override: process.env.CHROMIUM_PATH,
  playwrightChromium: () => chromium.executablePath(),
  exists: existsSync,
};

export const NO_CHROMIUM_MESSAGE =
  'No Chromium found. Install one of: Playwright\'s own, with `npx playwright install chromium` ' +
  '(any system; add --with-deps to install the libraries it needs), or Debian/Ubuntu\'s, with ' +
  '`sudo apt-get install -y chromium` (/usr/bin/chromium). Or point CHROMIUM_PATH at a Chromium or Chrome binary.';

function playwrightChromiumOf(sources: ChromiumSources): string | undefined {
  try {
    return sources.playwrightChromium();
  } catch {
    return undefined; // no Chromium of Playwright's for this platform: the others may still serve
  }
}

/** The Chromium to launch, or undefined when there is none; CHROMIUM_PATH is returned as given. */
export function chromiumPath(sources: ChromiumSources = MACHINE_SOURCES): string | undefined {
  if (sources.override) return sources.override;
  const bundled = playwrightChromiumOf(sources);
  if (bundled && sources.exists(bundled)) return bundled;
  return sources.exists(DEBIAN_CHROMIUM) ? DEBIAN_CHROMIUM : undefined;
}

/** The Chromium to launch; throws a message saying how to install one when there is none. */
export function requireChromium(sources: ChromiumSources = MACHINE_SOURCES): string {
  if (sources.override && !sources.exists(sources.override)) {
    throw new Error(`CHROMIUM_PATH is ${sources.override}, which does not exist. ${NO_CHROMIUM_MESSAGE}`);
  }
  const path = chromiumPath(sources);
  if (!path) throw new Error(NO_CHROMIUM_MESSAGE);
  return path;
}

/**
 * Extra launch flags from the environment (space-separated), appended to the defaults. On a Linux machine
 * with a real GPU, WebGPU needs Vulkan, for example:
 * CHROMIUM_FLAGS="--enable-features=Vulkan --use-angle=vulkan --disable-vulkan-surface --ignore-gpu-blocklist"
 */
export function extraChromiumFlags(value = process.env.CHROMIUM_FLAGS): string[] {
  return (value ?? '').split(/\s+/).filter((flag) => flag.length > 0);
}

/** Flags for headless Chromium: WebGPU on SwiftShader, no background traffic, no throttled tabs. */
const DEFAULT_ARGS = [
  '--enable-unsafe-webgpu',
  '--no-sandbox',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
  '--disable-renderer-backgrounding',
  '--disable-background-timer-throttling',
  '--disable-backgrounding-occluded-windows',
];

export const CHROMIUM_ARGS = [...DEFAULT_ARGS, ...extraChromiumFlags()];
