import { describe, expect, it } from 'vitest';
import { type Counts, countsOfReport, markdownTable, scoresOf, summarize } from './mutate-report';

const mutants = (...statuses: string[]) => statuses.map((status) => ({ status }));

describe('mutation summary: counting', () => {
  it("counts each Stryker status per file; compile/runtime errors and ignored mutants go to 'other'", () => {
    const counts = countsOfReport({
      files: {
        'src/a.ts': { mutants: mutants('Killed', 'Killed', 'Timeout', 'Survived', 'NoCoverage', 'RuntimeError', 'CompileError', 'Ignored') },
        'src\\b.ts': { mutants: [] },
      },
    });
    expect(counts.get('src/a.ts')).toEqual({ mutants: 8, killed: 2, timeout: 1, survived: 1, noCoverage: 1, other: 3 });
    expect(counts.get('src/b.ts')).toEqual({ mutants: 0, killed: 0, timeout: 0, survived: 0, noCoverage: 0, other: 0 });
  });

  it("scores as Stryker does (timeouts detected), and without timeouts: killed / (killed + survived + no coverage)", () => {
    const c: Counts = { mutants: 20, killed: 10, timeout: 5, survived: 3, noCoverage: 2, other: 0 };
    const s = scoresOf(c);
    expect(s.all).toBeCloseTo((100 * 15) / 20, 12);
    expect(s.covered).toBeCloseTo((100 * 15) / 18, 12);
    expect(s.withoutTimeouts).toBeCloseTo((100 * 10) / 15, 12);
    // Under load every slow test timing out must not lift the score: all timeouts -> nothing to score.
    expect(scoresOf({ mutants: 4, killed: 0, timeout: 4, survived: 0, noCoverage: 0, other: 0 }).withoutTimeouts).toBeNaN();
    expect(scoresOf({ mutants: 0, killed: 0, timeout: 0, survived: 0, noCoverage: 0, other: 0 }).all).toBeNaN();
  });
});

describe('mutation summary: aggregation', () => {
  const count = (killed: number, survived: number, timeout = 0): Counts => ({ mutants: killed + survived + timeout, killed, timeout, survived, noCoverage: 0, other: 0 });
  const planned = [
    { file: 'src/collective/a.ts', folder: 'src/collective' },
    { file: 'src/collective/b.ts', folder: 'src/collective' },
    { file: 'src/train/c.ts', folder: 'src/train' },
    { file: 'src/parallel/d.ts', folder: 'src/parallel' },
  ];

  it('sums files into folders and folders into the total; the score of a sum is not the mean of the scores', () => {
    const summary = summarize(planned, new Map([
      ['src/collective/a.ts', count(9, 1)],
      ['src/collective/b.ts', count(1, 1, 2)],
      ['src/train/c.ts', count(3, 1)],
      ['src/parallel/d.ts', count(0, 0)],
    ]));
    expect(summary.files.map((r) => r.name)).toEqual(planned.map((p) => p.file));
    const collective = summary.folders.find((r) => r.name === 'src/collective');
    expect(collective?.counts).toEqual({ mutants: 14, killed: 10, timeout: 2, survived: 2, noCoverage: 0, other: 0 });
    expect(collective?.scores.all).toBeCloseTo((100 * 12) / 14, 12);
    expect(collective?.scores.withoutTimeouts).toBeCloseTo((100 * 10) / 12, 12);
    expect(summary.total.counts.mutants).toBe(18);
    expect(summary.total.scores.all).toBeCloseTo((100 * 15) / 18, 12);
    expect(summary.pending).toEqual([]);
    expect(summary.stale).toEqual([]);
  });

  it('a file without a finished part is pending, and its folder sums only what finished', () => {
    const summary = summarize(planned, new Map([['src/collective/a.ts', count(9, 1)]]));
    expect(summary.pending).toEqual(['src/collective/b.ts', 'src/train/c.ts', 'src/parallel/d.ts']);
    expect(summary.folders.map((r) => [r.name, r.counts.mutants])).toEqual([
      ['src/collective', 10],
      ['src/train', 0],
      ['src/parallel', 0],
    ]);
    expect(summary.total.scores.all).toBeCloseTo(90, 12);
  });

  it('a file measured before its tests changed is counted and marked stale; one never measured is pending', () => {
    const summary = summarize(planned.slice(0, 2), new Map([['src/collective/a.ts', count(9, 1)]]), new Set(['src/collective/a.ts', 'src/collective/b.ts']));
    expect(summary.files.map((r) => r.name)).toEqual(['src/collective/a.ts (stale)']);
    expect(summary.stale).toEqual(['src/collective/a.ts']);
    expect(summary.pending).toEqual(['src/collective/b.ts']);
    expect(summary.total.counts.killed).toBe(9);
  });

  it('the markdown table has one row per line with both scores, n/a where nothing was scored', () => {
    const summary = summarize(planned.slice(0, 1), new Map([['src/collective/a.ts', count(3, 1, 1)]]));
    const table = markdownTable([...summary.files, summary.total]).split('\n');
    expect(table).toHaveLength(4);
    expect(table[2]).toBe('| src/collective/a.ts | 5 | 3 | 1 | 1 | 0 | 0 | 80.00% / 80.00% | 75.00% |');
    expect(markdownTable(summarize(planned.slice(3), new Map([['src/parallel/d.ts', count(0, 0)]])).files)).toContain('n/a / n/a | n/a |');
  });
});
