// One tab's part of an expert-parallel optimizer step of a mixture-of-experts GPT (src/model/gpt.ts
// with `moe.held`: this tab holds E/N of every block's experts, and the whole of everything else).
// Each tab trains on its own share of the global batch, as a data-parallel tab does; the passes run
// segment by segment (Gpt.forwardSegments / backwardSegments), and at every MoE block's experts phase
// the step awaits the all-to-alls over its expert-parallel group (N tabs) that take each token to its
// expert's tab and back, forward and backward (Gpt.expertsForwardExchanged / expertsBackwardExchanged).
//
// After the last micro-batch the gradients are made those of the global batch's mean loss:
// - the replicated tensors (embeddings, attention, norms, routers) are averaged over the whole room;
// - an expert's gradient already sums its group's N tabs' tokens, each scaled for its tab's mean loss,
//   so it is averaged over the D tabs holding the same experts (EP x DP) and divided by N.
// Global-norm clipping sums the replicated tensors once (expert rank 0's) and every expert once over
// the group, so every tab scales by the factor one tab's clip of the whole gradient would use.
import { runAllToAll } from '../collective/all-to-all-run';
import { runAllReduce } from '../collective/collectives';
import type { Transport } from '../collective/types';
import { type Backend, viewOf } from '../engine/backend';
import { clipOverGroup } from './group-clip';
import type { Gpt, GptPassSegment } from '../model/gpt';
import type { Batch } from '../model/model';
import { isExpertTensor, type MoeAllToAll } from '../model/moe-mlp';
import type { BatchSource } from '../train/batches';
import type { Optimizer } from '../train/optimizer';

/** One all-to-all of a step, as it ran. */
export interface ExpertExchangeEvent {
  pass: 'forward' | 'backward';
  block: number;
  micro: number;
  bytesSent: number;
  ms: number;
}

/** Collective ids of the step's other collectives (src/collective/collective-ids.ts 'expert'). */
export interface ExpertTrainerIds {
  /** The first of the step's all-to-alls (each takes the next id). */
  exchanges: number;
  exchangesCount: number;
  denseAverage: number;
  expertAverage: number;
  clipNorm: number;
}

export interface ExpertGptTrainerOptions {
  backend: Backend;
  model: Gpt;
  optimizer: Optimizer;
  /** This tab's share of the global batch. */
  batches: BatchSource;
  /** The expert-parallel group (rank = expert rank). */
  experts: Transport;
  /** The whole room: the replicated tensors' gradients are averaged over it. */
  room: Transport;
  /** EP x DP: the tabs holding this tab's experts in the other groups. */
  replicas?: Transport;
  ids: ExpertTrainerIds;
  learningRate?: (step: number) => number;
  clipNorm?: number;
}

/** What routing did in one step on this tab: summed over micro-batches and MoE blocks. */
export interface ExpertRouting {
  /** Token assignments this tab kept, per expert. */
  tokensPerExpert: number[];
  /** Assignments dropped for want of capacity. */
  dropped: number;
  /** Assignments made (tokens x topk). */
  assignments: number;
  /** The load-balancing loss per MoE block (alpha included), averaged over micro-batches. */
  auxLoss: number[];
}

export interface ExpertStepReport {
  step: number;
  /** Mean loss of this tab's share (cross-entropy + the blocks' aux losses). */
  loss: number;
  routing: ExpertRouting;
  exchanges: ExpertExchangeEvent[];
  /** Rows of C floats this tab sent to other tabs in the step's token and gradient exchanges (both ways). */
  rowsSentToOthers: number;
  denseBytesSent: number;
  expertBytesSent: number;
}

export class ExpertGptTrainer {
  private completed = 0;

  constructor(private readonly o: ExpertGptTrainerOptions) {
    const moe = o.model.config.moe;
    if (!moe) throw new Error('expert parallelism needs a mixture-of-experts GPT');
    const count = moe.held?.count ?? moe.experts;
    if (moe.experts / count !== o.experts.world) throw new RangeError(`the model holds ${count} of ${moe.experts} experts, so its group needs ${moe.experts / count} tabs; the transport has ${o.experts.world}`);
    if (o.optimizer.stateRange.length !== o.model.layout.totalLength) throw new Error("the tab's optimizer must hold the state of the tab's whole layout");
  }

  get step(): number {
    return this.completed;
  }
  /** A resumed run continues from its checkpoint's step. */
  set step(value: number) {
    this.completed = value;
  }

  async trainStep(): Promise<ExpertStepReport> {
    const { backend: b, model, batches, optimizer } = this.o;
    const step = this.completed;
    const M = batches.microBatches;
    const weight = batches.shareWeightAt?.(step) ?? batches.shareWeight ?? 1;
    b.fill(viewOf(model.grads), 0);
    const exchange = this.exchanger(step, this.o.ids.exchanges, this.o.ids.exchangesCount);
    const E = model.config.moe!.experts;
    const routing: ExpertRouting = { tokensPerExpert: new Array<number>(E).fill(0), dropped: 0, assignments: 0, auxLoss: new Array<number>(model.config.nLayer).fill(0) };
    let lossSum = 0;
    let lossCount = 0;
    for (let micro = 0; micro < M; micro++) {
      exchange.micro = micro;
      const batch = batches.next(step, micro);
      const rows = model.lossRowsOf(batch);
      const { result, segments } = model.forwardSegments(batch, weight / (rows * M));
      await this.runSegments(segments, 'forward', exchange);
      // The loss and the routing are read while the backward runs: the backward's first exchange
      // waits for the device anyway, so these reads add no wait of their own.
      const afterForward = Promise.all([b.read(viewOf(result.losses.buf, result.losses.offset, rows)), model.moeStats()]);
      await this.runSegments(model.backwardSegments(), 'backward', exchange);
      const [losses, stats] = await afterForward;
      for (const v of losses) lossSum += v;
      lossCount += rows;
      for (const [l, block] of stats.entries()) {
        block.tokensPerExpert.forEach((v, e) => (routing.tokensPerExpert[e] += v));
        routing.dropped += block.dropped;
        routing.assignments += rows * model.config.moe!.topk;
        routing.auxLoss[l] += block.aux / M;
      }
    }
    const { dense, experts } = await this.averageGradients(step);
    if (this.o.clipNorm) await this.clip(step, this.o.clipNorm);
    optimizer.update(model.params, model.grads, step + 1, this.o.learningRate?.(step) ?? optimizer.config.lr);
    await b.flush();
    this.completed++;
    return {
      step,
      loss: lossSum / lossCount,
      routing,
      exchanges: exchange.events,
      rowsSentToOthers: exchange.rowsSentToOthers,
      denseBytesSent: dense,
      expertBytesSent: experts,
    };
  }

  /**
   * The validation forward of one batch (this tab's share of it), a collective of the expert group: it
   * uses exchange ids from `firstId` on and returns the next free one.
   */
  async evaluateBatch(batch: Batch, round: number, firstId: number, idsEnd: number): Promise<{ lossSum: number; rows: number; nextId: number }> {
    const { backend: b, model } = this.o;
    const exchange = this.exchanger(round, firstId, idsEnd - firstId);
    const rows = model.lossRowsOf(batch);
    const { result, segments } = model.forwardSegments(batch, 0);
    await this.runSegments(segments, 'forward', exchange);
    let lossSum = 0;
    for (const v of await b.read(viewOf(result.losses.buf, result.losses.offset, rows))) lossSum += v;
    return { lossSum, rows, nextId: firstId + exchange.used };
  }

  /** Records each segment; an MoE block's experts phase runs through the all-to-alls instead. */
  private async runSegments(segments: GptPassSegment[], pass: 'forward' | 'backward', exchange: Exchanger): Promise<void> {
    const { model } = this.o;
    for (const segment of segments) {
      if (segment.moeExperts === undefined || this.o.experts.world === 1) {
        segment.record();
        continue;
      }
      exchange.pass = pass;
      exchange.block = segment.moeExperts;
      const rows = pass === 'forward' ? await model.expertsForwardExchanged(segment.moeExperts, exchange.run) : await model.expertsBackwardExchanged(segment.moeExperts, exchange.run);
      const rank = this.o.experts.rank;
      // Both ways: the tokens (or their gradients) out, the experts' outputs (or input gradients) back.
      exchange.rowsSentToOthers += rows.sentRows.reduce((s, v, j) => (j === rank ? s : s + v), 0) + rows.returnedRows.reduce((s, v, j) => (j === rank ? s : s + v), 0);
    }
  }

  private exchanger(round: number, first: number, count: number): Exchanger {
    const transport = this.o.experts;
    const state: Exchanger = {
      pass: 'forward',
      block: 0,
      micro: 0,
      used: 0,
      events: [],
      rowsSentToOthers: 0,
      run: async (blocks, counts) => {
        if (state.used >= count) throw new Error(`a step needs more than ${count} expert all-to-alls: use fewer micro-batches or layers`);
        const result = await runAllToAll(transport, blocks, { round, collective: first + state.used++, counts });
        state.events.push({ pass: state.pass, block: state.block, micro: state.micro, bytesSent: result.stats.bytesSent, ms: result.stats.ms });
        return result.received;
      },
    };
    return state;
  }

  /** The gradient of the global batch's mean loss on every tab (see the header). Returns the bytes sent. */
  private async averageGradients(step: number): Promise<{ dense: number; experts: number }> {
    const { backend: b, model, room, replicas } = this.o;
    const N = this.o.experts.world;
    const grads = await b.read(viewOf(model.grads));
    const [denseEntries, expertEntries] = [model.layout.entries.filter((e) => !isExpertTensor(e.name)), model.layout.entries.filter((e) => isExpertTensor(e.name))];
    const pack = (entries: typeof denseEntries) => {
      const out = new Float32Array(entries.reduce((s, e) => s + e.length, 0));
      let at = 0;
      for (const e of entries) {
        out.set(grads.subarray(e.offset, e.offset + e.length), at);
        at += e.length;
      }
      return out;
    };
    const unpack = (entries: typeof denseEntries, values: Float32Array) => {
      let at = 0;
      for (const e of entries) {
        grads.set(values.subarray(at, at + e.length), e.offset);
        at += e.length;
      }
    };
    let [denseBytes, expertBytes] = [0, 0];
    if (room.world > 1) {
      const dense = pack(denseEntries);
      denseBytes = (await runAllReduce(room, dense, { round: step, collective: this.o.ids.denseAverage, average: true })).bytesSent;
      unpack(denseEntries, dense);
    }
    if (N > 1 || (replicas && replicas.world > 1)) {
      const experts = pack(expertEntries);
      if (replicas && replicas.world > 1) expertBytes = (await runAllReduce(replicas, experts, { round: step, collective: this.o.ids.expertAverage, average: true })).bytesSent;
      for (let i = 0; i < experts.length; i++) experts[i] /= N;
      unpack(expertEntries, experts);
    }
    b.write(viewOf(model.grads), grads);
    return { dense: denseBytes, experts: expertBytes };
  }

  /** Scales the gradient by the factor one tab's clip of the whole model's gradient would use. */
  private async clip(step: number, maxNorm: number): Promise<void> {
    const { backend, model, experts: group } = this.o;
    // A replicated tensor has the same gradient on every tab: the whole model holds it once.
    const counts = (name: string) => isExpertTensor(name) || group.rank === 0;
    await clipOverGroup({ backend, grads: model.grads, entries: model.layout.entries, counts, group, maxNorm, round: step, collective: this.o.ids.clipNorm });
  }
}

/** The all-to-all the model's experts phases call, with what it counts. */
interface Exchanger {
  pass: 'forward' | 'backward';
  block: number;
  micro: number;
  used: number;
  events: ExpertExchangeEvent[];
  rowsSentToOthers: number;
  run: MoeAllToAll;
}
