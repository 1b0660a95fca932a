import { describe, expect, it } from 'vitest';
import { fnv1a64, fnv1a64Js } from './fnv1a64';

const text = (s: string) => new TextEncoder().encode(s);

describe('fnv1a64', () => {
  it('gives the published FNV-1a 64 values, in WebAssembly and in JavaScript', () => {
    const known: [string, string][] = [
      ['', 'cbf29ce484222325'],
      ['a', 'af63dc4c8601ec8c'],
      ['foobar', '85944171f73967e8'],
      ['hello', 'a430d84680aabd0b'],
    ];
    for (const [input, hash] of known) {
      expect(fnv1a64(text(input))).toBe(hash);
      expect(fnv1a64Js(text(input))).toBe(hash);
    }
  });

  it('the WebAssembly hash equals the JavaScript one across its 1 MiB chunks, for views at an offset', () => {
    let seed = 7;
    const bytes = new Uint8Array(3 * 1024 * 1024 + 4099).map(() => (seed = (seed * 1103515245 + 12345) >>> 0) >>> 24);
    for (const view of [bytes.subarray(0, 1), bytes.subarray(5, 1024 * 1024 + 17), bytes.subarray(3), bytes]) {
      expect(fnv1a64(view)).toBe(fnv1a64Js(view));
    }
    // One flipped bit anywhere changes it.
    const flipped = bytes.slice();
    flipped[2 * 1024 * 1024 + 1] ^= 1;
    expect(fnv1a64(flipped)).not.toBe(fnv1a64(bytes));
  });
});
