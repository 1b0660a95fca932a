// Data-parallel gradient averaging with communication overlapped on computation. The model's backward
// pass announces each layer's gradient range as soon as it is final (reverse layer order); ranges are
// packed into buckets of about `bucketElements`, and each full bucket is read back from the device and
// ring-all-reduced while the GPU still computes the layers below it. The trainer's gradSync hook then
// only waits for the buckets in flight and writes the averages back.
//
// Communication time is reported as busy time, from the moment the first bucket's gradients are on the
// host to the moment the last bucket's averages are: the gradSync hook's own duration is only the part
// the backward pass did not hide, so stepMs / max(computeMs, commMs) measures the overlap.
import { runAllReduce } from '../collective/collectives';
import type { WireFormat } from '../collective/executor';
import type { ChunkListener, Transport } from '../collective/types';
import { viewOf, type Backend } from '../engine/backend';
import type { FlatRange } from '../model/layout';
import type { GradHooks, Model } from '../model/model';
import type { GradSyncResult } from '../train/trainer';

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
}

/** Collective ids per round: buckets count up from here; other collectives of a round use lower ids. */
export const GRADIENT_COLLECTIVE_BASE = 16;

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
  /** Ranges announced by the backward pass this step. */
  private announced: FlatRange[] = [];

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
        if (this.pendingElements >= this.o.bucketElements) this.launch(step);
      },
    };
  };

  /** The trainer's gradSync: launch what is left, wait for every bucket, report bytes and waiting. */
  gradSync = async (ctx: { step: number }): Promise<GradSyncResult> => {
    if (this.pending.length) this.launch(ctx.step);
    const results = await Promise.all(this.buckets.map((bucket) => bucket.done));
    // Every tensor's gradient must have been averaged, or the replicas would drift apart.
    const missed = this.o.model.layout.entries.find(
      (e) => !this.announced.some((r) => r.offset <= e.offset && e.offset + e.length <= r.offset + r.length),
    );
    if (missed) throw new Error(`the backward pass never announced the gradient of ${missed.name}`);
    this.buckets = [];
    const busyFrom = Math.min(...results.map((r) => r.onHost));
    const busyTo = Math.max(...results.map((r) => r.finished));
    return {
      bytesSent: results.reduce((sum, r) => sum + r.bytesSent, 0),
      bytesReceived: results.reduce((sum, r) => sum + r.bytesReceived, 0),
      commMs: results.length ? busyTo - busyFrom : 0,
    };
  };

  private beginStep(): void {
    this.pending = [];
    this.pendingElements = 0;
    this.buckets = [];
    this.announced = [];
  }

  private launch(step: number): void {
    const range = spanOf(this.pending);
    this.announced.push(...this.pending);
    this.pending = [];
    this.pendingElements = 0;
    const collective = GRADIENT_COLLECTIVE_BASE + this.buckets.length;
    const { backend, transport, model, onChunk, wire } = this.o;
    const view = viewOf(model.grads, range.offset, range.length);
    const done = (async () => {
      const t0 = performance.now();
      const data = await backend.read(view);
      const onHost = performance.now();
      const stats = await runAllReduce(transport, data, { round: step, collective, average: true, wire, onEvent: onChunk });
      backend.write(view, data);
      return { bytesSent: stats.bytesSent, bytesReceived: stats.bytesReceived, readMs: onHost - t0, onHost, finished: performance.now() };
    })();
    // A failed bucket is reported by gradSync's Promise.all; keep it from surfacing as unhandled first.
    done.catch(() => undefined);
    this.buckets.push({ range, done });
  }
}
