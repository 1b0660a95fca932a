// The swarm's expert-parallel figures (`npm run swarm -- --tabs 2 --model gpt --experts 4`): from what
// every tab measured (window.lab.metrics().partition, src/lab/partitioned-run.ts ExpertFigures), per
// tab: parameter and optimizer bytes (real allocations) beside (replicated + experts / ep) x 4 (x the
// optimizer's states per parameter), the bytes its all-to-alls sent in the last step beside the volume
// the router's real assignment makes ((token rows to other tabs, both ways, forward and backward) x C
// + the count headers, x 4), the gradient averages' bytes beside the rings' formula, and the last
// step's routing (tokens per expert from each tab, dropped assignments); whether every tab's replicated
// tensors are bitwise equal; and, given one tab holding every expert on the same global batch and
// routing it as one capacity group per tab (routegroups), the parity.
import type { ExpertFigures } from '../src/lab/partitioned-run';
import { gptLayout } from '../src/model/gpt';
import type { ParamLayout } from '../src/model/layout';
import { isExpertTensor } from '../src/model/moe-mlp';
import { alignColumns, offBy } from './text-table';

export interface ExpertTab {
  figures: ExpertFigures;
  /** The tab's part of the parameters: the replicated tensors and its experts. */
  params: number[];
}

export interface ExpertReport {
  experts: number;
  topk: number;
  ep: number;
  groups: number;
  rows: ExpertFigures[];
  /** Every tab's replicated tensors bitwise equal. */
  replicatedEqual: boolean;
  /** max |room - one tab| / max |one tab| over the whole model, when a reference ran. */
  parity?: number;
}

/** The layout of expert rank k's part. */
function partLayout(f: ExpertFigures): ParamLayout {
  const moe = f.model.moe!;
  const count = moe.experts / f.ep;
  return gptLayout({ ...f.model, moe: { ...moe, ...(f.ep > 1 ? { held: { first: f.expertRank * count, count } } : {}) } });
}

export function expertReport(tabs: ExpertTab[], reference?: number[]): ExpertReport {
  if (tabs.length === 0) throw new Error('no tab reported expert figures');
  const sorted = tabs.slice().sort((a, b) => a.figures.group - b.figures.group || a.figures.expertRank - b.figures.expertRank);
  const { ep: N, groups: D, experts, topk, model } = sorted[0].figures;
  if (sorted.length !== N * D) throw new Error(`${sorted.length} tabs reported expert figures; the room has ${N} x ${D}`);
  const layouts = sorted.map((t) => partLayout(t.figures));
  const replicatedOf = (i: number) => {
    const part = sorted[i].params;
    return layouts[i].entries.filter((e) => !isExpertTensor(e.name)).flatMap((e) => part.slice(e.offset, e.offset + e.length)).join(',');
  };
  const first = replicatedOf(0);
  const replicatedEqual = sorted.every((_, i) => replicatedOf(i) === first);
  let parity: number | undefined;
  if (reference) {
    const whole = gptLayout(model);
    let diff = 0;
    let scale = 0;
    for (const e of whole.entries) {
      const holder = layouts.slice(0, N).findIndex((l) => l.entries.some((x) => x.name === e.name));
      const from = layouts[holder].entries.find((x) => x.name === e.name)!;
      for (let i = 0; i < e.length; i++) {
        diff = Math.max(diff, Math.abs(sorted[holder].params[from.offset + i] - reference[e.offset + i]));
        scale = Math.max(scale, Math.abs(reference[e.offset + i]));
      }
    }
    parity = scale > 0 ? diff / scale : diff;
  }
  return { experts, topk, ep: N, groups: D, rows: sorted.map((t) => t.figures), replicatedEqual, ...(parity !== undefined ? { parity } : {}) };
}

export function formatExpertReport(r: ExpertReport): string {
  const header = `expert parallel GPT, E=${r.experts} top-${r.topk} over ep=${r.ep} tab(s) x ${r.groups} group(s); last step's bytes, real allocations`;
  const table: string[][] = [['rank', 'experts', 'param bytes', 'formula', 'optim. bytes', 'formula', 'all-to-alls', 'sent bytes/step', 'router formula', 'DP bytes/step', 'formula']];
  for (const f of r.rows) {
    const El = f.experts / f.ep;
    table.push([
      String(f.group * f.ep + f.expertRank),
      `${f.expertRank * El}..${(f.expertRank + 1) * El - 1}`,
      String(f.paramBytes),
      `${f.paramFormulaBytes} (${offBy(f.paramBytes, f.paramFormulaBytes)})`,
      String(f.optimizerBytes),
      `${f.optimizerFormulaBytes} (${offBy(f.optimizerBytes, f.optimizerFormulaBytes)})`,
      String(f.exchangesPerStep),
      String(f.wireBytesPerStep),
      String(f.wireFormulaBytesPerStep),
      String(f.dataParallelBytesPerStep),
      String(f.dataParallelFormulaBytesPerStep),
    ]);
  }
  const lines = alignColumns(table);
  const routing = r.rows[0];
  const footer = [
    `last step's routing (kept assignments, tab x expert): ${routing.routed.map((row, tab) => `tab ${tab}: [${row.join(' ')}] dropped ${routing.dropped[tab]} of ${routing.assignments[tab]}`).join('; ')}`,
    `load-balancing loss per block (rank 0): ${routing.auxLoss.map((a) => a.toFixed(5)).join(' ')}`,
    `replicated tensors (embeddings, attention, norms, routers) bitwise equal on every tab: ${r.replicatedEqual ? 'yes' : 'NO'}`,
    ...(r.parity !== undefined ? [`parity vs one tab holding every expert, routing as the tabs do: max |difference| / max |parameter| = ${r.parity.toExponential(2)}`] : []),
  ];
  return [header, ...lines, ...footer].join('\n');
}
