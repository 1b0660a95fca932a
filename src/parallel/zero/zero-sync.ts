// The collectives of ZeRO stages 1-3 around one rank's training step (Rajbhandari et al., 2020):
// - gradients: reduce-scattered layer group by layer group, so each rank ends with the room's average
//   of ITS shard only (stage 1 keeps a full local gradient buffer, stages 2-3 a shard);
// - clipping: the global norm is the sum of every shard's squared norm (one scalar all-reduce);
// - update: the optimizer holds state for this rank's shard only and updates just that shard (on the
//   device, or with offload on the host's CPU backend);
// - parameters: stages 1-2 all-gather the updated shards after the update; stage 3 keeps only the
//   shard and all-gathers each layer group just before its forward and again before the backward
//   segments that read it (the MLP's first layer passes no gradient on, so its backward reads none).
// Replica check (stage 3): every rank hashes each layer as the training forward gathers it (the bytes
// are there for a moment anyway) and combines the hashes in layout order: equal digests on every rank
// mean every rank computed with the same parameters, and no rank ever holds the whole vector for it.
// Memory: one slot pool of largest-layer size (shard-storage.ts), a small staging buffer for reduced
// gradients, and device reads in fixed windows (windowed-io.ts), so that ZeRO's own transfers do not
// leave layer-sized staging buffers behind on WebGPU.
// Every rank runs the same sequence of collectives, so ids come from one counter per rank.
import type { Range } from '../../collective/chunking';
import { runAllGather, runAllReduce, runReduceScatter } from '../../collective/collectives';
import type { RunStats } from '../../collective/executor';
import { type Partition, shardBoundaries } from '../../collective/partition';
import type { ChunkListener, Transport } from '../../collective/types';
import { type Backend, type DeviceBuffer, viewOf, VIEW_ALIGNMENT } from '../../engine/backend';
import { CpuBackend } from '../../engine/cpu-backend';
import type { FlatRange, ParamLayout } from '../../model/layout';
import { type Batch, type ForwardResult, type GradHooks, gradGroupsOf, type SegmentedModel } from '../../model/model';
import type { Optimizer } from '../../train/optimizer';
import type { GradSyncResult, LayerwisePasses } from '../../train/trainer';
import { largestGroup, type ZeroStorage } from './shard-storage';
import { addWindowed, readWindowed } from './windowed-io';
import { COLLECTIVE_IDS } from '../../collective/collective-ids';
import { paramsHash } from '../../model/layout';

/** Chunk boundaries of a sub-range of the flat buffer: chunk r is the part of `range` in rank r's shard. */
export function boundariesWithin(partition: Partition, range: FlatRange): number[] {
  const end = range.offset + range.length;
  return shardBoundaries(partition).map((b) => Math.min(end, Math.max(range.offset, b)) - range.offset);
}

/** The part of `range` this rank owns, relative to the range's start. */
function ownedWithin(partition: Partition, range: FlatRange, rank: number): Range {
  const b = boundariesWithin(partition, range);
  return { offset: b[rank], length: b[rank + 1] - b[rank] };
}

/**
 * Elements of the device buffer reduced gradients pass through on their way into the shard, a piece
 * at a time (stages 2-3): 16 Ki floats (64 KiB), or the largest layer when that is smaller. Small
 * beside a layer; each piece costs one write and one add.
 */
export const STAGING_FLOATS = 1 << 14;

export function zeroStagingFloats(layout: ParamLayout, stage: number): number {
  return stage >= 2 ? Math.min(STAGING_FLOATS, largestGroup(layout)) : VIEW_ALIGNMENT;
}

export interface ZeroSyncOptions {
  backend: Backend;
  transport: Transport;
  model: SegmentedModel;
  storage: ZeroStorage;
  partition: Partition;
  optimizer: Optimizer;
  learningRate: (step: number) => number;
  clipNorm: number;
  microBatches: number;
  /** ZeRO-Offload: the optimizer lives on this host backend (the Optimizer was built on it). */
  offload?: CpuBackend;
  onChunk?: ChunkListener;
}

/** One hash of many (layer groups' hashes in layout order), 16 hex digits like paramsHash. */
function combineHashes(parts: readonly string[]): string {
  return paramsHash(new TextEncoder().encode(parts.join(';')));
}

interface Traffic {
  bytesSent: number;
  bytesReceived: number;
}

export class ZeroSync {
  private seq = 0;
  private traffic: Traffic = { bytesSent: 0, bytesReceived: 0 };
  /** Where the bytes of the collectives now running are counted: the step's, the replica check's, or nowhere. */
  private account: 'step' | 'check' | 'none' = 'step';
  /** Reduce-scatters in flight; their results are added to the shard in launch order. */
  private accumulated: Promise<void> = Promise.resolve();
  private inFlight: Promise<unknown>[] = [];
  private readonly staging: DeviceBuffer;
  private readonly sumSq: DeviceBuffer;
  private readonly host: { params: DeviceBuffer; grads: DeviceBuffer } | null;
  private readonly stage: 1 | 2 | 3;
  private readonly rank: number;
  /** Stage 3: the hash of each layer group as the last training forward gathered it, and that step. */
  private forwardHashes: { round: number; groups: Map<string, string> } | null = null;
  /** The largest host array this rank's collectives allocated at once during training (floats). */
  private hostPeakFloats = 0;
  /** Bytes the replica check's own gathers put on the wire (verification passes), since last taken. */
  private checkTraffic: Traffic = { bytesSent: 0, bytesReceived: 0 };

  constructor(private readonly o: ZeroSyncOptions) {
    this.stage = o.storage.stage;
    this.rank = o.transport.rank;
    // Where a reduced gradient piece lands, a window at a time, before it is added into the shard.
    this.staging = o.backend.alloc(zeroStagingFloats(o.model.layout, this.stage), 'zero.staging', 'workspace');
    this.sumSq = o.backend.alloc(VIEW_ALIGNMENT, 'zero.clip.sumSq', 'workspace');
    const shardLength = o.storage.shard.length;
    this.host = o.offload
      ? { params: o.offload.alloc(shardLength, 'offload.params', 'params'), grads: o.offload.alloc(shardLength, 'offload.grads', 'grads') }
      : null;
  }

  /** The trainer's layer-by-layer passes (stages 2-3). */
  readonly passes: LayerwisePasses = {
    forward: (batch, gradScale, step) => this.forward(batch, gradScale, step),
    backward: (step, micro) => this.backward(step, micro),
  };

  /** Stage 1: the model's own backward announces each group's final gradients; reduce-scatter them. */
  gradHooks = (step: number, micro: number): GradHooks | undefined => {
    if (this.stage !== 1 || micro !== this.o.microBatches - 1) return undefined;
    return { onGradReady: (range) => this.reduceScatterInPlace(range, step) };
  };

  /** Waits for the reduce-scatters, clips by the global norm and updates this rank's shard. */
  gradSync = async (ctx: { step: number }): Promise<GradSyncResult> => {
    const t0 = performance.now();
    const flights = this.inFlight;
    this.inFlight = [];
    await Promise.all(flights);
    await this.accumulated;
    if (this.o.clipNorm > 0) await this.clip(ctx.step);
    const commMs = performance.now() - t0;
    await this.update(ctx.step);
    return { ...this.takeTraffic(), commMs };
  };

  /** Stages 1-2: all-gather the updated shards into every rank's full parameters. */
  afterUpdate = async (ctx: { step: number }): Promise<GradSyncResult> => {
    if (this.stage === 3) return this.takeTraffic();
    const { backend, storage, partition } = this.o;
    const full = new Float32Array(partition.total);
    this.noteHost(partition.total);
    full.set(await readWindowed(backend, storage.paramShardView()), storage.shard.offset);
    const stats = await runAllGather(this.o.transport, full, { ...this.ids(ctx.step), boundaries: shardBoundaries(partition), onEvent: this.o.onChunk });
    this.count(stats);
    backend.write(viewOf(storage.params), full);
    return this.takeTraffic();
  };

  /** The full parameter vector on the host (stage 3: an all-gather every rank must join). */
  async fullParams(round: number): Promise<Float32Array> {
    const { backend, storage, partition } = this.o;
    if (this.stage < 3) return readWindowed(backend, viewOf(storage.params));
    const full = new Float32Array(partition.total);
    full.set(await readWindowed(backend, storage.paramShardView()), storage.shard.offset);
    this.account = 'none';
    try {
      await runAllGather(this.o.transport, full, { ...this.ids(round), boundaries: shardBoundaries(partition), onEvent: this.o.onChunk });
    } finally {
      this.account = 'step';
    }
    return full;
  }

  /**
   * Stage 3: the whole parameter vector and then each optimizer state buffer, in flat order, all-gathered
   * a piece at a time (at most the largest layer group) and handed to `each`, which is awaited before the
   * next piece is gathered: the streamed export of a model no rank holds whole. A collective every rank
   * joins; its bytes count as neither the step's nor the replica check's.
   */
  async gatherInPieces(round: number, each: (floats: Float32Array) => Promise<void>): Promise<void> {
    const { backend, storage, partition, optimizer } = this.o;
    const piece = largestGroup(this.o.model.layout);
    const sources = [{ backend, buf: storage.params }, ...optimizer.stateBuffers().map(({ buf }) => ({ backend: optimizer.backend, buf }))];
    this.account = 'none';
    try {
      for (const source of sources) {
        for (let at = 0; at < partition.total; at += piece) {
          const ids = this.ids(round); // taken before any await: every rank numbers collectives alike
          await each(await this.gatherToHost({ offset: at, length: Math.min(piece, partition.total - at) }, ids, source));
        }
      }
    } finally {
      this.account = 'step';
    }
  }

  /**
   * Stage 3: a digest of the whole parameter vector that every rank computes without holding it: the
   * hashes of the layer groups, as gathered, combined in layout order. `afterStep`: the digest of the
   * parameters the step just taken gathered for its forward (no collective). Otherwise a verification
   * pass gathers each group, one at a time, into a layer-sized host array, hashes it and drops it (a
   * collective every rank joins: the start of a run, after a re-form, after the last step).
   */
  async replicaDigest(round: number, afterStep: boolean): Promise<string> {
    const groups = this.o.model.layout.groups;
    if (afterStep) {
      const seen = this.forwardHashes;
      if (!seen || seen.groups.size !== groups.length) throw new Error(`ZeRO-3: the last training forward did not gather every layer group (round ${seen?.round ?? 'none'})`);
      return combineHashes(groups.map((g) => `${g.name}:${seen.groups.get(g.name)}`));
    }
    const hashes: string[] = [];
    this.account = 'check';
    try {
      for (const group of groups) {
        const ids = this.ids(round); // taken before any await: every rank numbers collectives alike
        const data = await this.gatherToHost(group.range, ids);
        hashes.push(`${group.name}:${paramsHash(data)}`);
      }
    } finally {
      this.account = 'step';
    }
    return combineHashes(hashes);
  }

  /**
   * Host memory this rank holds for ZeRO, in bytes by kind: `staging`, the largest host array its
   * collectives allocated at once (stage 3: one layer group; stages 1-2: the whole vector the
   * parameters are all-gathered into); `offload`, the optimizer's host buffers (ZeRO-Offload).
   */
  hostBytes(): { staging: number; offload: number } {
    const offload = this.o.offload ? Object.values(this.o.offload.memory()).reduce((a, b) => a + b, 0) : 0;
    return { staging: 4 * this.hostPeakFloats, offload };
  }

  private noteHost(floats: number): void {
    if (this.account === 'step') this.hostPeakFloats = Math.max(this.hostPeakFloats, floats);
  }

  /** Bytes the replica check's verification passes sent and received since the last call. */
  takeCheckTraffic(): Traffic {
    const t = this.checkTraffic;
    this.checkTraffic = { bytesSent: 0, bytesReceived: 0 };
    return t;
  }

  dispose(): void {
    this.o.backend.free(this.staging);
    this.o.backend.free(this.sumSq);
    if (this.host && this.o.offload) {
      this.o.offload.free(this.host.params);
      this.o.offload.free(this.host.grads);
    }
  }

  // --- passes -------------------------------------------------------------------------------------

  private async forward(batch: Batch, gradScale: number, step: number): Promise<ForwardResult> {
    const { model } = this.o;
    if (this.stage < 3) return model.forward(batch, gradScale);
    // Evaluation forwards (gradScale 0) gather too, but their bytes are not the training step's.
    this.account = gradScale !== 0 ? 'step' : 'none';
    // A training forward's gathers are hashed for the replica check, once per step (micro-batches
    // gather the same parameters again).
    let record: Map<string, string> | null = null;
    if (gradScale !== 0 && this.forwardHashes?.round !== step) {
      this.forwardHashes = { round: step, groups: new Map() };
      record = this.forwardHashes.groups;
    }
    try {
      const { result, segments } = model.forwardSegments(batch, gradScale);
      for (const segment of segments) {
        await this.gather(segment.groups, step, record);
        segment.record();
        this.releaseParams(segment.groups);
      }
      return result;
    } finally {
      this.account = 'step';
    }
  }

  private async backward(step: number, micro: number): Promise<void> {
    const { model, storage, backend } = this.o;
    if (this.stage === 1) {
      model.backward(this.gradHooks(step, micro));
      return;
    }
    for (const segment of model.backwardSegments()) {
      const gradGroups = gradGroupsOf(segment);
      if (this.stage === 3) await this.gather(segment.groups, step);
      // Parameters are released before the gradient slots are read: an MLP layer's weight gradients
      // reuse the slot its weights were gathered into.
      for (const group of gradGroups) backend.fill(viewOf(storage.gradHolding.acquire(group)), 0);
      segment.record();
      if (this.stage === 3) this.releaseParams(segment.groups);
      for (const group of gradGroups) await this.reduceScatterSlot(group, step);
    }
  }

  // --- collectives --------------------------------------------------------------------------------

  private ids(round: number): { round: number; collective: number } {
    return { round, collective: COLLECTIVE_IDS.zeroCollectives.first + this.seq++ };
  }

  private count(stats: RunStats): void {
    const into = this.account === 'step' ? this.traffic : this.account === 'check' ? this.checkTraffic : null;
    if (!into) return;
    into.bytesSent += stats.bytesSent;
    into.bytesReceived += stats.bytesReceived;
  }

  private takeTraffic(): Traffic {
    const t = this.traffic;
    this.traffic = { bytesSent: 0, bytesReceived: 0 };
    return t;
  }

  /** Stage 3: all-gather each group's parameters from the shards into a slot. */
  private async gather(groups: readonly string[], round: number, record: Map<string, string> | null = null): Promise<void> {
    const { backend, storage, layout } = { ...this.o, layout: this.o.model.layout };
    for (const group of groups) {
      const range = layout.groups.find((g) => g.name === group)!.range;
      const ids = this.ids(round); // taken before any await: every rank numbers collectives alike
      const slot = storage.paramHolding.acquire(group);
      const data = await this.gatherToHost(range, ids);
      if (record && !record.has(group)) record.set(group, paramsHash(data));
      backend.write(viewOf(slot, 0, range.length), data);
    }
  }

  /**
   * Stage 3: one layer group's parameters (or, with `source`, another buffer sharded like them: the
   * optimizer state), all-gathered from the shards into a layer-sized host array.
   */
  private async gatherToHost(
    range: FlatRange,
    ids: { round: number; collective: number },
    source: { backend: Backend; buf: DeviceBuffer } = { backend: this.o.backend, buf: this.o.storage.params },
  ): Promise<Float32Array> {
    const { storage, partition } = this.o;
    const data = new Float32Array(range.length);
    this.noteHost(range.length);
    const mine = ownedWithin(partition, range, this.rank);
    if (mine.length > 0) {
      const shardOffset = range.offset + mine.offset - storage.shard.offset;
      data.set(await readWindowed(source.backend, viewOf(source.buf, shardOffset, mine.length)), mine.offset);
    }
    const stats = await runAllGather(this.o.transport, data, { ...ids, boundaries: boundariesWithin(partition, range), onEvent: this.o.onChunk });
    this.count(stats);
    return data;
  }

  private releaseParams(groups: readonly string[]): void {
    for (const group of groups) this.o.storage.paramHolding.release(group);
  }

  /**
   * Stages 2-3: reads a group's gradient slot to the host and hands the slot back (the next layer may
   * reuse it at once), then reduce-scatters in the background and adds this rank's part into its shard.
   */
  private async reduceScatterSlot(group: string, round: number): Promise<void> {
    const { backend, storage, partition, model } = this.o;
    const range = model.layout.groups.find((g) => g.name === group)!.range;
    const shard = storage.grads;
    const ids = this.ids(round); // taken before any await: every rank numbers collectives alike
    // The windows are read one after another (one staging buffer); the slot is lent again only after.
    const data = await readWindowed(backend, viewOf(this.slotOf(group), 0, range.length));
    this.noteHost(range.length);
    storage.gradHolding.release(group);
    const reduced = runReduceScatter(this.o.transport, data, { ...ids, average: true, boundaries: boundariesWithin(partition, range), onEvent: this.o.onChunk });
    reduced.catch(() => undefined); // awaited (and its error raised) below, in launch order
    const mine = ownedWithin(partition, range, this.rank);
    this.accumulated = this.accumulated.then(async () => {
      const { stats } = await reduced;
      this.count(stats);
      if (mine.length === 0) return;
      const target = viewOf(shard, range.offset + mine.offset - storage.shard.offset, mine.length);
      addWindowed(backend, target, data.subarray(mine.offset, mine.offset + mine.length), viewOf(this.staging));
    });
    this.inFlight.push(this.accumulated);
    this.accumulated.catch(() => undefined);
  }

  private slotOf(group: string): DeviceBuffer {
    const e = this.o.model.layout.entries.find((x) => x.group === group)!;
    return this.o.storage.gradHolding.view(e, 'gradients').buf;
  }

  /** Stage 1: reduce-scatter a final gradient range of the full buffer; the owned part is written back. */
  private reduceScatterInPlace(range: FlatRange, round: number): void {
    const { backend, storage, partition } = this.o;
    const ids = this.ids(round);
    const view = viewOf(storage.grads, range.offset, range.length);
    const mine = ownedWithin(partition, range, this.rank);
    const done = (async () => {
      const data = await backend.read(view);
      const { stats } = await runReduceScatter(this.o.transport, data, { ...ids, average: true, boundaries: boundariesWithin(partition, range), onEvent: this.o.onChunk });
      this.count(stats);
      if (mine.length > 0) backend.write(viewOf(storage.grads, range.offset + mine.offset, mine.length), data.subarray(mine.offset, mine.offset + mine.length));
    })();
    done.catch(() => undefined);
    this.inFlight.push(done);
  }

  /** Global-norm clipping over the shards: each rank's sum of squares, all-reduced, then a local clip. */
  private async clip(round: number): Promise<void> {
    const { backend, storage } = this.o;
    const g = storage.gradShardView();
    const s = viewOf(this.sumSq, 0, 1);
    backend.sumSquares(s, g);
    const total = await backend.read(s);
    this.count(await runAllReduce(this.o.transport, total, { ...this.ids(round), onEvent: this.o.onChunk }));
    backend.write(s, total);
    backend.clipByNorm(g, s, this.o.clipNorm);
  }

  /** AdamW/SGD on this rank's shard: on the device, or (offload) on the host with the host's state. */
  private async update(step: number): Promise<void> {
    const { backend, storage, optimizer } = this.o;
    const lr = this.o.learningRate(step);
    if (!this.host || !this.o.offload) {
      optimizer.update(storage.params, storage.grads, step + 1, lr);
      return;
    }
    const params = await readWindowed(backend, storage.paramShardView());
    const grads = await readWindowed(backend, storage.gradShardView());
    const host = this.o.offload;
    host.write(viewOf(this.host.params), params);
    host.write(viewOf(this.host.grads), grads);
    optimizer.update(this.host.params, this.host.grads, step + 1, lr);
    backend.write(storage.paramShardView(), await host.read(viewOf(this.host.params)));
  }
}
