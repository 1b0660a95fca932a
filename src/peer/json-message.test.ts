import { describe, expect, it } from 'vitest';
import { decodeJsonMessage, encodeJsonMessage, isDecodeError, isInt, isObject } from './json-message';

const check = (raw: unknown) => (isObject(raw) && isInt(raw.n, 0, 9) ? null : 'n must be 0-9');

describe('JSON control messages', () => {
  it('round-trip a valid message', () => {
    const decoded = decodeJsonMessage<{ n: number }>(encodeJsonMessage({ n: 3 }), 'test message', check);
    expect(isDecodeError(decoded)).toBe(false);
    expect(decoded).toEqual({ n: 3 });
  });

  it('say why bytes are refused, and never throw', () => {
    expect(decodeJsonMessage(Uint8Array.of(0xff, 0x7b), 'test message', check)).toEqual({ error: 'test message: not UTF-8 JSON' });
    expect(decodeJsonMessage(encodeJsonMessage({ n: 12 }), 'test message', check)).toEqual({ error: 'test message refused: n must be 0-9' });
    expect(decodeJsonMessage(encodeJsonMessage([1]), 'test message', check)).toEqual({ error: 'test message refused: n must be 0-9' });
    expect(isDecodeError({ error: 'x' })).toBe(true);
    expect(isDecodeError({ n: 1 })).toBe(false);
    expect(isInt(1.5, 0, 9)).toBe(false);
  });
});
