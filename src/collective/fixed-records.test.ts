// Fixed-size records of float64 rows: the same size whatever the row count, rows back bit for bit,
// and refusals that name what the record holds.
import { describe, expect, it } from 'vitest';
import { decodeRows, encodeRows } from './fixed-records';

describe('fixed-size records', () => {
  it('0, 1 or 3 rows of 2 fields in a record of 3: always 1 + 3 x 2 float64s, the rows back bit for bit', () => {
    const rows = [[0.1, -2], [Number.MIN_VALUE, 1e300], [3, 0]];
    for (const n of [0, 1, 3]) {
      const record = encodeRows(rows.slice(0, n), 2, 3, 'rows');
      expect(record.byteLength).toBe(8 * 7);
      expect(decodeRows(record, 2, 'rows')).toEqual(rows.slice(0, n));
    }
  });

  it('refuses more rows than the capacity, and a record whose count does not fit its length or is not a count', () => {
    expect(() => encodeRows([[1], [2]], 1, 1, 'samples')).toThrow('2 samples do not fit a record of 1');
    const record = encodeRows([[1]], 1, 1, 'samples');
    new Float64Array(record.buffer)[0] = 2;
    expect(() => decodeRows(record, 1, 'samples')).toThrow('a samples record claims 2 samples in 2 words');
    new Float64Array(record.buffer)[0] = 0.5;
    expect(() => decodeRows(record, 1, 'samples')).toThrow(/claims 0.5 samples/);
  });
});
