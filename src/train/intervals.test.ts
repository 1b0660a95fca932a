import { describe, expect, it } from 'vitest';
import { intersectionMs, spansWithin, unionMs } from './intervals';

describe('unionMs', () => {
  it('counts overlapping intervals once and gaps not at all', () => {
    expect(unionMs([])).toBe(0);
    expect(unionMs([[10, 20]])).toBe(10);
    // [0, 30] and [50, 60]: the gap 30-50 (nothing in flight) is not counted.
    expect(unionMs([[50, 60], [0, 20], [10, 30]])).toBe(40);
    expect(unionMs([[0, 100], [20, 30]])).toBe(100);
    expect(unionMs([[5, 5], [7, 3]])).toBe(0);
  });
});

describe('intersectionMs', () => {
  it('is the time both sets were busy at once', () => {
    // Compute [0, 40] and [60, 70]; communication [30, 65]: both at once 30-40 and 60-65.
    expect(intersectionMs([[0, 40], [60, 70]], [[30, 65]])).toBe(15);
    expect(intersectionMs([[30, 65]], [[0, 40], [60, 70]])).toBe(15);
  });

  it('counts a set that overlaps itself once, and disjoint sets as zero', () => {
    expect(intersectionMs([[0, 10]], [[2, 6], [4, 8]])).toBe(6);
    expect(intersectionMs([[0, 10]], [[10, 20]])).toBe(0);
    expect(intersectionMs([], [[0, 1]])).toBe(0);
  });

  it('never exceeds either union', () => {
    const a: [number, number][] = [[0, 3], [5, 9], [12, 30]];
    const b: [number, number][] = [[1, 6], [8, 14], [20, 21], [25, 40]];
    const both = intersectionMs(a, b);
    expect(both).toBe(2 + 1 + 1 + 2 + 1 + 5);
    expect(both).toBeLessThanOrEqual(Math.min(unionMs(a), unionMs(b)));
  });
});

describe('spansWithin', () => {
  it('clips spans of work to a window: a running one counts until its end, one not started for nothing', () => {
    const spans = [{ start: 0, end: 10 }, { start: 20 }, {}, { start: 40, end: 45 }];
    expect(spansWithin(spans, 5, 30)).toEqual([[5, 10], [20, 30]]);
    expect(spansWithin(spans, 11, 19)).toEqual([]);
    expect(spansWithin(spans, 0, 100)).toEqual([[0, 10], [20, 100], [40, 45]]);
  });
});
