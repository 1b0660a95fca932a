// The mutation score of the stored parts (scripts/mutate.ts), per file, per folder and in total, as pure
// functions of Stryker's JSON reports (mutation-testing-report-schema). Scores follow Stryker's
// definitions: detected = killed + timeout, valid = detected + survived + no coverage (compile and
// runtime errors and ignored mutants are left out), score = detected / valid, covered score = detected /
// (detected + survived). A timeout counts as detected there; on a loaded machine a slow test can time out
// without the mutant being wrong, so a third score leaves timeouts out altogether:
// killed / (killed + survived + no coverage).

/** The part of a Stryker JSON report this module reads. */
export interface StrykerReport {
  files: Record<string, { mutants: { status: string }[] }>;
}

export interface Counts {
  mutants: number;
  killed: number;
  timeout: number;
  survived: number;
  noCoverage: number;
  /** Compile errors, runtime errors, ignored and pending mutants: outside every score. */
  other: number;
}

export interface Scores {
  /** Percent; NaN when there is nothing to score. */
  all: number;
  covered: number;
  withoutTimeouts: number;
}

export function emptyCounts(): Counts {
  return { mutants: 0, killed: 0, timeout: 0, survived: 0, noCoverage: 0, other: 0 };
}

export function addCounts(a: Counts, b: Counts): Counts {
  return {
    mutants: a.mutants + b.mutants,
    killed: a.killed + b.killed,
    timeout: a.timeout + b.timeout,
    survived: a.survived + b.survived,
    noCoverage: a.noCoverage + b.noCoverage,
    other: a.other + b.other,
  };
}

/** Counts per file of one report (paths as Stryker wrote them: relative to the repository root). */
export function countsOfReport(report: StrykerReport): Map<string, Counts> {
  const byFile = new Map<string, Counts>();
  for (const [file, { mutants }] of Object.entries(report.files)) {
    const c = emptyCounts();
    for (const { status } of mutants) {
      c.mutants++;
      if (status === 'Killed') c.killed++;
      else if (status === 'Timeout') c.timeout++;
      else if (status === 'Survived') c.survived++;
      else if (status === 'NoCoverage') c.noCoverage++;
      else c.other++;
    }
    byFile.set(file.replace(/\\/g, '/'), c);
  }
  return byFile;
}

const percent = (num: number, den: number) => (den === 0 ? Number.NaN : (100 * num) / den);

export function scoresOf(c: Counts): Scores {
  const detected = c.killed + c.timeout;
  return {
    all: percent(detected, detected + c.survived + c.noCoverage),
    covered: percent(detected, detected + c.survived),
    withoutTimeouts: percent(c.killed, c.killed + c.survived + c.noCoverage),
  };
}

/** One line of the summary: a file, a folder, or the total over everything measured. */
export interface Row {
  name: string;
  counts: Counts;
  scores: Scores;
}

export interface Summary {
  files: Row[];
  folders: Row[];
  total: Row;
  /** Files planned but without any finished part. */
  pending: string[];
  /** Files counted from a part measured before their code or tests last changed (a rerun redoes them). */
  stale: string[];
}

/**
 * Aggregates finished parts. `planned` lists every file of the run in order with its folder;
 * `finished` maps a file to its counts (absent: not measured yet). Files in `stale` were measured
 * against older code or tests: they are counted (the last measurement is better than none) and marked.
 * A folder's row sums its finished files only; `pending` says what is missing from it.
 */
export function summarize(planned: { file: string; folder: string }[], finished: Map<string, Counts>, stale: ReadonlySet<string> = new Set()): Summary {
  const files: Row[] = [];
  const folderCounts = new Map<string, Counts>();
  const pending: string[] = [];
  let total = emptyCounts();
  for (const { file, folder } of planned) {
    if (!folderCounts.has(folder)) folderCounts.set(folder, emptyCounts());
    const counts = finished.get(file);
    if (!counts) {
      pending.push(file);
      continue;
    }
    files.push({ name: stale.has(file) ? `${file} (stale)` : file, counts, scores: scoresOf(counts) });
    folderCounts.set(folder, addCounts(folderCounts.get(folder) as Counts, counts));
    total = addCounts(total, counts);
  }
  const folders = [...folderCounts].map(([name, counts]) => ({ name, counts, scores: scoresOf(counts) }));
  const staleCounted = planned.map((p) => p.file).filter((f) => stale.has(f) && finished.has(f));
  return { files, folders, total: { name: 'total', counts: total, scores: scoresOf(total) }, pending, stale: staleCounted };
}

const fmt = (p: number) => (Number.isNaN(p) ? 'n/a' : `${p.toFixed(2)}%`);

/** A markdown table of rows (the form docs/testing.md records). */
export function markdownTable(rows: Row[]): string {
  const head = '| name | mutants | killed | timeout | survived | no coverage | other | score (all / covered) | score without timeouts |';
  const rule = '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |';
  const lines = rows.map(
    ({ name, counts: c, scores: s }) =>
      `| ${name} | ${c.mutants} | ${c.killed} | ${c.timeout} | ${c.survived} | ${c.noCoverage} | ${c.other} | ${fmt(s.all)} / ${fmt(s.covered)} | ${fmt(s.withoutTimeouts)} |`,
  );
  return [head, rule, ...lines].join('\n');
}
