import { describe, expect, it } from 'vitest';
import {
  ROOM_CODE_ALPHABET,
  generateRoomCode,
  normalizeRoomName,
  parseShareLink,
  shareLink,
} from './room-code';

describe('room codes', () => {
  it('generates 6 characters from the unambiguous alphabet', () => {
    for (let i = 0; i < 200; i++) {
      const code = generateRoomCode();
      expect(code).toMatch(/^[A-Z2-9]{6}$/);
      for (const c of code) expect(ROOM_CODE_ALPHABET).toContain(c);
      expect(code).not.toMatch(/[01IOL]/);
    }
  });

  it('uses the whole alphabet given a random source', () => {
    let i = 0;
    const steps = (() => (i++ % ROOM_CODE_ALPHABET.length) / ROOM_CODE_ALPHABET.length);
    expect(generateRoomCode(steps)).toBe('ABCDEF');
  });

  it('normalizes typed codes and refuses bad names', () => {
    expect(normalizeRoomName('  k7qx2m ')).toBe('K7QX2M');
    expect(normalizeRoomName('my-room_1')).toBe('my-room_1');
    expect(() => normalizeRoomName('')).toThrow(/not valid/);
    expect(() => normalizeRoomName('a b')).toThrow(/not valid/);
    expect(() => normalizeRoomName('x'.repeat(33))).toThrow(/not valid/);
  });

  it('builds and parses share links', () => {
    const link = shareLink('http://127.0.0.1:5173/?model=mlp', 'k7qx2m', 'ws://10.0.0.2:8787');
    expect(link).toContain('model=mlp');
    expect(parseShareLink(link)).toEqual({ room: 'K7QX2M', signal: 'ws://10.0.0.2:8787' });
    expect(parseShareLink(shareLink('http://localhost:5173/', 'ROOM-1'))).toEqual({ room: 'ROOM-1' });
  });

  it('drops invalid values from a link instead of trusting them', () => {
    expect(parseShareLink('http://x/?room=%3Cscript%3E&signal=javascript:alert(1)')).toEqual({});
    expect(() => shareLink('http://x/', 'ok', 'http://not-ws')).toThrow(/ws:\/\//);
  });
});
