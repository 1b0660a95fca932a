// Checks of PipelineTrainer that mutation testing (npm run mutate) showed missing. The pipeline tests
// (pipeline-trainer.test.ts) go through pipeline-test-support.ts, which never passes `clipNorm`,
// `learningRate`, `collective` or `pipelineGroup` and always passes `rankOfStage`, so the pipeline's
// clip was never run, a learning-rate schedule could be ignored, the step's loss was never compared with
// anything, and the message numbering could change without a test noticing. Here the stages are built
// directly and compared with one tab (Trainer) running the same batches: each test names the bug it
// catches.
import { describe, expect, it } from 'vitest';
import { GroupTransport } from '../collective/group-transport';
import { createMemoryMesh } from '../collective/memory-transport';
import type { PipelineEvent } from '../collective/pipeline-executor';
import type { MessageTag, Transport } from '../collective/types';
import { viewOf } from '../engine/backend';
import { CpuBackend } from '../engine/cpu-backend';
import { Gpt } from '../model/gpt';
import { Mlp } from '../model/mlp';
import { PipelineStage, type StageModelSpec } from '../model/pipeline-stage';
import { Optimizer, type OptimizerConfig } from '../train/optimizer';
import { Trainer } from '../train/trainer';
import { PipelineTrainer, type PipelineStepReport } from './pipeline-trainer';
import { maxRelativeDifference, RandomBatches, SGD, TINY_GPT, TINY_MLP, wholeLayout } from './pipeline-test-support';

const ROWS = 8;
/** The same bound as pipeline-trainer.test.ts (measured noise <= 7.5e-9 with SGD), relative to the largest parameter. */
const TOLERANCE = 1e-6;

interface Options {
  steps?: number;
  clipNorm?: number;
  learningRate?: (step: number) => number;
  collective?: number;
  /** Give each stage its pipeline as a GroupTransport (needed to clip over more than one stage). */
  group?: boolean;
  /** Wraps each stage's transport (to record or damage what it sends). */
  wrap?: (t: Transport) => Transport;
  computeDelayMs?: (kind: 'forward' | 'backward', micro: number) => number;
}

/** P stages over the in-memory mesh, default rank = stage (no rankOfStage). */
async function pipeline(spec: StageModelSpec, optimizer: OptimizerConfig, P: number, M: number, o: Options = {}) {
  const mesh = createMemoryMesh(P);
  const parts = mesh.map((room) => {
    const transport = o.wrap ? o.wrap(room) : room;
    const backend = new CpuBackend();
    const stage = new PipelineStage(backend, spec, room.rank, P);
    stage.init(5);
    const opt = new Optimizer(backend, stage.layout, optimizer);
    const trainer = new PipelineTrainer({
      backend,
      stage,
      optimizer: opt,
      batches: new RandomBatches(spec, ROWS, M),
      transport,
      schedule: '1f1b',
      ...(o.clipNorm ? { clipNorm: o.clipNorm } : {}),
      ...(o.learningRate ? { learningRate: o.learningRate } : {}),
      ...(o.collective !== undefined ? { collective: o.collective } : {}),
      ...(o.group ? { pipelineGroup: new GroupTransport(transport, mesh.map((t) => t.rank)) } : {}),
      ...(o.computeDelayMs ? { computeDelayMs: o.computeDelayMs } : {}),
    });
    return { backend, stage, trainer };
  });
  const reports: PipelineStepReport[][] = [];
  for (let s = 0; s < (o.steps ?? 2); s++) reports.push(await Promise.all(parts.map((p) => p.trainer.trainStep())));
  const whole = wholeLayout(spec);
  const params = new Float32Array(whole.totalLength);
  for (const { backend, stage } of parts) {
    const own = await backend.read(viewOf(stage.model.params));
    for (const e of stage.layout.entries) params.set(own.subarray(e.offset, e.offset + e.length), whole.entries.find((w) => w.name === e.name)!.offset);
  }
  return { params, reports, trainers: parts.map((p) => p.trainer) };
}

/** One tab on the same batches (M micro-batches of accumulation): its parameters and each step's loss. */
async function oneTab(spec: StageModelSpec, optimizer: OptimizerConfig, M: number, o: Pick<Options, 'steps' | 'clipNorm' | 'learningRate'> = {}) {
  const backend = new CpuBackend();
  const maxRows = Math.max(spec.maxRows, ROWS / M);
  const model = spec.kind === 'mlp' ? new Mlp(backend, spec.config, maxRows) : new Gpt(backend, spec.config, maxRows);
  model.init(5);
  const opt = new Optimizer(backend, model.layout, optimizer);
  const trainer = new Trainer({
    backend,
    model,
    optimizer: opt,
    batches: new RandomBatches(spec, ROWS, M),
    ...(o.clipNorm ? { clipNorm: o.clipNorm } : {}),
    ...(o.learningRate ? { learningRate: o.learningRate } : {}),
  });
  const losses: number[] = [];
  for (let s = 0; s < (o.steps ?? 2); s++) {
    await trainer.trainStep();
    losses.push(await trainer.lastLoss());
  }
  return { params: await backend.read(viewOf(model.params)), losses };
}

describe('PipelineTrainer: what it refuses', () => {
  const backend = new CpuBackend();
  const stage = new PipelineStage(backend, TINY_MLP, 0, 1);
  const base = { backend, stage, transport: createMemoryMesh(1)[0], schedule: '1f1b' as const };

  it('no micro-batches, or an optimizer that holds a shard of the stage (a pipeline stage updates all of its parameters)', () => {
    const optimizer = new Optimizer(backend, stage.layout, SGD);
    expect(new PipelineTrainer({ ...base, optimizer, batches: new RandomBatches(TINY_MLP, ROWS, 1) }).step).toBe(0);
    const none = Object.assign(new RandomBatches(TINY_MLP, ROWS, 1), { microBatches: 0 });
    expect(() => new PipelineTrainer({ ...base, optimizer, batches: none })).toThrow(new RangeError('a pipeline needs at least one micro-batch'));
    const shard = new Optimizer(backend, stage.layout, SGD, { offset: 0, length: 64 });
    expect(() => new PipelineTrainer({ ...base, optimizer: shard, batches: new RandomBatches(TINY_MLP, ROWS, 1) })).toThrow("the stage's optimizer must hold the state of the stage's whole layout");
  });

  it('a resumed step must be a whole number >= 0 (a checkpoint restore sets it)', () => {
    const trainer = new PipelineTrainer({ ...base, optimizer: new Optimizer(backend, stage.layout, SGD), batches: new RandomBatches(TINY_MLP, ROWS, 1) });
    trainer.step = 0;
    trainer.step = 7;
    expect(trainer.step).toBe(7);
    expect(() => (trainer.step = -1)).toThrow(new RangeError('step must be an integer >= 0, got -1'));
    expect(() => (trainer.step = 1.5)).toThrow(new RangeError('step must be an integer >= 0, got 1.5'));
    expect(trainer.step).toBe(7);
  });
});

describe('PipelineTrainer against one tab', () => {
  it('the last stage reports the mean loss of the global batch (as one tab computes it, relative 1e-6); the other stages report none', async () => {
    const run = await pipeline(TINY_MLP, SGD, 2, 4);
    const one = await oneTab(TINY_MLP, SGD, 4);
    for (const [s, reports] of run.reports.entries()) {
      expect(reports[0]).not.toHaveProperty('loss');
      expect(Math.abs(reports[1].loss! - one.losses[s]) / one.losses[s]).toBeLessThan(1e-6);
      expect(reports[1].step).toBe(s);
    }
  });

  it("the learning-rate schedule is the one given, not the optimizer's own lr (relative 1e-6)", async () => {
    const learningRate = (step: number) => SGD.lr * (step === 0 ? 0.5 : 0.25);
    const run = await pipeline(TINY_MLP, SGD, 2, 2, { learningRate });
    const one = await oneTab(TINY_MLP, SGD, 2, { learningRate });
    expect(maxRelativeDifference(run.params, one.params)).toBeLessThan(TOLERANCE);
    const unscheduled = await oneTab(TINY_MLP, SGD, 2);
    expect(maxRelativeDifference(run.params, unscheduled.params)).toBeGreaterThan(100 * TOLERANCE);
  });

  for (const [name, spec] of [['mlp', TINY_MLP], ['gpt (tied wte counted once)', TINY_GPT]] as const) {
    it(`${name}: clipping over 1 and 2 stages ends where one tab's clip ends (relative 1e-6), and the clip was active`, async () => {
      const clipNorm = 0.05;
      const one = await oneTab(spec, SGD, 2, { clipNorm });
      for (const P of [1, 2]) {
        const run = await pipeline(spec, SGD, P, 2, { clipNorm, group: P > 1 });
        expect(maxRelativeDifference(run.params, one.params), `P=${P}`).toBeLessThan(TOLERANCE);
      }
      const unclipped = await oneTab(spec, SGD, 2);
      expect(maxRelativeDifference(unclipped.params, one.params)).toBeGreaterThan(100 * TOLERANCE);
    });
  }

  it('clipping two stages without their group, or with a group whose rank is not the stage, is refused by name', async () => {
    await expect(pipeline(TINY_MLP, SGD, 2, 1, { clipNorm: 1, steps: 1 })).rejects.toThrow('clipping a pipeline needs its stages as a transport (pipelineGroup)');
    const backend = new CpuBackend();
    const stage = new PipelineStage(backend, TINY_MLP, 1, 2);
    stage.init(5);
    const mesh = createMemoryMesh(2);
    const trainer = new PipelineTrainer({
      backend,
      stage,
      optimizer: new Optimizer(backend, stage.layout, SGD),
      batches: new RandomBatches(TINY_MLP, ROWS, 1),
      transport: mesh[1],
      schedule: '1f1b',
      clipNorm: 1,
      pipelineGroup: new GroupTransport(mesh[1], [1, 0]),
    });
    // Stage 1's forward waits for stage 0, which this test plays by hand.
    const firstBackend = new CpuBackend();
    const first = new PipelineStage(firstBackend, TINY_MLP, 0, 2);
    first.init(5);
    const firstTrainer = new PipelineTrainer({ backend: firstBackend, stage: first, optimizer: new Optimizer(firstBackend, first.layout, SGD), batches: new RandomBatches(TINY_MLP, ROWS, 1), transport: mesh[0], schedule: '1f1b' });
    void firstTrainer.trainStep().catch(() => undefined);
    await expect(trainer.trainStep()).rejects.toThrow("the pipeline group's rank 0 is not the stage 1");
  });
});

describe('PipelineTrainer: messages and events', () => {
  it('a GPT over 2 stages numbers its messages from `collective`: the schedule on it, the tied sum on +1 (gradient tags), the clip on +3', async () => {
    const sent: MessageTag[] = [];
    const wrap = (t: Transport): Transport => ({ rank: t.rank, world: t.world, send: (to, tag, p) => (sent.push(tag), t.send(to, tag, p)), recv: (from, tag) => t.recv(from, tag) });
    await pipeline(TINY_GPT, SGD, 2, 2, { collective: 40, clipNorm: 1, group: true, wrap, steps: 1 });
    const collectives = new Set(sent.map((t) => t.collective));
    expect([...collectives].sort((a, b) => a - b)).toEqual([40, 41, 43]);
    const tied = sent.filter((t) => t.collective === 41);
    // One wte tensor tied, sent by each end: tensor 0's gradient tag (chunk 2 * 0 + 1).
    expect(tied).toEqual([
      { round: 0, collective: 41, chunk: 1 },
      { round: 0, collective: 41, chunk: 1 },
    ]);
    // And by default from 0.
    sent.length = 0;
    await pipeline(TINY_GPT, SGD, 2, 1, { wrap, steps: 1 });
    expect([...new Set(sent.map((t) => t.collective))].sort()).toEqual([0, 1]);
  });

  it('a tied gradient of the wrong size from the other end is refused by name (not summed past its end)', async () => {
    const wrap = (t: Transport): Transport => ({
      rank: t.rank,
      world: t.world,
      send: (to, tag, p) => t.send(to, tag, tag.collective === 1 && t.rank === 1 ? p.subarray(0, p.length - 4) : p),
      recv: (from, tag) => t.recv(from, tag),
    });
    await expect(pipeline(TINY_GPT, SGD, 2, 1, { wrap, steps: 1 })).rejects.toThrow(/^tied wte: got \d+ bytes from the other end, hold \d+$/);
  });

  it("computeDelayMs is asked with each op's kind and micro-batch", async () => {
    const asked: string[] = [];
    await pipeline(TINY_MLP, SGD, 1, 2, { computeDelayMs: (kind, micro) => (asked.push(`${kind} ${micro}`), 0), steps: 1 });
    expect(asked.sort()).toEqual(['backward 0', 'backward 1', 'forward 0', 'forward 1']);
  });
});

describe('PipelineTrainer: DP x PP events', () => {
  it("each layer group's all-reduce is a 'pipeline' event on collective firstCollective + the group's index; a group of one tab runs none", async () => {
    const P = 1;
    const D = 2;
    const mesh = createMemoryMesh(D);
    const sent: MessageTag[] = [];
    const results = await Promise.all(
      mesh.map(async (room) => {
        const recorded: Transport = { rank: room.rank, world: room.world, send: (to, tag, p) => (sent.push(tag), room.send(to, tag, p)), recv: (f, tag) => room.recv(f, tag) };
        const backend = new CpuBackend();
        const stage = new PipelineStage(backend, TINY_GPT, 0, P);
        stage.init(5);
        const events: PipelineEvent[] = [];
        const trainer = new PipelineTrainer({
          backend,
          stage,
          optimizer: new Optimizer(backend, stage.layout, SGD),
          batches: new RandomBatches(TINY_GPT, ROWS, 1, { index: room.rank, count: D }),
          transport: new GroupTransport(recorded, [room.rank]),
          schedule: '1f1b',
          dataParallel: { transport: new GroupTransport(recorded, [0, 1]), firstCollective: 2 },
          onEvent: (e) => events.push(e),
        });
        const report = await trainer.trainStep();
        return { stage, report, events };
      }),
    );
    const groups = results[0].stage.layout.groups.length;
    expect(groups).toBeGreaterThan(2);
    expect([...new Set(sent.map((t) => t.collective))].sort((a, b) => a - b)).toEqual(Array.from({ length: groups }, (_, g) => 2 + g));
    const allReduces = results[0].report.events.filter((e) => e.kind === 'allreduce');
    expect(allReduces).toHaveLength(groups);
    for (const e of allReduces) expect(e.type).toBe('pipeline');

    const alone = createMemoryMesh(1)[0];
    const backend = new CpuBackend();
    const stage = new PipelineStage(backend, TINY_GPT, 0, 1);
    stage.init(5);
    const single = new PipelineTrainer({
      backend,
      stage,
      optimizer: new Optimizer(backend, stage.layout, SGD),
      batches: new RandomBatches(TINY_GPT, ROWS, 1),
      transport: alone,
      schedule: '1f1b',
      dataParallel: { transport: new GroupTransport(alone, [0]), firstCollective: 2 },
    });
    expect((await single.trainStep()).events.filter((e) => e.kind === 'allreduce')).toEqual([]);
  });
});
