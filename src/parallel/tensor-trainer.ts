// One tab's part of a tensor-parallel optimizer step: zero the rank's gradients, run every
// micro-batch's forward and backward through the rank's TensorParallelModel, summing each collective
// site's partial activation (forward, Megatron's g) or input gradient (backward, f) over the tensor
// group with a ring all-reduce, then update the rank's shard with its own optimizer state. Every rank
// of the group reads the same micro-batch (tensor parallelism splits the layers, not the batch), and
// the loss gradient is scaled by 1 / (rows * M) as the single-tab trainer scales it.
//
// TP x DP: with `dataParallel`, the tabs holding the same shard in the other tensor groups average the
// shard's gradients before the update (each group training on its own share of every micro-batch), so
// every replica of a shard stays bitwise equal.
//
// Global-norm clipping (`clipNorm`) sums the squared norm of the split tensors over the tensor group
// and counts the replicated ones once (tensor rank 0's), after the data-parallel average, so every
// rank scales by the factor one tab's clip of the whole gradient would use; the learning rate follows
// `learningRate` (the recipe's schedule) like the one-tab trainer's.
import { runAllReduce } from '../collective/collectives';
import type { Transport } from '../collective/types';
import { type Backend, viewOf } from '../engine/backend';
import { clipOverGroup } from './group-clip';
import type { TensorAllReduce, TensorParallelModel, TensorSite } from '../model/tensor-model';
import type { BatchSource } from '../train/batches';
import type { Optimizer } from '../train/optimizer';

/** One collective of the forward or backward pass, as it ran. */
export interface TensorCollectiveEvent extends TensorSite {
  step: number;
  micro: number;
  bytesSent: number;
  bytesReceived: number;
  ms: number;
}

export interface TensorTrainerOptions {
  backend: Backend;
  model: TensorParallelModel;
  optimizer: Optimizer;
  /** This tensor group's batches: every rank of the group reads the same micro-batches. */
  batches: BatchSource;
  /** The tensor-parallel group (rank = tensor rank); a GroupTransport in a TP x DP room. */
  transport: Transport;
  /** Collective numbers of the step's tensor all-reduces start here, one per collective. Default 0. */
  collective?: number;
  /** TP x DP: the tabs holding this same shard in the other tensor groups. Default collective 1_000_000. */
  dataParallel?: { transport: Transport; collective?: number };
  onCollective?: (event: TensorCollectiveEvent) => void;
  /** The learning rate of step `step` (0-based); absent: the optimizer's own. */
  learningRate?: (step: number) => number;
  /** Clip the whole model's gradient to this L2 norm (0 or absent: no clipping), on collective `clipCollective` (default 1_000_001). */
  clipNorm?: number;
  clipCollective?: number;
}

export interface TensorStepReport {
  step: number;
  /** Mean loss of the group's batch (the same on every rank of the group). */
  loss: number;
  collectives: TensorCollectiveEvent[];
  /** Bytes this rank sent for the tensor collectives, and for the data-parallel average. */
  tensorBytesSent: number;
  dataParallelBytesSent: number;
}

export class TensorTrainer {
  private completed = 0;

  constructor(private readonly o: TensorTrainerOptions) {
    if (o.batches.microBatches < 1) throw new RangeError('a step needs at least one micro-batch');
    if (o.optimizer.stateRange.length !== o.model.layout.totalLength) throw new Error("the rank's optimizer must hold the state of the rank's whole shard layout");
    if (o.transport.world !== o.model.tensor.ranks || o.transport.rank !== o.model.tensor.rank) {
      throw new RangeError(`the model is tensor rank ${o.model.tensor.rank} of ${o.model.tensor.ranks}, the transport rank ${o.transport.rank} of ${o.transport.world}`);
    }
  }

  get step(): number {
    return this.completed;
  }
  /** A resumed run continues from its checkpoint's step. */
  set step(value: number) {
    this.completed = value;
  }

  async trainStep(): Promise<TensorStepReport> {
    const { backend: b, model, batches, optimizer, transport } = this.o;
    const step = this.completed;
    const M = batches.microBatches;
    const weight = batches.shareWeight ?? 1;
    b.fill(viewOf(model.grads), 0);
    const collectives: TensorCollectiveEvent[] = [];
    let next = this.o.collective ?? 0;
    let micro = 0;
    const sum: TensorAllReduce = async (view, site) => {
      if (transport.world === 1) return;
      const data = await b.read(view);
      const stats = await runAllReduce(transport, data, { round: step, collective: next++ });
      b.write(view, data);
      const event = { ...site, step, micro, bytesSent: stats.bytesSent, bytesReceived: stats.bytesReceived, ms: stats.ms };
      collectives.push(event);
      this.o.onCollective?.(event);
    };
    let lossSum = 0;
    let lossCount = 0;
    for (micro = 0; micro < M; micro++) {
      const batch = batches.next(step, micro);
      const rows = model.lossRowsOf(batch);
      const result = await model.forward(batch, weight / (rows * M), sum);
      // The loss is read while the backward runs: its first all-reduce waits for the device anyway.
      const losses = b.read(viewOf(result.losses.buf, result.losses.offset, rows));
      await model.backward(sum);
      for (const v of await losses) lossSum += v;
      lossCount += rows;
    }
    const dataParallelBytesSent = await this.averageOverReplicas(step);
    if (this.o.clipNorm) await this.clip(step, this.o.clipNorm);
    optimizer.update(model.params, model.grads, step + 1, this.o.learningRate?.(step) ?? optimizer.config.lr);
    await b.flush();
    this.completed++;
    return { step, loss: lossSum / lossCount, collectives, tensorBytesSent: collectives.reduce((s, e) => s + e.bytesSent, 0), dataParallelBytesSent };
  }

  /** Scales the shard's gradient by the factor one tab's clip of the whole gradient would use. */
  private async clip(step: number, maxNorm: number): Promise<void> {
    const { backend, model, transport } = this.o;
    // A replicated tensor has the same gradient on every rank: the whole model holds it once.
    const counts = (name: string) => model.plan.has(name) || model.tensor.rank === 0;
    await clipOverGroup({ backend, grads: model.grads, entries: model.layout.entries, counts, group: transport, maxNorm, round: step, collective: this.o.clipCollective ?? 1_000_001 });
  }

  private async averageOverReplicas(step: number): Promise<number> {
    const group = this.o.dataParallel?.transport;
    if (!group || group.world === 1) return 0;
    const { backend: b, model } = this.o;
    const grads = viewOf(model.grads);
    const data = await b.read(grads);
    const stats = await runAllReduce(group, data, { round: step, collective: this.o.dataParallel?.collective ?? 1_000_000, average: true });
    b.write(grads, data);
    return stats.bytesSent;
  }
}
