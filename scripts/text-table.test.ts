import { describe, expect, it } from 'vitest';
import { alignColumns, offBy } from './text-table';

describe('text tables', () => {
  it('pads every cell to its column\'s widest, two spaces apart', () => {
    expect(alignColumns([['rank', 'bytes'], ['10', '4'], ['2', '123456']])).toEqual(['rank  bytes ', '10    4     ', '2     123456']);
  });

  it('an empty table has no rows', () => {
    expect(alignColumns([])).toEqual([]);
  });

  it('says how far a measured figure is from its formula, in percent to 2 decimals', () => {
    expect(offBy(101, 100)).toBe('1.00%');
    expect(offBy(99, 100)).toBe('-1.00%');
    expect(offBy(0, 0)).toBe('0%');
    expect(offBy(5, 0)).toBe('inf');
  });
});
