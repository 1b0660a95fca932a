import { describe, expect, it } from 'vitest';
import { crc32 } from './crc32';

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
