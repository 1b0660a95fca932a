// Turns what a soak run saw (its events, the tabs' last reports, the witness's measurements) into one
// verdict with the reasons behind it (pure: unit-tested). The bounds are stated here and printed with
// the figures, so a reader sees what "no growth" meant.
import type { LabMetrics, LabStatus } from '../src/lab/api';
import type { SoakEventKind } from './soak-plan';
import { SOCKET_CLOSED_REASON, TAB_GONE_REASON } from '../src/peer/signalling';

const MiB = 1 << 20;

/** The witness's live GPU buffers may not grow at all between the two measurements. */
export const BUFFER_GROWTH_BOUND = 0;

/** JS heap growth allowed between the two measurements: 8 MiB, or 25% of the first, whichever is more. */
export function heapGrowthBound(startBytes: number): number {
  return Math.max(8 * MiB, 0.25 * startBytes);
}

export interface WitnessMeasurement {
  step: number;
  /** window.lab.metrics().gpuBuffers */
  gpuBuffers: number;
  /** CDP Runtime.getHeapUsage usedSize after HeapProfiler.collectGarbage. */
  heapBytes: number;
}

export interface SoakEventRecord {
  kind: SoakEventKind;
  /** The witness's step when the event was carried out. */
  step: number;
  /** Which tab: its number in opening order (0 is the witness). */
  tab: number;
  tabsAfter: number;
  /** From the event to the room training again at its new size; null when it never got there. */
  recoveredMs: number | null;
  /** The witness's live GPU buffers once the room had recovered: a leak per re-form shows as a staircase. */
  witnessBuffers: number | null;
  /**
   * From the event to the last tab starting the new ring, by the tabs' own logs (absent: not read).
   * recoveredMs also counts how fast this script polls every tab, which on a loaded machine is seconds.
   */
  ringMs?: number | null;
  /** Kills: from the event to the witness dropping the tab, by its own log, and what told it (absent: not read). */
  detected?: { ms: number; by: DepartureSignal } | null;
}

/**
 * What told a tab that a member was gone (src/peer/mesh.ts logs "peer <id>: <reason>"): its goodbye, the
 * browser freeing its lock, the server seeing its socket close, or heartbeat silence past peertimeout.
 */
export type DepartureSignal = 'goodbye' | 'its lock' | 'its socket' | 'heartbeat' | 'other';

export function departureSignal(reason: string): DepartureSignal {
  if (reason.endsWith(TAB_GONE_REASON)) return 'its lock';
  if (reason.endsWith(SOCKET_CLOSED_REASON)) return 'its socket';
  if (/silent for \d+ ms$/.test(reason)) return 'heartbeat';
  if (reason.endsWith('left the room')) return 'goodbye';
  return 'other';
}

export interface SoakSettings {
  tabs: number;
  minTabs: number;
  maxTabs: number;
  steps: number;
  model: string;
  dataset: string;
  seed: number;
  killEvery: number;
  peertimeout: number;
  /** ZeRO stage (0: none) and mode (ring or ps); absent in older summaries. */
  zero?: number;
  mode?: string;
  /** How the tabs found each other: 'broadcast' (one BroadcastChannel) or 'server' (WebSocket); absent in older summaries. */
  signalling?: string;
}

export interface TabFailure {
  tab: number;
  error: string;
  log: string[];
}

/** Where the witness stood when a run stopped with no tab in 'error' (a hang): context, not a verdict. */
export interface WitnessContext {
  state: string;
  log: string[];
}

export interface SoakInput {
  settings: SoakSettings;
  plannedEvents: number;
  events: SoakEventRecord[];
  /** Every live tab's last report, at the end (or when the run stopped). */
  finalTabs: { tab: number; status: LabStatus; metrics: LabMetrics }[];
  /** Sum over every tab ever opened of its refused().count, the dead ones as last read. */
  refused: { count: number; reasons: Record<string, number> };
  /** Some poll saw a tab whose hashesAgree was false. */
  disagreementSeen: string | null;
  tabFailures: TabFailure[];
  start: WitnessMeasurement | null;
  end: WitnessMeasurement | null;
  /** Why the run stopped early (timeout, a room that did not recover), or null. */
  stopped: string | null;
  witnessContext?: WitnessContext | null;
  wallSec: number;
}

export interface SoakSummary {
  ok: boolean;
  /** Every reason the soak failed, one line each. */
  failures: string[];
  settings: SoakSettings;
  backend: string;
  /** The smallest step over the tabs alive at the end. */
  stepsCompleted: number;
  wallSec: number;
  events: SoakEventRecord[];
  plannedEvents: number;
  joinsSurvived: number;
  joins: number;
  failuresSurvived: number;
  kills: number;
  closes: number;
  crashes: number;
  recoveryMeanSec: number | null;
  recoveryMaxSec: number | null;
  /** What the witness itself counted (metrics().elastic): a cross-check of the soak's own counts. */
  witnessElastic: { reforms: number; joins: number; departures: number } | null;
  framesRefused: number;
  refusedReasons: Record<string, number>;
  /** null: the run stopped before the final check and no poll had seen a disagreement. */
  replicasAgreed: boolean | null;
  finalHashes: number;
  finalLoss: number | null;
  accuracy: number | null;
  buffers: { start: number; end: number; bound: number; ok: boolean } | null;
  heap: { start: number; end: number; bound: number; ok: boolean } | null;
  startStep: number | null;
  endStep: number | null;
  tabFailures: TabFailure[];
  witnessContext: WitnessContext | null;
}

export function summariseSoak(input: SoakInput): SoakSummary {
  const { settings, events } = input;
  const failures: string[] = [];
  if (input.stopped) failures.push(input.stopped);
  for (const f of input.tabFailures) failures.push(`tab ${f.tab} failed: ${f.error}`);

  const byTab = [...input.finalTabs].sort((a, b) => a.status.rank - b.status.rank);
  const stepsCompleted = byTab.length ? Math.min(...byTab.map((t) => t.status.step)) : 0;
  if (!input.stopped && stepsCompleted < settings.steps) failures.push(`only ${stepsCompleted} of ${settings.steps} steps completed`);
  const notDone = byTab.filter((t) => t.status.state !== 'done');
  if (!input.stopped && notDone.length) failures.push(`tabs not done at the end: ${notDone.map((t) => `tab ${t.tab} (${t.status.state})`).join(', ')}`);

  const adds = events.filter((e) => e.kind === 'add');
  const kills = events.filter((e) => e.kind !== 'add');
  const survived = (e: SoakEventRecord) => e.recoveredMs !== null;
  if (events.length < input.plannedEvents && !input.stopped) failures.push(`${events.length} of ${input.plannedEvents} planned events carried out`);
  for (const e of events.filter((e) => !survived(e))) failures.push(`the room did not recover from ${describeEvent(e)} at step ${e.step}`);

  // Replicas: every tab agreed at every poll, and the tabs alive at the end hold one parameter vector.
  const hashes = new Set(byTab.map((t) => t.metrics.lastHash));
  const everyAgrees = byTab.every((t) => t.metrics.hashesAgree === true);
  // A run that stopped early has no final check: unknown (null) unless a poll already saw a disagreement.
  const replicasAgreed = input.disagreementSeen !== null ? false : input.stopped ? null : everyAgrees && hashes.size === 1;
  if (input.disagreementSeen) failures.push(`replicas disagreed: ${input.disagreementSeen}`);
  else if (input.stopped) {
    // the stop is the failure; the tabs' last figures are not a finished run's
  } else if (byTab.length && !everyAgrees) failures.push(`replicas disagree at the end (hashesAgree: ${byTab.map((t) => String(t.metrics.hashesAgree)).join(', ')})`);
  else if (hashes.size > 1) failures.push(`the tabs end with ${hashes.size} different parameter hashes`);

  const witness = byTab.find((t) => t.tab === 0) ?? null;
  const witnessElastic = witness?.metrics.elastic ?? null;
  if (witnessElastic && !input.stopped) {
    // The witness lives through every event, so it must have seen each join and each departure once.
    if (witnessElastic.joins !== adds.length || witnessElastic.departures !== kills.length) {
      failures.push(
        `the witness counted ${witnessElastic.joins} joins and ${witnessElastic.departures} departures; the soak made ${adds.length} and ${kills.length}`,
      );
    }
  }

  let buffers: SoakSummary['buffers'] = null;
  let heap: SoakSummary['heap'] = null;
  if (input.start && input.end) {
    const bufferOk = input.end.gpuBuffers - input.start.gpuBuffers <= BUFFER_GROWTH_BOUND;
    buffers = { start: input.start.gpuBuffers, end: input.end.gpuBuffers, bound: BUFFER_GROWTH_BOUND, ok: bufferOk };
    if (!bufferOk) failures.push(`the witness's GPU buffers grew from ${input.start.gpuBuffers} to ${input.end.gpuBuffers}`);
    const bound = heapGrowthBound(input.start.heapBytes);
    const heapOk = input.end.heapBytes - input.start.heapBytes <= bound;
    heap = { start: input.start.heapBytes, end: input.end.heapBytes, bound, ok: heapOk };
    if (!heapOk) failures.push(`the witness's JS heap grew by ${formatMiB(input.end.heapBytes - input.start.heapBytes)}, over the bound of ${formatMiB(bound)}`);
  } else if (!input.stopped) {
    failures.push('the witness was not measured at both ends of the run');
  }

  const recoveries = events.filter(survived).map((e) => e.recoveredMs! / 1000);
  const losses = witness?.metrics.losses ?? [];
  return {
    ok: failures.length === 0,
    failures,
    settings,
    backend: witness?.status.backend?.adapter ?? byTab[0]?.status.backend?.adapter ?? 'unknown',
    stepsCompleted,
    wallSec: input.wallSec,
    events,
    plannedEvents: input.plannedEvents,
    joinsSurvived: adds.filter(survived).length,
    joins: adds.length,
    failuresSurvived: kills.filter(survived).length,
    kills: kills.length,
    closes: kills.filter((e) => e.kind === 'close').length,
    crashes: kills.filter((e) => e.kind === 'crash').length,
    recoveryMeanSec: recoveries.length ? recoveries.reduce((a, b) => a + b, 0) / recoveries.length : null,
    recoveryMaxSec: recoveries.length ? Math.max(...recoveries) : null,
    witnessElastic,
    framesRefused: input.refused.count,
    refusedReasons: input.refused.reasons,
    replicasAgreed,
    finalHashes: hashes.size,
    finalLoss: losses.length ? losses[losses.length - 1] : null,
    accuracy: witness?.metrics.accuracy ?? null,
    buffers,
    heap,
    startStep: input.start?.step ?? null,
    endStep: input.end?.step ?? null,
    tabFailures: input.tabFailures,
    witnessContext: input.witnessContext ?? null,
  };
}

function describeEvent(e: SoakEventRecord): string {
  if (e.kind === 'add') return `tab ${e.tab} joining`;
  return `tab ${e.tab} ${e.kind === 'close' ? 'closed' : 'crashed'}`;
}

function formatMiB(bytes: number): string {
  return `${bytes < 0 ? '-' : ''}${(Math.abs(bytes) / MiB).toFixed(2)} MiB`;
}

export function formatSoak(s: SoakSummary): string {
  const set = s.settings;
  const lines = [
    ``,
    `== soak: ${set.tabs} tabs (${set.minTabs}-${set.maxTabs} while it runs) | ${set.model} on ${set.dataset} | ${set.mode ?? 'ring'}${set.zero ? `, ZeRO-${set.zero}` : ''} | seed ${set.seed} | an event every ~${set.killEvery} steps | peertimeout ${set.peertimeout} ms${set.signalling ? ` | ${set.signalling === 'server' ? 'signalling server' : 'BroadcastChannel'}` : ''} | ${s.backend}`,
  ];
  if (s.events.length) {
    lines.push('events');
    for (const e of s.events) {
      const outcome =
        e.recoveredMs === null
          ? 'NOT RECOVERED'
          : `training again at ${e.tabsAfter} tabs after ${(e.recoveredMs / 1000).toFixed(1)} s` +
            (e.ringMs == null ? '' : ` (the tabs started the new ring after ${(e.ringMs / 1000).toFixed(1)} s)`) +
            (e.detected ? `; the witness dropped it after ${(e.detected.ms / 1000).toFixed(1)} s (${e.detected.by})` : '') +
            (e.witnessBuffers === null ? '' : `; witness buffers ${e.witnessBuffers}`);
      lines.push(`  step ${String(e.step).padStart(5)}  ${describeEvent(e).padEnd(18)} -> ${outcome}`);
    }
  }
  const witness = s.witnessElastic;
  lines.push(
    `steps completed       ${s.stepsCompleted} of ${set.steps} in ${s.wallSec.toFixed(1)} s`,
    `joins survived        ${s.joinsSurvived} of ${s.joins}${witness ? ` (the witness counted ${witness.joins})` : ''}`,
    `failures survived     ${s.failuresSurvived} of ${s.kills}: ${s.closes} closed, ${s.crashes} crashed${witness ? ` (the witness counted ${witness.departures} departures, ${witness.reforms} re-forms)` : ''}`,
  );
  if (s.recoveryMeanSec !== null) lines.push(`recovery              mean ${s.recoveryMeanSec.toFixed(1)} s, max ${s.recoveryMaxSec!.toFixed(1)} s (event to the room training at its new size)`);
  const departures = s.events.filter((e) => e.kind !== 'add' && e.recoveredMs !== null);
  const goal = (xs: number[]) => (Math.max(...xs) < 10 ? ', met' : ', NOT met');
  const stat = (xs: number[]) => `mean ${(xs.reduce((a, b) => a + b, 0) / xs.length).toFixed(1)} s, max ${Math.max(...xs).toFixed(1)} s`;
  if (departures.length) {
    const polled = departures.map((e) => e.recoveredMs! / 1000);
    lines.push(`after a departure     ${stat(polled)} as polled (goal: under 10 s${goal(polled)}; polling every tab adds seconds on a loaded machine)`);
    for (const kind of ['close', 'crash'] as const) {
      const ofKind = departures.filter((e) => e.kind === kind);
      const inTabs = ofKind.filter((e) => e.ringMs != null).map((e) => e.ringMs! / 1000);
      const seen = ofKind.filter((e) => e.detected).map((e) => e.detected!);
      const signals = [...new Set(seen.map((d) => d.by))].map((by) => `${seen.filter((d) => d.by === by).length} x ${by}`).join(', ');
      const dropped = seen.length ? `; the witness dropped the tab ${stat(seen.map((d) => d.ms / 1000))} after the event (${signals}; peertimeout ${set.peertimeout} ms)` : '';
      if (inTabs.length) lines.push(`  ${kind === 'close' ? 'closed' : 'crashed'} tabs: ring re-formed ${stat(inTabs)} after the event, by the tabs' own logs (goal: under 10 s${goal(inTabs)})${dropped}`);
    }
  }
  const reasons = Object.entries(s.refusedReasons).map(([reason, n]) => `${n} x ${reason}`);
  lines.push(`frames refused        ${s.framesRefused}${reasons.length ? ` (${reasons.join('; ')})` : ''}`);
  lines.push(
    `replicas agreed       ${
      s.replicasAgreed === null ? 'no disagreement seen before the stop (no final check)' : s.replicasAgreed ? `yes (every tab, every poll; ${s.finalHashes} parameter hash at the end)` : 'NO'
    }`,
  );
  if (s.finalLoss !== null) lines.push(`final train loss      ${s.finalLoss.toFixed(4)}${s.accuracy !== null ? `, held-out accuracy ${(s.accuracy * 100).toFixed(2)}%` : ''}`);
  if (s.buffers) {
    lines.push(
      `GPU buffers (witness) ${s.buffers.start} at step ${s.startStep} -> ${s.buffers.end} at step ${s.endStep} (bound: no growth) ${s.buffers.ok ? 'ok' : 'EXCEEDED'}`,
    );
  }
  if (s.heap) {
    lines.push(
      `JS heap (witness)     ${formatMiB(s.heap.start)} -> ${formatMiB(s.heap.end)} (${s.heap.end >= s.heap.start ? '+' : ''}${formatMiB(s.heap.end - s.heap.start)}; ` +
        `bound: +${formatMiB(s.heap.bound)} = max(8 MiB, 25%)) ${s.heap.ok ? 'ok' : 'EXCEEDED'}`,
    );
  }
  for (const f of s.tabFailures) {
    lines.push(`tab ${f.tab} error: ${f.error}`);
    for (const line of f.log) lines.push(`    ${line}`);
  }
  if (s.witnessContext) {
    lines.push(`witness at the stop   ${s.witnessContext.state}`);
    for (const line of s.witnessContext.log) lines.push(`    ${line}`);
  }
  lines.push(`result                ${s.ok ? 'PASSED' : 'FAILED'}`);
  for (const f of s.failures) lines.push(`  - ${f}`);
  return lines.join('\n');
}
