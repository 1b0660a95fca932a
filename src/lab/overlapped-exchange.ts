// The replica check's hash exchange, left on the wire while the next step computes. After every step
// each rank hashes its parameters and the hashes are all-gathered (parallel/replicas.ts). The hash
// itself must be taken between steps, but the all-gather is a ring of N-1 small messages whose latency
// the next step's forward pass can hide: so it runs alongside that step, and is settled (a disagreement
// stops the run, naming the step whose replicas differed) as soon as that step is over. Its time on the
// wire (from when its messages start) counts as communication of the step it ran in.
import { spansWithin, type Interval } from '../train/intervals';

/** All-gathered parameter hashes differ: the replicas have diverged, and the run must stop. */
export class ReplicasDisagree extends Error {
  override readonly name = 'ReplicasDisagree';
}

export class OverlappedExchange {
  private pending: Promise<void> | null = null;
  private busy: { start?: number; end?: number } | null = null;

  /** Whether an exchange was started and not settled yet. */
  get inFlight(): boolean {
    return this.pending !== null;
  }

  /**
   * Starts `exchange` now; its outcome is held for settle(). It calls `onWire` when its messages start
   * (what comes before, such as waiting for the parameters and hashing them, is not communication).
   * One at a time.
   */
  start(exchange: (onWire: () => void) => Promise<void>): void {
    if (this.pending) throw new Error('the previous hash exchange has not been settled');
    const busy: { start?: number; end?: number } = {};
    this.busy = busy;
    const running = exchange(() => void (busy.start ??= performance.now())).finally(() => {
      if (busy.start !== undefined) busy.end = performance.now();
    });
    // Held until settle(): it must not surface as an unhandled rejection first.
    running.catch(() => undefined);
    this.pending = running;
  }

  /**
   * Waits for the exchange in flight, if any, and throws what it threw, unless `forgive` says the error
   * may pass (a tab lost during it: the ring re-forms and checks its replicas again). A disagreement
   * is never forgiven.
   */
  async settle(forgive: (error: unknown) => boolean = () => false): Promise<void> {
    const pending = this.pending;
    this.pending = null;
    try {
      await pending;
    } catch (error) {
      if (error instanceof ReplicasDisagree || !forgive(error)) throw error;
    }
  }

  /** The last exchange's time on the wire within [from, to]; one still running counts until `to`. */
  busyWithin(from: number, to: number): Interval[] {
    return this.busy ? spansWithin([this.busy], from, to) : [];
  }
}
