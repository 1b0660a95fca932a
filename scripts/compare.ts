// `npm run compare -- --tabs 4 --dataset mnist`: the communication-efficient strategies side by side in
// real tabs (one headless Chromium, one room per row, scripts/swarm-run.ts): held-out accuracy, model
// bytes each tab sent per step and wall clock per step, for every row of compare-table.ts, on plain
// links and on links the lab shapes (latency=, bandwidth=; src/peer/link-shaper.ts), every row at the
// same samples (same global batch and steps). Prints each row as it finishes, then the table, the
// same as Markdown, the issue's goals checked against the dense row of the same links, and one line
// of JSON. A row whose run fails is reported as failed and the table goes on.
//
//   npm run compare -- --tabs 4 --dataset mnist [--steps 300] [--links plain,shaped] [--latency 20]
//                      [--bandwidth 5] [--only "dense ring,DiLoCo H=50"] [--timeout 1800] [--backend cpu]
//   npm run compare -- --quick      (fewer rows, 60 steps, plain links: a few minutes)
//
// --steps defaults to 300 (60 with --quick). Other lab URL settings pass through (--model, --hidden,
// --batch, --seed). The tabs train on the CPU backend (WebAssembly, `backend=cpu`) unless --backend
// says otherwise: the table is about communication, and on a machine whose WebGPU is SwiftShader the
// WASM kernels compute a step tens of times faster, while accuracy and bytes do not depend on it (the
// header names the backend the tabs reported). Rows run one after the other, each row's link
// conditions back to back, in one browser.
import { parseArgs } from 'node:util';
import { parseConfig } from '../src/lab/config';
import { launchChromium, runHeadlessJob } from './lab-browser';
import { checkGoals, compareRows, failedRow, formatMarkdown, formatTable, linkConditions, parseOnly, rowResult, type RowResult } from './compare-table';
import { runSwarm } from './swarm-run';

const PASS_THROUGH = ['model', 'dataset', 'hidden', 'batch', 'seed', 'backend'] as const;

function parseCli(argv: string[]) {
  const options = {
    tabs: { type: 'string' },
    steps: { type: 'string' },
    links: { type: 'string' },
    latency: { type: 'string' },
    bandwidth: { type: 'string' },
    only: { type: 'string' },
    timeout: { type: 'string' },
    quick: { type: 'boolean' },
    ...Object.fromEntries(PASS_THROUGH.map((k) => [k, { type: 'string' }])),
  } as const;
  const { values } = parseArgs({ args: argv, options, strict: true, allowPositionals: false }) as { values: Record<string, string | boolean | undefined> };
  const quick = values.quick === true;
  const tabs = Number(values.tabs ?? '4');
  if (!Number.isInteger(tabs) || tabs < 2 || tabs > 16) throw new RangeError('--tabs must be an integer from 2 to 16');
  const steps = Number(values.steps ?? (quick ? '60' : '300'));
  // DiLoCo ends every run with an outer step (diloco.ts totalSteps), whatever H: any step count compares.
  if (!Number.isInteger(steps) || steps < 10) throw new RangeError(`--steps must be an integer >= 10, got ${values.steps}`);
  const latency = Number(values.latency ?? '20');
  const bandwidth = Number(values.bandwidth ?? '5');
  const links = linkConditions(String(values.links ?? (quick ? 'plain' : 'plain,shaped')), latency, bandwidth);
  let rows = compareRows(tabs, quick);
  if (values.only !== undefined) {
    const only = parseOnly(String(values.only));
    const unknown = only.filter((name) => !compareRows(tabs, false).some((r) => r.name === name));
    if (unknown.length > 0) throw new RangeError(`--only: no row ${unknown.map((u) => `"${u}"`).join(', ')} (rows: ${compareRows(tabs, false).map((r) => r.name).join(', ')})`);
    rows = compareRows(tabs, false).filter((r) => only.includes(r.name));
    if (!rows.some((r) => r.name === 'dense ring')) rows.unshift(compareRows(tabs, false)[0]);
  }
  const base: [string, string][] = [['dashboard', '0'], ['dataset', 'mnist'], ['steps', String(steps)], ['world', String(tabs)], ['autostart', '1'], ['backend', 'cpu']];
  // A flag replaces the default of the same key (the URL contract takes the last value, so filter first).
  for (const key of PASS_THROUGH) if (values[key] !== undefined) base.splice(0, base.length, ...base.filter(([k]) => k !== key), [key, String(values[key])]);
  return { tabs, rows, links, base, timeoutSec: Number(values.timeout ?? '1800') };
}

async function main(): Promise<void> {
  const { tabs, rows, links, base, timeoutSec } = parseCli(process.argv.slice(2));
  // Every row's config is checked before the first tab opens: a bad flag fails at once. Row-major: a
  // row's plain and shaped runs are back to back, so a table cut short has whole rows.
  const plan = rows.flatMap((row) => links.map((link) => ({ row, link, config: parseConfig([...base, ...Object.entries({ ...row.settings, ...link.settings }).map(([k, v]) => [k, String(v)] as [string, string])]) })));
  await runHeadlessJob('compare', async (serverUrl) => {
    const results: RowResult[] = [];
    const browser = await launchChromium();
    const started = performance.now();
    try {
      for (const [i, { row, link, config }] of plan.entries()) {
        console.log(`\n[${i + 1}/${plan.length}] ${row.name}, ${link.name} (${((performance.now() - started) / 60_000).toFixed(1)} min so far)`);
        try {
          results.push(rowResult(row, link, await runSwarm(serverUrl, tabs, config, timeoutSec, { browser })));
        } catch (error) {
          results.push(failedRow(row, link, (error as Error).message));
        }
        console.log(`row ${JSON.stringify(results[results.length - 1])}`);
      }
    } finally {
      await browser.close();
    }
    const backends = [...new Set(results.flatMap((r) => r.backends))].join('; ');
    console.log(`\n${tabs} tabs, ${base.find(([k]) => k === 'dataset')?.[1]}, ${plan[0].config.steps} steps of the same global batch per row, backend: ${backends}, ${((performance.now() - started) / 60_000).toFixed(1)} min${formatTable(results)}`);
    console.log(`\n${formatMarkdown(results)}`);
    const goals = checkGoals(results);
    console.log('\ngoals');
    for (const g of goals) console.log(`  ${g.met === null ? 'n/a ' : g.met ? 'MET ' : 'MISS'} ${g.goal} (${g.links}): ${g.detail}`);
    return { ok: results.every((r) => r.replicasAgree !== false && !r.error), json: { tabs, results, goals } };
  });
}

void main();
