import { describe, expect, it } from 'vitest';
import { checkGoals, compareRows, failedRow, formatMarkdown, formatTable, linkConditions, parseOnly, REFORM_NOTE, type RowResult } from './compare-table';

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
  const result = (row: string, accuracy: number, bytes: number, links = 'plain links', ms = 100): RowResult => ({ row, links, accuracy, bytesPerStepPerTab: bytes, wallMsPerStep: ms, replicasAgree: true, backends: ['CPU'], reforms: 0 });
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

  it('a failed row prints its reason and no figures, and its goal is unmeasured', () => {
    const failed = failedRow({ name: 'PowerSGD r=2', settings: {} }, { name: 'plain links', settings: {} }, 'rank 1 failed: boom');
    expect(formatTable([rows[0], failed])).toMatch(/PowerSGD r=2\s+-\s+-\s+0\s+-\s+-\s+FAILED: rank 1 failed: boom/);
    expect(checkGoals([rows[0], failed]).map((g) => g.met)).toEqual([null, null]);
  });

  it('the Markdown table puts each strategy on one line, its bytes once and each link condition side by side', () => {
    const shaped = 'shaped links 20 ms, 5 MB/s';
    const md = formatMarkdown([...rows, result('dense ring', 0.9, 100_000, shaped, 900), result('PowerSGD r=2', 0.88, 1_000, shaped, 300)]);
    const lines = md.split('\n');
    expect(lines[0]).toBe(`| strategy | bytes/step/tab | fewer | accuracy (plain links) | vs dense | ms/step | accuracy (${shaped}) | vs dense | ms/step |`);
    expect(lines).toContain('| dense ring | 100,000 | 1.0x | 90.0% | 0.0 pt | 100 | 90.0% | 0.0 pt | 900 |');
    expect(lines).toContain('| PowerSGD r=2 | 1,000 | 100.0x | 87.0% | -3.0 pt | 100 | 88.0% | -2.0 pt | 300 |');
    expect(lines).toContain('| DiLoCo H=50 | 2,000 | 50.0x | 89.5% | -0.5 pt | 100 | not run | - | - |');
  });
});

describe('a re-formed row', () => {
  it('is marked in both tables, with the note saying why it is not the same bits as the other link condition', () => {
    const shaped = 'shaped links 20 ms, 5 MB/s';
    const base: RowResult = { row: 'Random-K 0.5', links: 'plain links', accuracy: 0.931, bytesPerStepPerTab: 610_752, wallMsPerStep: 618, replicasAgree: true, backends: ['CPU'], reforms: 0 };
    const results = [base, { ...base, links: shaped, accuracy: 0.93, bytesPerStepPerTab: 611_346, wallMsPerStep: 1521, reforms: 1 }];
    const table = formatTable(results);
    expect(table).toMatch(/Random-K 0\.5\s+93\.1%.*equal\n/);
    expect(table).toMatch(/Random-K 0\.5\s+93\.0%.*equal, re-formed 1x\n/);
    expect(table.endsWith(REFORM_NOTE)).toBe(true);
    const md = formatMarkdown(results);
    expect(md).toContain('| Random-K 0.5 | 610,752 | - | 93.1% | - | 618 | 93.0% (re-formed 1x) | - | 1521 |');
    expect(md.endsWith(REFORM_NOTE)).toBe(true);
    expect(formatTable([base])).not.toContain(REFORM_NOTE);
    expect(formatMarkdown([base])).not.toContain(REFORM_NOTE);
  });
});

describe('--only', () => {
  it('selects rows whose names hold ", " (the parameter-server rows) as well as plain ones', () => {
    const names = compareRows(4, false).map((r) => r.name);
    const only = parseOnly('dense ring,PS async s=2, straggler,PS async s=4, straggler');
    expect(only).toEqual(['dense ring', 'PS async s=2, straggler', 'PS async s=4, straggler']);
    for (const name of only) expect(names).toContain(name);
  });
});
