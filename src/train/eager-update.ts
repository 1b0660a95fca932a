// The optimizer update applied range by range, each as soon as its averaged gradient has landed, while
// the rest of the gradients are still on the wire (data parallelism). AdamW and SGD are elementwise, so
// updating ranges one at a time is bitwise the same as updating everything at once; what changes is
// that the update no longer waits for the slowest bucket. Only without global-norm clipping: the clip
// scale needs every gradient before any update may start.
//
// A step must never be half applied: if the gradient sync fails after some ranges were updated (a tab
// vanished mid-all-reduce), rollback() puts those ranges back exactly as they were, so the step can be
// redone from its start (elastic rooms) or the run stopped with a consistent state. That costs a copy of
// the parameters and the optimizer state, taken with the step's first eager update (while the other
// buckets are still on the wire) and kept in `workspace` buffers.
import { alignUp, VIEW_ALIGNMENT, viewOf, type Backend, type DeviceBuffer } from '../engine/backend';
import type { FlatRange, ParamLayout } from '../model/layout';
import { DeviceBusy } from './device-busy';
import type { Interval } from './intervals';
import type { Optimizer } from './optimizer';

interface Saved {
  live: DeviceBuffer;
  before: DeviceBuffer;
}

export class EagerUpdates {
  private saved: Saved[];
  private readonly total: number;
  private done: FlatRange[] = [];
  private readonly busy = new DeviceBusy();
  private closed = true;
  private step = 1;
  private lr: number | undefined;

  constructor(
    private readonly backend: Backend,
    private readonly optimizer: Optimizer,
    private readonly params: DeviceBuffer,
    private readonly grads: DeviceBuffer,
    private readonly layout: ParamLayout,
  ) {
    this.total = optimizer.stateRange.length;
    if (!EagerUpdates.possible(backend, optimizer, params, grads)) {
      throw new RangeError('eager updates need the whole optimizer state on this device and full parameter and gradient buffers (not a ZeRO shard)');
    }
    const live = [params, ...optimizer.stateBuffers().map((s) => s.buf)];
    this.saved = live.map((buf) => ({ live: buf, before: backend.alloc(this.total, `${buf.label}.before-step`, 'workspace') }));
  }

  /**
   * Whether ranges can be updated one by one here: the optimizer holds the state of every parameter, on
   * the same device as full parameter and gradient buffers (not a ZeRO shard, not ZeRO-Offload's host).
   */
  static possible(backend: Backend, optimizer: Optimizer, params: DeviceBuffer, grads: DeviceBuffer): boolean {
    const { offset, length } = optimizer.stateRange;
    return offset === 0 && params.length === length && grads.length === length && optimizer.backend === backend;
  }

  /** Device bytes of the copies kept for rollback (parameters and each optimizer state buffer). */
  get snapshotBytes(): number {
    return 4 * this.total * this.saved.length;
  }

  /** Opens a step: `step` is the optimizer's 1-based step, `lr` its rate (the configured one if undefined). */
  begin(step: number, lr: number | undefined): void {
    this.done = [];
    this.busy.clear();
    this.closed = false;
    this.step = step;
    this.lr = lr;
  }

  /**
   * Updates `range` now, if it can be updated on its own and the step is open. The optimizer's views
   * start on VIEW_ALIGNMENT boundaries, so the range must; an end inside the padding after a tensor is
   * taken to the next boundary (the padding is zero and stays zero). Returns whether it did; what it
   * did not update, rest() returns.
   */
  apply = (range: FlatRange): boolean => {
    if (this.closed || range.length <= 0 || range.offset % VIEW_ALIGNMENT !== 0) return false;
    let end = range.offset + range.length;
    if (end > this.total) throw new RangeError(`range [${range.offset}, ${end}) outside the ${this.total} parameters`);
    if (end % VIEW_ALIGNMENT !== 0) {
      const padded = Math.min(alignUp(end), this.total);
      const from = end;
      if (this.layout.entries.some((e) => e.offset < padded && from < e.offset + e.length)) return false;
      end = padded;
    }
    range = { offset: range.offset, length: end - range.offset };
    if (this.done.some((r) => r.offset < end && range.offset < r.offset + r.length)) {
      throw new Error(`range [${range.offset}, ${end}) would be updated twice in one step`);
    }
    const start = performance.now();
    if (this.done.length === 0) {
      // One copy of each whole buffer, with the step's first update: the later updates (the last one
      // ends the step) then copy nothing.
      for (const s of this.saved) this.backend.copy(viewOf(s.before), viewOf(s.live));
    }
    this.optimizer.update(this.params, this.grads, this.step, this.lr, { offset: range.offset, length: range.length });
    this.done.push({ offset: range.offset, length: range.length });
    this.busy.track(start, this.backend.flush());
    return true;
  };

  /** The ranges updated so far in this step (ends taken to the alignment boundary, as apply() did). */
  get updated(): readonly FlatRange[] {
    return this.done;
  }

  /**
   * When each update of this step kept the device busy (from recording until the device finished it),
   * within [from, to]: the step does not wait for its last updates to finish (what reads the
   * parameters is ordered after them), so one still running counts until `to`.
   */
  busyWithin(from: number, to: number): Interval[] {
    return this.busy.within(from, to);
  }

  /**
   * Closes the step and returns the parts of the flat buffers that no apply() updated and that hold
   * parameters, in order. Alignment padding between and after tensors is left out: it is zero and has
   * zero gradient, so an update leaves it zero (and the last bucket usually stops where the last
   * tensor does, so there is then nothing left to record or wait for).
   */
  rest(): FlatRange[] {
    this.closed = true;
    const gaps: FlatRange[] = [];
    let at = 0;
    for (const r of [...this.done].sort((a, b) => a.offset - b.offset)) {
      if (r.offset > at) gaps.push({ offset: at, length: r.offset - at });
      at = r.offset + r.length;
    }
    if (at < this.total) gaps.push({ offset: at, length: this.total - at });
    const holdsParameters = (gap: FlatRange) =>
      this.layout.entries.some((e) => e.offset < gap.offset + gap.length && gap.offset < e.offset + e.length);
    return gaps.filter(holdsParameters);
  }

  /**
   * Closes the step and restores every range updated in it to its state before the step. Returns how
   * many parameters it restored.
   */
  async rollback(): Promise<number> {
    this.closed = true;
    await this.busy.settled();
    let restored = 0;
    for (const r of this.done) {
      for (const s of this.saved) this.backend.copy(viewOf(s.live, r.offset, r.length), viewOf(s.before, r.offset, r.length));
      restored += r.length;
    }
    this.done = [];
    await this.backend.flush();
    return restored;
  }

  dispose(): void {
    for (const s of this.saved) this.backend.free(s.before);
    this.saved = [];
  }
}
