// Checks of chunking.ts that mutation testing (npm run mutate) showed missing: the edges of its input
// checks. A single boundary [0] for an empty vector passed the other checks and silently described no
// chunks at all; a budget of exactly one float must be accepted; a refusal names the value it refused.
import { describe, expect, it } from 'vitest';
import { chunksFromBoundaries, maxElementsForBytes } from './chunking';

describe('chunking input checks at their edges', () => {
  it('a single boundary [0] is refused even for an empty vector (it would describe zero chunks for a world of any size)', () => {
    expect(() => chunksFromBoundaries([0], 0)).toThrow(/at least two entries/);
    expect(() => chunksFromBoundaries([], 0)).toThrow(/at least two entries/);
  });

  it('a wrong last boundary is reported with its value (not "undefined")', () => {
    expect(() => chunksFromBoundaries([0, 3, 5], 6)).toThrow('boundaries must end at length 6, got 5');
  });

  it('a message budget of exactly one float (4..7 bytes) holds one element; 3 bytes is refused', () => {
    expect(maxElementsForBytes(4)).toBe(1);
    expect(maxElementsForBytes(7)).toBe(1);
    expect(() => maxElementsForBytes(3)).toThrow(/3 bytes cannot hold one float/);
  });
});
