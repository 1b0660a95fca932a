// Which all-reduce algorithm carries each gradient bucket (`collective=auto|ring|tree|rhd|naive`).
// A fixed choice is used as is. `auto` measures the links when the ring forms, over the transport the
// gradients use: a ping-pong of two sizes with the ring neighbour (one message at a time) and a fan-out
// of two sizes (every rank sends to every other at once and sums what arrives, which is what shows the
// cost of receiving many messages at once when ranks share cores). From those it fits the cost model's
// alpha (per round), beta (per byte on a link) and gamma (per byte a rank receives and sums), see
// collective/cost-model.ts, and picks the algorithm with the smallest predicted time for each bucket's
// size, naive included. During training each rank times its buckets' all-reduces; every `refitEvery`
// steps the room agrees on a new fit from the probes and those timings.
//
// The model alone can be wrong in a way its refits never correct: they only time what auto chose (on
// real data channels it under-predicted naive's fan-out and auto ran 1.3x slower than the best fixed
// algorithm). So auto also measures the alternatives (collective/measured-choice.ts): the first
// TRIAL_STEPS steps after the ring forms run the candidates in turn, TRIAL_REPEATS times each, every
// bucket of a step by the step's candidate where the model finds it plausible (predicted within
// TRIAL_WITHIN times its pick); which step runs which is a function of the step's index since forming
// and the agreed fit alone. Each step's communication time is kept under every algorithm and size
// class it ran, all-gathered with the refits' samples (and once more when the trials end), and from
// then on the room's measured medians override the model within a measured size class; halfway between
// refits a size reruns its closest measured competitor (RETRY_EVERY), so that unlucky trials heal.
//
// Every rank must pick the same algorithm for the same bucket, or their schedules would not meet: the
// room all-gathers every rank's samples (a fixed-size record each) and every rank fits the same
// samples in rank order with the same deterministic code (fitLinkCost), so every rank holds the same
// fit bit for bit; picks depend only on that fit and on the bucket size. A refit is all-gathered
// alongside a step's buckets and takes effect from the next step on.
//
// The dense gradient's buckets (data-parallel.ts) are not the only all-reduces it picks for: PowerSGD's
// two small ones and DiLoCo's outer one run through runPickedAllReduce, so `collective=auto` gives them
// the same per-size choice (a fixed choice, the ring included, is used as is).
import { allReduceSchedule, ALL_REDUCE_SCHEDULES, runAllReduceBy, type AllReduceSchedule } from '../collective/allreduce-algorithms';
import { DEFAULT_MAX_MESSAGE_BYTES } from '../collective/chunking';
import { runFixedAllGather } from '../collective/collectives';
import { COLLECTIVE_IDS } from '../collective/collective-ids';
import { decodeRows, encodeRows } from '../collective/fixed-records';
import { costTerms, fitLinkCost, latencyBoundSeconds, predictSeconds, type CostSample, type LinkCostFit } from '../collective/cost-model';
import { chooseAlgorithm, decodeTimings, encodeTimings, measuredCells, sizeClass, trialCandidates, type MeasuredCell, type TimedBucket } from '../collective/measured-choice';
import { wireElementBytes, type RunOptions, type RunStats } from '../collective/executor';
import type { Schedule, ScheduleOptions } from '../collective/schedules';
import type { Transport } from '../collective/types';
import type { LabEvent, LinkFit } from '../shared/events';

export type CollectiveChoice = 'auto' | AllReduceSchedule;

export const COLLECTIVE_CHOICES: readonly CollectiveChoice[] = ['auto', ...ALL_REDUCE_SCHEDULES];

/** The probes' message sizes in bytes: one latency-bound, one bandwidth-bound. */
export const PROBE_SIZES = [256, 256 * 1024] as const;
/**
 * Repetitions per size; the median one counts (the first of a fresh channel is often slow). Not the
 * fastest: on a loaded machine the fastest fan-out is a lucky one that misses what summing at once
 * costs (measured: gamma 4x too small at 8 ranks), and the all-reduces it predicts are medians too.
 */
export const PROBE_REPEATS = 5;
/** The candidates `auto` chooses from: every all-reduce the lab can run (ps is a strategy, not an all-reduce). */
export const AUTO_CANDIDATES: readonly AllReduceSchedule[] = ['ring', 'tree', 'rhd', 'naive'];
/** Training timings each rank keeps beside its probes (the newest); what the room's refits fit. */
const TRAINING_SAMPLES = 64;
/** Trials: each candidate within this factor of the model's pick's predicted time is timed too. */
export const TRIAL_WITHIN = 4;
/** Trials: steps each candidate runs in turn. */
export const TRIAL_REPEATS = 2;
/** Steps after the one the ring formed at that may run trials; the room agrees on their timings after the last. */
export const TRIAL_STEPS = TRIAL_REPEATS * AUTO_CANDIDATES.length;
/**
 * After the trials, every RETRY_EVERY steps (halfway between refits) a size runs its measured runner-up
 * again if that was within RETRY_WITHIN of its choice: two unlucky trial steps on a loaded machine must
 * not make the second-fastest algorithm lose for good (its timings stay as measured otherwise).
 */
export const RETRY_EVERY = 10;
export const RETRY_WITHIN = 1.25;
/** Timings each rank keeps per algorithm and size class (the newest: a few steps' worth), and how many such cells at most. */
const TIMINGS_PER_CELL = 3;
const TIMING_CELLS = 16;
/** The fan-out's messages are numbered after the ping-pong's within the probe's collective id. */
const FAN_OUT_FIRST_CHUNK = 1024;

export type LinkFitReport = LinkFit;

export interface CollectivePickerOptions {
  choice: CollectiveChoice;
  transport: Transport;
  /** Steps between the room's refits (auto only). */
  refitEvery?: number;
  /** The largest message the schedules send, in bytes (their default for the wire's element size). */
  partBytes?: number;
  /** Trials: candidates predicted within this factor of the model's pick are timed too (TRIAL_WITHIN by default). */
  trialWithin?: number;
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
 * its successor and echoes its predecessor's, all at once. One-way time = median round trip / 2: one
 * round, the size on one link, the size received. A collective: every rank calls it with the same `round`.
 */
export async function probeLink(transport: Transport, round: number, sizes: readonly number[] = PROBE_SIZES, repeats = PROBE_REPEATS): Promise<CostSample[]> {
  const { rank, world } = transport;
  const next = (rank + 1) % world;
  const prev = (rank + world - 1) % world;
  const collective = COLLECTIVE_IDS.linkProbe.first;
  const tag = (message: number, pong: boolean) => ({ round, collective, chunk: 2 * message + (pong ? 1 : 0) });
  const echo = (async () => {
    for (let m = 0; m < sizes.length * repeats; m++) await transport.send(prev, tag(m, true), await transport.recv(prev, tag(m, false)));
  })();
  const samples: CostSample[] = [];
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
    samples.push({ rounds: 1, linkBytes: bytes, receivedBytes: bytes, seconds: Math.max(median(trips), 1e-3) / 2000 });
  }
  await echo;
  return samples;
}

/**
 * The fan-out: every rank sends a message of each size to every other rank at once and adds what
 * arrives into one float vector, as the naive all-reduce does; a repetition's time runs from this
 * rank's sends to its last sum. One round, the size on each link, (world - 1) sizes received. The
 * first repetition also lines the ranks up and is not counted. A collective like probeLink.
 */
export async function probeFanOut(transport: Transport, round: number, sizes: readonly number[] = PROBE_SIZES, repeats = PROBE_REPEATS): Promise<CostSample[]> {
  const { rank, world } = transport;
  const peers = Array.from({ length: world }, (_, r) => r).filter((r) => r !== rank);
  const collective = COLLECTIVE_IDS.linkProbe.first;
  const samples: CostSample[] = [];
  let message = FAN_OUT_FIRST_CHUNK;
  for (const bytes of sizes) {
    const payload = new Uint8Array(bytes - (bytes % 4));
    const sum = new Float32Array(payload.byteLength / 4);
    const times: number[] = [];
    for (let i = 0; i <= repeats; i++, message++) {
      const tag = { round, collective, chunk: message };
      const t0 = performance.now();
      await Promise.all([
        ...peers.map((peer) => transport.send(peer, tag, payload)),
        ...peers.map(async (peer) => {
          const got = await transport.recv(peer, tag);
          const values = new Float32Array(got.buffer, got.byteOffset, got.byteLength >> 2);
          for (let k = 0; k < sum.length; k++) sum[k] += values[k];
        }),
      ]);
      if (i > 0) times.push(performance.now() - t0);
    }
    samples.push({ rounds: 1, linkBytes: payload.byteLength, receivedBytes: (world - 1) * payload.byteLength, seconds: Math.max(median(times), 1e-3) / 1000 });
  }
  return samples;
}

/** Every probe `auto` runs when the ring forms: the ping-pong, then the fan-out. */
export async function probeRoom(transport: Transport, round: number): Promise<CostSample[]> {
  const pingPong = await probeLink(transport, round);
  return transport.world > 2 ? [...pingPong, ...(await probeFanOut(transport, round))] : pingPong;
}

/** Floats per sample on the wire: rounds, link bytes, received bytes, seconds. */
const SAMPLE_FIELDS = 4;

/** A rank's samples as a fixed-size record (collective/fixed-records.ts): what the room all-gathers. */
export function encodeSamples(samples: readonly CostSample[], capacity: number): Uint8Array {
  return encodeRows(samples.map((s) => [s.rounds, s.linkBytes, s.receivedBytes, s.seconds]), SAMPLE_FIELDS, capacity, 'samples');
}

export function decodeSamples(bytes: Uint8Array): CostSample[] {
  return decodeRows(bytes, SAMPLE_FIELDS, 'samples').map(([rounds, linkBytes, receivedBytes, seconds]) => ({ rounds, linkBytes, receivedBytes, seconds }));
}

/** The room's fit: every rank's samples, in rank order, fitted together (the same bits on every rank). */
export function roomFit(perRank: readonly CostSample[][]): LinkCostFit {
  return fitLinkCost(perRank.flat());
}

export class CollectivePicker {
  /** The fit every rank holds bit for bit (auto), once the ring has been probed. */
  agreed: LinkCostFit | null = null;
  /** The room's measured medians per algorithm and size class, agreed with the fit (the same on every rank). */
  measured: MeasuredCell[] = [];
  /** This rank's probe samples (kept) and its newest training timings. */
  private probes: CostSample[] = [];
  private readonly training: CostSample[] = [];
  /** This rank's newest timings per algorithm and size class (key: class:algorithm), least recently timed first. */
  private readonly timings = new Map<string, TimedBucket[]>();
  /** This rank's all-reduces so far per size picked for and algorithm (key: bytes|algorithm). */
  private readonly usage = new Map<string, number>();
  /** The current step's timed all-reduces and the span from the first one's start to the last one's end (ms). */
  private stepTimed: { algorithm: AllReduceSchedule; pickedBytes: number; bytes: number }[] = [];
  private stepSpan = { start: Infinity, end: -Infinity };
  /** The step the buckets now run for, and its index among the distinct steps since the ring formed. */
  private step: number | undefined;
  private stepIndex = -1;
  private ready: Promise<void> | null = null;
  /** The round the room formed at: its fit's all-gather used that round's message keys. */
  private formedAt: number | undefined;
  /** A refit on the wire: the next step's picks wait for it. */
  private refit: Promise<void> | undefined;
  private lastBuckets: (LinkFitReport['buckets'][number] & { pickedBytes: number })[] = [];

  constructor(private readonly o: CollectivePickerOptions) {
    if (!COLLECTIVE_CHOICES.includes(o.choice)) throw new RangeError(`collective must be one of ${COLLECTIVE_CHOICES.join(', ')}, got "${o.choice}"`);
  }

  private get partBytes(): number {
    return this.o.partBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  }

  /**
   * Awaited before each bucket's all-reduce: the room's fit (auto: the ring's first call probes the
   * links, with `round` the step it trains) and a refit still being agreed. A fixed choice waits for nothing.
   */
  async beforeBucket(round: number): Promise<void> {
    if (this.o.choice !== 'auto' || this.o.transport.world < 2) return;
    if (round !== this.step) {
      this.step = round;
      this.stepIndex++;
    }
    await (this.ready ??= this.form(round));
    await this.refit;
  }

  private async form(round: number): Promise<void> {
    this.formedAt = round;
    this.probes = await probeRoom(this.o.transport, round);
    this.agreed = await this.agree(round, this.probes);
    this.report('formed', round, PROBE_SIZES);
  }

  /**
   * All-gathers each rank's samples and timings, fits the samples and pools the timings: the same bits
   * on every rank. Every rank's record has the same size (the probes are the same on every rank).
   */
  private async agree(round: number, samples: readonly CostSample[]): Promise<LinkCostFit> {
    const sampleRecord = encodeSamples(samples, this.probes.length + TRAINING_SAMPLES);
    const timingRecord = encodeTimings([...this.timings.values()].flat(), TIMINGS_PER_CELL * TIMING_CELLS);
    const record = new Uint8Array(sampleRecord.byteLength + timingRecord.byteLength);
    record.set(sampleRecord);
    record.set(timingRecord, sampleRecord.byteLength);
    const { payloads } = await runFixedAllGather(this.o.transport, record, { round, collective: COLLECTIVE_IDS.linkFit.first });
    const split = sampleRecord.byteLength;
    this.measured = measuredCells(payloads.map((p) => decodeTimings(p.subarray(split))));
    return roomFit(payloads.map((p) => decodeSamples(p.subarray(0, split))));
  }

  /**
   * The algorithm for a bucket of `bytes` (call after beforeBucket): a trial while the trials last, then
   * the fastest by the room's measured medians and the model (collective/measured-choice.ts).
   */
  pick(bytes: number): AllReduceSchedule {
    if (this.o.choice !== 'auto') return this.o.choice;
    if (!this.agreed) return 'ring'; // a room of one tab
    return (this.trialAt(bytes) ?? this.retryAt(bytes) ?? this.choose(bytes).algorithm) as AllReduceSchedule;
  }

  /** The retry of the current step for `bytes`, if any (RETRY_EVERY): the closest measured competitor of its choice. */
  private retryAt(bytes: number): AllReduceSchedule | undefined {
    const since = this.stepIndex - TRIAL_STEPS;
    if (since <= 0 || since % RETRY_EVERY !== RETRY_EVERY / 2) return undefined;
    const choice = this.choose(bytes);
    const chosen = choice.scores.find((s) => s.algorithm === choice.algorithm)!;
    const rivals = choice.scores.filter((s) => s.source === 'measured' && s.algorithm !== choice.algorithm && s.seconds <= RETRY_WITHIN * chosen.seconds);
    return rivals.length ? (rivals.reduce((a, b) => (b.seconds < a.seconds ? b : a)).algorithm as AllReduceSchedule) : undefined;
  }

  private choose(bytes: number) {
    return chooseAlgorithm(this.o.transport.world, bytes, this.agreed!, this.measured, AUTO_CANDIDATES, this.partBytes);
  }

  /**
   * The trial of the current step for `bytes`, if any: step k = 1..TRIAL_STEPS after the one the ring
   * formed at runs AUTO_CANDIDATES[(k - 1) mod 4] for every size it is plausible for (the model's pick,
   * or predicted within `trialWithin` of it) and the model's pick for the others. One algorithm for
   * every bucket of a step, so that a trial step runs as a fixed choice would, with the same buckets
   * competing for the links. Every rank computes the same from the agreed fit.
   */
  private trialAt(bytes: number): AllReduceSchedule | undefined {
    const slot = this.stepIndex - 1;
    if (slot < 0 || slot >= TRIAL_STEPS) return undefined;
    const turn = AUTO_CANDIDATES[slot % AUTO_CANDIDATES.length];
    const plausible = trialCandidates(this.o.transport.world, bytes, this.agreed!, AUTO_CANDIDATES, this.o.trialWithin ?? TRIAL_WITHIN, this.partBytes);
    return plausible.includes(turn) ? turn : undefined;
  }

  /** This rank's schedule for a bucket of `length` floats of `elementBytes` each. */
  schedule(length: number, elementBytes: number, opts: ScheduleOptions = {}): Schedule {
    const { world, rank } = this.o.transport;
    return allReduceSchedule(this.pick(length * elementBytes), world, rank, length, opts);
  }

  /**
   * A bucket's all-reduce of `bytes` took `seconds`: one sample of the model's terms for that algorithm
   * and size, and part of the step's span that endStep keeps as the timing of the algorithm in the size
   * class of `pickedBytes`, the size its algorithm was picked for (a bucket run as concurrent pieces is
   * timed whole and picked per piece).
   */
  record(algorithm: AllReduceSchedule, bytes: number, seconds: number, pickedBytes = bytes): void {
    const world = this.o.transport.world;
    if (this.o.choice !== 'auto' || world < 2 || !(seconds > 0) || !this.agreed) return;
    this.training.push({ ...costTerms(algorithm, world, bytes, this.partBytes), seconds });
    this.lastBuckets.push({ bytes, pickedBytes, algorithm, predictedMs: 1000 * predictSeconds(algorithm, world, bytes, this.agreed, this.partBytes), measuredMs: 1000 * seconds });
    // The links change: keep the probes (they anchor the sizes) and the newest timings.
    if (this.training.length > TRAINING_SAMPLES) this.training.shift();
    const usageKey = `${pickedBytes}|${algorithm}`;
    this.usage.set(usageKey, (this.usage.get(usageKey) ?? 0) + 1);
    const end = performance.now();
    this.stepSpan = { start: Math.min(this.stepSpan.start, end - 1000 * seconds), end: Math.max(this.stepSpan.end, end) };
    this.stepTimed.push({ algorithm, pickedBytes, bytes });
  }

  /**
   * The step's all-reduces are over: each (algorithm, size class) it ran gets one timing, the step's
   * communication span (first start to last end), not its own duration. Buckets that run at once
   * share links and cores: an algorithm that sends more (naive: (p-1) n per rank) finishes its own
   * bucket in time while slowing the others, and only the step's span shows that. A step that runs one
   * all-reduce is timed by it alone.
   */
  private closeStepTimings(): void {
    const seconds = (this.stepSpan.end - this.stepSpan.start) / 1000;
    const timed = this.stepTimed;
    this.stepTimed = [];
    this.stepSpan = { start: Infinity, end: -Infinity };
    if (!(seconds > 0)) return;
    // On a trial step the sizes the turn's algorithm is not plausible for run the model's pick; the span
    // is the turn's (its buckets are the step's bulk), so those buckets are not timed by it: credited with
    // it, a fast algorithm (naive at 8 tabs x 64 KiB, beside a 1 MiB bucket on tree) measured 3.3x slow.
    const slot = this.stepIndex - 1;
    const turn = slot >= 0 && slot < TRIAL_STEPS ? AUTO_CANDIDATES[slot % AUTO_CANDIDATES.length] : undefined;
    const cells = new Map<string, (typeof timed)[number]>();
    for (const t of timed) {
      if (turn !== undefined && t.algorithm !== turn) continue;
      const cell = `${sizeClass(t.pickedBytes)}:${t.algorithm}`;
      if (!cells.has(cell)) cells.set(cell, t);
    }
    // Per cell the newest timings; the cell timed longest ago goes when there are too many.
    for (const [cell, t] of cells) {
      const kept = this.timings.get(cell) ?? [];
      this.timings.delete(cell);
      this.timings.set(cell, [...kept, { ...t, seconds }].slice(-TIMINGS_PER_CELL));
      if (this.timings.size > TIMING_CELLS) this.timings.delete(this.timings.keys().next().value!);
    }
  }

  /**
   * Called by every rank when a step's buckets are all reduced: every `refitEvery` steps the room's new
   * fit is all-gathered, alongside the next step's computation; that step's buckets wait for it. Never
   * at the step the room formed at: the refit would reuse the formation's message keys (the same round
   * of the same collective id), which the data-channel transport refuses as duplicates (DiLoCo forms
   * and ends a step at its first outer step).
   */
  endStep(step: number): void {
    this.closeStepTimings();
    const every = this.o.refitEvery ?? 0;
    const buckets = this.lastBuckets;
    this.lastBuckets = [];
    // Also once the trials are over, so that their timings count from the next step on.
    const due = (every > 0 && (step + 1) % every === 0) || this.stepIndex === TRIAL_STEPS;
    if (!this.agreed || !due || step === this.formedAt) return;
    const samples = [...this.probes, ...this.training];
    this.refit = (async () => {
      this.agreed = await this.agree(step, samples);
      this.report('refit', step, [...new Set(buckets.map((b) => b.pickedBytes))], buckets.map(({ pickedBytes: _, ...b }) => b));
    })();
    // A failure (a lost tab) is the next bucket's to report; keep it from surfacing as unhandled first.
    this.refit.catch(() => undefined);
  }

  /** This rank's all-reduces so far per size picked for and algorithm (trials included), in the order first run. */
  usageSoFar(): { bytes: number; algorithm: AllReduceSchedule; buckets: number }[] {
    return [...this.usage].map(([key, buckets]) => {
      const [bytes, algorithm] = key.split('|');
      return { bytes: Number(bytes), algorithm: algorithm as AllReduceSchedule, buckets };
    });
  }

  private report(kind: LinkFitReport['kind'], step: number, sizes: readonly number[], buckets: LinkFitReport['buckets'] = []): void {
    const fit = this.agreed!;
    const world = this.o.transport.world;
    const picks = [...new Set(sizes)].map((bytes) => {
      const choice = this.choose(bytes);
      const measured = choice.scores.filter((s) => s.source === 'measured');
      return {
        bytes,
        algorithm: choice.algorithm as AllReduceSchedule,
        predictedMs: Object.fromEntries(AUTO_CANDIDATES.map((a) => [a, 1000 * predictSeconds(a, world, bytes, fit, this.partBytes)])),
        latencyBoundMs: 1000 * latencyBoundSeconds(choice.algorithm, world, bytes, fit.alpha, this.partBytes),
        source: measured.length > 0 ? ('measured' as const) : ('model' as const),
        ...(measured.length > 0 && { measuredMs: Object.fromEntries(measured.map((s) => [s.algorithm, 1000 * s.seconds])) }),
      };
    });
    const measured = this.measured.map((c) => ({
      bytes: c.bytes,
      algorithm: c.algorithm,
      measuredMs: 1000 * c.seconds,
      predictedMs: 1000 * predictSeconds(c.algorithm, world, c.bytes, fit, this.partBytes),
      samples: c.samples,
    }));
    const usage = this.usageSoFar();
    const { alpha, beta, gamma, rmsRelativeError, samples } = fit;
    this.o.onFit?.({ kind, step, world, link: { alpha, beta, gamma }, rmsRelativeError, samples, buckets, picks, measured, usage });
  }
}

/**
 * One all-reduce of `data`, in place, by the algorithm `picker` picks for its size on the wire (the ring
 * without a picker), timed as a sample for the picker's refits. A collective: every rank calls it with
 * the same size and options, and every algorithm leaves every rank the same bits.
 */
export async function runPickedAllReduce(picker: CollectivePicker | undefined, transport: Transport, data: Float32Array, opts: RunOptions & ScheduleOptions): Promise<RunStats> {
  if (!picker) return runAllReduceBy('ring', transport, data, opts);
  await picker.beforeBucket(opts.round);
  const bytes = data.length * wireElementBytes(opts.wire);
  const algorithm = picker.pick(bytes);
  const started = performance.now();
  const stats = await runAllReduceBy(algorithm, transport, data, opts);
  picker.record(algorithm, bytes, (performance.now() - started) / 1000);
  return stats;
}

const ms = (x: number) => (x < 10 ? x.toFixed(2) : x.toFixed(1));
const size = (bytes: number) => (bytes >= 1 << 20 ? `${(bytes / (1 << 20)).toFixed(1)} MiB` : bytes >= 1024 ? `${(bytes / 1024).toFixed(1)} KiB` : `${bytes} B`);

/** A fit as the dashboard's event log shows it: the link, each size's pick with every prediction, and (refits) predicted vs measured. */
export function linkFitLog(report: LinkFitReport): LabEvent {
  const { alpha, beta, gamma } = report.link;
  const rate = (perByte: number) => (perByte > 0 ? (1 / perByte / 1e6).toFixed(2) : 'inf');
  // gamma 0: the samples could not tell it from beta (a room of two), or it was too small to measure.
  const link = `alpha ${ms(alpha * 1000)} ms, beta ${rate(beta)} MB/s per link, gamma ${gamma > 0 ? `${rate(gamma)} MB/s per rank` : '0'}`;
  const list = (times: Record<string, number>) => Object.entries(times).map(([a, t]) => `${a} ${ms(t)}`).join(', ');
  const picks = report.picks.map((p) => `${size(p.bytes)}: ${p.algorithm} (${p.measuredMs ? `${list(p.measuredMs)} ms measured; ` : ''}${list(p.predictedMs)} ms predicted)`);
  const measured = report.buckets.map((b) => `${size(b.bytes)} by ${b.algorithm}: predicted ${ms(b.predictedMs)} ms, measured ${ms(b.measuredMs)} ms`);
  const head = report.kind === 'formed' ? 'collective=auto, links probed' : `collective=auto, refit after step ${report.step + 1}`;
  return { type: 'log', level: 'info', message: `${head}: ${link}; ${[...measured, ...picks].join('; ')}`, t: performance.now() };
}
