// Where a room's step goes, per tab, from the tabs' own timelines (src/shared/step-trace.ts marks):
// `npx tsx scripts/swarm-shares-timeline.ts --backends webgpu,webgpu,cpu --model mlp --dataset mnist
// --steps 60 --rebalance 10 [--batch 4096] [--shares auto]`. It runs the one room (no solo runs), reads
// every tab's marks before the browser closes, and prints each tab's mean milliseconds per step in each
// part of its loop, over the steps from --from (default: the step from which the second agreed split is
// in force, so the split agreed from measured speeds holds: share-balancer.ts), then the JSON.
//
// The parts, in the order a step runs them (session.ts trainOneStep, train/trainer.ts runStep,
// parallel/data-parallel.ts, lab/replica-check.ts):
//   passes      step start -> gradient sync called: forward and backward until the device finished
//               them (an idle tab: zeroing its gradient)
//   sync        gradient sync called -> every bucket averaged and written back (waiting on the
//               network and on the tabs that send this one its average)
//   shares      the share balancer's all-gather of speeds (every K-th step; it waits on every tab)
//   update      after the sync until the trainer returns (what is left of the optimizer update)
//   settle      waiting for the previous step's hash exchange (every tab's hash of that step)
//   loss        reading the step's loss (logged steps)
//   hash        reading the parameters back and hashing them
//   rest        backups, checkpoints, evaluation, until the next step starts
// and per bucket: read (from the device to the host) and network (on the host until averaged).
import { parseArgs } from 'node:util';
import type { Page } from '@playwright/test';
import { DEFAULT_CONFIG, parseConfig } from '../src/lab/config';
import { SPEEDS_LAG } from '../src/parallel/share-balancer';
import { TRACE_PREFIX } from '../src/shared/step-trace';
import { runHeadlessJob } from './lab-browser';
import { runSwarm } from './swarm-run';

/** One mark on the shared clock: milliseconds since the Unix epoch (timeOrigin + startTime). */
export interface TimelineMark {
  name: string;
  at: number;
}

export const STEP_PARTS = ['passes', 'sync', 'shares', 'update', 'settle', 'loss', 'hash', 'rest'] as const;
export type StepPart = (typeof STEP_PARTS)[number];

/** The mark that starts each part; a part ends where the next one present in the step starts. */
const PART_STARTS: Record<StepPart, string> = {
  passes: 'step-start',
  sync: 'sync-start',
  shares: 'sync-buckets-done',
  update: 'sync-end',
  settle: 'settle-start',
  loss: 'settle-end',
  hash: 'hash-start',
  rest: 'hash-end',
};

export interface TabTimeline {
  /** Steps averaged over. */
  steps: number;
  /** Mean wall milliseconds from one step's start to the next's. */
  stepMs: number;
  parts: Record<StepPart, number>;
  /** Mean per bucket: device to host, and on the host until averaged. */
  bucketReadMs: number;
  bucketNetworkMs: number;
  /** From the step's first bucket on the host: its first piece averaged, its last, the last applied. */
  firstPieceMs: number;
  lastPieceMs: number;
  lastAppliedMs: number;
}

const mean = (xs: number[]): number => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0);

/**
 * One tab's parts per step from its marks (in time order, names without the prefix), over the steps
 * whose start is the `from`-th step start or later and that have a next step start. Each part runs
 * from its starting mark (the first in the step after the previous part's) to the next part's.
 */
export function tabTimeline(marks: readonly TimelineMark[], from: number): TabTimeline {
  const sorted = [...marks].sort((a, b) => a.at - b.at);
  const starts = sorted.flatMap((m, i) => (m.name === 'step-start' ? [i] : []));
  const parts = Object.fromEntries(STEP_PARTS.map((p) => [p, [] as number[]])) as Record<StepPart, number[]>;
  const stepMs: number[] = [];
  const reads: number[] = [];
  const network: number[] = [];
  const firstReduced: number[] = [];
  const lastReduced: number[] = [];
  const lastApplied: number[] = [];
  for (let k = from; k + 1 < starts.length; k++) {
    const inStep = sorted.slice(starts[k], starts[k + 1]);
    const end = sorted[starts[k + 1]].at;
    stepMs.push(end - sorted[starts[k]].at);
    // Each part's start: the first of its marks after the previous part's start.
    const at: (number | undefined)[] = [];
    let cursor = 0;
    for (const part of STEP_PARTS) {
      const i = inStep.findIndex((m, j) => j >= cursor && m.name === PART_STARTS[part]);
      at.push(i >= 0 ? inStep[i].at : undefined);
      if (i >= 0) cursor = i;
    }
    STEP_PARTS.forEach((part, p) => {
      const start = at[p];
      if (start === undefined) return parts[part].push(0);
      const next = at.slice(p + 1).find((t) => t !== undefined) ?? end;
      parts[part].push(next - start);
    });
    const launches = inStep.filter((m) => m.name === 'bucket-launch');
    const onHost = inStep.filter((m) => m.name === 'bucket-on-host');
    const done = inStep.filter((m) => m.name === 'bucket-done');
    const reduced = inStep.filter((m) => m.name === 'piece-reduced');
    const applied = inStep.filter((m) => m.name === 'piece-applied');
    if (reduced.length && onHost.length) firstReduced.push(reduced[0].at - onHost[0].at);
    if (reduced.length && onHost.length) lastReduced.push(reduced[reduced.length - 1].at - onHost[0].at);
    if (applied.length && onHost.length) lastApplied.push(applied[applied.length - 1].at - onHost[0].at);
    launches.forEach((l, i) => {
      if (onHost[i]) reads.push(onHost[i].at - l.at);
      if (onHost[i] && done[i]) network.push(done[i].at - onHost[i].at);
    });
  }
  return {
    steps: stepMs.length,
    stepMs: mean(stepMs),
    parts: Object.fromEntries(STEP_PARTS.map((p) => [p, mean(parts[p])])) as Record<StepPart, number>,
    bucketReadMs: mean(reads),
    bucketNetworkMs: mean(network),
    firstPieceMs: mean(firstReduced),
    lastPieceMs: mean(lastReduced),
    lastAppliedMs: mean(lastApplied),
  };
}

export function formatTimelines(backends: readonly string[], timelines: readonly TabTimeline[]): string {
  const head = ['tab', 'backend', 'steps', 'step', ...STEP_PARTS, 'bucket read', 'bucket net', '1st piece', 'last piece', 'applied'];
  const rows = timelines.map((t, rank) => [String(rank), backends[rank] ?? '?', String(t.steps), t.stepMs.toFixed(1), ...STEP_PARTS.map((p) => t.parts[p].toFixed(1)), t.bucketReadMs.toFixed(1), t.bucketNetworkMs.toFixed(1), t.firstPieceMs.toFixed(1), t.lastPieceMs.toFixed(1), t.lastAppliedMs.toFixed(1)]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  return [head, ...rows].map((r) => r.map((c, i) => c.padStart(widths[i])).join('  ')).join('\n');
}

async function readMarks(page: Page): Promise<TimelineMark[]> {
  return page.evaluate((prefix) => {
    const origin = performance.timeOrigin;
    return performance
      .getEntriesByType('mark')
      .filter((m) => m.name.startsWith(prefix))
      .map((m) => ({ name: m.name.slice(prefix.length), at: origin + m.startTime }));
  }, TRACE_PREFIX);
}

async function main(): Promise<void> {
  const keys = Object.keys(DEFAULT_CONFIG).filter((key) => !['room', 'world', 'autostart'].includes(key));
  const options: Record<string, { type: 'string' }> = { backends: { type: 'string' }, from: { type: 'string' }, timeout: { type: 'string' } };
  for (const key of keys) options[key] = { type: 'string' };
  const { values } = parseArgs({ args: process.argv.slice(2), options, strict: true });
  const backends = String(values.backends ?? 'webgpu,webgpu,cpu').split(',');
  const entries = keys.filter((key) => values[key] !== undefined).map((key): [string, string] => [key, String(values[key])]);
  const config = parseConfig([['dashboard', '0'], ['shares', 'auto'], ...entries, ['world', String(backends.length)], ['autostart', '1']]);
  const lag = config.rebalance > SPEEDS_LAG ? SPEEDS_LAG : 0;
  const from = values.from !== undefined ? Number(values.from) : 2 * config.rebalance - 1 + lag + 2;
  await runHeadlessJob('swarm-shares-timeline', async (url) => {
    let marks: TimelineMark[][] = [];
    const summary = await runSwarm(url, backends.length, config, Number(values.timeout ?? '1800'), {
      backends,
      collect: async (pages) => {
        marks = await Promise.all(pages.map(readMarks));
      },
    });
    const timelines = marks.map((m) => tabTimeline(m, from));
    console.log(`\nper tab, mean ms per step from step ${from} (shares=${config.shares}, global batch ${config.batch}):`);
    console.log(formatTimelines(backends, timelines));
    console.log(`room wall ${summary.wallMsPerStep?.toFixed(1)} ms/step; last agreed split ${JSON.stringify(summary.shares)}`);
    return { ok: summary.replicasAgree !== false, json: { timelines, shares: summary.shares, wallMsPerStep: summary.wallMsPerStep } };
  });
}

if (process.argv[1]?.endsWith('swarm-shares-timeline.ts')) void main();
