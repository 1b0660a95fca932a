import { describe, expect, it } from 'vitest';
import { chromiumPath, DEBIAN_CHROMIUM, extraChromiumFlags, NO_CHROMIUM_MESSAGE, requireChromium, type ChromiumSources } from './chromium';

const PLAYWRIGHT_CHROMIUM = '/home/user/.cache/ms-playwright/chromium-1255/chrome-linux64/chrome';

/** A machine holding exactly `installed`, with CHROMIUM_PATH set to `override`. */
function machine(installed: string[], override?: string): ChromiumSources {
  return { override, playwrightChromium: () => PLAYWRIGHT_CHROMIUM, exists: (path) => installed.includes(path) };
}

describe('chromiumPath', () => {
  it("prefers Playwright's own Chromium to Debian's when both are installed", () => {
    expect(chromiumPath(machine([PLAYWRIGHT_CHROMIUM, DEBIAN_CHROMIUM]))).toBe(PLAYWRIGHT_CHROMIUM);
  });

  it("uses Debian's when Playwright's is not installed", () => {
    expect(chromiumPath(machine([DEBIAN_CHROMIUM]))).toBe(DEBIAN_CHROMIUM);
  });

  it("uses Debian's when Playwright ships no Chromium for the platform", () => {
    const unsupported = (): string => {
      throw new Error('ERROR: Playwright does not support chromium on this platform');
    };
    expect(chromiumPath({ ...machine([DEBIAN_CHROMIUM]), playwrightChromium: unsupported })).toBe(DEBIAN_CHROMIUM);
  });

  it('lets CHROMIUM_PATH win over both', () => {
    expect(chromiumPath(machine([PLAYWRIGHT_CHROMIUM, DEBIAN_CHROMIUM, '/opt/chrome'], '/opt/chrome'))).toBe('/opt/chrome');
  });

  it('finds nothing on a machine without a Chromium', () => {
    expect(chromiumPath(machine([]))).toBeUndefined();
  });
});

describe('requireChromium', () => {
  it('names both ways to install when there is no Chromium', () => {
    expect(() => requireChromium(machine([]))).toThrow(NO_CHROMIUM_MESSAGE);
    expect(NO_CHROMIUM_MESSAGE).toContain('npx playwright install chromium');
    expect(NO_CHROMIUM_MESSAGE).toContain('sudo apt-get install -y chromium');
  });

  it('refuses a CHROMIUM_PATH that does not exist rather than falling back', () => {
    expect(() => requireChromium(machine([DEBIAN_CHROMIUM], '/nowhere/chrome'))).toThrow(/CHROMIUM_PATH is \/nowhere\/chrome, which does not exist/);
  });

  it('returns the path found', () => {
    expect(requireChromium(machine([PLAYWRIGHT_CHROMIUM]))).toBe(PLAYWRIGHT_CHROMIUM);
  });
});

describe('extraChromiumFlags', () => {
  it('splits the variable on any whitespace and drops empty pieces', () => {
    expect(extraChromiumFlags('  --enable-features=Vulkan\t--use-angle=vulkan\n --disable-vulkan-surface ')).toEqual([
      '--enable-features=Vulkan',
      '--use-angle=vulkan',
      '--disable-vulkan-surface',
    ]);
  });

  it('adds nothing when the variable is unset or blank', () => {
    expect(extraChromiumFlags(undefined)).toEqual([]);
    expect(extraChromiumFlags('   ')).toEqual([]);
  });
});
