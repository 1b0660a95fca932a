import { describe, expect, it } from 'vitest';
import { boundariesOf, chunksFromBoundaries, maxElementsForBytes, splitEven, splitParts, DEFAULT_MAX_MESSAGE_BYTES, DEFAULT_MAX_MESSAGE_ELEMENTS } from './chunking';

describe('splitEven', () => {
  it('covers every length exactly once, sizes within one of each other', () => {
    for (let world = 1; world <= 16; world++) {
      for (const length of [0, 1, world - 1, world, world + 1, 7, 97, 100_003]) {
        const chunks = splitEven(length, world);
        expect(chunks).toHaveLength(world);
        let next = 0;
        for (const chunk of chunks) {
          expect(chunk.offset).toBe(next);
          next += chunk.length;
        }
        expect(next).toBe(length);
        const sizes = chunks.map((c) => c.length);
        expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
      }
    }
  });

  it('gives empty chunks when the length is below world', () => {
    expect(splitEven(2, 4).map((c) => c.length)).toEqual([1, 1, 0, 0]);
  });

  it('refuses bad input', () => {
    expect(() => splitEven(-1, 2)).toThrow(/length/);
    expect(() => splitEven(4, 0)).toThrow(/world/);
    expect(() => splitEven(1.5, 2)).toThrow(/length/);
  });
});

describe('chunksFromBoundaries', () => {
  it('round-trips with boundariesOf', () => {
    const boundaries = [0, 64, 64, 200, 201];
    expect(boundariesOf(chunksFromBoundaries(boundaries, 201))).toEqual(boundaries);
  });

  it('refuses boundaries that do not cover [0, length] in order', () => {
    expect(() => chunksFromBoundaries([1, 5], 5)).toThrow(/start at 0/);
    expect(() => chunksFromBoundaries([0, 4], 5)).toThrow(/end at length/);
    expect(() => chunksFromBoundaries([0, 3, 2, 5], 5)).toThrow(/non-decreasing/);
  });
});

describe('splitParts', () => {
  it('cuts into the fewest parts within the limit, evenly', () => {
    const parts = splitParts({ offset: 10, length: 25 }, 10);
    expect(parts).toEqual([
      { offset: 10, length: 9 },
      { offset: 19, length: 8 },
      { offset: 27, length: 8 },
    ]);
    expect(splitParts({ offset: 3, length: 0 }, 10)).toEqual([]);
    expect(splitParts({ offset: 0, length: 10 }, 10)).toEqual([{ offset: 0, length: 10 }]);
  });

  it('keeps a default message inside the 256 KiB WebRTC limit with room for a header', () => {
    expect(DEFAULT_MAX_MESSAGE_ELEMENTS * 4).toBe(DEFAULT_MAX_MESSAGE_BYTES);
    expect(DEFAULT_MAX_MESSAGE_BYTES).toBeLessThanOrEqual(262_144 - 256);
    const parts = splitParts({ offset: 0, length: 1_000_003 });
    for (const part of parts) expect(part.length * 4).toBeLessThanOrEqual(DEFAULT_MAX_MESSAGE_BYTES);
    expect(parts.reduce((sum, p) => sum + p.length, 0)).toBe(1_000_003);
  });

  it('turns a byte budget into elements', () => {
    expect(maxElementsForBytes(1000)).toBe(250);
    expect(() => maxElementsForBytes(3)).toThrow(/cannot hold/);
  });
});
