// Shares of the global batch by speed, for a data-parallel room of unequal tabs (a WebGPU laptop beside
// a CPU-only one). Each rank measures its own throughput: the samples it computed over the milliseconds
// its forward and backward passes took (not the time it waited on the ring). Every `every` steps the
// room all-gathers those speeds, and every rank computes the same new split from the same bytes
// (batch-shares.ts proportionalCounts: integer counts in whole micro-batches, summing to the global
// batch), so a tab that is twice as fast gets twice the samples and the synchronous step waits less on
// the slowest tab. The gradient weights follow the shares (batch-shares.ts weightOf), so the ring's
// average is still exactly the gradient of the global batch's mean: the math does not depend on the
// split, only the time does.
//
// A rank may be given no samples at all (batch-shares.ts ranksWorthAShare): it then measures nothing,
// and offers the speed it was last agreed at, so that the room keeps re-balancing (it gets a share back
// when the others slow down to its speed).
//
// The split agreed after step s takes effect at step s + 2: the trainer may already have cut step s + 1
// for a forward pass it started during step s's sync (train/forward-prefetch.ts).
import { runFixedAllGather } from '../collective/collectives';
import { COLLECTIVE_IDS } from '../collective/collective-ids';
import type { Transport } from '../collective/types';
import { proportionalCounts, type BatchShares } from '../train/batch-shares';

/** Steps between re-balancings when the config does not say (`rebalance=`). */
export const DEFAULT_REBALANCE_EVERY = 10;

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
}

export class ShareBalancer {
  private rows = 0;
  private ms = 0;
  /** This rank's speed in the last agreed split (what it offers while it has no samples to measure). */
  private lastSpeed = 0;

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

  /** The samples per rank at `step`, as every rank of the room holds them. */
  countsAt(step: number): readonly number[] {
    return this.o.shares.countsAt(step);
  }

  /**
   * Called by every rank after the gradient sync of `step` (0-based) with the milliseconds its passes
   * took. On a re-balancing step it is a collective: every rank must call it, with its own measure.
   */
  async afterStep(step: number, computeMs: number): Promise<void> {
    const { transport, shares, every } = this.o;
    // Step 0 compiles pipelines and fills caches: its time says nothing about the tab's speed.
    if (step > 0 && computeMs > 0) {
      this.rows += shares.countsAt(step)[transport.rank];
      this.ms += computeMs;
    }
    if ((step + 1) % every !== 0) return;
    // A rank with nothing measured yet (the first window is step 0 alone when every = 1) counts as
    // average: the room agrees on "no information" rather than on a guess.
    // A rank with a zero share measured nothing: it offers its last agreed speed.
    const mine = this.rows > 0 && this.ms > 0 ? (this.rows * 1000) / this.ms : this.lastSpeed;
    this.rows = 0;
    this.ms = 0;
    const { payloads } = await runFixedAllGather(transport, new Uint8Array(new Float64Array([mine]).buffer), {
      round: step,
      collective: COLLECTIVE_IDS.shareSpeeds.first,
    });
    const samplesPerSec = payloads.map((bytes) => new Float64Array(bytes.slice().buffer)[0]);
    if (samplesPerSec.some((s) => !(s > 0) || !Number.isFinite(s))) return;
    this.lastSpeed = samplesPerSec[transport.rank];
    const counts = proportionalCounts(samplesPerSec, shares.globalBatch, shares.quantum);
    shares.set(step + 2, counts);
    this.o.onAgreed?.({ fromStep: step + 2, counts, samplesPerSec });
  }
}
