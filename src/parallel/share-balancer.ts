// Shares of the global batch by speed, for a data-parallel room of unequal tabs (a WebGPU laptop beside
// a CPU-only one). Each rank measures its own throughput: the samples it computed over the milliseconds
// its forward and backward passes took (not the time it waited on the ring). Every `every` steps the
// room all-gathers those speeds, and every rank computes the same new split from the same bytes
// (batch-shares.ts proportionalCounts: integer counts in whole micro-batches, summing to the global
// batch), so a tab that is twice as fast gets twice the samples and the synchronous step waits less on
// the slowest tab (with a long period the first split also comes early: FIRST_GATHER_AFTER). The
// gradient weights follow the shares (batch-shares.ts weightOf), so the ring's average is still exactly
// the gradient of the global batch's mean: the math does not depend on the split, only the time does.
//
// A rank may be given no samples at all (batch-shares.ts ranksWorthAShare): it then measures nothing,
// and offers the speed it was last agreed at, so that the room keeps re-balancing (it gets a share back
// when the others slow down to its speed).
//
// The speeds all-gathered after step s are not waited for there: the tabs with samples may be a few
// steps ahead of the tabs with none (lab/replica-check.ts SHARES_CHECK_LAG), and waiting would hold them
// back to the slowest tab every K steps. Every rank awaits them after step s + lag (lag = SPEEDS_LAG
// where K > SPEEDS_LAG and step s's split has a zero share, so that one all-gather is in flight at a
// time; else 0: with a shorter period the split would trail the speeds by most of a period, and with
// every rank computing the room is in step anyway), and the split takes effect at
// step s + lag + 2: the trainer may already have cut step s + lag + 1 for a forward pass it started
// during step s + lag's sync (train/forward-prefetch.ts). Every rank sets the same split from the same
// step, whatever its own timing.
import { runFixedAllGather } from '../collective/collectives';
import { COLLECTIVE_IDS } from '../collective/collective-ids';
import type { Transport } from '../collective/types';
import { proportionalCounts, type BatchShares } from '../train/batch-shares';

/** Steps between re-balancings when the config does not say (`rebalance=`). */
export const DEFAULT_REBALANCE_EVERY = 10;

/** Steps after the speeds' all-gather starts that every rank awaits it (a split with a zero share, a longer period). */
export const SPEEDS_LAG = 3;

/**
 * With a long period the first split by speed also comes early: the speeds are gathered after this
 * (0-based) step as well, from steps 1 to it (step 0 pays for warm-up), so the room leaves even shares
 * at step FIRST_GATHER_AFTER + 2 instead of every + 1. Even shares are the room's slowest steps (each
 * tab computes a third of the batch at its own speed): at batch 4096 one of them costs about as much as
 * ten steps on the split by speed. Only where every > FIRST_GATHER_AFTER + SPEEDS_LAG + 1, so that it is
 * settled before the first regular all-gather starts.
 */
export const FIRST_GATHER_AFTER = 2;

export interface SharesAgreed {
  /** The first step cut with these counts. */
  fromStep: number;
  /** Samples per rank, summing to the global batch. */
  counts: number[];
  /** Each rank's measured samples per second over the window the counts come from. */
  samplesPerSec: number[];
}

export interface ShareBalancerOptions {
  transport: Transport;
  shares: BatchShares;
  /** Re-balance after every this many steps (a positive integer). */
  every: number;
  onAgreed?: (agreed: SharesAgreed) => void;
  /**
   * A rank with no samples for a step skips it (the run loop parks it: src/lab/parked-tabs.ts) instead
   * of receiving the contributors' average (share-groups.ts); it calls skipStep for that step.
   */
  parkIdle?: boolean;
}

export class ShareBalancer {
  private rows = 0;
  private ms = 0;
  /** This rank's speed in the last agreed split (what it offers while it has no samples to measure). */
  private lastSpeed = 0;
  /** The speeds' all-gather in flight: the step after which it started, its lag, and its result. */
  private gathering: { step: number; lag: number; speeds: Promise<number[]> } | null = null;

  constructor(private readonly o: ShareBalancerOptions) {
    if (!Number.isInteger(o.every) || o.every < 1) throw new RangeError(`rebalance every ${o.every} steps: need a positive integer`);
    if (o.shares.world !== o.transport.world) throw new RangeError(`shares for ${o.shares.world} ranks in a room of ${o.transport.world}`);
  }

  /**
   * Whether this rank has a share of zero at `step`: it computes nothing then, so its gradient is known
   * to be exactly zero (train/trainer.ts) and need not be read back from the device.
   */
  hasNoShareAt(step: number): boolean {
    return this.o.shares.countsAt(step)[this.o.transport.rank] === 0;
  }

  /** Whether this rank is the only one with samples at `step` (every other rank has a share of zero). */
  soleContributorAt(step: number): boolean {
    const counts = this.o.shares.countsAt(step);
    return counts[this.o.transport.rank] === this.o.shares.globalBatch;
  }

  /** Whether ranks with no samples skip their steps (ShareBalancerOptions.parkIdle). */
  get parksIdle(): boolean {
    return this.o.parkIdle ?? false;
  }

  /**
   * A parked rank's part of `step`, which it does not train: it takes part in the speeds' all-gather
   * as afterStep would (offering its last agreed speed), so every rank agrees on the same splits.
   */
  async skipStep(step: number): Promise<void> {
    if (!this.parksIdle || !this.hasNoShareAt(step)) throw new Error(`rank ${this.o.transport.rank} skips step ${step} but has a share of it (or the room does not park idle ranks)`);
    await this.afterStep(step, 0);
  }

  /** The samples per rank at `step`, as every rank of the room holds them. */
  countsAt(step: number): readonly number[] {
    return this.o.shares.countsAt(step);
  }

  /**
   * Called by every rank after the gradient sync of `step` (0-based) with the milliseconds its passes
   * took. Every K-th step it starts a collective (the speeds' all-gather) and `lag` steps later it waits
   * for it: every rank must call it after every step, with its own measure.
   */
  async afterStep(step: number, computeMs: number): Promise<void> {
    const { transport, shares, every } = this.o;
    // Step 0 compiles pipelines and fills caches: its time says nothing about the tab's speed.
    if (step > 0 && computeMs > 0) {
      this.rows += shares.countsAt(step)[transport.rank];
      this.ms += computeMs;
    }
    if ((step + 1) % every === 0 || (step === FIRST_GATHER_AFTER && every > FIRST_GATHER_AFTER + SPEEDS_LAG + 1)) this.startGathering(step);
    if (this.gathering && step >= this.gathering.step + this.gathering.lag) {
      const speeds = await this.gathering.speeds;
      this.gathering = null;
      this.agree(step, speeds);
    }
  }

  /** The room's split from the gathered speeds, in force two steps after `step` (where they were awaited). */
  private agree(step: number, samplesPerSec: number[]): void {
    const { transport, shares } = this.o;
    if (samplesPerSec.some((s) => !(s > 0) || !Number.isFinite(s))) return;
    this.lastSpeed = samplesPerSec[transport.rank];
    const counts = proportionalCounts(samplesPerSec, shares.globalBatch, shares.quantum);
    shares.set(step + 2, counts);
    this.o.onAgreed?.({ fromStep: step + 2, counts, samplesPerSec });
  }

  private startGathering(step: number): void {
    const { transport } = this.o;
    // A rank with nothing measured yet (the first window is step 0 alone when every = 1) counts as
    // average: the room agrees on "no information" rather than on a guess.
    // A rank with a zero share measured nothing: it offers its last agreed speed.
    const mine = this.rows > 0 && this.ms > 0 ? (this.rows * 1000) / this.ms : this.lastSpeed;
    this.rows = 0;
    this.ms = 0;
    const speeds = runFixedAllGather(transport, new Uint8Array(new Float64Array([mine]).buffer), {
      round: step,
      collective: COLLECTIVE_IDS.shareSpeeds.first,
    }).then(({ payloads }) => payloads.map((bytes) => new Float64Array(bytes.slice().buffer)[0]));
    // Awaited a few steps later (afterStep); a run that ends or re-forms first leaves it unread.
    speeds.catch(() => undefined);
    // Only a split with a zero share lets ranks run ahead of others; with every rank computing, the room
    // is in step anyway and the new split is worth having at once. Every rank reads the same counts.
    const lag = this.o.every > SPEEDS_LAG && this.o.shares.countsAt(step).includes(0) ? SPEEDS_LAG : 0;
    this.gathering = { step, lag, speeds };
  }
}
