// The replica check's hash exchange, left on the wire while the next step computes. After every step
// each rank hashes its parameters and the hashes are all-gathered (parallel/replicas.ts). The hash
// itself must be taken between steps, but the all-gather is a ring of N-1 small messages whose latency
// the next step's forward pass can hide: so it runs alongside that step, and is settled (a disagreement
// stops the run, naming the step whose replicas differed) as soon as that step is over. Its time on the
// wire (from when its messages start) counts as communication of the step it ran in.
//
// Several may be in flight at once (settle's `keep`): a room that splits the batch by speed lets the
// fast tabs run up to a few steps ahead of the tabs with no samples, which apply the same update later
// (replica-check.ts). Exchanges settle oldest first, so a disagreement still names the first step whose
// replicas differed, found that many steps late.
import { spansWithin, type Interval } from '../train/intervals';

/** All-gathered parameter hashes differ: the replicas have diverged, and the run must stop. */
export class ReplicasDisagree extends Error {
  override readonly name = 'ReplicasDisagree';
}

export class OverlappedExchange {
  /** Exchanges started and not settled yet, oldest first, each with its time on the wire. */
  private pending: { running: Promise<void>; busy: { start?: number; end?: number } }[] = [];
  /** The spans on the wire of exchanges settled since the last start (a step may still ask for them). */
  private settledBusy: { start?: number; end?: number }[] = [];

  /** Whether an exchange was started and not settled yet. */
  get inFlight(): boolean {
    return this.pending.length > 0;
  }

  /** How many exchanges were started and not settled yet. */
  get inFlightCount(): number {
    return this.pending.length;
  }

  /**
   * Starts `exchange` now; its outcome is held for settle(). It calls `onWire` when its messages start
   * (what comes before, such as waiting for the parameters and hashing them, is not communication).
   * At most `depth` may be in flight: settle the older ones first.
   */
  start(exchange: (onWire: () => void) => Promise<void>, depth = 1): void {
    if (!Number.isInteger(depth) || depth < 1) throw new RangeError(`exchange depth must be a positive integer, got ${depth}`);
    if (this.pending.length >= depth) throw new Error(`the previous hash exchange has not been settled (${this.pending.length} in flight, at most ${depth})`);
    const busy: { start?: number; end?: number } = {};
    this.settledBusy = [];
    const running = exchange(() => void (busy.start ??= performance.now())).finally(() => {
      if (busy.start !== undefined) busy.end = performance.now();
    });
    // Held until settle(): it must not surface as an unhandled rejection first.
    running.catch(() => undefined);
    this.pending.push({ running, busy });
  }

  /**
   * Waits for the exchanges in flight, oldest first, until at most `keep` are left (0: all of them), and
   * throws what the first failing one threw, unless `forgive` says the error may pass (a tab lost during
   * it: the ring re-forms and checks its replicas again). A disagreement is never forgiven.
   */
  async settle(forgive: (error: unknown) => boolean = () => false, keep = 0): Promise<void> {
    while (this.pending.length > keep) {
      const oldest = this.pending.shift()!;
      this.settledBusy.push(oldest.busy);
      try {
        await oldest.running;
      } catch (error) {
        if (error instanceof ReplicasDisagree || !forgive(error)) throw error;
      }
    }
  }

  /** The exchanges' time on the wire within [from, to] since the last start; one still running counts until `to`. */
  busyWithin(from: number, to: number): Interval[] {
    return spansWithin([...this.settledBusy, ...this.pending.map((p) => p.busy)], from, to);
  }
}
