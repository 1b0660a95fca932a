// PowerSGD gradient averaging as a trainer gradSync hook: the gradient is read back once, its matrices
// are compressed to rank r (collective/powersgd.ts: error feedback, warm-started Q shared by the room),
// the two small all-reduces run on the ring (or, given a picker, by the algorithm it picks for each
// size: collective=auto, collective-choice.ts), and the room's rank-r average is written back for the
// optimizer. Both all-reduces give every rank the same bits, so replicas stay bitwise equal.
// Optionally (PyTorch's start_powerSGD_iter) the first `denseSteps` steps all-reduce the whole gradient
// the same way instead, every byte of them counted, and the compressor starts after them.
// The lab builds it for `compression=powersgd&rank=r` (strategy.ts); tests and scripts/comm-sim.ts
// also build it directly (parallel/comm-room.ts).
import { PowerSgdCompressor, powerSgdPlan, runPowerSgd, type AllReduceRunner, type PowerSgdPlan } from '../collective/powersgd';
import type { ChunkListener, Transport } from '../collective/types';
import { viewOf, type Backend } from '../engine/backend';
import type { ParamLayout } from '../model/layout';
import type { Model } from '../model/model';
import type { GradSyncContext, GradSyncResult } from '../train/trainer';
import { COLLECTIVE_IDS } from '../collective/collective-ids';
import { runPickedAllReduce, type CollectivePicker } from './collective-choice';

export interface PowerSgdSyncOptions {
  backend: Backend;
  transport: Transport;
  model: Model;
  /** Rank of the approximation (PowerSGD's r): 1, 2 and 4 are the paper's settings. */
  rank: number;
  /** Seed of the starting Q: the SAME on every rank of the room. */
  seed: number;
  /** Compress a matrix only when its factors are more than this many times smaller (powerSgdPlan). Default 1. */
  minCompressionRate?: number;
  /** Dense ring all-reduces for the first this-many steps (0-based steps below it), PowerSGD after. Default 0. */
  denseSteps?: number;
  /** Picks each all-reduce's algorithm by its size (collective=); absent: the ring. */
  picker?: CollectivePicker;
  onChunk?: ChunkListener;
}

/** The PowerSGD plan of a model's layout: every 2-D weight compressed if it gains, biases dense. */
export function planForLayout(layout: ParamLayout, rank: number, minCompressionRate = 1): PowerSgdPlan {
  return powerSgdPlan(layout.entries, layout.totalLength, rank, minCompressionRate);
}

export class PowerSgdSync {
  readonly compressor: PowerSgdCompressor;

  constructor(private readonly o: PowerSgdSyncOptions) {
    if (o.model.grads.length !== o.model.layout.totalLength) throw new RangeError('PowerSGD needs the full gradient buffer on every rank (not a ZeRO shard)');
    const denseSteps = o.denseSteps ?? 0;
    if (!Number.isSafeInteger(denseSteps) || denseSteps < 0) throw new RangeError(`PowerSGD dense warm-up steps must be an integer >= 0, got ${o.denseSteps}`);
    this.compressor = new PowerSgdCompressor(planForLayout(o.model.layout, o.rank, o.minCompressionRate), o.seed);
  }

  get picker(): CollectivePicker | undefined {
    return this.o.picker;
  }

  /** Which tensors are compressed, and the floats of the two all-reduces per step. */
  get plan(): PowerSgdPlan {
    return this.compressor.plan;
  }

  /** The trainer's gradSync: this rank's gradient becomes the room's rank-r average. */
  gradSync = async (ctx: GradSyncContext): Promise<GradSyncResult> => {
    const { backend, transport, model, onChunk } = this.o;
    const view = viewOf(model.grads);
    const grads = await backend.read(view);
    const opts = { round: ctx.step, collective: COLLECTIVE_IDS.powerSgdFactors.first, onEvent: onChunk };
    const allReduce: AllReduceRunner = (data, o) => runPickedAllReduce(this.picker, transport, data, o);
    const stats = ctx.step < (this.o.denseSteps ?? 0)
      ? await allReduce(grads, { ...opts, average: true })
      : await runPowerSgd(transport, this.compressor, grads, opts, allReduce);
    this.picker?.endStep(ctx.step);
    backend.write(view, grads);
    return { bytesSent: stats.bytesSent, bytesReceived: stats.bytesReceived };
  };
}
