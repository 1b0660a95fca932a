import { describe, expect, it } from 'vitest';
import { extraChromiumFlags } from './chromium';

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
