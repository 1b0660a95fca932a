// Local SGD / DiLoCo (Douillard et al. 2023): every rank takes H inner steps with its own optimizer on
// its own shard, then the room all-reduces the pseudo-gradient (parameters at the last sync minus
// parameters now), and every rank applies the same outer step to the parameters of the last sync:
//
//   delta  = mean over ranks of (anchor - params)
//   v      = momentum * v + delta
//   anchor = anchor - outerLr * (nesterov ? delta + momentum * v : v)
//   params = anchor                      (every rank; inner optimizer states stay each rank's own)
//
// DiLoCo's defaults: outer lr 0.7, Nesterov momentum 0.9. With H = 1, outer lr 1 and no momentum, and
// plain SGD inside, it is data parallelism: mean(p - lr g_i) = p - lr mean(g_i).
//
// One all-reduce every H steps instead of every step: 1/H of data parallelism's bytes. The exchange may
// be compressed: fp16 inside the ring, or Top-K with error feedback (each rank keeps what it did not send
// of its pseudo-gradient, codecs.ts) over the sparse all-gather, summed in rank order. Either way every
// rank gets the same mean bits and computes the same outer step, so replicas are bitwise equal after
// every outer step. The dense exchange runs on the ring, or, given a picker (collective=auto or a fixed
// algorithm, collective-choice.ts), by the algorithm picked for its size; the room refits the link
// after each outer step from its timing.
//
// It plugs into the trainer as an afterUpdate hook (the outer step runs after the inner update of every
// H-th step); the anchor is read in gradSync at the first step, before that step's update. The lab
// builds it for `mode=diloco&inner=H` (strategy.ts); tests and scripts/comm-sim.ts also build it directly.
import { runSparseAllGather } from '../collective/collectives';
import { addSparseInto, decodeSparseCompact, encodeSparseCompact, Sparsifier } from '../collective/codecs';
import type { ChunkListener, Transport } from '../collective/types';
import { viewOf, type Backend } from '../engine/backend';
import type { Model } from '../model/model';
import type { GradSyncContext, GradSyncResult } from '../train/trainer';
import { COLLECTIVE_IDS } from '../collective/collective-ids';
import { runPickedAllReduce, type CollectivePicker } from './collective-choice';

export interface OuterOptimizer {
  lr: number;
  /** 0: plain outer SGD. */
  momentum: number;
  nesterov: boolean;
}

/** DiLoCo's outer optimizer: SGD with Nesterov momentum 0.9 at learning rate 0.7. */
export const DILOCO_OUTER: OuterOptimizer = { lr: 0.7, momentum: 0.9, nesterov: true };

export type OuterCodec = { kind: 'none' } | { kind: 'fp16' } | { kind: 'topk'; ratio: number };

export interface DilocoOptions {
  backend: Backend;
  transport: Transport;
  model: Model;
  /** Inner steps between outer steps (H). */
  innerSteps: number;
  /**
   * The run's step count: its last step ends with an outer step too (when H does not divide it), so a
   * run always ends with one model on every rank. Absent: outer steps every H-th step only.
   */
  totalSteps?: number;
  outer?: OuterOptimizer;
  codec?: OuterCodec;
  /** Picks the dense outer all-reduce's algorithm by its size (collective=); absent: the ring. Refit after every outer step. */
  picker?: CollectivePicker;
  onChunk?: ChunkListener;
}

/**
 * The outer step, in place and in float32 (the same operations in the same order on every rank):
 * velocity and anchor are updated from the room's mean pseudo-gradient `delta`.
 */
export function outerStep(anchor: Float32Array, velocity: Float32Array, delta: Float32Array, o: OuterOptimizer): void {
  if (anchor.length !== delta.length || velocity.length !== delta.length) throw new RangeError('anchor, velocity and delta must have one length');
  const { lr, momentum, nesterov } = o;
  for (let i = 0; i < delta.length; i++) {
    const v = Math.fround(Math.fround(momentum * velocity[i]) + delta[i]);
    velocity[i] = v;
    const step = nesterov ? Math.fround(delta[i] + Math.fround(momentum * v)) : v;
    anchor[i] = anchor[i] - Math.fround(lr * step);
  }
}

export class DilocoSync {
  /** Parameters after the last outer step (or at the start): equal on every rank. */
  anchor: Float32Array | undefined;
  readonly velocity: Float32Array;
  /** Top-K on the outer exchange: this rank's error feedback over pseudo-gradients. */
  readonly sparsifier: Sparsifier | undefined;
  /** Outer steps taken. */
  outerSteps = 0;
  private readonly outer: OuterOptimizer;

  constructor(private readonly o: DilocoOptions) {
    if (!Number.isSafeInteger(o.innerSteps) || o.innerSteps < 1) throw new RangeError(`inner steps (H) must be an integer >= 1, got ${o.innerSteps}`);
    this.outer = o.outer ?? DILOCO_OUTER;
    if (!(this.outer.lr > 0) || !(this.outer.momentum >= 0 && this.outer.momentum < 1)) {
      throw new RangeError(`outer lr must be > 0 and momentum in [0, 1), got ${this.outer.lr} and ${this.outer.momentum}`);
    }
    const length = o.model.params.length;
    this.velocity = new Float32Array(length);
    this.sparsifier = o.codec?.kind === 'topk' ? new Sparsifier(length, { kind: 'topk', ratio: o.codec.ratio }) : undefined;
  }

  get picker(): CollectivePicker | undefined {
    return this.o.picker;
  }

  /** The trainer's gradSync: no averaging of gradients; takes the anchor before the first update. */
  gradSync = async (_ctx: GradSyncContext): Promise<GradSyncResult> => {
    if (!this.anchor) this.anchor = await this.o.backend.read(viewOf(this.o.model.params));
    return {};
  };

  /** Whether the outer exchange and step follow the update of `completedSteps` (1-based). */
  isOuterStep(completedSteps: number): boolean {
    return completedSteps % this.o.innerSteps === 0 || completedSteps === this.o.totalSteps;
  }

  /** The trainer's afterUpdate: every H-th step (and the run's last), the outer exchange and step. */
  afterUpdate = async (ctx: GradSyncContext): Promise<GradSyncResult> => {
    if (!this.isOuterStep(ctx.step + 1)) return {};
    const { backend, transport, model, onChunk, codec } = this.o;
    const anchor = this.anchor;
    if (!anchor) throw new Error('DiLoCo: no anchor (gradSync was not called before the first update)');
    const view = viewOf(model.params);
    const params = await backend.read(view);
    const delta = new Float32Array(params.length);
    for (let i = 0; i < delta.length; i++) delta[i] = anchor[i] - params[i];
    const opts = { round: ctx.step, collective: COLLECTIVE_IDS.dilocoOuter.first, onEvent: onChunk };
    let stats;
    if (this.sparsifier) {
      const sent = this.sparsifier.compress(delta);
      const gathered = await runSparseAllGather(transport, encodeSparseCompact(sent), { ...opts, collective: COLLECTIVE_IDS.dilocoOuterSparse.first });
      stats = gathered.stats;
      delta.fill(0);
      for (const payload of gathered.payloads) addSparseInto(delta, decodeSparseCompact(payload, delta.length)); // rank order: same bits everywhere
      for (let i = 0; i < delta.length; i++) delta[i] /= transport.world;
    } else {
      stats = await runPickedAllReduce(this.o.picker, transport, delta, { ...opts, average: true, wire: codec?.kind === 'fp16' ? 'f16' : 'f32' });
      this.o.picker?.endStep(ctx.step);
    }
    outerStep(anchor, this.velocity, delta, this.outer);
    backend.write(view, anchor);
    this.outerSteps++;
    return { bytesSent: stats.bytesSent, bytesReceived: stats.bytesReceived };
  };
}
