// What a parallel strategy is given and what it gives back: the run's parallel settings (a slice of the
// lab's config, which satisfies it as is), the resolved recipe, and the trainer hooks it returns. Kept
// apart from strategy.ts so that the strategies (ring, parameter server, ZeRO) and the code that picks
// one can all import it without importing each other.
import type { Transport } from '../collective/types';
import type { Backend } from '../engine/backend';
import type { Model } from '../model/model';
import type { LabEvent } from '../shared/events';
import type { TrainingRecipe } from '../train/defaults';
import type { Optimizer } from '../train/optimizer';
import type { TrainerExtras } from '../train/recipes';
import type { CollectiveChoice } from './collective-choice';

export type { CollectiveChoice };

export type ParallelMode = 'ring' | 'ps' | 'diloco';
export type ZeroStage = 0 | 1 | 2 | 3;
export type Compression = 'none' | 'fp16' | 'topk' | 'randk' | 'powersgd';
/** How a dense ring splits the global batch: by each tab's measured speed, or evenly. */
export type ShareMode = 'auto' | 'equal';

/** The settings that pick and tune a strategy (the URL keys of the same names, src/lab/config.ts). */
export interface ParallelConfig {
  mode: ParallelMode;
  zero: ZeroStage;
  compression: Compression;
  /** Fraction of gradient entries kept by Top-K / Random-K. */
  ratio: number;
  /** Random-K: one seed for the whole room. */
  seed: number;
  /** Parameter-server mode: maximum staleness in steps (0: synchronous). */
  staleness: number;
  /** ZeRO-Offload: optimizer state and update in CPU memory. */
  offload: boolean;
  /** Dense ring: shares of the global batch by speed (auto) or even (equal); other strategies: even. */
  shares: ShareMode;
  /** shares=auto: steps between re-balancings. */
  rebalance: number;
  /** compression=powersgd: the rank r of each compressed gradient matrix. */
  rank: number;
  /** compression=powersgd: compress a matrix only when its factors are more than this many times smaller. */
  minrate: number;
  /** mode=diloco: inner (local) steps between outer steps (H). */
  inner: number;
  /** mode=diloco: the outer optimizer's learning rate and Nesterov momentum (0: plain outer SGD). */
  outerlr: number;
  outermomentum: number;
  /** The gradient all-reduce's algorithm per bucket; auto: picked by the measured link (collective-choice.ts). */
  collective: CollectiveChoice;
}

export type ParallelHooks = Pick<
  TrainerExtras,
  | 'gradHooks'
  | 'gradSync'
  | 'eagerUpdates'
  | 'afterUpdate'
  | 'localUpdate'
  | 'optimizerStateRange'
  | 'optimizerConfig'
  | 'layerwise'
  | 'modelStorage'
  | 'optimizerBackend'
  | 'batchShares'
> & {
  /**
   * ZeRO-3: the full parameter vector on the host, gathered from every rank's shard (a collective:
   * every rank calls it at the same point). Absent: the model's params buffer is the full vector.
   */
  gatherParams?: (round: number) => Promise<Float32Array>;
  /**
   * ZeRO-3: the parameters and then each optimizer state buffer, whole, in flat order, gathered a
   * piece (at most a layer group) at a time and handed to `each` (a collective every rank joins).
   */
  gatherInPieces?: (round: number, each: (floats: Float32Array) => Promise<void>) => Promise<void>;
  /**
   * ZeRO-3: the replica check's hash, computed without the whole vector (zero-sync.ts replicaDigest):
   * `afterStep`, that of the layers the step just taken gathered; otherwise a layer-by-layer
   * verification pass (a collective every rank joins). Absent: hash the model's params buffer.
   */
  replicaDigest?: (round: number, afterStep: boolean) => Promise<string>;
  /** Bytes the replica check's own collectives moved since the last call (ZeRO-3's verification passes). */
  replicaCheckTraffic?: () => { bytesSent: number; bytesReceived: number };
  /** Host memory the strategy holds, in bytes by kind (ZeRO: staging arrays, offloaded optimizer). */
  hostBytes?: () => Record<string, number>;
  /**
   * false: replicas legitimately differ between steps (asynchronous parameter server), so the session
   * checks their agreement at the end only (an exchange per step would also be a barrier per step).
   */
  replicasEqualEveryStep?: boolean;
  /**
   * With replicasEqualEveryStep false: the completed-step counts after which replicas are equal again
   * (DiLoCo: after each outer step), so the session checks them there. Absent: at the end only.
   */
  replicasEqualAfter?: (completedSteps: number) => boolean;
  /**
   * shares=auto with parked idle tabs (ParallelContext.parkIdle): a step this rank has no samples of
   * and does not train; it still takes part in the room's share agreement (share-balancer.ts skipStep).
   */
  skipParkedStep?: (step: number) => Promise<void>;
};

export interface ParallelContext {
  config: ParallelConfig;
  /** The run's recipe, resolved once by the lab (src/lab/recipe.ts recipeFor). */
  recipe: TrainingRecipe;
  /** Gradient all-reduce bucket size in floats (src/lab/recipe.ts bucketFor). */
  bucketElements: number;
  backend: Backend;
  transport: Transport;
  /** The run's model and optimizer, available once the run is built (hooks are called later). */
  model: () => Model;
  optimizer: () => Optimizer;
  microBatches: number;
  publish: (event: LabEvent) => void;
  /**
   * shares=auto: a rank with no samples for a step skips it and is brought back to the room's state
   * later (the run loop does it: src/lab/parked-tabs.ts), instead of receiving every step's average.
   */
  parkIdle?: boolean;
}

/**
 * Where the optimizer state lives between steps: on every tab ('replicated'), sharded across the ring
 * (ZeRO), or on the parameter server's tab alone. In an elastic room, state that is not replicated is
 * backed up on a second tab after every step and rebuilt from the backups when the ring re-forms.
 */
export type StatePlacement = 'replicated' | 'sharded' | 'server';

/** The trainer hooks a strategy installs (src/train/trainer.ts TrainerOptions has each one's contract). */
export type TrainerHooks = Omit<ParallelHooks, 'gatherParams' | 'gatherInPieces' | 'replicasEqualEveryStep' | 'replicasEqualAfter' | 'replicaDigest' | 'replicaCheckTraffic' | 'hostBytes' | 'skipParkedStep'>;

/**
 * How a room's ranks keep one model: a value the run loop (src/lab/session.ts) holds without knowing
 * which one it is. The trainer calls its hooks before the forward (modelStorage, layerwise.forward),
 * per layer (layerwise, gradHooks), after the backward (gradSync) and at the step boundary
 * (afterUpdate); the loop reads the rest: whether replicas are checked every step, how to see the full
 * parameters, where the state lives (what elastic rooms back up) and whether the ring may re-form.
 */
export interface Strategy {
  /** Shown in logs: 'solo', 'ring', 'ring fp16', 'ring topk', 'ps', 'ps async', 'zero-1'... */
  readonly name: string;
  readonly hooks: TrainerHooks;
  /** false: replicas differ between steps by design (asynchronous PS, DiLoCo's inner steps). */
  readonly replicasEqualEveryStep: boolean;
  /**
   * When replicasEqualEveryStep is false: whether replicas are equal after this many completed steps
   * (DiLoCo: after every outer step); the session checks them there and at the end. null: at the end only.
   */
  readonly replicasEqualAfter: ((completedSteps: number) => boolean) | null;
  /** ZeRO-3: gathers the full parameter vector (a collective: every rank calls it at the same point). */
  readonly gatherParams: ((round: number) => Promise<Float32Array>) | null;
  /** ZeRO-3: the whole parameters and optimizer state a piece at a time (ParallelHooks.gatherInPieces); absent elsewhere. */
  readonly gatherInPieces?: (round: number, each: (floats: Float32Array) => Promise<void>) => Promise<void>;
  /** ZeRO-3: the replica check's hash without the whole vector (ParallelHooks.replicaDigest), or null. */
  readonly replicaDigest: ((round: number, afterStep: boolean) => Promise<string>) | null;
  /** Bytes the replica check's own collectives moved since the last call, or null (none but the hash exchange). */
  readonly replicaCheckTraffic: (() => { bytesSent: number; bytesReceived: number }) | null;
  /** Host memory the strategy holds, in bytes by kind, or null (none). */
  readonly hostBytes: (() => Record<string, number>) | null;
  readonly statePlacement: StatePlacement;
  /** ParallelHooks.skipParkedStep, or absent (no rank is ever parked). */
  readonly skipParkedStep?: (step: number) => Promise<void>;
}
