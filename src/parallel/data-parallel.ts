// Data-parallel gradient averaging with communication overlapped on computation. The model's backward
// pass announces each layer's gradient range as soon as it is final (reverse layer order); ranges are
// packed into buckets of about `bucketElements`, and each full bucket is read back from the device and
// all-reduced (the ring, or the algorithm collective-choice.ts picks for its size) while the GPU still computes the layers below it. The trainer's gradSync hook then
// only waits for the buckets in flight and writes the averages back.
//
// Communication time is reported as busy time: the time during which at least one bucket's gradients
// were on the host and its averages not yet back (the union of those intervals, which the trainer also
// gets, to measure how much of it the computation hid). The gradSync hook's own duration is only the
// part the backward pass did not hide, so stepMs / max(computeMs, commMs) measures the overlap.
//
// In a room of unequal tabs a ShareBalancer (share-balancer.ts) re-splits the global batch by speed
// after the sync of every K-th step; the sampler and the gradient weights follow (train/batch-shares.ts).
// A tab with a share of zero reads nothing back and sends nothing: the tabs with samples all-reduce among
// themselves and send it their average (share-groups.ts), which it writes back and applies once per
// span rather than per piece (it has no backward pass to overlap). Where the run loop parks such a tab
// (balancer.parksIdle, src/lab/parked-tabs.ts) it trains no step at all and the contributors send it
// nothing.
import { runAllReduceBy } from '../collective/allreduce-algorithms';
import { wireElementBytes, type WireFormat } from '../collective/executor';
import type { ChunkListener, Transport } from '../collective/types';
import { viewOf, type Backend } from '../engine/backend';
import { coveredBy, type FlatRange } from '../model/layout';
import type { GradHooks, Model } from '../model/model';
import { unionMs, type Interval } from '../train/intervals';
import type { GradSyncContext, GradSyncResult } from '../train/trainer';
import { COLLECTIVE_IDS } from '../collective/collective-ids';
import type { CollectivePicker } from './collective-choice';
import type { ShareBalancer } from './share-balancer';
import { reduceByShares } from './share-groups';
import { traceMark } from '../shared/step-trace';

export interface DataParallelOptions {
  backend: Backend;
  transport: Transport;
  model: Model;
  /** Bucket size in floats; a bucket is launched once it holds at least this many. */
  bucketElements: number;
  /** Micro-batches per optimizer step: only the last one's backward produces final gradients. */
  microBatches: number;
  /** 'f16': gradients travel as fp16 inside the ring (half the bytes; every rank still ends bit-equal). */
  wire?: WireFormat;
  onChunk?: ChunkListener;
  /** A room of unequal tabs: shares of the global batch by measured speed (share-balancer.ts). */
  balancer?: ShareBalancer;
  /** Picks each bucket's all-reduce algorithm (collective-choice.ts); absent: the ring. */
  picker?: CollectivePicker;
  /**
   * TEST ONLY (production never sets it): multiplies every averaged gradient by this factor, a
   * deliberate bug that the parity tests must catch (data-parallel.test.ts, "the tolerance catches").
   */
  testOnlyGradientScale?: number;
}

/**
 * A step's first bucket is launched at this fraction of the bucket size: it holds what the backward pass
 * finishes first, and the sooner that is on the wire, the less of the step runs before any communication
 * (PyTorch DDP keeps its first bucket small for the same reason). 4-tab MNIST on 2 cores: the first
 * all-reduce starts after one of the first layer's eight weight-gradient blocks instead of three; same
 * step time there (the cores are saturated), step / max(compute, comm) 1.27 -> 1.20.
 */
export const FIRST_BUCKET_FRACTION = 1 / 4;

interface Bucket {
  range: FlatRange;
  done: Promise<{ bytesSent: number; bytesReceived: number; readMs: number; onHost: number; finished: number }>;
}

/** Merges consecutive ranges that the backward pass announced (descending, maybe with padding gaps). */
function spanOf(ranges: FlatRange[]): FlatRange {
  const start = Math.min(...ranges.map((r) => r.offset));
  const end = Math.max(...ranges.map((r) => r.offset + r.length));
  return { offset: start, length: end - start };
}

export class DataParallelSync {
  private pending: FlatRange[] = [];
  private pendingElements = 0;
  private buckets: Bucket[] = [];
  /** Collective ids used this step (a bucket may take several). */
  private collectives = 0;
  /** Ranges announced by the backward pass this step. */
  private announced: FlatRange[] = [];
  /** The trainer's eager update while its gradSync runs (see GradSyncContext.applyUpdate). */
  private applyUpdate: ((range: FlatRange) => boolean) | undefined;
  /** Ranges averaged before gradSync was called: they get their update when it is. */
  private averagedEarly: FlatRange[] = [];
  /** Counts steps (beginStep calls), so that a piece of an earlier, failed step is recognised. */
  private round = 0;

  constructor(private readonly o: DataParallelOptions) {
    if (!(o.bucketElements > 0)) throw new RangeError(`bucketElements must be positive, got ${o.bucketElements}`);
  }

  /** The trainer's gradHooks: bucket only the backward pass whose gradients are final. */
  hooks = (step: number, micro: number): GradHooks | undefined => {
    if (micro !== this.o.microBatches - 1) return undefined;
    this.beginStep();
    return {
      onGradReady: (range) => {
        this.pending.push(range);
        this.pendingElements += range.length;
        const threshold = this.buckets.length === 0 ? Math.ceil(this.o.bucketElements * FIRST_BUCKET_FRACTION) : this.o.bucketElements;
        if (this.pendingElements >= threshold) this.launch(step);
      },
    };
  };

  /**
   * The trainer's gradSync: launch what is left, wait for every bucket, report bytes and waiting. With
   * the trainer's applyUpdate, each piece's parameters are updated as soon as its average has landed,
   * while the other pieces are still on the wire.
   */
  gradSync = async (ctx: GradSyncContext): Promise<GradSyncResult> => {
    traceMark('sync-start', ctx.step);
    this.applyUpdate = ctx.applyUpdate;
    for (const range of this.averagedEarly.splice(0)) this.applyUpdate?.(range);
    if (this.pending.length) this.launch(ctx.step);
    let results;
    try {
      results = await Promise.all(this.buckets.map((bucket) => bucket.done));
    } finally {
      // A piece still in flight when another failed must not update anything once the step is over.
      this.applyUpdate = undefined;
    }
    // Every tensor's gradient must have been averaged, or the replicas would drift apart.
    const missed = this.o.model.layout.entries.find((e) => !coveredBy(this.announced, e));
    if (missed) throw new Error(`the backward pass never announced the gradient of ${missed.name}`);
    this.buckets = [];
    this.o.picker?.endStep(ctx.step);
    traceMark('sync-buckets-done', ctx.step);
    await this.o.balancer?.afterStep(ctx.step, ctx.computeMs ?? 0);
    traceMark('sync-end', ctx.step);
    const commIntervals = results.map((r): Interval => [r.onHost, r.finished]);
    return {
      bytesSent: results.reduce((sum, r) => sum + r.bytesSent, 0),
      bytesReceived: results.reduce((sum, r) => sum + r.bytesReceived, 0),
      commMs: unionMs(commIntervals),
      commIntervals,
    };
  };

  private beginStep(): void {
    this.pending = [];
    this.pendingElements = 0;
    this.buckets = [];
    this.collectives = 0;
    this.announced = [];
    this.applyUpdate = undefined;
    this.averagedEarly = [];
    this.round++;
  }

  /** A piece's average is in the gradients: its update may run now (or once gradSync is called). */
  private averaged(range: FlatRange, round: number): void {
    if (round !== this.round) return; // a straggler of a failed step: the next step owns the gradients now
    if (this.applyUpdate) this.applyUpdate(range);
    else this.averagedEarly.push(range);
  }

  private launch(step: number): void {
    const range = spanOf(this.pending);
    this.announced.push(...this.pending);
    this.pending = [];
    this.pendingElements = 0;
    const { backend, transport, model, onChunk, wire, bucketElements } = this.o;
    const view = viewOf(model.grads, range.offset, range.length);
    // A span larger than a bucket (one big tensor: the MNIST MLP's first layer holds 98% of its
    // parameters) is read back once but all-reduced as several bucket-sized collectives at the same
    // time, so their ring steps can pipeline on the links instead of one big message per hop waiting
    // on the previous hop. (On 2 shared cores the gain was within run-to-run noise: there the links
    // themselves are the bound, as bench/ring.ts shows.)
    const pieces = piecesOf(range.length, bucketElements);
    const ids = COLLECTIVE_IDS.gradientBuckets;
    if (this.collectives + pieces.length > ids.count) throw new Error(`a step of more than ${ids.count} gradient buckets: raise bucket= (now ${bucketElements} floats)`);
    const firstCollective = ids.first + this.collectives;
    const round = this.round;
    this.collectives += pieces.length;
    const { picker } = this.o;
    // A share of zero computed nothing: its gradient is exactly zero (the trainer filled it and ran no
    // backward), so the ring gets +0.0s from the host instead of a read back from the device.
    const knownZero = this.o.balancer?.hasNoShareAt(step) ?? false;
    const parked = this.o.balancer?.parksIdle ?? false;
    if (knownZero && parked) throw new Error(`step ${step} gives this rank no samples: the run loop parks it (lab/parked-tabs.ts) instead of training it`);
    if (parked && this.o.testOnlyGradientScale === undefined && this.o.balancer?.soleContributorAt(step)) {
      // The only rank with samples while the others are parked: its weighted gradient (weight 1, the
      // whole global batch) is already the room's average, and nobody receives it (share-groups.ts with
      // one contributor reduces nothing and sends nothing). Reading it back and writing the same bits
      // back would change nothing, so the update runs on the device's gradient as it stands.
      traceMark('bucket-launch', step);
      const at = performance.now();
      this.averaged(range, this.round);
      traceMark('bucket-done', step);
      this.buckets.push({ range, done: Promise.resolve({ bytesSent: 0, bytesReceived: 0, readMs: 0, onHost: at, finished: at }) });
      return;
    }
    const done = (async () => {
      traceMark('bucket-launch', step);
      const t0 = performance.now();
      const data = knownZero ? new Float32Array(range.length) : await backend.read(view);
      const onHost = performance.now();
      traceMark('bucket-on-host', step);
      await picker?.beforeBucket(step);
      const elementBytes = wireElementBytes(wire);
      const pickedBytes = Math.max(...pieces.map((p) => p.length)) * elementBytes;
      const algorithm = picker?.pick(pickedBytes) ?? 'ring';
      const tComm = performance.now();
      // The step's agreed shares: with some at zero, only the ranks with samples reduce, and the others
      // receive the result (share-groups.ts). Every rank reads the same counts for the step.
      const counts = this.o.balancer?.countsAt(step);
      let wholeRoom = true;
      const stats = await Promise.all(
        pieces.map(async (piece, i) => {
          const part = data.subarray(piece.offset, piece.offset + piece.length);
          const algorithm = picker?.pick(piece.length * elementBytes) ?? 'ring';
          const opts = { round: step, collective: firstCollective + i, wire, onEvent: onChunk };
          const shared = counts ? await reduceByShares(transport, part, counts, { ...opts, algorithm, parked }) : null;
          const s = shared ?? (await runAllReduceBy(algorithm, transport, part, { ...opts, average: true }));
          traceMark('piece-reduced', step);
          if (shared && !shared.wholeRoom) wholeRoom = false;
          const scale = this.o.testOnlyGradientScale;
          if (scale !== undefined) for (let k = 0; k < part.length; k++) part[k] *= scale;
          if (!knownZero) {
            backend.write(viewOf(model.grads, range.offset + piece.offset, piece.length), part);
            this.averaged({ offset: range.offset + piece.offset, length: piece.length }, round);
            traceMark('piece-applied', step);
          }
          return s;
        }),
      );
      // A tab with no samples has no backward to overlap: one write and one update for the whole span
      // instead of one per piece (fewer device submissions on the tab that only follows).
      if (knownZero) {
        backend.write(viewOf(model.grads, range.offset, range.length), data);
        this.averaged(range, round);
        traceMark('piece-applied', step);
      }
      // The bucket's pieces run at once: one sample of the whole span (the largest piece's algorithm). The
      // picker models the whole room: a step reduced among fewer ranks is not one of its samples.
      traceMark('bucket-done', step);
      if (wholeRoom) picker?.record(algorithm, range.length * elementBytes, (performance.now() - tComm) / 1000, pickedBytes);
      return {
        bytesSent: stats.reduce((sum, x) => sum + x.bytesSent, 0),
        bytesReceived: stats.reduce((sum, x) => sum + x.bytesReceived, 0),
        readMs: onHost - t0,
        onHost,
        finished: performance.now(),
      };
    })();
    // A failed bucket is reported by gradSync's Promise.all; keep it from surfacing as unhandled first.
    done.catch(() => undefined);
    this.buckets.push({ range, done });
  }
}

/** At most this many collectives per span: a few in flight fill the links; more only add messages. */
export const MAX_PIECES = 8;

/**
 * Splits `length` elements into consecutive pieces of `bucket` elements (at most MAX_PIECES of them); a
 * remainder smaller than half a bucket joins the last piece rather than paying a collective's latency.
 */
export function piecesOf(length: number, bucket: number): FlatRange[] {
  if (!(length > 0) || !(bucket > 0)) throw new RangeError(`piecesOf needs positive sizes, got ${length} and ${bucket}`);
  bucket = Math.max(bucket, Math.ceil(length / MAX_PIECES));
  const count = Math.max(1, Math.round(length / bucket));
  const pieces: FlatRange[] = [];
  for (let i = 0; i < count; i++) {
    const offset = i * bucket;
    pieces.push({ offset, length: i === count - 1 ? length - offset : bucket });
  }
  return pieces;
}
