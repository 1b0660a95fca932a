// Which all-reduce algorithm carries each gradient bucket (`collective=auto|ring|tree|rhd|naive`).
// A fixed choice is used as is. `auto` measures the links when the ring forms (a ping-pong of two
// message sizes with the ring neighbour, over the transport the gradients use), fits alpha (seconds per
// message) and beta (seconds per byte) of the alpha-beta model (collective/cost-model.ts), and picks
// the algorithm with the smallest predicted time for each bucket's size. During training each rank
// times its buckets' all-reduces and refits; every `refitEvery` steps the room agrees on a new fit.
//
// Every rank must pick the same algorithm for the same bucket, or their schedules would not meet: picks
// depend only on the room's agreed fit (each rank's fit all-gathered; the slowest link's alpha and beta,
// the largest of each, bound a collective), which every rank holds bit for bit, and on the bucket size.
// A refit is all-gathered alongside a step's buckets and takes effect from the next step on.
import { allReduceSchedule, ALL_REDUCE_SCHEDULES, type AllReduceSchedule } from '../collective/allreduce-algorithms';
import { runFixedAllGather } from '../collective/collectives';
import { COLLECTIVE_IDS } from '../collective/collective-ids';
import { costTerms, fitAlphaBeta, pickFastest, predictSeconds, type LinkCost, type TimingSample } from '../collective/cost-model';
import type { Schedule, ScheduleOptions } from '../collective/schedules';
import type { Transport } from '../collective/types';
import type { LabEvent } from '../shared/events';

export type CollectiveChoice = 'auto' | AllReduceSchedule;

export const COLLECTIVE_CHOICES: readonly CollectiveChoice[] = ['auto', ...ALL_REDUCE_SCHEDULES];

/** The ping-pong's message sizes in bytes: one latency-bound, one bandwidth-bound. */
export const PROBE_SIZES = [256, 256 * 1024] as const;
/** Round trips per size; the median one counts (the first of a fresh channel is often slow). */
export const PROBE_REPEATS = 5;
/** The candidates `auto` chooses from (naive is never better than the ring for p > 2, and equal at 2). */
const AUTO_CANDIDATES: readonly AllReduceSchedule[] = ['ring', 'tree', 'rhd'];

export interface LinkFitReport {
  /** 'formed': the ring's first fit (ping-pong); 'refit': the room's new fit during training. */
  kind: 'formed' | 'refit';
  step: number;
  link: LinkCost;
  /** Predicted and measured milliseconds of the last step's buckets (refits only). */
  buckets: { bytes: number; algorithm: AllReduceSchedule; predictedMs: number; measuredMs: number }[];
  /** What the new fit picks for each of those sizes (and the probe sizes at formation). */
  picks: { bytes: number; algorithm: AllReduceSchedule; predictedMs: Record<string, number> }[];
}

export interface CollectivePickerOptions {
  choice: CollectiveChoice;
  transport: Transport;
  /** Steps between the room's refits (auto only). */
  refitEvery?: number;
  onFit?: (report: LinkFitReport) => void;
}

/** Median of a non-empty list. */
function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/**
 * Ping-pong with the ring neighbours over `transport`: this rank times round trips of each size to
 * its successor and echoes its predecessor's, all at once. One-way time = median round trip / 2.
 * A collective: every rank of the ring calls it with the same `round`.
 */
export async function probeLink(transport: Transport, round: number, sizes: readonly number[] = PROBE_SIZES, repeats = PROBE_REPEATS): Promise<TimingSample[]> {
  const { rank, world } = transport;
  const next = (rank + 1) % world;
  const prev = (rank + world - 1) % world;
  const collective = COLLECTIVE_IDS.linkProbe.first;
  const tag = (message: number, pong: boolean) => ({ round, collective, chunk: 2 * message + (pong ? 1 : 0) });
  const echo = (async () => {
    for (let m = 0; m < sizes.length * repeats; m++) await transport.send(prev, tag(m, true), await transport.recv(prev, tag(m, false)));
  })();
  const samples: TimingSample[] = [];
  let message = 0;
  for (const bytes of sizes) {
    const payload = new Uint8Array(bytes);
    const trips: number[] = [];
    for (let i = 0; i < repeats; i++, message++) {
      const t0 = performance.now();
      await transport.send(next, tag(message, false), payload);
      await transport.recv(next, tag(message, true));
      trips.push(performance.now() - t0);
    }
    samples.push({ bytes, seconds: Math.max(median(trips), 1e-3) / 2000 });
  }
  await echo;
  return samples;
}

/** A fit's link as 16 bytes (two float64), and back: what the room all-gathers. */
function encodeLink(link: LinkCost): Uint8Array {
  return new Uint8Array(Float64Array.of(link.alpha, link.beta).buffer);
}
function decodeLink(bytes: Uint8Array): LinkCost {
  const [alpha, beta] = new Float64Array(bytes.slice().buffer);
  return { alpha, beta };
}

/** The room's link: the largest alpha and the largest beta of every rank's fit (the slowest link bounds a collective). */
export function slowestLink(links: readonly LinkCost[]): LinkCost {
  return { alpha: Math.max(...links.map((l) => l.alpha)), beta: Math.max(...links.map((l) => l.beta)) };
}

export class CollectivePicker {
  /** The fit every rank holds bit for bit (auto), once the ring has been probed. */
  agreed: LinkCost | null = null;
  /** This rank's timing samples, normalised to one link (see record). */
  private readonly samples: TimingSample[] = [];
  private ready: Promise<void> | null = null;
  /** A refit on the wire: the next step's picks wait for it. */
  private refit: Promise<void> | undefined;
  private lastBuckets: LinkFitReport['buckets'] = [];

  constructor(private readonly o: CollectivePickerOptions) {
    if (!COLLECTIVE_CHOICES.includes(o.choice)) throw new RangeError(`collective must be one of ${COLLECTIVE_CHOICES.join(', ')}, got "${o.choice}"`);
  }

  /**
   * Awaited before each bucket's all-reduce: the room's fit (auto: the ring's first call probes the
   * links, with `round` the step it trains) and a refit still being agreed. A fixed choice waits for nothing.
   */
  async beforeBucket(round: number): Promise<void> {
    if (this.o.choice !== 'auto' || this.o.transport.world < 2) return;
    await (this.ready ??= this.form(round));
    await this.refit;
  }

  private async form(round: number): Promise<void> {
    const probed = await probeLink(this.o.transport, round);
    this.samples.push(...probed);
    this.agreed = await this.agree(round, fitAlphaBeta(probed));
    this.report('formed', round, PROBE_SIZES);
  }

  /** All-gathers each rank's fit and takes the slowest link: the same bits on every rank. */
  private async agree(round: number, link: LinkCost): Promise<LinkCost> {
    const { payloads } = await runFixedAllGather(this.o.transport, encodeLink(link), { round, collective: COLLECTIVE_IDS.linkFit.first });
    return slowestLink(payloads.map(decodeLink));
  }

  /** The algorithm for a bucket of `bytes` (call after prepare). */
  pick(bytes: number): AllReduceSchedule {
    if (this.o.choice !== 'auto') return this.o.choice;
    if (!this.agreed) return 'ring'; // a room of one tab
    return pickFastest(this.o.transport.world, bytes, this.agreed, AUTO_CANDIDATES).algorithm as AllReduceSchedule;
  }

  /** This rank's schedule for a bucket of `length` floats of `elementBytes` each. */
  schedule(length: number, elementBytes: number, opts: ScheduleOptions = {}): Schedule {
    const { world, rank } = this.o.transport;
    return allReduceSchedule(this.pick(length * elementBytes), world, rank, length, opts);
  }

  /**
   * A bucket's all-reduce took `seconds`: one sample of seconds / a(p) = alpha + (b(p) n / a(p)) beta,
   * the same line as a single link's (cost-model.ts), so probe and training samples fit together.
   */
  record(algorithm: AllReduceSchedule, bytes: number, seconds: number): void {
    const world = this.o.transport.world;
    if (this.o.choice !== 'auto' || world < 2 || !(seconds > 0)) return;
    const { latencyTerms, byteTerms } = costTerms(algorithm, world);
    this.samples.push({ bytes: (byteTerms * bytes) / latencyTerms, seconds: seconds / latencyTerms });
    this.lastBuckets.push({ bytes, algorithm, predictedMs: 1000 * predictSeconds(algorithm, world, bytes, this.agreed!), measuredMs: 1000 * seconds });
    // Keep the probe's samples and the latest training ones: the links change, the probe's sizes anchor the fit.
    if (this.samples.length > PROBE_SIZES.length + 64) this.samples.splice(PROBE_SIZES.length, 1);
  }

  /**
   * Called by every rank when a step's buckets are all reduced: every `refitEvery` steps the room's new
   * fit is all-gathered, alongside the next step's computation; that step's buckets wait for it.
   */
  endStep(step: number): void {
    const every = this.o.refitEvery ?? 0;
    const buckets = this.lastBuckets;
    this.lastBuckets = [];
    if (!this.agreed || every <= 0 || (step + 1) % every !== 0) return;
    const samples = [...this.samples];
    this.refit = (async () => {
      this.agreed = await this.agree(step, fitAlphaBeta(samples));
      this.report('refit', step, buckets.map((b) => b.bytes), buckets);
    })();
    // A failure (a lost tab) is the next bucket's to report; keep it from surfacing as unhandled first.
    this.refit.catch(() => undefined);
  }

  private report(kind: LinkFitReport['kind'], step: number, sizes: readonly number[], buckets: LinkFitReport['buckets'] = []): void {
    const link = this.agreed!;
    const world = this.o.transport.world;
    const picks = [...new Set(sizes)].map((bytes) => {
      const pick = pickFastest(world, bytes, link, AUTO_CANDIDATES);
      return { bytes, algorithm: pick.algorithm as AllReduceSchedule, predictedMs: Object.fromEntries(pick.predictions.map((p) => [p.algorithm, 1000 * p.seconds])) };
    });
    this.o.onFit?.({ kind, step, link, buckets, picks });
  }
}

const ms = (x: number) => (x < 10 ? x.toFixed(2) : x.toFixed(1));
const size = (bytes: number) => (bytes >= 1 << 20 ? `${(bytes / (1 << 20)).toFixed(1)} MiB` : bytes >= 1024 ? `${(bytes / 1024).toFixed(1)} KiB` : `${bytes} B`);

/** A fit as the dashboard's event log shows it: the link, each size's pick with every prediction, and (refits) predicted vs measured. */
export function linkFitLog(report: LinkFitReport): LabEvent {
  const { alpha, beta } = report.link;
  const link = `alpha ${ms(alpha * 1000)} ms, beta ${beta > 0 ? (1 / beta / 1e6).toFixed(2) : 'inf'} MB/s`;
  const picks = report.picks.map((p) => `${size(p.bytes)}: ${p.algorithm} (${Object.entries(p.predictedMs).map(([a, t]) => `${a} ${ms(t)}`).join(', ')} ms predicted)`);
  const measured = report.buckets.map((b) => `${size(b.bytes)} by ${b.algorithm}: predicted ${ms(b.predictedMs)} ms, measured ${ms(b.measuredMs)} ms`);
  const head = report.kind === 'formed' ? 'collective=auto, links probed' : `collective=auto, refit after step ${report.step + 1}`;
  return { type: 'log', level: 'info', message: `${head}: ${link}; ${[...measured, ...picks].join('; ')}`, t: performance.now() };
}
