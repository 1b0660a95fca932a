// What a session reports through `window.lab.metrics()` and `log()`: built from the events the run
// publishes on the bus (its own rank's steps and evaluations, every chunk it moved, its log lines), so
// that the numbers a script reads are the ones the dashboard draws.
import type { LabMetrics } from './api';
import type { LabEvent } from '../shared/events';
import { NO_LINK_FITS, nextLinkFits } from '../shared/link-fits';

/** Steps averaged for the per-step times (the first, with its pipeline compilation, is left out). */
const TIMING_WINDOW = 50;
const LOG_LINES = 200;
/** Bring-backs of a parked tab whose steps metrics().parking lists. */
const BROUGHT_BACK_KEPT = 20;

export type LogEntry = { t: number; level: 'info' | 'warn' | 'error'; message: string };

export class RunMetrics {
  /** The figures; the session also writes the ones no event carries (hash agreement, re-forms...). */
  readonly values: LabMetrics = emptyMetrics();
  private readonly timings: { compute: number; comm: number; overlap: number; wait: number; step: number; endedAt: number; stepNumber: number }[] = [];
  private readonly logs: LogEntry[] = [];
  /** shares=auto: the splits agreed so far (each from its step on), to tell the steps this tab sat out. */
  private readonly splits: { fromStep: number; counts: number[] }[] = [];
  private readonly idleRounds = new Set<number>();
  /** When each recent step ended on this tab, trained or sat out (parked-tabs.ts): the wall clock per step. */
  private readonly ends: { endedAt: number; stepNumber: number }[] = [];

  /** `rank`: this tab's current rank (it changes when an elastic ring re-forms). */
  constructor(private readonly rank: () => number) {}

  private get m(): LabMetrics {
    return this.values;
  }

  /**
   * shares=auto: the steps at which this tab had no samples, by the splits the room agreed (a chunk's
   * round is its step), and the gradient bytes it moved at them: it receives the average and sends
   * nothing (src/parallel/share-groups.ts).
   */
  private countIdle(round: number, direction: 'send' | 'recv', bytes: number): void {
    let counts: readonly number[] | undefined;
    for (const split of this.splits) if (split.fromStep <= round) counts = split.counts;
    if (counts?.[this.rank()] !== 0) return;
    const idle = (this.m.sharesIdle ??= { steps: 0, bytesSent: 0, bytesReceived: 0 });
    if (!this.idleRounds.has(round)) {
      this.idleRounds.add(round);
      idle.steps++;
    }
    if (direction === 'send') idle.bytesSent += bytes;
    else idle.bytesReceived += bytes;
  }

  /** The wall clock per step over the recent steps, the first left out as with the timings (its compilation). */
  private stepEnded(t: number, step: number): void {
    this.ends.push({ endedAt: t, stepNumber: step });
    if (this.ends.length > TIMING_WINDOW) this.ends.shift();
    const window = this.ends.length > 1 ? this.ends.slice(1) : this.ends;
    this.m.wallMsPerStep = wallClockPerStep(window);
    this.m.steadyWallMsPerStep = wallClockPerStep(window.slice(0, -1));
  }

  logLines(): LogEntry[] {
    return this.logs.map((line) => ({ ...line }));
  }

  record(event: LabEvent): void {
    switch (event.type) {
      case 'step': {
        if (event.rank !== this.rank()) return;
        this.m.losses.push(event.loss);
        this.m.lossSteps.push(event.step);
        this.timings.push({ compute: event.computeMs, comm: event.commMs, overlap: event.overlapMs, wait: event.waitMs, step: event.stepMs, endedAt: event.t, stepNumber: event.step });
        if (this.timings.length > TIMING_WINDOW) this.timings.shift();
        const useful = this.timings.length > 1 ? this.timings.slice(1) : this.timings;
        const avg = (pick: (t: (typeof useful)[number]) => number) => useful.reduce((s, t) => s + pick(t), 0) / useful.length;
        this.m.computeMsPerStep = avg((t) => t.compute);
        this.m.commMsPerStep = avg((t) => t.comm);
        this.m.overlapMsPerStep = avg((t) => t.overlap);
        this.m.waitMsPerStep = avg((t) => t.wait);
        this.m.stepMsPerStep = avg((t) => t.step);
        this.stepEnded(event.t, event.step);
        this.m.samplesPerSec = event.samplesPerSec;
        this.m.stepBytesSent = event.bytesSent;
        return;
      }
      case 'parking': {
        if (event.rank !== this.rank()) return;
        const p = (this.m.parking ??= { satOut: 0, broughtBack: 0, bytesReceived: 0, handedOver: 0, bytesSent: 0, broughtBackAt: [] });
        if (event.kind === 'handed-over') {
          p.handedOver++;
          p.bytesSent += event.bytes * event.receivers;
          return;
        }
        p.satOut++;
        if (event.kind === 'brought-back') {
          p.broughtBack++;
          p.bytesReceived += event.bytes;
          p.broughtBackAt.push(event.step);
          if (p.broughtBackAt.length > BROUGHT_BACK_KEPT) p.broughtBackAt.shift();
        }
        this.stepEnded(event.t, event.step);
        return;
      }
      case 'chunk':
        if (event.direction === 'send') this.m.bytesSent += event.bytes;
        else this.m.bytesReceived += event.bytes;
        this.countIdle(event.round, event.direction, event.bytes);
        return;
      case 'eval':
        if (event.rank !== this.rank()) return;
        this.m.valLoss = event.valLoss;
        this.m.accuracy = event.accuracy ?? null;
        return;
      case 'room-loss':
        (this.m.roomLosses ??= []).push({ step: event.step, loss: event.loss, ranks: event.ranks });
        return;
      case 'sample':
        this.m.sample = event.text;
        return;
      case 'log':
        this.logLine({ t: event.t, level: event.level, message: event.message });
        return;
      case 'refused':
        // In the log too, not only as an event: a refusal nobody reads hides a bug (the mesh already
        // rate-limits them per peer, and the log keeps its last LOG_LINES).
        this.logLine({ t: event.t, level: 'warn', message: `refused from ${event.from}: ${event.reason}` });
        return;
      case 'memory':
        if (event.rank === this.rank()) this.m.memory = { ...event.bytes };
        return;
      case 'shares':
        this.m.shares = { fromStep: event.fromStep, counts: [...event.counts], samplesPerSec: [...event.samplesPerSec] };
        this.splits.push({ fromStep: event.fromStep, counts: [...event.counts] });
        return;
      case 'link-fit': {
        const { type: _type, t: _t, ...fit } = event;
        this.m.links = nextLinkFits(this.m.links ?? NO_LINK_FITS, fit);
        return;
      }
      case 'membership':
        // A re-formed ring starts from even shares again.
        this.m.shares = null;
        this.splits.length = 0;
        this.idleRounds.clear();
        return;
      case 'zero-layout':
        this.m.zero = { stage: event.stage, world: event.partition.length, elements: event.total, optimizerFloatsPerParam: event.optimizerFloatsPerParam };
        return;
      default:
        return;
    }
  }

  private logLine(line: LogEntry): void {
    this.logs.push(line);
    if (this.logs.length > LOG_LINES) this.logs.shift();
  }
}

/**
 * From the end of the window's first step to the end of its last, per step: the steps and what runs
 * between them (the replica check, evaluations, checkpoints), as the tab's own clock saw it. Null until
 * two steps are known, or when the step counter went back (an elastic room redid a step).
 */
export function wallClockPerStep(window: readonly { endedAt: number; stepNumber: number }[]): number | null {
  if (window.length < 2) return null;
  const first = window[0];
  const last = window[window.length - 1];
  const steps = last.stepNumber - first.stepNumber;
  return steps > 0 ? (last.endedAt - first.endedAt) / steps : null;
}

function emptyMetrics(): LabMetrics {
  return {
    losses: [],
    lossSteps: [],
    roomLosses: [],
    valLoss: null,
    accuracy: null,
    bigramValLoss: null,
    bytesSent: 0,
    bytesReceived: 0,
    computeMsPerStep: 0,
    commMsPerStep: 0,
    overlapMsPerStep: 0,
    waitMsPerStep: 0,
    stepMsPerStep: 0,
    wallMsPerStep: null,
    steadyWallMsPerStep: null,
    samplesPerSec: 0,
    memory: null,
    hashesAgree: null,
    stepBytesSent: null,
    zero: null,
    shares: null,
    links: null,
    elastic: { reforms: 0, joins: 0, departures: 0 },
    lastHash: null,
    sample: null,
  };
}
