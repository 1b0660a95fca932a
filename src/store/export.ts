// Metrics export (the dashboard's CSV and JSON buttons): plain functions of the store's state, so that
// what is downloaded is exactly what is drawn.
import type { EvalMetrics, StepMetrics } from '../shared/events';
import type { LabData } from './lab-state';

const CSV_COLUMNS = [
  'kind',
  'rank',
  'step',
  'loss',
  'valLoss',
  'accuracy',
  'samplesPerSec',
  'computeMs',
  'commMs',
  'overlapMs',
  'waitMs',
  'stepMs',
  'bytesSent',
  'bytesReceived',
  't',
] as const;

type CsvRow = Partial<Record<(typeof CSV_COLUMNS)[number], string | number | undefined>>;

function csvLine(row: CsvRow): string {
  return CSV_COLUMNS.map((column) => {
    const value = row[column];
    return value === undefined ? '' : String(value);
  }).join(',');
}

/** One row per training step and per evaluation, in the order they happened. */
export function metricsToCsv(steps: readonly StepMetrics[], evals: readonly EvalMetrics[]): string {
  const rows: { t: number; line: string }[] = [];
  for (const s of steps) {
    const { type: _type, ...fields } = s;
    rows.push({ t: s.t, line: csvLine({ kind: 'step', ...fields }) });
  }
  for (const e of evals) {
    rows.push({
      t: e.t,
      line: csvLine({ kind: 'eval', rank: e.rank, step: e.step, valLoss: e.valLoss, accuracy: e.accuracy, t: e.t }),
    });
  }
  rows.sort((a, b) => a.t - b.t);
  return [CSV_COLUMNS.join(','), ...rows.map((r) => r.line)].join('\n') + '\n';
}

/** Everything a run's report needs, as JSON-serialisable data. */
export function metricsToJson(state: LabData): string {
  return JSON.stringify(
    {
      config: state.config,
      self: state.self,
      run: state.run,
      steps: state.steps.toArray(),
      evals: state.evals.toArray(),
      hashes: state.hashes,
      hashMismatches: state.hashMismatches,
      memory: state.memory,
      refused: { total: state.refused.total, byReason: state.refused.byReason },
      samples: state.samples,
    },
    null,
    2,
  );
}
