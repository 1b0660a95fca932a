// What a tensor-parallel rank's model is (src/model/tensor-mlp.ts, src/model/tensor-gpt.ts): one rank
// of T holding its shard of every split layer (src/model/tensor-split.ts) and all of every replicated
// one, whose forward and backward stop at each of Megatron-LM's collectives and hand the partial sum to
// `sum`. `sum` must replace the view's contents with the sum of that view over the T ranks (the same
// bits on every rank): the forward's g (after a row-split linear) and the backward's f (the input
// gradient of a column-split linear). With T = 1 `sum` may do nothing.
import type { DeviceBuffer, View } from '../engine/backend';
import type { ParamLayout } from './layout';
import type { Batch, ForwardResult } from './model';
import type { SplitPlan } from './tensor-split';

/** Where in the model a collective runs: which pass, which block, after which sub-layer. */
export interface TensorSite {
  pass: 'forward' | 'backward';
  /** MLP: the column/row layer pair; GPT: the transformer block. */
  block: number;
  sublayer: 'mlp' | 'attention';
  /** float32 elements summed: rows x width. */
  elements: number;
}

/** Sums `view` over the tensor-parallel group, in place (Megatron's f in the backward, g in the forward). */
export type TensorAllReduce = (view: View, site: TensorSite) => Promise<void>;

/** For one rank, or a test: T = 1, nothing to sum. */
export const noTensorSum: TensorAllReduce = async () => undefined;

export interface TensorRank {
  rank: number;
  ranks: number;
}

export interface TensorParallelModel {
  readonly kind: 'mlp' | 'gpt';
  /** This rank's shard layout (the whole model's tensor names, shard shapes). */
  readonly layout: ParamLayout;
  /** The whole model's layout, which the shards of the T ranks make up. */
  readonly wholeLayout: ParamLayout;
  readonly plan: SplitPlan;
  readonly tensor: TensorRank;
  readonly params: DeviceBuffer;
  readonly grads: DeviceBuffer;
  readonly maxRows: number;
  lossRowsOf(batch: Batch): number;
  /** Writes this rank's share of the whole model's seeded initial parameters. */
  init(seed: number): void;
  /** Forward and loss; awaits `sum` at every forward collective. */
  forward(batch: Batch, gradScale: number, sum: TensorAllReduce): Promise<ForwardResult>;
  /** Backward of the last forward; gradients ACCUMULATE into `grads`; awaits `sum` at every backward collective. */
  backward(sum: TensorAllReduce): Promise<void>;
  dispose(): void;
}
