// Where a model's parameters and gradients live under ZeRO (the model sees a TensorStorage):
// - stage 1: full parameter and gradient buffers (only the optimizer state is sharded);
// - stage 2: full parameters, a gradient SHARD; each layer's gradients are computed into a pooled
//   layer-sized slot, reduce-scattered, and added into the owner's shard;
// - stage 3: parameter and gradient SHARDS; a layer's parameters are all-gathered into a slot just
//   before the ops that read them and the slot is handed back right after.
// Slots are pooled (allocated on first use, reused every layer and step), so nothing is allocated in
// the steady-state loop; they are accounted as 'workspace', apart from params/grads/optimizer.
// Parameters and gradients borrow from ONE pool: a model that records a layer's input gradients
// (reading the weights) before its weight gradients hands the weights' slot to the gradients, so
// stage 3 holds a single layer-sized slot on top of its shards (the MLP does; the GPT's blocks need
// their weights and gradients at once, so it holds two, four around its tied head).
import { type Backend, type DeviceBuffer, type View, viewOf } from '../../engine/backend';
import type { Range } from '../../collective/chunking';
import type { LayoutEntry, ParamLayout } from '../../model/layout';
import type { TensorStorage } from '../../model/model';

export type ZeroStageNumber = 1 | 2 | 3;

/** A pool of equal-sized device buffers, one lent per layer group at a time. */
export class SlotPool {
  private readonly free: DeviceBuffer[] = [];
  private readonly all: DeviceBuffer[] = [];

  constructor(
    private readonly backend: Backend,
    readonly slotLength: number,
    private readonly label: string,
  ) {}

  take(): DeviceBuffer {
    return this.free.pop() ?? this.grow();
  }

  give(slot: DeviceBuffer): void {
    this.free.push(slot);
  }

  /** Slots ever allocated (a GPT head needs two at once, an MLP layer one). */
  get size(): number {
    return this.all.length;
  }

  dispose(): void {
    for (const slot of this.all) this.backend.free(slot);
    this.all.length = 0;
    this.free.length = 0;
  }

  private grow(): DeviceBuffer {
    const slot = this.backend.alloc(this.slotLength, `${this.label}.${this.all.length}`, 'workspace');
    this.all.push(slot);
    return slot;
  }
}

/** Elements of the largest layer group: the size of every slot. */
export function largestGroup(layout: ParamLayout): number {
  return Math.max(...layout.groups.map((g) => g.range.length));
}

/** One kind of tensor (parameters or gradients): full buffer, or shard plus per-group slots. */
class Holding {
  /** Full buffer, or this rank's shard. */
  readonly buffer: DeviceBuffer;
  private readonly resident = new Map<string, DeviceBuffer>();

  constructor(
    private readonly backend: Backend,
    private readonly layout: ParamLayout,
    shard: Range,
    label: string,
    kind: 'params' | 'grads',
    /** Sharded holdings borrow their per-group slots here; null: a full buffer. */
    private readonly slots: SlotPool | null,
  ) {
    this.buffer = backend.alloc(this.sharded ? shard.length : layout.totalLength, `${label}.${kind}${this.sharded ? '.shard' : ''}`, kind);
    backend.fill(viewOf(this.buffer), 0);
  }

  get sharded(): boolean {
    return this.slots !== null;
  }

  view(e: LayoutEntry, what: string): View {
    if (!this.sharded) return viewOf(this.buffer, e.offset, e.length);
    const slot = this.resident.get(e.group);
    if (!slot) throw new Error(`ZeRO: the ${what} of layer group "${e.group}" are not gathered (asked for ${e.name})`);
    const group = this.layout.groups.find((g) => g.name === e.group)!;
    return viewOf(slot, e.offset - group.range.offset, e.length);
  }

  /** Lends a slot to `group` (its tensors resolve into it until `release`). */
  acquire(group: string): DeviceBuffer {
    if (!this.slots) throw new Error('ZeRO: a full buffer has no slots');
    if (this.resident.has(group)) throw new Error(`ZeRO: layer group "${group}" is already resident`);
    const slot = this.slots.take();
    this.resident.set(group, slot);
    return slot;
  }

  release(group: string): void {
    const slot = this.resident.get(group);
    if (!slot || !this.slots) throw new Error(`ZeRO: layer group "${group}" is not resident`);
    this.resident.delete(group);
    // Ops recorded on the slot run before anything later written to it (backends order writes after
    // recorded work), so it can be lent again at once.
    this.slots.give(slot);
  }

  dispose(): void {
    this.backend.free(this.buffer);
  }
}

export class ZeroStorage implements TensorStorage {
  readonly paramHolding: Holding;
  readonly gradHolding: Holding;
  /** The slots both holdings borrow from (null at stage 1: nothing is sharded but the optimizer). */
  readonly slots: SlotPool | null;
  private readonly entries: Map<string, LayoutEntry>;
  /** Called on dispose (the ZeRO collectives free their own workspace with the model). */
  onDispose: (() => void) | undefined;

  constructor(
    private readonly backend: Backend,
    readonly layout: ParamLayout,
    readonly stage: ZeroStageNumber,
    /** This rank's shard of the flat buffers (from the partition). */
    readonly shard: Range,
    label: string,
  ) {
    if (shard.length <= 0) throw new Error(`ZeRO: this rank owns no parameters (${layout.totalLength} elements are too few for the room)`);
    this.entries = new Map(layout.entries.map((e) => [e.name, e]));
    this.slots = stage >= 2 ? new SlotPool(backend, largestGroup(layout), `${label}.slot`) : null;
    this.paramHolding = new Holding(backend, layout, shard, label, 'params', stage >= 3 ? this.slots : null);
    this.gradHolding = new Holding(backend, layout, shard, label, 'grads', this.slots);
  }

  get params(): DeviceBuffer {
    return this.paramHolding.buffer;
  }

  get grads(): DeviceBuffer {
    return this.gradHolding.buffer;
  }

  param(name: string): View {
    return this.paramHolding.view(this.entry(name), 'parameters');
  }

  grad(name: string): View {
    return this.gradHolding.view(this.entry(name), 'gradients');
  }

  /** ZeRO-3: the shard (models initialise that range only); stages 1-2 hold every parameter. */
  get heldParams(): Range | undefined {
    return this.paramHolding.sharded ? { ...this.shard } : undefined;
  }

  /** The full vector, or (stage 3) the shard's values alone. */
  writeParams(values: Float32Array): void {
    const held = this.paramHolding.sharded ? this.shard.length : this.layout.totalLength;
    if (values.length !== held && values.length !== this.layout.totalLength) throw new RangeError(`expected ${held} parameters, got ${values.length}`);
    const data = values.length === held ? values : values.subarray(this.shard.offset, this.shard.offset + this.shard.length);
    this.backend.write(viewOf(this.params), data);
  }

  /** This rank's shard of the parameters, wherever they are held. */
  paramShardView(): View {
    return this.paramHolding.sharded ? viewOf(this.params) : viewOf(this.params, this.shard.offset, this.shard.length);
  }

  /** This rank's shard of the gradients (after the reduce-scatter: the room's average). */
  gradShardView(): View {
    return this.gradHolding.sharded ? viewOf(this.grads) : viewOf(this.grads, this.shard.offset, this.shard.length);
  }

  dispose(): void {
    this.onDispose?.();
    this.paramHolding.dispose();
    this.gradHolding.dispose();
    this.slots?.dispose();
  }

  private entry(name: string): LayoutEntry {
    const e = this.entries.get(name);
    if (!e) throw new Error(`no tensor named "${name}"`);
    return e;
  }
}
