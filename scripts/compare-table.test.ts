import { describe, expect, it } from 'vitest';
import { checkGoals, compareRows, formatTable, linkConditions, type RowResult } from './compare-table';

describe('compareRows', () => {
  it('has the issue\'s rows in full, fewer in the quick preset, and a straggler on the last rank of every PS row', () => {
    const full = compareRows(4, false).map((r) => r.name);
    expect(full).toEqual([
      'dense ring', 'fp16',
      'Top-K 0.5', 'Top-K 0.1', 'Top-K 0.01', 'Top-K 0.001',
      'Random-K 0.5', 'Random-K 0.1', 'Random-K 0.01', 'Random-K 0.001',
      'PowerSGD r=1', 'PowerSGD r=2', 'PowerSGD r=4',
      'DiLoCo H=10', 'DiLoCo H=50',
      'PS sync, straggler', 'PS async s=1, straggler', 'PS async s=2, straggler', 'PS async s=4, straggler',
    ]);
    expect(compareRows(4, true).length).toBeLessThan(full.length);
    for (const row of compareRows(3, false).filter((r) => r.settings.mode === 'ps')) expect(row.settings).toMatchObject({ slowrank: 2 });
  });

  it('reads --links, refusing what it does not know', () => {
    expect(linkConditions('plain,shaped', 20, 5).map((c) => c.settings)).toEqual([{}, { latency: 20, bandwidth: 5 }]);
    expect(linkConditions('shaped', 20, 5)).toHaveLength(1);
    expect(() => linkConditions('fast', 20, 5)).toThrow(/--links/);
  });
});

describe('the table and the goals', () => {
  const result = (row: string, accuracy: number, bytes: number): RowResult => ({ row, links: 'plain links', accuracy, bytesPerStepPerTab: bytes, wallMsPerStep: 100, replicasAgree: true });
  const rows = [result('dense ring', 0.9, 100_000), result('DiLoCo H=50', 0.895, 2_000), result('PowerSGD r=2', 0.87, 1_000)];

  it('prints accuracy, the points against dense and how many times fewer bytes', () => {
    const table = formatTable(rows);
    expect(table).toMatch(/DiLoCo H=50\s+89\.5%\s+-0\.5 pt\s+2,000\s+50\.0x/);
    expect(table).toMatch(/PowerSGD r=2\s+87\.0%\s+-3\.0 pt\s+1,000\s+100\.0x/);
  });

  it('meets a goal only within 1 point and with enough fewer bytes; unmeasured rows are said so', () => {
    const goals = checkGoals(rows);
    expect(goals.map((g) => g.met)).toEqual([true, false]);
    expect(checkGoals([rows[0]]).map((g) => g.met)).toEqual([null, null]);
  });
});
