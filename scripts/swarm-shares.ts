// The figure of a room of unequal tabs (`npm run swarm -- --tabs 3 --backends webgpu,webgpu,cpu
// --compare shares`): the room's time per step with shares by speed (shares=auto) and with even shares
// (shares=equal), against two ideals, each saying what it assumes:
// - solo: every tab works all the time at its solo speed, the global batch over the sum of the tabs'
//   solo throughputs, i.e. 1 / sum(1 / solo ms per step). Solo runs train the same global batch alone on
//   each backend, in the same swarm run. It assumes the tabs' throughputs add up, which holds when each
//   tab has a machine of its own, not when all share one machine's cores.
// - concurrent: the global batch over the sum of the speeds the tabs measured while all of them ran in
//   the shares=auto room (its last agreed speeds: samples over forward and backward time, the update and
//   the ring left out). It assumes communication and per-step fixed work are free.
// - host bound: the fastest tab's solo ms per step. When every tab runs on the same machine's cores (a
//   swarm run), a sample given to a slower tab costs those shared cores more time than on the fastest
//   one, so no split beats the fastest tab alone with no overhead; the solo ideal assumes a machine per tab.
// Room times are the slowest tab's wall clock per step (swarm-summary.ts wallMsPerStep), end to end.
// shares=auto's steady pace is also printed: the same window without each tab's newest step, whose end
// on a parked tab waits for the end-of-run hand-over of the state (once a run, not a cost per step).
import type { RunSummary } from './swarm-summary';

export interface SharesFigure {
  /** Each tab's backend choice, in the order the tabs were opened. */
  backends: string[];
  /** Solo wall ms per step by backend choice. */
  soloMs: Record<string, number>;
  idealMs: number;
  /** The global batch over the tabs' summed speeds measured together (null without an agreed split). */
  concurrentIdealMs: number | null;
  /** The fastest tab's solo ms per step: the bound on one shared machine (see the header). */
  hostBoundMs: number;
  equalMs: number;
  autoMs: number;
  /** shares=auto without each tab's newest step (no end-of-run hand-over); null when not measured. */
  autoSteadyMs: number | null;
  autoSteadyVsIdeal: number | null;
  autoSteadyVsHostBound: number | null;
  /** shares=auto's communication per step: the ring's all-reduce time, which no split of the batch removes. */
  autoCommMs: number;
  /** shares=auto's last agreed split, samples per rank, and the speeds it came from. */
  autoShares: RunSummary['shares'];
  equalVsIdeal: number;
  autoVsIdeal: number;
  autoVsEqual: number;
  autoVsConcurrentIdeal: number | null;
  autoVsHostBound: number;
  replicasAgree: boolean;
  accuracy: { solo: Record<string, number | null>; equal: number | null; auto: number | null };
}

const wallOf = (run: RunSummary): number => run.wallMsPerStep ?? run.stepMsPerStep;

export function sharesFigure(backends: string[], solo: Record<string, RunSummary>, equal: RunSummary, auto: RunSummary): SharesFigure {
  const soloMs = Object.fromEntries(Object.entries(solo).map(([backend, run]) => [backend, wallOf(run)]));
  const missing = backends.find((b) => !(soloMs[b] > 0));
  if (missing !== undefined) throw new Error(`no solo time for backend ${missing}`);
  const idealMs = 1 / backends.reduce((sum, b) => sum + 1 / soloMs[b], 0);
  const hostBoundMs = Math.min(...backends.map((b) => soloMs[b]));
  const [equalMs, autoMs] = [wallOf(equal), wallOf(auto)];
  const agreed = auto.shares;
  const concurrentIdealMs = agreed ? (1000 * agreed.counts.reduce((a, b) => a + b, 0)) / agreed.samplesPerSec.reduce((a, b) => a + b, 0) : null;
  return {
    backends,
    soloMs,
    idealMs,
    concurrentIdealMs,
    hostBoundMs,
    equalMs,
    autoMs,
    autoSteadyMs: auto.steadyWallMsPerStep ?? null,
    autoSteadyVsIdeal: auto.steadyWallMsPerStep ? auto.steadyWallMsPerStep / idealMs : null,
    autoSteadyVsHostBound: auto.steadyWallMsPerStep ? auto.steadyWallMsPerStep / hostBoundMs : null,
    autoCommMs: auto.commMsPerStep,
    autoShares: auto.shares,
    equalVsIdeal: equalMs / idealMs,
    autoVsIdeal: autoMs / idealMs,
    autoVsEqual: autoMs / equalMs,
    autoVsConcurrentIdeal: concurrentIdealMs === null ? null : autoMs / concurrentIdealMs,
    autoVsHostBound: autoMs / hostBoundMs,
    replicasAgree: equal.replicasAgree !== false && auto.replicasAgree !== false,
    accuracy: {
      solo: Object.fromEntries(Object.entries(solo).map(([backend, run]) => [backend, run.accuracy])),
      equal: equal.accuracy,
      auto: auto.accuracy,
    },
  };
}

const pct = (x: number | null): string => (x === null ? '-' : `${(100 * x).toFixed(2)}%`);

export function formatSharesFigure(f: SharesFigure): string {
  const lines = [`room of unequal tabs: ${f.backends.join(' + ')}`];
  for (const [backend, ms] of Object.entries(f.soloMs)) lines.push(`  solo ${backend.padEnd(8)} ${ms.toFixed(1)} ms/step, accuracy ${pct(f.accuracy.solo[backend])}`);
  lines.push(`  ideal                ${f.idealMs.toFixed(1)} ms/step (solo: 1 / sum of 1 / solo ms per step; assumes the tabs' speeds add up, i.e. a machine per tab)`);
  if (f.concurrentIdealMs !== null) {
    lines.push(`  concurrent ideal     ${f.concurrentIdealMs.toFixed(1)} ms/step (global batch / sum of the speeds measured with all tabs running; forward and backward only, no update, no communication)`);
  }
  lines.push(`  host bound           ${f.hostBoundMs.toFixed(1)} ms/step (the fastest tab alone: when every tab computes on this machine's cores, as SwiftShader and the CPU backend do, no split does better)`);
  lines.push(`  shares=equal         ${f.equalMs.toFixed(1)} ms/step, ${f.equalVsIdeal.toFixed(2)}x the ideal, accuracy ${pct(f.accuracy.equal)}`);
  const vsConcurrent = f.autoVsConcurrentIdeal === null ? '' : `, ${f.autoVsConcurrentIdeal.toFixed(2)}x the concurrent ideal`;
  lines.push(`  shares=auto          ${f.autoMs.toFixed(1)} ms/step, ${f.autoVsIdeal.toFixed(2)}x the ideal${vsConcurrent}, ${f.autoVsEqual.toFixed(2)}x equal's time, ${f.autoVsHostBound.toFixed(2)}x the host bound, accuracy ${pct(f.accuracy.auto)}`);
  if (f.autoSteadyMs !== null && f.autoSteadyVsIdeal !== null && f.autoSteadyVsHostBound !== null) {
    lines.push(`  shares=auto steady   ${f.autoSteadyMs.toFixed(1)} ms/step, ${f.autoSteadyVsIdeal.toFixed(2)}x the ideal, ${f.autoSteadyVsHostBound.toFixed(2)}x the host bound (the same steps without the last, whose end on a parked tab waits for the end-of-run hand-over of the state)`);
  }
  lines.push(`  communication        ${f.autoCommMs.toFixed(1)} ms/step in the shares=auto room (the ideal leaves it out)`);
  if (f.autoShares) {
    const speeds = f.autoShares.samplesPerSec.map((s) => s.toFixed(0)).join(', ');
    lines.push(`  last agreed shares   [${f.autoShares.counts.join(', ')}] samples from step ${f.autoShares.fromStep}, from speeds [${speeds}] samples/s`);
  }
  lines.push(`  replicas             ${f.replicasAgree ? 'bitwise equal every step in both rooms' : 'DISAGREE'}`);
  return lines.join('\n');
}
