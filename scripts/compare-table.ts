// The strategy table of `npm run compare` (compare.ts), pure and unit-tested: which rows a run has
// (dense ring, fp16, Top-K and Random-K at four ratios, PowerSGD rank 1/2/4, DiLoCo H=10/50, the
// parameter server synchronous and asynchronous with a straggler), how one row's tabs become its
// figures, how the table prints (text, and Markdown with the link conditions side by side), and the
// issue's goals checked against the dense row of the same links.
import type { RunSummary } from './swarm-summary';

export interface CompareRow {
  name: string;
  /** URL settings on top of the run's (src/lab/config.ts keys). */
  settings: Record<string, string | number>;
}

export interface LinkCondition {
  name: string;
  settings: Record<string, string | number>;
}

/** A straggler for the parameter-server rows: this much extra compute per step on the last rank. */
export const STRAGGLER_MS = 40;

export function compareRows(tabs: number, quick: boolean): CompareRow[] {
  const straggler = { slow: STRAGGLER_MS, slowrank: tabs - 1 };
  const ratios = quick ? [0.01] : [0.5, 0.1, 0.01, 0.001];
  const ranks = quick ? [2] : [1, 2, 4];
  const inners = quick ? [10] : [10, 50];
  const staleness = quick ? [0, 2] : [0, 1, 2, 4];
  return [
    { name: 'dense ring', settings: {} },
    { name: 'fp16', settings: { compression: 'fp16' } },
    ...ratios.map((ratio) => ({ name: `Top-K ${ratio}`, settings: { compression: 'topk', ratio } })),
    ...ratios.map((ratio) => ({ name: `Random-K ${ratio}`, settings: { compression: 'randk', ratio } })),
    ...ranks.map((rank) => ({ name: `PowerSGD r=${rank}`, settings: { compression: 'powersgd', rank } })),
    ...inners.map((inner) => ({ name: `DiLoCo H=${inner}`, settings: { mode: 'diloco', inner } })),
    ...staleness.map((s) => ({ name: s === 0 ? `PS sync, straggler` : `PS async s=${s}, straggler`, settings: { mode: 'ps', staleness: s, ...straggler } })),
  ];
}

/**
 * `--only`'s row names. Names are split at commas not followed by a space: the parameter-server rows'
 * names hold ", straggler", so a plain split on commas could never select them.
 */
export function parseOnly(list: string): string[] {
  return list.split(/,(?!\s)/).map((name) => name.trim()).filter((name) => name.length > 0);
}

export function linkConditions(which: string, latencyMs: number, bandwidthMBps: number): LinkCondition[] {
  const all: LinkCondition[] = [
    { name: 'plain links', settings: {} },
    { name: `shaped links ${latencyMs} ms, ${bandwidthMBps} MB/s`, settings: { latency: latencyMs, bandwidth: bandwidthMBps } },
  ];
  const wanted = which.split(',');
  const chosen = all.filter((_, i) => wanted.includes(i === 0 ? 'plain' : 'shaped'));
  if (chosen.length === 0) throw new RangeError(`--links takes plain, shaped or plain,shaped, got "${which}"`);
  return chosen;
}

export interface RowResult {
  row: string;
  links: string;
  accuracy: number | null;
  /** Model-data bytes each tab sent per step, on average over the tabs. */
  bytesPerStepPerTab: number;
  wallMsPerStep: number | null;
  replicasAgree: boolean | null;
  /** The tabs' backend (adapter strings, distinct, rank order). */
  backends: string[];
  /** Times the room's ring re-formed during the run (a tab dropped, e.g. silent past peertimeout on a loaded host). */
  reforms: number;
  /** Why the row has no figures: its run failed (the table goes on with the next row). */
  error?: string;
}

export function rowResult(row: CompareRow, links: LinkCondition, run: RunSummary): RowResult {
  return {
    row: row.name,
    links: links.name,
    accuracy: run.accuracy,
    bytesPerStepPerTab: run.tabs > 0 ? run.bytesSentPerStep / run.tabs : 0,
    wallMsPerStep: run.wallMsPerStep,
    replicasAgree: run.replicasAgree,
    backends: [...new Set(run.backends)],
    reforms: run.reforms,
  };
}

/** A row whose run failed: no figures, the reason kept for the table. */
export function failedRow(row: CompareRow, links: LinkCondition, error: string): RowResult {
  return { row: row.name, links: links.name, accuracy: null, bytesPerStepPerTab: 0, wallMsPerStep: null, replicasAgree: null, backends: [], reforms: 0, error };
}

/**
 * Said under a table with a re-formed row. A re-form rebuilds every tab's run from the replicas' state
 * (src/lab/session.ts reform): the parameters and the optimizer carry over, a strategy's own state does
 * not (Top-K/Random-K's error feedback, PowerSGD's residual and Q, DiLoCo's anchor and outer momentum),
 * and the step that failed is sent again. So that row's accuracy and bytes are not the same bits as an
 * uninterrupted run of the same row.
 */
export const REFORM_NOTE =
  're-formed: a tab dropped out and the ring re-formed; each tab\'s strategy state (error feedback, PowerSGD\'s residual and Q, DiLoCo\'s outer momentum) restarted there and the failed step was sent again, so this row differs from an uninterrupted run';

const reformsOf = (r: RowResult) => (r.reforms > 0 ? `re-formed ${r.reforms}x` : '');

const pad = (s: string, n: number) => s.padEnd(n);
const lpad = (s: string, n: number) => s.padStart(n);

/** The table: one block per link condition, each row beside the dense ring of the same links. */
export function formatTable(results: RowResult[]): string {
  const lines: string[] = [];
  for (const links of [...new Set(results.map((r) => r.links))]) {
    const rows = results.filter((r) => r.links === links);
    const dense = rows.find((r) => r.row === 'dense ring');
    lines.push('', links, `${pad('strategy', 24)}${lpad('accuracy', 9)}${lpad('vs dense', 10)}${lpad('bytes/step/tab', 16)}${lpad('fewer', 9)}${lpad('ms/step', 9)}  replicas`);
    for (const r of rows) {
      const points = dense && r.accuracy !== null && dense.accuracy !== null ? `${((r.accuracy - dense.accuracy) * 100).toFixed(1)} pt` : '-';
      const fewer = dense && r.bytesPerStepPerTab > 0 ? `${(dense.bytesPerStepPerTab / r.bytesPerStepPerTab).toFixed(1)}x` : '-';
      lines.push(
        `${pad(r.row, 24)}${lpad(r.accuracy === null ? '-' : (100 * r.accuracy).toFixed(1) + '%', 9)}${lpad(points, 10)}${lpad(Math.round(r.bytesPerStepPerTab).toLocaleString('en'), 16)}${lpad(fewer, 9)}${lpad(r.wallMsPerStep === null ? '-' : r.wallMsPerStep.toFixed(0), 9)}  ${r.error ? `FAILED: ${r.error}` : r.replicasAgree === null ? '-' : r.replicasAgree ? 'equal' : 'DIFFER'}${reformsOf(r) && `, ${reformsOf(r)}`}`,
      );
    }
  }
  if (results.some((r) => r.reforms > 0)) lines.push('', REFORM_NOTE);
  return lines.join('\n');
}

/**
 * The same results as one Markdown table (for the README): one line per strategy, its bytes once
 * (shaping changes timing, not what is sent), then accuracy, points against dense and ms per step for
 * each link condition side by side.
 */
export function formatMarkdown(results: RowResult[]): string {
  const links = [...new Set(results.map((r) => r.links))];
  const strategies = [...new Set(results.map((r) => r.row))];
  const dense = (l: string) => results.find((r) => r.links === l && r.row === 'dense ring');
  const header = ['strategy', 'bytes/step/tab', 'fewer', ...links.flatMap((l) => [`accuracy (${l})`, 'vs dense', 'ms/step'])];
  const lines = [`| ${header.join(' | ')} |`, `|${header.map(() => ' --- ').join('|')}|`];
  for (const name of strategies) {
    const measured = links.map((l) => results.find((r) => r.links === l && r.row === name));
    const withBytes = measured.find((r) => r && r.bytesPerStepPerTab > 0);
    const denseBytes = links.map(dense).find((d) => d && d.bytesPerStepPerTab > 0)?.bytesPerStepPerTab;
    const cells = [
      name,
      withBytes ? Math.round(withBytes.bytesPerStepPerTab).toLocaleString('en') : '-',
      withBytes && denseBytes ? `${(denseBytes / withBytes.bytesPerStepPerTab).toFixed(1)}x` : '-',
    ];
    links.forEach((l, i) => {
      const r = measured[i];
      const d = dense(l);
      if (!r || r.accuracy === null) {
        cells.push(r?.error ? 'failed' : 'not run', '-', '-');
        return;
      }
      cells.push(
        `${(100 * r.accuracy).toFixed(1)}%${reformsOf(r) && ` (${reformsOf(r)})`}`,
        d && d.accuracy !== null ? `${((r.accuracy - d.accuracy) * 100).toFixed(1)} pt` : '-',
        r.wallMsPerStep === null ? '-' : r.wallMsPerStep.toFixed(0),
      );
    });
    lines.push(`| ${cells.join(' | ')} |`);
  }
  if (results.some((r) => r.reforms > 0)) lines.push('', REFORM_NOTE);
  return lines.join('\n');
}

export interface GoalCheck {
  goal: string;
  links: string;
  met: boolean | null;
  detail: string;
}

/** The issue's goals: DiLoCo H=50 within 1 point of dense with >= 40x fewer bytes; PowerSGD r=2 within 1 point with >= 30x fewer. */
export function checkGoals(results: RowResult[]): GoalCheck[] {
  const goals = [
    { row: 'DiLoCo H=50', fewer: 40 },
    { row: 'PowerSGD r=2', fewer: 30 },
  ];
  const checks: GoalCheck[] = [];
  for (const links of [...new Set(results.map((r) => r.links))]) {
    const dense = results.find((r) => r.links === links && r.row === 'dense ring');
    for (const { row, fewer } of goals) {
      const r = results.find((x) => x.links === links && x.row === row);
      const goal = `${row}: within 1 point of dense with >= ${fewer}x fewer bytes`;
      if (!r || !dense || r.accuracy === null || dense.accuracy === null || r.bytesPerStepPerTab <= 0) {
        checks.push({ goal, links, met: null, detail: 'not measured in this run' });
        continue;
      }
      const points = (r.accuracy - dense.accuracy) * 100;
      const ratio = dense.bytesPerStepPerTab / r.bytesPerStepPerTab;
      checks.push({ goal, links, met: points >= -1 && ratio >= fewer, detail: `${points.toFixed(3)} points, ${ratio.toFixed(1)}x fewer bytes` });
    }
  }
  return checks;
}
