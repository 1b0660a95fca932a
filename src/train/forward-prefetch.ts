// The next step's forward pass, started while this step's gradients are still being averaged. With
// eager updates (eager-update.ts) each range of parameters is final as soon as its average lands; the
// MLP's first layer (98% of its parameters and most of its forward) is a sum of one matmul per block of
// its weight rows (mlp.ts), so each block of the next step's forward can run as soon as its parameters
// are updated, under the communication of the blocks still on the wire. Without it a step could not
// start computing until its previous step's last average had landed: that head (forward and the
// backward up to the first bucket) ran with nothing to overlap.
//
// Same bits as not prefetching: the blocks are recorded in the model's one fixed order, each after the
// updates of the parameters it reads (the device runs work in the order it was recorded).
import type { Backend } from '../engine/backend';
import { coveredBy, type FlatRange } from '../model/layout';
import type { StartedForward } from '../model/model';
import { DeviceBusy } from './device-busy';
import type { Interval } from './intervals';

export class ForwardPrefetch {
  private readonly busy = new DeviceBusy();

  constructor(
    private readonly backend: Backend,
    /** The 0-based optimizer step this forward belongs to (its first micro-batch). */
    readonly step: number,
    readonly forward: StartedForward,
  ) {}

  /**
   * Records, in order, every next block whose parameters `updated` covers, and submits them. Called
   * after each eager update; a block still waiting on its parameters stops the walk (order is fixed).
   */
  advance(updated: readonly FlatRange[]): void {
    const { forward } = this;
    const start = performance.now();
    const before = forward.recorded;
    while (forward.current && forward.recorded < forward.blocks.length && coveredBy(updated, forward.blocks[forward.recorded])) {
      forward.recordBlock();
    }
    // Nobody waits for these: the next step's work is queued behind them anyway.
    if (forward.recorded > before) this.busy.track(start, this.backend.flush());
  }

  /**
   * When the recorded blocks kept the device busy (from recording until the device finished them)
   * within [from, to]: a step reports the computation in its own time span, so the blocks count in the
   * step during which they ran, and one still running at `to` counts until then.
   */
  busyWithin(from: number, to: number): Interval[] {
    return this.busy.within(from, to);
  }
}
