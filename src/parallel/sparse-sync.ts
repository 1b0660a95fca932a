// Sparsified gradient averaging (Top-K / Random-K with error feedback). Each rank folds its gradient into
// a residual (what it has not sent yet), sends k entries of it, and keeps the rest for later steps, so
// nothing is lost, only delayed.
//
// Top-K: every rank picks its own indices, and sparse vectors do not add up inside a ring reduce-scatter
// (the union grows at every hop). So every rank all-gathers every rank's index/value pairs (compact wire
// format: varint index gaps + float32 values) and adds the N contributions in RANK ORDER into a zero
// vector: every replica computes the same float additions in the same order, so all get identical bits,
// and the average is exact for what was sent.
//
// Random-K: all ranks draw the SAME indices each step (from the room's seed and the step alone, so a
// run rebuilt mid-way by a re-form draws what an uninterrupted one would), so the k values line up and
// a plain ring all-reduce of k floats averages them: no index bytes at all, and the all-reduce gives
// every rank the same bits.
//
// Momentum correction (DGC): with SGD + momentum, momentum is accumulated locally before selection
// (Sparsifier.velocity) and masked where entries are sent, and the optimizer must then run WITHOUT
// momentum, or it would be applied twice; `optimizerFor` rewrites the run's optimizer config to do so.
// With AdamW (the defaults) there is no momentum to correct: Adam's moments see the sparse average and
// error feedback alone keeps the residual.
import { runAllReduce, runSparseAllGather } from '../collective/collectives';
import { addSparseInto, compactSparseBytes, decodeSparseCompact, encodeSparseCompact, Sparsifier, type SparseVector } from '../collective/codecs';
import type { ChunkListener, Transport } from '../collective/types';
import { viewOf, type Backend } from '../engine/backend';
import type { Model } from '../model/model';
import type { OptimizerConfig } from '../train/optimizer';
import type { GradSyncContext, GradSyncResult } from '../train/trainer';
import { COLLECTIVE_IDS } from '../collective/collective-ids';

export interface SparseSyncOptions {
  backend: Backend;
  transport: Transport;
  model: Model;
  kind: 'topk' | 'randomk';
  /** Fraction of the gradient's entries each rank sends per step. */
  ratio: number;
  /** DGC momentum correction (0: off). Take it from the optimizer with `optimizerFor`. */
  momentum?: number;
  /** Random-K seed, identical on every rank. */
  seed: number;
  onChunk?: ChunkListener;
}

/** What this rank put on the wire in its last step, for tests and the dashboard. */
export interface SparseStepReport {
  k: number;
  /** This rank's own contribution (residual entries taken out of the residual). */
  sent: SparseVector;
  /** Index list of every rank (Top-K) or the shared one (Random-K). */
  indices: Uint32Array[];
  /**
   * ||a - sparse(a)||^2 / ||a||^2 of the vector compressed (a: the gradient plus the residual carried
   * in), and its bound for Top-K, (d - k) / d: Top-K keeps the k largest entries, so it leaves at most
   * that fraction of the energy (a uniform vector reaches it). 0 when a was zero.
   */
  compressionError: number;
  errorBound: number;
  /** Compact payload bytes per rank (Top-K); 0 for Random-K, which sends values only. */
  payloadBytes: number[];
}

/**
 * DGC's rule for the optimizer: with momentum correction on, the sparsifier owns the momentum and the
 * optimizer must not add it again. Returns the config to build the optimizer with and the momentum the
 * sparsifier should use.
 */
export function optimizerFor(base: OptimizerConfig): { optimizer: OptimizerConfig; momentum: number } {
  if (base.kind === 'sgd' && base.momentum > 0) return { optimizer: { ...base, momentum: 0 }, momentum: base.momentum };
  return { optimizer: base, momentum: 0 };
}

/** ||rest||^2 / (||kept||^2 + ||rest||^2), in float64: what a compression left out, of everything it was given. */
function relativeError(kept: Float32Array, rest: Float32Array): number {
  let keptEnergy = 0;
  let restEnergy = 0;
  for (const v of kept) keptEnergy += v * v;
  for (const v of rest) restEnergy += v * v;
  const total = keptEnergy + restEnergy;
  return total > 0 ? restEnergy / total : 0;
}

export class SparseGradientSync {
  readonly sparsifier: Sparsifier;
  lastStep: SparseStepReport | undefined;

  constructor(private readonly o: SparseSyncOptions) {
    this.sparsifier = new Sparsifier(o.model.params.length, { kind: o.kind, ratio: o.ratio, momentum: o.momentum ?? 0, seed: o.seed });
  }

  /** The trainer's gradSync: replaces this rank's gradient with the average of what every rank sent. */
  gradSync = async (ctx: GradSyncContext): Promise<GradSyncResult> => {
    const { backend, transport, model, onChunk } = this.o;
    const view = viewOf(model.grads);
    const grads = await backend.read(view);
    const sparse = this.sparsifier.compress(grads, ctx.step);
    const compressionError = relativeError(sparse.values, this.sparsifier.residual);
    const errorBound = (grads.length - sparse.indices.length) / grads.length;
    const opts = { round: ctx.step, collective: COLLECTIVE_IDS.sparseGradients.first, onEvent: onChunk };
    const average = new Float32Array(grads.length);
    let bytesSent: number;
    let bytesReceived: number;
    if (this.o.kind === 'randomk') {
      const values = sparse.values.slice(); // averaged in place; `sparse` stays what this rank sent
      const stats = await runAllReduce(transport, values, { ...opts, average: true });
      sparse.indices.forEach((index, i) => (average[index] = values[i]));
      ({ bytesSent, bytesReceived } = stats);
      this.lastStep = { k: sparse.indices.length, sent: sparse, indices: [sparse.indices], payloadBytes: [], compressionError, errorBound };
    } else {
      const { payloads, stats } = await runSparseAllGather(transport, encodeSparseCompact(sparse), opts);
      const decoded = payloads.map((payload) => decodeSparseCompact(payload, grads.length));
      for (const contribution of decoded) addSparseInto(average, contribution); // rank order: identical bits everywhere
      for (let i = 0; i < average.length; i++) average[i] /= transport.world;
      ({ bytesSent, bytesReceived } = stats);
      this.lastStep = { k: sparse.indices.length, sent: sparse, indices: decoded.map((d) => d.indices), payloadBytes: decoded.map((d) => compactSparseBytes(d.indices)), compressionError, errorBound };
    }
    backend.write(view, average);
    return { bytesSent, bytesReceived };
  };
}
