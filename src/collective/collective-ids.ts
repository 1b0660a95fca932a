// Every collective id on the wire, in one place. A message's tag is (round, collective, chunk)
// (types.ts MessageTag); the collective id says which collective of the round a message belongs to,
// and so what its payload is. A new collective takes its id here, and collective-ids.test.ts checks
// that no two collectives that can share a mesh can ever use the same id.
//
// Scopes: 'room' collectives can run in any run's room; exactly one strategy runs in a room, so the
// 'strategy:*' scopes may reuse each other's ids but not a room collective's; 'mesh-probe' is the
// automation API's own mesh (src/peer/mesh-api.ts), which never carries a run.
//
// Payloads: 'floats' messages are float vectors (float32, or float16 with compression=fp16) and are
// checked for NaN/Infinity before a collective takes them in (src/peer/payload-checks.ts
// finiteModelDataCheck, which checks every id from FIRST_FLOAT_ID up); 'bytes' messages (hashes,
// JSON, checkpoint slices) sit below FIRST_FLOAT_ID and are not; 'sparse' mixes indices and values
// (that compression switches the float check off); 'control' ids travel only in control frames
// (src/peer/frame.ts type 'control'), never as a transport message.

export type CollectivePayload = 'floats' | 'bytes' | 'sparse' | 'control';
export type CollectiveScope =
  | 'room'
  | 'strategy:ring'
  | 'strategy:ps'
  | 'strategy:async-ps'
  | 'strategy:sparse'
  | 'strategy:zero'
  | 'strategy:powersgd'
  | 'strategy:diloco'
  | 'strategy:pipeline'
  | 'strategy:tensor'
  | 'strategy:expert'
  | 'mesh-probe';

export interface CollectiveIdRange {
  /** The range's ids are [first, first + count). */
  first: number;
  count: number;
  payload: CollectivePayload;
  scope: CollectiveScope;
  /** Who sends it and what it carries. */
  what: string;
}

/** Float-vector ids start here: everything below is bytes (see the header). */
export const FIRST_FLOAT_ID = 16;

/** The wire's ids are unsigned 32-bit (frame.ts). */
const U32_END = 2 ** 32;
/** ZeRO numbers its collectives from here, one counter per rank for the whole run. */
const ZERO_FIRST = 1 << 20;
/** A tensor-parallel step's activation all-reduces (4 per GPT block per micro-batch) number from here; below the room's elastic id. */
const TENSOR_ACTIVATIONS_FIRST = FIRST_FLOAT_ID + 16;
const TENSOR_ACTIVATIONS_PER_STEP = 1 << 14;
/** DP x PP: layer groups of one pipeline stage whose gradients get an all-reduce of their own, at most. */
const PIPELINE_REPLICA_GROUPS = 1 << 10;
/** Gradient buckets of one step: at most this many (collective-ids.test.ts keeps them below the other ids). */
const MAX_GRADIENT_BUCKETS = 1 << 15;

export const COLLECTIVE_IDS = {
  meshProbeAllReduce: { first: 0, count: 1, payload: 'floats', scope: 'mesh-probe', what: 'window.lab mesh API: the all-reduce it runs on request' },
  meshProbeStream: { first: 1, count: 1, payload: 'bytes', scope: 'mesh-probe', what: 'window.lab mesh API: the raw link-speed stream' },
  hashExchange: { first: 1, count: 1, payload: 'bytes', scope: 'room', what: 'parameter hashes after a step (src/parallel/replicas.ts)' },
  stateTransfer: { first: 2, count: 1, payload: 'bytes', scope: 'room', what: 'a joining tab\'s starting state (src/lab/elastic/state-transfer.ts)' },
  zeroBackup: { first: 3, count: 1, payload: 'bytes', scope: 'room', what: 'ZeRO: a shard\'s backup to its neighbour (src/lab/elastic/zero-state-transfer.ts)' },
  zeroInventory: { first: 4, count: 1, payload: 'bytes', scope: 'room', what: 'ZeRO re-form: which slices a tab holds and which ranges its new run holds' },
  zeroPlan: { first: 5, count: 1, payload: 'bytes', scope: 'room', what: 'ZeRO re-form: rank 0\'s plan of who sends whom which piece' },
  zeroPiece: { first: 6, count: 1, payload: 'bytes', scope: 'room', what: 'ZeRO re-form: a piece of the backed-up state, from its holder to the rank whose new shard it is' },
  zeroState: { first: 7, count: 1, payload: 'bytes', scope: 'room', what: 'retired (the whole rebuilt state, from rank 0): kept so that no other collective takes the id' },
  parkedState: { first: 13, count: 1, payload: 'bytes', scope: 'strategy:ring', what: 'shares=auto: the checkpoint a parked tab is brought back with, from a contributor (src/lab/parked-tabs.ts)' },
  shareSpeeds: { first: 10, count: 1, payload: 'bytes', scope: 'strategy:ring', what: 'data parallelism: each tab\'s measured samples/s, every K steps (src/parallel/share-balancer.ts)' },
  linkProbe: { first: 8, count: 1, payload: 'bytes', scope: 'room', what: 'collective=auto: the ping-pong that measures a ring link when the ring forms (src/parallel/collective-choice.ts)' },
  linkFit: { first: 9, count: 1, payload: 'bytes', scope: 'room', what: 'collective=auto: each rank\'s alpha-beta fit, all-gathered so that every rank picks alike' },
  gradientBuckets: { first: FIRST_FLOAT_ID, count: MAX_GRADIENT_BUCKETS, payload: 'floats', scope: 'strategy:ring', what: 'data parallelism: one id per gradient bucket of a step (src/parallel/data-parallel.ts)' },
  psGather: { first: FIRST_FLOAT_ID, count: 1, payload: 'floats', scope: 'strategy:ps', what: 'synchronous parameter server: gradients to the server' },
  psBroadcast: { first: FIRST_FLOAT_ID + 1, count: 1, payload: 'floats', scope: 'strategy:ps', what: 'synchronous parameter server: parameters from the server' },
  asyncPsGradients: { first: FIRST_FLOAT_ID + 8, count: 1, payload: 'floats', scope: 'strategy:async-ps', what: 'asynchronous parameter server: a worker\'s gradient' },
  asyncPsParams: { first: FIRST_FLOAT_ID + 9, count: 1, payload: 'floats', scope: 'strategy:async-ps', what: 'asynchronous parameter server: parameters to a worker' },
  asyncPsFinal: { first: FIRST_FLOAT_ID + 10, count: 1, payload: 'floats', scope: 'strategy:async-ps', what: 'asynchronous parameter server: the final parameters' },
  sparseGradients: { first: FIRST_FLOAT_ID, count: 1, payload: 'sparse', scope: 'strategy:sparse', what: 'Top-K / Random-K gradients with their indices (src/parallel/sparse-sync.ts)' },
  powerSgdFactors: { first: FIRST_FLOAT_ID, count: 2, payload: 'floats', scope: 'strategy:powersgd', what: 'PowerSGD: the P factors (and uncompressed tensors), then the Q factors (src/collective/powersgd.ts)' },
  dilocoOuter: { first: FIRST_FLOAT_ID, count: 1, payload: 'floats', scope: 'strategy:diloco', what: 'DiLoCo: the pseudo-gradient of an outer step, float32 or fp16 (src/parallel/diloco.ts)' },
  dilocoOuterSparse: { first: FIRST_FLOAT_ID + 1, count: 1, payload: 'sparse', scope: 'strategy:diloco', what: 'DiLoCo with Top-K: the pseudo-gradient\'s kept entries with their indices' },
  pipeline: {
    first: FIRST_FLOAT_ID,
    count: 7,
    payload: 'floats',
    scope: 'strategy:pipeline',
    what: "pipeline parallelism (src/parallel/pipeline-trainer.ts, src/lab/pipeline-run.ts): +0 activations forward and their gradients back, +1 the tied embedding's gradient, +2 unused (a stage's gradient averaged over its replicas now takes pipelineReplicaGroups), +3 the squared gradient norm for clipping, +4 evaluation activations, +5 the losses every tab shows, +6 a text sample's activations and drawn characters",
  },
  pipelineReplicaGroups: {
    first: FIRST_FLOAT_ID + 16,
    count: PIPELINE_REPLICA_GROUPS,
    payload: 'floats',
    scope: 'strategy:pipeline',
    what: "pipeline parallelism, DP x PP: a stage's gradient averaged over its replicas, one all-reduce per layer group of the stage's layout (+g: group g), each started when its gradient is final (src/parallel/pipeline-trainer.ts)",
  },
  pipelineTimeline: {
    first: 12,
    count: 1,
    payload: 'bytes',
    scope: 'strategy:pipeline',
    what: "pipeline parallelism: every tab's op events of a step, all-gathered so each dashboard draws the whole pipeline (src/parallel/timeline-gather.ts)",
  },
  tensor: {
    first: FIRST_FLOAT_ID,
    count: 3,
    payload: 'floats',
    scope: 'strategy:tensor',
    what: "tensor parallelism (src/parallel/tensor-trainer.ts, src/lab/tensor-run.ts): +0 a shard's gradient averaged over its data-parallel replicas, +1 the squared gradient norm for clipping, +2 the losses every tab shows",
  },
  tensorActivations: {
    first: TENSOR_ACTIVATIONS_FIRST,
    count: TENSOR_ACTIVATIONS_PER_STEP,
    payload: 'floats',
    scope: 'strategy:tensor',
    what: "tensor parallelism: a step's all-reduces of a block's partial output (forward) and its input's partial gradient (backward), numbered in order",
  },
  tensorEvalActivations: {
    first: TENSOR_ACTIVATIONS_FIRST + TENSOR_ACTIVATIONS_PER_STEP,
    count: TENSOR_ACTIVATIONS_PER_STEP,
    payload: 'floats',
    scope: 'strategy:tensor',
    what: 'tensor parallelism: the evaluation forward passes\' all-reduces, numbered in order',
  },
  expert: {
    first: FIRST_FLOAT_ID,
    count: 5,
    payload: 'floats',
    scope: 'strategy:expert',
    what: "expert parallelism (src/parallel/moe-gpt-trainer.ts, src/lab/expert-run.ts): +0 the replicated tensors' gradients averaged over the room, +1 the experts' gradients over their data-parallel replicas, +2 the squared gradient norm for clipping, +3 the losses every tab shows, +4 the tokens each tab routed to each expert",
  },
  expertExchanges: {
    first: TENSOR_ACTIVATIONS_FIRST,
    count: TENSOR_ACTIVATIONS_PER_STEP,
    payload: 'floats',
    scope: 'strategy:expert',
    what: "expert parallelism: a step's all-to-alls (per MoE block and micro-batch: forward header, tokens, outputs; backward output gradients, input gradients), numbered in order",
  },
  expertEvalExchanges: {
    first: TENSOR_ACTIVATIONS_FIRST + TENSOR_ACTIVATIONS_PER_STEP,
    count: TENSOR_ACTIVATIONS_PER_STEP,
    payload: 'floats',
    scope: 'strategy:expert',
    what: "expert parallelism: the evaluation forward passes' all-to-alls, numbered in order",
  },
  elasticControl: { first: 0x0e1a5, count: 1, payload: 'control', scope: 'room', what: 'elastic rooms: ready / roster / abort / closed (src/peer/elastic-protocol.ts)' },
  strategySwitch: { first: 0x0e1a7, count: 1, payload: 'control', scope: 'room', what: 'strategy switch: a request to rank 0, its announcement "switch at step s" or refusal (src/lab/strategy-switch.ts)' },
  strategyAgreement: { first: 11, count: 1, payload: 'bytes', scope: 'room', what: 'after a re-form: each tab\'s strategy and expected switch, all-gathered; every tab takes rank 0\'s (src/lab/strategy-switch.ts)' },
  strategyState: { first: 0x0e1a8, count: 1, payload: 'floats', scope: 'room', what: 'strategy switch: the optimizer state made one again, averaged (leaving DiLoCo) or the server\'s (leaving the parameter server) (src/lab/switch-state.ts)' },
  presence: { first: 0x0e1a6, count: 1, payload: 'control', scope: 'room', what: 'presence cards: name, backend, step, step time (src/peer/presence.ts)' },
  classroomLesson: { first: 0x00c1a55, count: 1, payload: 'floats', scope: 'room', what: 'classroom: the lesson\'s all-reduce, and its control frames (src/lab/classroom-protocol.ts)' },
  zeroCollectives: { first: ZERO_FIRST, count: U32_END - ZERO_FIRST, payload: 'floats', scope: 'strategy:zero', what: 'ZeRO: reduce-scatters and all-gathers, numbered in order (src/parallel/zero/zero-sync.ts)' },
} as const satisfies Record<string, CollectiveIdRange>;

export type CollectiveName = keyof typeof COLLECTIVE_IDS;

/** Whether two scopes' collectives can be on one mesh at once (then their ids must differ). */
export function scopesMeet(a: CollectiveScope, b: CollectiveScope): boolean {
  if (a === b) return true;
  if (a === 'mesh-probe' || b === 'mesh-probe') return false;
  return a === 'room' || b === 'room';
}
