// Where the lab finds a Chromium, for Playwright (e2e, swarm, benches) and for Dawn's SwiftShader in
// Node (GPU kernel unit tests). CHROMIUM_PATH overrides the Debian default so that users with
// Playwright's bundled browser or Chrome are served too.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { realpathSync } from 'node:fs';

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

/** The folder holding Chromium's SwiftShader Vulkan driver, if one can be found. */
export function swiftShaderDir(): string | undefined {
  const candidates = ['/usr/lib/chromium'];
  const path = chromiumPath();
  if (path && existsSync(path)) {
    try {
      candidates.push(dirname(realpathSync(path)));
    } catch {
      // an unreadable link: fall back to the Debian folder
    }
  }
  return candidates.find((dir) => existsSync(join(dir, 'vk_swiftshader_icd.json')));
}

/** Environment that lets Dawn in Node find SwiftShader (kept as is when the user set their own). */
export function webgpuNodeEnv(): Record<string, string> {
  const dir = swiftShaderDir();
  if (!dir || process.env.VK_ICD_FILENAMES) return {};
  const ld = process.env.LD_LIBRARY_PATH;
  return {
    LD_LIBRARY_PATH: ld ? `${dir}:${ld}` : dir,
    VK_ICD_FILENAMES: join(dir, 'vk_swiftshader_icd.json'),
  };
}

/** Flags for headless Chromium: WebGPU on SwiftShader, no background traffic, no throttled tabs. */
export const CHROMIUM_ARGS = [
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
