// The swarm's tensor-parallel figures (`npm run swarm -- --tabs 2 --model gpt --tensor 2`): from what
// every tab measured (window.lab.metrics().partition, src/lab/partitioned-run.ts TensorFigures), per
// tab: parameter and optimizer bytes (real allocations) beside (replicated + split / T) x 4 (x the
// optimizer's states per parameter), the bytes its tensor all-reduces sent in the last step beside a
// ring's 2(T-1)/T of the all-reduced activations (GPT: 2 of B·S·C per block per pass), and the
// data-parallel average's bytes beside 2(D-1)/D of the shard; whether each group's replicated tensors
// are bitwise equal; and, given one tab's parameters on the same global batch, the parity.
import type { TensorFigures } from '../src/lab/partitioned-run';
import { gptLayout } from '../src/model/gpt';
import type { ParamLayout } from '../src/model/layout';
import { mlpLayout } from '../src/model/mlp';
import { gptSplitPlan } from '../src/model/tensor-gpt';
import { mlpSplitPlan } from '../src/model/tensor-mlp';
import { gatherShards, type SplitPlan } from '../src/model/tensor-split';
import { alignColumns, offBy } from './text-table';

export interface TensorTab {
  figures: TensorFigures;
  /** The tab's shard of the parameters. */
  params: number[];
}

export interface TensorReport {
  model: 'mlp' | 'gpt';
  tensor: number;
  groups: number;
  micro: number;
  rows: TensorFigures[];
  /** Every group's replicated tensors bitwise equal across its tabs. */
  replicatedEqual: boolean;
  /** max |group 0 - one tab| / max |one tab| over the whole model, when a reference ran. */
  parity?: number;
}

function wholeOf(model: TensorFigures['model']): { layout: ParamLayout; plan: SplitPlan } {
  return model.kind === 'gpt' ? { layout: gptLayout(model.config), plan: gptSplitPlan(model.config) } : { layout: mlpLayout(model.config), plan: mlpSplitPlan(model.config) };
}

export function tensorReport(tabs: TensorTab[], reference?: number[]): TensorReport {
  if (tabs.length === 0) throw new Error('no tab reported tensor figures');
  const sorted = tabs.slice().sort((a, b) => a.figures.group - b.figures.group || a.figures.tensorRank - b.figures.tensorRank);
  const { tensor: T, groups: D, micro, model } = sorted[0].figures;
  if (sorted.length !== T * D) throw new Error(`${sorted.length} tabs reported tensor figures; the room has ${T} x ${D}`);
  const { layout, plan } = wholeOf(model);
  let replicatedEqual = true;
  let parity: number | undefined;
  for (let d = 0; d < D; d++) {
    const gathered = gatherShards(layout, plan, sorted.slice(d * T, (d + 1) * T).map((t) => Float32Array.from(t.params)));
    replicatedEqual &&= gathered.replicasEqual;
    if (d === 0 && reference) {
      let diff = 0;
      let scale = 0;
      for (let i = 0; i < reference.length; i++) {
        diff = Math.max(diff, Math.abs(gathered.values[i] - reference[i]));
        scale = Math.max(scale, Math.abs(reference[i]));
      }
      parity = scale > 0 ? diff / scale : diff;
    }
  }
  return { model: model.kind, tensor: T, groups: D, micro, rows: sorted.map((t) => t.figures), replicatedEqual, ...(parity !== undefined ? { parity } : {}) };
}

export function formatTensorReport(r: TensorReport): string {
  const header = `tensor parallel ${r.model.toUpperCase()}, T=${r.tensor} x ${r.groups} group(s), ${r.micro} micro-batch(es); last step's bytes, real allocations`;
  const table: string[][] = [['rank', 'shard', 'param bytes', 'formula', 'optim. bytes', 'formula', 'all-reduces f/b', 'sent bytes/step', 'formula', 'DP bytes/step', 'formula']];
  for (const f of r.rows) {
    table.push([
      String(f.group * f.tensor + f.tensorRank),
      `${f.tensorRank}/${f.tensor}`,
      String(f.paramBytes),
      `${f.paramFormulaBytes} (${offBy(f.paramBytes, f.paramFormulaBytes)})`,
      String(f.optimizerBytes),
      `${f.optimizerFormulaBytes} (${offBy(f.optimizerBytes, f.optimizerFormulaBytes)})`,
      `${f.collectivesPerStep.forward}/${f.collectivesPerStep.backward}`,
      String(f.wireBytesPerStep),
      String(f.wireFormulaBytesPerStep),
      String(f.dataParallelBytesPerStep),
      String(f.dataParallelFormulaBytesPerStep),
    ]);
  }
  const lines = alignColumns(table);
  const footer = [
    `replicated tensors (embeddings, norms, biases after a row split, head) bitwise equal across each group: ${r.replicatedEqual ? 'yes' : 'NO'}`,
    ...(r.parity !== undefined ? [`parity vs one tab on the same global batch: max |difference| / max |parameter| = ${r.parity.toExponential(2)}`] : []),
  ];
  return [header, ...lines, ...footer].join('\n');
}
