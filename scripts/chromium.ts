// Where the lab finds a Chromium, for Playwright (e2e, swarm, benches) and vitest's browser mode (the
// GPU kernel tests). CHROMIUM_PATH overrides the Debian default so that users with
// Playwright's bundled browser or Chrome are served too.
import { existsSync } from 'node:fs';

const DEBIAN_CHROMIUM = '/usr/bin/chromium';

export function chromiumPath(): string | undefined {
  const fromEnv = process.env.CHROMIUM_PATH;
  if (fromEnv) return fromEnv;
  return existsSync(DEBIAN_CHROMIUM) ? DEBIAN_CHROMIUM : undefined;
}

export const NO_CHROMIUM_MESSAGE =
  'No Chromium found. Install it with `sudo apt-get install -y chromium` (Debian/Ubuntu), ' +
  'or point CHROMIUM_PATH at a Chromium or Chrome binary.';

export function requireChromium(): string {
  const path = chromiumPath();
  if (!path || !existsSync(path)) throw new Error(NO_CHROMIUM_MESSAGE);
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
