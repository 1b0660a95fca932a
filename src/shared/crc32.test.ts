import { describe, expect, it } from 'vitest';
import { crc32, crc32Bytewise } from './crc32';

const ascii = (s: string) => new TextEncoder().encode(s);

describe('crc32', () => {
  it('matches the published check value of CRC-32/ISO-HDLC', () => {
    // The standard check: CRC-32 of "123456789" is 0xCBF43926.
    expect(crc32(ascii('123456789'))).toBe(0xcbf43926);
  });

  it('is 0 for no bytes and matches zlib for a known string', () => {
    expect(crc32(new Uint8Array(0))).toBe(0);
    // zlib.crc32('The quick brown fox jumps over the lazy dog') = 0x414fa339
    expect(crc32(ascii('The quick brown fox jumps over the lazy dog'))).toBe(0x414fa339);
  });

  it('continues over split ranges as if they were one buffer', () => {
    const all = ascii('header and then a payload that follows it');
    const whole = crc32(all);
    for (const cut of [0, 1, 6, 20, all.length]) {
      expect(crc32(all.subarray(cut), crc32(all.subarray(0, cut)))).toBe(whole);
    }
  });
});

describe('crc32 (slicing-by-8) against the bytewise reference', () => {
  it('agrees for every length 0..40, any alignment, and any starting CRC', () => {
    let seed = 7;
    const bytes = new Uint8Array(64).map(() => (seed = (seed * 1103515245 + 12345) >>> 0) >>> 24);
    for (let offset = 0; offset < 8; offset++) {
      for (let length = 0; length <= 40; length++) {
        const view = bytes.subarray(offset, offset + length);
        expect(crc32(view)).toBe(crc32Bytewise(view));
        expect(crc32(view, 0xdeadbeef)).toBe(crc32Bytewise(view, 0xdeadbeef));
      }
    }
  });

  it('agrees on a frame-sized buffer of all byte values', () => {
    const big = new Uint8Array(262_144 + 5).map((_, i) => (i * 131 + (i >>> 8)) & 0xff);
    expect(crc32(big)).toBe(crc32Bytewise(big));
    expect(crc32(big)).toBe(crc32(big.subarray(1000), crc32(big.subarray(0, 1000))));
  });
});
