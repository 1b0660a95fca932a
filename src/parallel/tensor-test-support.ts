// T tensor-parallel ranks (x D data-parallel replicas) in one process, a CPU backend each over the
// in-memory transport, on the seeded random batches of src/parallel/pipeline-test-support.ts: for the
// unit tests and scripts/tensor-sim.ts, never for the product. The one-tab reference they are compared
// against is that file's trainOneTab.
import { GroupTransport } from '../collective/group-transport';
import { createMemoryMesh } from '../collective/memory-transport';
import { type Backend, viewOf } from '../engine/backend';
import { CpuBackend } from '../engine/cpu-backend';
import { paramsHash } from '../model/layout';
import type { StageModelSpec } from '../model/pipeline-stage';
import { TensorGpt } from '../model/tensor-gpt';
import type { TensorParallelModel } from '../model/tensor-model';
import { TensorMlp } from '../model/tensor-mlp';
import { gatherShards } from '../model/tensor-split';
import { Optimizer, type OptimizerConfig } from '../train/optimizer';
import { RandomBatches } from './pipeline-test-support';
import { type TensorCollectiveEvent, TensorTrainer } from './tensor-trainer';

/** Two column/row pairs and a replicated last layer; every hidden width divides by 4. */
export const TP_MLP: StageModelSpec = { kind: 'mlp', config: { sizes: [6, 8, 5, 12, 4, 3] }, maxRows: 8 };
/** Four heads (1 or 2 per rank at T = 4 or 2). */
export const TP_GPT: StageModelSpec = { kind: 'gpt', config: { vocabSize: 7, blockSize: 5, nLayer: 2, nHead: 4, nEmbd: 8 }, maxRows: 8 };

export function buildTensorModel(backend: Backend, spec: StageModelSpec, maxRows: number, rank: number, ranks: number): TensorParallelModel {
  return spec.kind === 'mlp' ? new TensorMlp(backend, spec.config, maxRows, { rank, ranks }) : new TensorGpt(backend, spec.config, maxRows, { rank, ranks });
}

export interface TensorRun {
  /** The first tensor group's shards put together in the whole model's layout. */
  params: Float32Array;
  /** Whether every rank's replicated tensors have the same bits as rank 0's (every group). */
  replicatedEqual: boolean;
  /** Per tensor rank, the shard hash of each data-parallel replica (all equal when DP keeps them in step). */
  replicaHashes: string[][];
  losses: number[];
  /** Rank 0's tensor collectives, step by step. */
  collectives: TensorCollectiveEvent[][];
  /** Per step, bytes rank 0 sent for the data-parallel average. */
  dataParallelBytes: number[];
  /** Per rank of the first group: parameter elements of its shard layout and optimizer bytes allocated. */
  shardElements: number[];
  optimizerBytes: number[];
}

/** T ranks (room rank = replica * T + tensor rank), each tensor group on its share of every micro-batch. */
export async function trainTensor(
  spec: StageModelSpec,
  optimizer: OptimizerConfig,
  ranks: number,
  globalRows: number,
  micro: number,
  options: { steps?: number; seed?: number; replicas?: number; backend?: (rank: number) => Backend } = {},
): Promise<TensorRun> {
  const T = ranks;
  const D = options.replicas ?? 1;
  const room = createMemoryMesh(T * D);
  const maxRows = Math.max(spec.maxRows, globalRows / micro / D);
  const parts = room.map((transport) => {
    const [replica, rank] = [Math.floor(transport.rank / T), transport.rank % T];
    const backend = options.backend?.(transport.rank) ?? new CpuBackend();
    const model = buildTensorModel(backend, spec, maxRows, rank, T);
    model.init(options.seed ?? 5);
    const before = backend.memory().optimizer;
    const opt = new Optimizer(backend, model.layout, optimizer);
    const optimizerBytes = (backend.memory().optimizer - before);
    const tensorGroup = new GroupTransport(transport, Array.from({ length: T }, (_, t) => replica * T + t));
    const dpGroup = new GroupTransport(transport, Array.from({ length: D }, (_, d) => d * T + rank));
    const trainer = new TensorTrainer({
      backend,
      model,
      optimizer: opt,
      batches: new RandomBatches(spec, globalRows, micro, { index: replica, count: D }),
      transport: tensorGroup,
      ...(D > 1 ? { dataParallel: { transport: dpGroup } } : {}),
    });
    return { backend, model, opt, trainer, replica, rank, optimizerBytes };
  });
  const losses: number[] = [];
  const collectives: TensorCollectiveEvent[][] = [];
  const dataParallelBytes: number[] = [];
  for (let step = 0; step < (options.steps ?? 3); step++) {
    const reports = await Promise.all(parts.map((p) => p.trainer.trainStep()));
    losses.push(reports.filter((_, r) => r % T === 0).reduce((s, r) => s + r.loss, 0) / D);
    collectives.push(reports[0].collectives);
    dataParallelBytes.push(reports[0].dataParallelBytesSent);
  }
  const shards = await Promise.all(parts.map((p) => p.backend.read(viewOf(p.model.params))));
  const replicaHashes: string[][] = Array.from({ length: T }, () => []);
  parts.forEach((p, i) => replicaHashes[p.rank].push(paramsHash(shards[i])));
  let replicatedEqual = true;
  let params: Float32Array = new Float32Array(0);
  for (let d = 0; d < D; d++) {
    const gathered = gatherShards(parts[0].model.wholeLayout, parts[0].model.plan, shards.slice(d * T, (d + 1) * T));
    replicatedEqual &&= gathered.replicasEqual;
    if (d === 0) params = gathered.values;
  }
  const first = parts.slice(0, T);
  const run: TensorRun = {
    params,
    replicatedEqual,
    replicaHashes,
    losses,
    collectives,
    dataParallelBytes,
    shardElements: first.map((p) => p.model.layout.totalLength),
    optimizerBytes: first.map((p) => p.optimizerBytes),
  };
  for (const p of parts) {
    p.opt.dispose();
    p.model.dispose();
  }
  return run;
}
