// Turns what every tab reported at the end of a swarm run into one summary (pure: unit-tested).
import type { LabConfig } from '../src/lab/config';
import type { LabMetrics, LabStatus } from '../src/lab/api';
import { splitOf } from '../src/lab/step-split';
import { relativeError, zeroBytesTheory, zeroWireTheory } from '../src/parallel/zero/memory-theory';
import { SATURATED, type HostLoad } from './host-load';
import { autoCollectiveReport, formatAutoCollective, type AutoCollectiveReport } from './swarm-collective';

export interface RunSummary {
  ok: boolean;
  tabs: number;
  model: string;
  dataset: string;
  mode: string;
  zero: number;
  compression: string;
  backend: string;
  steps: number;
  wallSec: number;
  /**
   * The room's last mean training loss (the 'room-loss' events); rank 0's own last logged loss where the
   * room published none (one tab). Rank 0's own can be NaN: with speed-proportional shares it may train
   * on no samples at all.
   */
  finalLoss: number | null;
  valLoss: number | null;
  accuracy: number | null;
  bigramValLoss: number | null;
  /** Bytes sent by all ranks together, for the whole run and per step. */
  bytesSent: number;
  bytesSentPerStep: number;
  /**
   * What all ranks' transports put on the data channels (metrics().wire summed): payload bytes (model
   * data plus hash exchanges and backups), frames, and wire bytes with every header and MAC. Null when
   * a rank did not report it (a solo run).
   */
  wire: { payloadBytes: number; frames: number; wireBytes: number } | null;
  computeMsPerStep: number;
  commMsPerStep: number;
  /** Of compute and communication, the time both ran at once. */
  overlapMsPerStep: number;
  waitMsPerStep: number;
  stepMsPerStep: number;
  /**
   * Wall-clock time per step from the first finished step to the last: the trainer's step plus what
   * runs between steps (the replica check's hashing, evaluations, checkpoints). Null when not measured.
   */
  wallMsPerStep: number | null;
  /**
   * The same without each tab's newest timed step (run-metrics.ts steadyWallMsPerStep): the steady pace,
   * without the end-of-run hand-over a parked tab's last step waits for. Null when not measured.
   */
  steadyWallMsPerStep: number | null;
  /** stepMs / max(computeMs, commMs): 1.0 is perfect overlap, 2.0 is fully serial. */
  overlapRatio: number | null;
  /** wallMsPerStep / max(computeMs, commMs): the same, with what runs between steps. */
  wallOverlapRatio: number | null;
  /** How busy the host's cores were while the tabs trained (null when not measured). */
  hostCpu: HostLoad | null;
  samplesPerSec: number;
  replicasAgree: boolean | null;
  memoryPerRank: (Record<string, number> | null)[];
  /** Bytes held and sent per rank against the ZeRO formulas (multi-tab runs with a known layout). */
  zeroFigures: ZeroFigures | null;
  /** shares=auto: the room's last agreed samples per rank and the speeds behind them (null: even shares). */
  shares: { fromStep: number; counts: number[]; samplesPerSec: number[] } | null;
  /** Each rank's backend (adapter string), in rank order. */
  backends: string[];
  /** Times the ring re-formed during the run (an elastic room's lost tab; the most any rank counted). */
  reforms: number;
  /** The dense all-reduces' algorithm (collective=) and, for auto, what it ran, measured and picks (swarm-collective.ts). */
  collective: string;
  autoCollective: AutoCollectiveReport | null;
}

export interface ZeroFigures {
  stage: number;
  world: number;
  /** P: elements of the flat parameter vector (padded, as partitioned). */
  elements: number;
  offload: boolean;
  /** Mean per rank, measured from real allocations; theory from the formulas. */
  held: { params: number; grads: number; optimizer: number; total: number };
  theory: { params: number; grads: number; optimizer: number; total: number };
  activations: number;
  workspace: number;
  /** Every kind of device memory (shards, slots, activations, workspace), of the rank holding most. */
  largestRankTotal: number;
  /** The per-tab budget the run was held to (config `budget`), in bytes; null without one. */
  budgetBytes: number | null;
  /** Bytes one rank sent in one optimizer step (mean over ranks) and the ring formula's figure. */
  wirePerStep: number | null;
  wireTheory: number;
  /** Host memory per rank (mean), by kind (LabMetrics.hostMemory); null when the tabs did not report it. */
  host: { backups: number; staging: number; offload: number; wholeModel: number } | null;
  /** Elastic rooms: each rank keeps its own slice and its predecessor's, of two steps (zero-backup.ts): 4 slices. */
  backupsTheory: number;
  /** Bytes one rank sent for the replica check's own collectives (ZeRO-3 verification passes), per run. */
  wireCheckPerRun: number | null;
  /** Two verification passes per run (start and end), each an all-gather of the whole vector. */
  wireCheckTheory: number;
  /** Bytes one rank sent per backup (mean over ranks and backups), and its slice's formula. */
  wirePerBackup: number | null;
  wireBackupTheory: number;
  /** Steps between backups (config backupevery). */
  backupEvery: number;
}

/** ZeRO figures from the tabs' memory reports and step metrics; null without what they need. */
export function zeroFigures(config: LabConfig, byRank: { metrics: LabMetrics }[]): ZeroFigures | null {
  const memories = byRank.map((r) => r.metrics.memory).filter((m): m is NonNullable<typeof m> => m !== null);
  // A pipeline's (a tensor group's) tabs hold different parts: their figures are the pipeline (tensor) report's (swarm-pipeline.ts, swarm-tensor.ts).
  if (byRank.length < 2 || memories.length !== byRank.length || config.pipeline > 1 || config.tensor > 1) return null;
  const layout = byRank[0].metrics.zero;
  // Plain data parallelism holds the whole vector: P is its parameter bytes / 4.
  const elements = layout?.elements ?? (config.zero === 0 ? memories[0].params / 4 : null);
  if (!elements) return null;
  const world = byRank.length;
  const avg = (pick: (m: (typeof memories)[number]) => number) => mean(memories.map(pick));
  const held = { params: avg((m) => m.params), grads: avg((m) => m.grads), optimizer: avg((m) => m.optimizer), total: 0 };
  held.total = held.params + held.grads + held.optimizer;
  const wire = byRank.map((r) => r.metrics.stepBytesSent).filter((b): b is number => typeof b === 'number');
  const hosts = byRank.map((r) => r.metrics.hostMemory).filter((h): h is NonNullable<typeof h> => !!h);
  const host = hosts.length === byRank.length ? { backups: mean(hosts.map((h) => h.backups)), staging: mean(hosts.map((h) => h.staging)), offload: mean(hosts.map((h) => h.offload)), wholeModel: mean(hosts.map((h) => h.wholeModel)) } : null;
  const slice = 4 * (elements / world) * (1 + (layout?.optimizerFloatsPerParam ?? 2)); // a shard's parameters and optimizer state
  const backups = byRank.map((r) => r.metrics.zeroBackups).filter((b): b is NonNullable<typeof b> => !!b && b.steps > 0);
  const checks = byRank.map((r) => r.metrics.replicaCheck?.bytesSent ?? 0);
  return {
    stage: config.zero,
    world,
    elements,
    offload: config.offload,
    held,
    theory: zeroBytesTheory(config.zero, elements, world, layout?.optimizerFloatsPerParam ?? 2, config.offload),
    activations: avg((m) => m.activations),
    workspace: avg((m) => m.workspace),
    largestRankTotal: Math.max(...memories.map((m) => Object.values(m).reduce((a, b) => a + b, 0))),
    budgetBytes: config.budget > 0 ? config.budget * MiB : null,
    wirePerStep: wire.length === byRank.length ? mean(wire) : null,
    wireTheory: zeroWireTheory(config.zero, elements, world),
    host,
    backupsTheory: backups.length > 0 ? 4 * slice : 0,
    wireCheckPerRun: config.zero === 3 ? mean(checks) : null,
    wireCheckTheory: (2 * 4 * elements * (world - 1)) / world,
    wirePerBackup: backups.length === byRank.length ? mean(backups.map((b) => b.bytesSent / b.steps)) : null,
    wireBackupTheory: slice,
    backupEvery: config.backupevery,
  };
}

const MiB = 1 << 20;

const FORMULAS = ['16P', '8P + 8P/N', '4P + 12P/N', '16P/N'];

function percent(measured: number, theory: number): string {
  const e = relativeError(measured, theory);
  return `${e >= 0 ? '+' : ''}${(e * 100).toFixed(1)}%`;
}

export function formatZero(z: ZeroFigures): string[] {
  const formula = `${FORMULAS[z.stage]}${z.offload ? ' - moments offloaded' : ''}`;
  const lines = [
    `memory per rank       params+grads+optimizer ${formatBytes(z.held.total)} vs ${formula} = ${formatBytes(z.theory.total)} (${percent(z.held.total, z.theory.total)}; P = ${z.elements}, N = ${z.world})`,
    `  by kind             params ${formatBytes(z.held.params)} (${percent(z.held.params, z.theory.params)}), grads ${formatBytes(z.held.grads)} (${percent(z.held.grads, z.theory.grads)}), optimizer ${formatBytes(z.held.optimizer)}${z.theory.optimizer ? ` (${percent(z.held.optimizer, z.theory.optimizer)})` : ''}`,
    `  apart               activations ${formatBytes(z.activations)}, workspace ${formatBytes(z.workspace)}`,
    z.budgetBytes === null
      ? `total per rank        ${formatBytes(z.largestRankTotal)} (largest rank, every kind; no budget set)`
      : `total per rank        ${formatBytes(z.largestRankTotal)} (largest rank, every kind) vs budget ${formatBytes(z.budgetBytes)}: ` +
        `${z.largestRankTotal <= z.budgetBytes ? 'fits' : 'OVER'} (${((100 * z.largestRankTotal) / z.budgetBytes).toFixed(1)}% of it)`,
  ];
  // The MLP's first layer passes no gradient on, so stage 3 does not gather it for the backward: an
  // MLP sends less than the formula by that layer's share (most of MNIST's default MLP).
  const what = z.stage === 3 ? '1.5x a 2P-sized all-reduce (an MLP gathers no first layer for its backward)' : 'a 2P-sized all-reduce';
  lines.push(
    z.wirePerStep === null
      ? `wire per rank/step    unknown (no step metrics)`
      : `wire per rank/step    ${formatBytes(z.wirePerStep)} vs ${what} = ${formatBytes(z.wireTheory)} (${percent(z.wirePerStep, z.wireTheory)})`,
  );
  if (z.wireCheckPerRun !== null) {
    lines.push(`  replica check       ${formatBytes(z.wireCheckPerRun)} per run vs 2 verification passes (start, end) of (N-1)/N x 4P = ${formatBytes(z.wireCheckTheory)} (${percent(z.wireCheckPerRun, z.wireCheckTheory)}); between steps it hashes what the step gathered: 0 bytes`);
  }
  if (z.wirePerBackup !== null) {
    lines.push(`  backups             ${formatBytes(z.wirePerBackup)} per backup (every ${z.backupEvery} steps) vs a slice, 4P/N x (1 + optimizer floats) = ${formatBytes(z.wireBackupTheory)} (${percent(z.wirePerBackup, z.wireBackupTheory)})`);
  }
  if (z.host) {
    const h = z.host;
    lines.push(
      `host per rank         backups ${formatBytes(h.backups)}${z.backupsTheory ? ` vs 4 slices (own and predecessor's, 2 steps) = ${formatBytes(z.backupsTheory)} (${percent(h.backups, z.backupsTheory)})` : ''}, ` +
        `staging ${formatBytes(h.staging)} (${z.stage === 3 ? 'one layer group at a time' : `the whole vector, 4P = ${formatBytes(4 * z.elements)}`}), offload ${formatBytes(h.offload)}`,
      `                      whole model ${formatBytes(h.wholeModel)} (ZeRO-3: gathered once the run has ended, for params() and checkpoints; never while training)`,
      `device + host         ${formatBytes(z.held.total + h.backups + h.staging + h.offload)} per rank while training (params+grads+optimizer, backups, staging, offload)`,
    );
  }
  return lines;
}

const mean = (values: number[]): number => (values.length ? values.reduce((a, b) => a + b, 0) / values.length : 0);

export function summariseRun(
  config: LabConfig,
  reports: { status: LabStatus; metrics: LabMetrics }[],
  wallSec: number,
  hostCpu: HostLoad | null = null,
): RunSummary {
  const byRank = [...reports].sort((a, b) => a.status.rank - b.status.rank);
  const lead = byRank[0];
  const losses = lead?.metrics.losses ?? [];
  const computeMs = mean(byRank.map((r) => r.metrics.computeMsPerStep));
  const commMs = mean(byRank.map((r) => r.metrics.commMsPerStep));
  const stepMs = mean(byRank.map((r) => r.metrics.stepMsPerStep));
  const bytesSent = byRank.reduce((sum, r) => sum + r.metrics.bytesSent, 0);
  const wires = byRank.map((r) => r.metrics.wire);
  const wire = wires.length > 0 && wires.every((w) => w)
    ? {
        payloadBytes: wires.reduce((sum, w) => sum + w!.payloadBytes, 0),
        frames: wires.reduce((sum, w) => sum + w!.frames, 0),
        wireBytes: wires.reduce((sum, w) => sum + w!.wireBytes, 0),
      }
    : null;
  const steps = lead?.status.step ?? 0;
  const agreement = byRank.map((r) => r.metrics.hashesAgree);
  // A pipeline's (a tensor or expert group's) tabs hold different stages (shards, experts): hashes are equal within each part's group of replicas.
  const groupOf = (r: { metrics: LabMetrics }) => {
    const p = r.metrics.partition;
    return !p ? 0 : p.kind === 'pipeline' ? p.stage : p.kind === 'tensor' ? p.tensorRank : p.expertRank;
  };
  const hashesByGroup = new Map<number, Set<string | null>>();
  for (const r of byRank) hashesByGroup.set(groupOf(r), (hashesByGroup.get(groupOf(r)) ?? new Set()).add(r.metrics.lastHash));
  const replicasAgree = agreement.some((a) => a === null) ? null : agreement.every(Boolean) && [...hashesByGroup.values()].every((h) => h.size === 1);
  const busiest = Math.max(computeMs, commMs);
  // Each tab's own clock, over the steps its per-step times average (run-metrics.ts): the slowest rank
  // sets the room's pace.
  const walls = byRank.map((r) => r.metrics.wallMsPerStep).filter((ms): ms is number => ms !== null);
  const wallMsPerStep = walls.length === byRank.length && walls.length > 0 ? Math.max(...walls) : null;
  const steadyWalls = byRank.map((r) => r.metrics.steadyWallMsPerStep ?? null).filter((ms): ms is number => ms !== null);
  const steadyWallMsPerStep = steadyWalls.length === byRank.length && steadyWalls.length > 0 ? Math.max(...steadyWalls) : null;
  return {
    ok: byRank.every((r) => r.status.state === 'done') && replicasAgree !== false,
    tabs: byRank.length,
    model: config.model,
    dataset: config.dataset,
    mode: config.mode,
    zero: config.zero,
    compression: config.compression === 'topk' || config.compression === 'randk'
      ? `${config.compression}@${config.ratio}`
      : config.compression,
    backend: lead?.status.backend?.adapter ?? 'unknown',
    steps,
    wallSec,
    finalLoss: lead?.metrics.roomLosses?.at(-1)?.loss ?? (losses.length ? losses[losses.length - 1] : null),
    valLoss: lead?.metrics.valLoss ?? null,
    accuracy: lead?.metrics.accuracy ?? null,
    bigramValLoss: lead?.metrics.bigramValLoss ?? null,
    bytesSent,
    bytesSentPerStep: steps ? bytesSent / steps : 0,
    wire,
    computeMsPerStep: computeMs,
    commMsPerStep: commMs,
    overlapMsPerStep: mean(byRank.map((r) => r.metrics.overlapMsPerStep)),
    waitMsPerStep: mean(byRank.map((r) => r.metrics.waitMsPerStep)),
    stepMsPerStep: stepMs,
    wallMsPerStep,
    steadyWallMsPerStep,
    overlapRatio: byRank.length > 1 && busiest > 0 ? stepMs / busiest : null,
    wallOverlapRatio: byRank.length > 1 && busiest > 0 && wallMsPerStep !== null ? wallMsPerStep / busiest : null,
    hostCpu,
    samplesPerSec: lead?.metrics.samplesPerSec ?? 0,
    replicasAgree,
    memoryPerRank: byRank.map((r) => r.metrics.memory),
    zeroFigures: zeroFigures(config, byRank),
    shares: lead?.metrics.shares ?? null,
    backends: byRank.map((r) => r.status.backend?.adapter ?? 'unknown'),
    reforms: Math.max(0, ...byRank.map((r) => r.metrics.elastic?.reforms ?? 0)),
    collective: config.collective,
    autoCollective: config.collective === 'auto' ? autoCollectiveReport(lead?.metrics.links) : null,
  };
}

const fmt = (value: number | null, digits = 4): string => (value === null ? '-' : value.toFixed(digits));

function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(unit ? 2 : 0)} ${units[unit]}`;
}

export function formatSummary(s: RunSummary): string {
  const lines = [
    ``,
    `== ${s.tabs} tab(s) | ${s.model} on ${s.dataset} | ${s.mode}${s.zero ? ` ZeRO-${s.zero}` : ''} | compression ${s.compression}${s.collective && s.collective !== 'ring' ? ` | collective=${s.collective}` : ''} | ${s.backend}`,
    `steps                 ${s.steps} in ${s.wallSec.toFixed(1)} s (${s.samplesPerSec.toFixed(1)} samples/s)`,
    `final train loss      ${fmt(s.finalLoss)}`,
  ];
  if (s.accuracy !== null) lines.push(`held-out accuracy     ${(s.accuracy * 100).toFixed(2)}%`);
  if (s.valLoss !== null) lines.push(`validation loss       ${fmt(s.valLoss)} nats${s.bigramValLoss !== null ? '/char' : ''}`);
  if (s.bigramValLoss !== null) lines.push(`bigram baseline       ${fmt(s.bigramValLoss)} nats/char (same validation split)`);
  lines.push(
    `bytes sent (all)      ${formatBytes(s.bytesSent)} (${formatBytes(s.bytesSentPerStep)} per step) of model data, as the schedules count it`,
    s.wire
      ? `on the wire (all)     ${formatBytes(s.wire.wireBytes)} in ${s.wire.frames} frames: ${formatBytes(s.wire.payloadBytes)} of payload (model data, hash exchanges, backups) + ${formatBytes(s.wire.wireBytes - s.wire.payloadBytes)} of frame headers and MACs`
      : `on the wire (all)     unknown (no transport counts: a solo run)`,
    `per step              compute ${s.computeMsPerStep.toFixed(1)} ms, communication ${s.commMsPerStep.toFixed(1)} ms, waiting ${s.waitMsPerStep.toFixed(1)} ms, total ${s.stepMsPerStep.toFixed(1)} ms`,
  );
  if (s.wallMsPerStep !== null) {
    lines.push(`wall clock per step   ${s.wallMsPerStep.toFixed(1)} ms = ${(s.wallMsPerStep / s.stepMsPerStep).toFixed(2)}x the step (the same steps, end to end: with what runs between them, such as the replica check, backups and evaluations)`);
  }
  if (s.overlapRatio !== null) {
    const split = splitOf({ step: s.steps, computeMs: s.computeMsPerStep, commMs: s.commMsPerStep, overlapMs: s.overlapMsPerStep, waitMs: s.waitMsPerStep, stepMs: s.stepMsPerStep });
    lines.push(
      `  the step split      compute only ${split.computeOnlyMs.toFixed(1)} ms, both at once ${split.bothMs.toFixed(1)} ms, communication only ${split.commOnlyMs.toFixed(1)} ms, waiting ${split.waitMs.toFixed(1)} ms, other ${split.otherMs.toFixed(1)} ms`,
      `overlap               step / max(compute, comm) = ${s.overlapRatio.toFixed(2)} (1.00 = perfect overlap)`,
    );
    if (s.wallOverlapRatio !== null) {
      lines.push(`                      wall clock per step / max(compute, comm) = ${s.wallOverlapRatio.toFixed(2)} (with what runs between steps)`);
    }
  }
  if (s.hostCpu) {
    lines.push(`host CPU              ${(s.hostCpu.busy * 100).toFixed(0)}% busy over ${s.hostCpu.cores} core(s) while training`);
    if (s.hostCpu.busy >= SATURATED && s.overlapRatio !== null) {
      lines.push(`                      saturated: compute (the GPU too, when it is SwiftShader) and communication share these cores, so they take turns more than they overlap`);
    }
  }
  if (s.zeroFigures) lines.push(...formatZero(s.zeroFigures));
  if (s.autoCollective) lines.push(...formatAutoCollective(s.autoCollective));
  lines.push(`replicas agree        ${s.replicasAgree === null ? 'unknown' : s.replicasAgree ? 'yes (equal parameter hashes every step)' : 'NO'}`);
  return lines.join('\n');
}

/** What compression cost and saved, against the dense twin (`--compare dense`); in the JSON as `comparison`. */
export interface Comparison {
  /** Held-out accuracy points, compressed minus dense (classifiers). */
  accuracyPoints: number | null;
  /** Validation loss, compressed minus dense. */
  valLossDelta: number | null;
  /** How many times fewer bytes a step the compressed run sent. */
  bytesFewer: number;
}

export function compareRuns(compressed: RunSummary, dense: RunSummary): Comparison {
  const delta = (a: number | null, b: number | null) => (a !== null && b !== null ? a - b : null);
  const accuracy = delta(compressed.accuracy, dense.accuracy);
  return {
    accuracyPoints: accuracy === null ? null : accuracy * 100,
    valLossDelta: delta(compressed.valLoss, dense.valLoss),
    bytesFewer: compressed.bytesSentPerStep > 0 ? dense.bytesSentPerStep / compressed.bytesSentPerStep : Infinity,
  };
}

/**
 * A compressed run beside its dense twin: what compression cost in quality and saved on the wire, the
 * two figures its trade-off is judged by.
 */
export function formatComparison(compressed: RunSummary, dense: RunSummary): string {
  const c = compareRuns(compressed, dense);
  const quality =
    c.accuracyPoints !== null
      ? `held-out accuracy ${(compressed.accuracy! * 100).toFixed(2)}% vs ${(dense.accuracy! * 100).toFixed(2)}% (${signed(c.accuracyPoints)} points)`
      : c.valLossDelta !== null
        ? `validation loss ${fmt(compressed.valLoss)} vs ${fmt(dense.valLoss)} (${signed(c.valLossDelta, 4)})`
        : 'no held-out figure';
  return [
    ``,
    `== ${compressed.compression} vs dense`,
    `quality               ${quality}`,
    `bytes per step        ${formatBytes(compressed.bytesSentPerStep)} vs ${formatBytes(dense.bytesSentPerStep)} (${c.bytesFewer.toFixed(1)}x fewer)`,
  ].join('\n');
}

const signed = (value: number, digits = 2): string => `${value >= 0 ? '+' : ''}${value.toFixed(digits)}`;
