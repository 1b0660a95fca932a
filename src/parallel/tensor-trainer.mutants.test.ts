// Checks of tensor-trainer.ts that mutation testing (npm run mutate) showed missing: its parity tests
// (tensor-trainer.test.ts) compare parameters only, without clipping or a learning-rate schedule, so a
// clip that never runs, a step's rate read for the wrong step, a loss summed wrongly, collective
// numbers that do not follow `collective` (and so could meet another collective's messages), and the
// constructor's refusals all went unnoticed. Here T = 2 (and 4) ranks of the tiny GPT run against one tab's
// Trainer with the same clip and schedule (SGD without momentum, so a gradient off by a factor shows),
// and a recording transport shows the collective numbers each all-reduce used.
import { describe, expect, it } from 'vitest';
import { GroupTransport } from '../collective/group-transport';
import { createMemoryMesh } from '../collective/memory-transport';
import type { MessageTag, Transport } from '../collective/types';
import { viewOf } from '../engine/backend';
import { CpuBackend } from '../engine/cpu-backend';
import { Gpt } from '../model/gpt';
import { gatherShards } from '../model/tensor-split';
import { Optimizer, type OptimizerConfig } from '../train/optimizer';
import { Trainer } from '../train/trainer';
import { maxRelativeDifference, RandomBatches } from './pipeline-test-support';
import { buildTensorModel, TP_GPT } from './tensor-test-support';
import { TensorTrainer, type TensorStepReport, type TensorTrainerOptions } from './tensor-trainer';

const SGD: OptimizerConfig = { kind: 'sgd', lr: 0.2, momentum: 0, weightDecay: 0 };
const ROWS = 8;
const MICRO = 2;
const STEPS = 3;
/** A rate that changes every step: a trainer reading another step's rate drifts from the reference. */
const learningRate = (step: number) => SGD.lr * (1 + step);
/** tensor-trainer.test.ts measured SGD at most 3.7e-8 from one tab (relative to the largest parameter); ten times that. */
const TOLERANCE = 3e-7;

if (TP_GPT.kind !== 'gpt') throw new Error('TP_GPT is a GPT');
const GPT_CONFIG = TP_GPT.config;

/** One tab's Trainer on the same batches, with the same clip and schedule: the whole model's parameters after each step. */
async function oneTab(clipNorm?: number): Promise<Float32Array[]> {
  const backend = new CpuBackend();
  const model = new Gpt(backend, GPT_CONFIG, ROWS);
  model.init(5);
  const trainer = new Trainer({ backend, model, optimizer: new Optimizer(backend, model.layout, SGD), batches: new RandomBatches(TP_GPT, ROWS, MICRO), learningRate, ...(clipNorm ? { clipNorm } : {}) });
  const params = [await backend.read(viewOf(model.params))];
  for (let step = 0; step < STEPS; step++) {
    await trainer.trainStep();
    params.push(await backend.read(viewOf(model.params)));
  }
  return params;
}

/** The gradient norm of one tab's first step (before any clip). */
async function firstGradientNorm(): Promise<number> {
  const backend = new CpuBackend();
  const model = new Gpt(backend, GPT_CONFIG, ROWS);
  model.init(5);
  const batches = new RandomBatches(TP_GPT, ROWS, MICRO);
  backend.fill(viewOf(model.grads), 0);
  for (let micro = 0; micro < MICRO; micro++) {
    const batch = batches.next(0, micro);
    model.forward(batch, 1 / (model.lossRowsOf(batch) * MICRO));
    model.backward();
  }
  return Math.sqrt((await backend.read(viewOf(model.grads))).reduce((s, g) => s + g * g, 0));
}

/** A transport that notes the collective number of every message it sends. */
function recording(inner: Transport, tags: MessageTag[]): Transport {
  return { rank: inner.rank, world: inner.world, send: (to, tag, payload) => (tags.push(tag), inner.send(to, tag, payload)), recv: (from, tag) => inner.recv(from, tag) };
}

interface TensorRoom {
  reports: TensorStepReport[][];
  /** The first tensor group's shards put together, after the last step. */
  params: Float32Array;
  /** Per rank, the collective numbers of the messages it sent. */
  tags: MessageTag[][];
}

/** T tensor ranks (x `replicas` data-parallel groups), each trainer with `extra` options. */
async function tensorRoom(extra: Partial<TensorTrainerOptions>, replicas = 1, steps = STEPS, T = 2): Promise<TensorRoom> {
  const room = createMemoryMesh(T * replicas);
  const tags: MessageTag[][] = room.map(() => []);
  const parts = room.map((transport) => {
    const [replica, rank] = [Math.floor(transport.rank / T), transport.rank % T];
    const wire = recording(transport, tags[transport.rank]);
    const backend = new CpuBackend();
    const model = buildTensorModel(backend, TP_GPT, ROWS / MICRO, rank, T);
    model.init(5);
    const trainer = new TensorTrainer({
      backend,
      model,
      optimizer: new Optimizer(backend, model.layout, SGD),
      batches: new RandomBatches(TP_GPT, ROWS, MICRO, { index: replica, count: replicas }),
      transport: new GroupTransport(wire, Array.from({ length: T }, (_, t) => replica * T + t)),
      ...(replicas > 1 ? { dataParallel: { transport: new GroupTransport(wire, Array.from({ length: replicas }, (_, d) => d * T + rank)) } } : {}),
      learningRate,
      ...extra,
    });
    return { backend, model, trainer };
  });
  const reports: TensorStepReport[][] = [];
  for (let step = 0; step < steps; step++) reports.push(await Promise.all(parts.map((p) => p.trainer.trainStep())));
  const shards = await Promise.all(parts.slice(0, T).map((p) => p.backend.read(viewOf(p.model.params))));
  return { reports, params: gatherShards(parts[0].model.wholeLayout, parts[0].model.plan, shards).values, tags };
}

describe('TensorTrainer: what its parity tests left unchecked', () => {
  it.each([2, 4])(
    `T = %i, a per-step learning rate and global-norm clipping at a fifth of the first gradient's norm: ends within ${TOLERANCE} (relative) of one tab's Trainer with the same clip and schedule; unclipped ends far from it (catches the clip skipped or always run, the norm counting the replicated tensors on more than one rank, another step's rate)`,
    async (T) => {
      const clipNorm = (await firstGradientNorm()) / 5;
      const [clipped, unclipped] = [await oneTab(clipNorm), await oneTab()];
      const run = await tensorRoom({ clipNorm }, 1, STEPS, T);
      expect(maxRelativeDifference(run.params, clipped[STEPS])).toBeLessThan(TOLERANCE);
      expect(maxRelativeDifference(unclipped[STEPS], clipped[STEPS])).toBeGreaterThan(100 * TOLERANCE);
      const plain = await tensorRoom({}, 1, STEPS, T);
      expect(maxRelativeDifference(plain.params, unclipped[STEPS])).toBeLessThan(TOLERANCE);
    },
  );

  it('the reported loss is the mean over both micro-batches\' rows, the same on both ranks, to 1e-6 of the whole model\'s loss on the same batches; tensorBytesSent is the sum of its collectives\' bytes (catches the loss summed or counted wrongly, bytes dropped)', async () => {
    const backend = new CpuBackend();
    const model = new Gpt(backend, GPT_CONFIG, ROWS);
    model.init(5);
    const batches = new RandomBatches(TP_GPT, ROWS, MICRO);
    let sum = 0;
    let count = 0;
    for (let micro = 0; micro < MICRO; micro++) {
      const batch = batches.next(0, micro);
      const rows = model.lossRowsOf(batch);
      const result = model.forward(batch, 0);
      for (const v of await backend.read(viewOf(result.losses.buf, result.losses.offset, rows))) sum += v;
      count += rows;
    }
    const run = await tensorRoom({}, 1, 1);
    const [r0, r1] = run.reports[0];
    expect(Math.abs(r0.loss / (sum / count) - 1)).toBeLessThan(1e-6);
    expect(r1.loss).toBe(r0.loss);
    for (const r of [r0, r1]) {
      expect(r.collectives.length).toBeGreaterThan(0);
      expect(r.tensorBytesSent).toBe(r.collectives.reduce((s, e) => s + e.bytesSent, 0));
      expect(r.tensorBytesSent).toBeGreaterThan(0);
    }
  });

  it('collective numbers: the tensor all-reduces count up from `collective` (one each), the data-parallel average and the clip use theirs (1_000_000 and 1_000_001 unless given), the clip only with clipNorm: no two collectives of a step share one (catches numbers counting down, from 0, defaults lost, a clip run without clipNorm)', async () => {
    const ids = (tags: MessageTag[]) => [...new Set(tags.map((t) => t.collective))].sort((a, b) => a - b);
    const given = await tensorRoom({ collective: 40, clipNorm: 1e-3, clipCollective: 7, dataParallel: undefined }, 1, 1);
    const sites = given.reports[0][0].collectives.length;
    expect(ids(given.tags[0])).toEqual([7, ...Array.from({ length: sites }, (_, i) => 40 + i)]);
    const defaults = await tensorRoom({ clipNorm: 1e-3 }, 2, 1);
    expect(ids(defaults.tags[0])).toEqual([...Array.from({ length: sites }, (_, i) => i), 1_000_000, 1_000_001]);
    expect(defaults.reports[0].every((r) => r.dataParallelBytesSent > 0)).toBe(true);
    // Without clipNorm no clip's all-reduce runs at all.
    const unclipped = await tensorRoom({}, 1, 1);
    expect(ids(unclipped.tags[0])).toEqual(Array.from({ length: sites }, (_, i) => i));
  });

  it('T = 1: no collective runs and none is reported (catches a one-rank group all-reducing with itself)', async () => {
    const [transport] = createMemoryMesh(1);
    const backend = new CpuBackend();
    const model = buildTensorModel(backend, TP_GPT, ROWS, 0, 1);
    model.init(5);
    const trainer = new TensorTrainer({ backend, model, optimizer: new Optimizer(backend, model.layout, SGD), batches: new RandomBatches(TP_GPT, ROWS, 1), transport });
    const report = await trainer.trainStep();
    expect([report.collectives, report.tensorBytesSent, report.dataParallelBytesSent]).toEqual([[], 0, 0]);
    trainer.step = 5;
    expect([trainer.step, (await trainer.trainStep()).step, trainer.step]).toEqual([5, 5, 6]);
  });

  it('refuses no micro-batches, an optimizer over less than the shard, and a transport whose size or rank is not the model\'s, each on its own', () => {
    const [t0, t1] = createMemoryMesh(2);
    const backend = new CpuBackend();
    const model = buildTensorModel(backend, TP_GPT, ROWS, 0, 2);
    const base = { backend, model, optimizer: new Optimizer(backend, model.layout, SGD), batches: new RandomBatches(TP_GPT, ROWS, 1), transport: t0 };
    expect(() => new TensorTrainer(base)).not.toThrow();
    expect(() => new TensorTrainer({ ...base, batches: { ...base.batches, microBatches: 0, rowsPerStep: ROWS, next: () => base.batches.next(0, 0) } })).toThrow(/a step needs at least one micro-batch/);
    expect(() => new TensorTrainer({ ...base, optimizer: new Optimizer(backend, model.layout, SGD, { offset: 0, length: 8 }) })).toThrow(/optimizer must hold the state of the rank's whole shard layout/);
    expect(() => new TensorTrainer({ ...base, transport: t1 })).toThrow(/the model is tensor rank 0 of 2, the transport rank 1 of 2/);
    expect(() => new TensorTrainer({ ...base, transport: createMemoryMesh(3)[0] })).toThrow(/the model is tensor rank 0 of 2, the transport rank 0 of 3/);
  });
});
