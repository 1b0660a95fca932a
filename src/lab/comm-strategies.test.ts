// PowerSGD and DiLoCo as the lab wires them: a LabConfig (compression=powersgd&rank=r,
// mode=diloco&inner=H...) through the real strategy (createParallelHooks), N CPU ranks over the
// in-memory ring. Replicas: PowerSGD's bitwise equal after every step; DiLoCo's after exactly the steps
// the strategy says (every H-th step and the last) and different after the others. Parity: DiLoCo with
// H = 1 and outer SGD at lr 1 ends where the dense ring ends.
import { describe, expect, it } from 'vitest';
import { powerSgdHooks, sparseHooks, strategyFor } from '../parallel/strategy';
import { parseConfig } from './config';
import { contextFor, relativeError, testConfig, trainRoom } from './parallel-test-support';
import { CpuBackend } from '../engine/cpu-backend';
import { createMemoryMesh } from '../collective/memory-transport';
import { powerSgdPlan } from '../collective/powersgd';

describe('compression=powersgd in a room', () => {
  it.each([
    [2, 1],
    [3, 2],
  ])('%i ranks, rank %i: replicas bitwise equal after every step; bytes per step are the plan\'s two all-reduces', async (world, rank) => {
    const config = testConfig({ compression: 'powersgd', rank });
    const room = await trainRoom(world, config, { makeHooks: powerSgdHooks });
    for (const hashes of room.hashesPerStep) expect(new Set(hashes).size).toBe(1);
    const plan = room.ranks[0].hooks.sync().plan;
    // Each ring all-reduce of n floats sends 2(world-1)/world of them per rank (chunks may differ by one float).
    const perStep = (4 * 2 * (world - 1) * (plan.firstFloats + plan.secondFloats)) / world;
    expect(room.ranks[0].steps.length).toBe(config.steps);
    for (const step of room.ranks[0].steps) expect(Math.abs(step.bytesSent - perStep)).toBeLessThanOrEqual(4 * 2 * 2 * (world - 1));
    expect(room.ranks[0].run.trainer.step).toBe(config.steps);
  });
});

describe('the default minrate on the MNIST model [784, 256, 10]', () => {
  it('ranks 2 and 4 send fc0.w as factors and the output layer fc1.w whole; rank 1 (fc1.w 9.6x smaller as factors) compresses both', () => {
    const tensors = [
      { name: 'fc0.w', offset: 0, shape: [784, 256] },
      { name: 'fc0.b', offset: 784 * 256, shape: [256] },
      { name: 'fc1.w', offset: 784 * 256 + 256, shape: [256, 10] },
      { name: 'fc1.b', offset: 784 * 256 + 256 + 2560, shape: [10] },
    ];
    const length = 784 * 256 + 256 + 2560 + 10;
    const plan = (rank: number) => powerSgdPlan(tensors, length, rank, parseConfig(new URLSearchParams('compression=powersgd')).minrate);
    expect(plan(1).matrices.map((m) => m.name)).toEqual(['fc0.w', 'fc1.w']);
    for (const rank of [2, 4]) expect(plan(rank).matrices.map((m) => m.name)).toEqual(['fc0.w']);
    // Rank 2: P (784 x 2) with the dense 256 + 2560 + 10, then Q (256 x 2): 4,906 floats of 203,530.
    expect(plan(2).firstFloats + plan(2).secondFloats).toBe(4906);
  });
});

describe('mode=diloco in a room', () => {
  it('3 ranks, H = 3, 8 steps, Nesterov defaults: replicas equal exactly after steps 3, 6 and 8 (the last), as the strategy says, and differ after the others', async () => {
    const config = testConfig({ mode: 'diloco', inner: 3 });
    const room = await trainRoom(3, config);
    const [transport] = createMemoryMesh(3);
    const strategy = strategyFor(contextFor(config, new CpuBackend(), transport, () => room.ranks[0].run, 1));
    expect(strategy.replicasEqualEveryStep).toBe(false);
    const equalAfter = room.hashesPerStep.map((hashes) => new Set(hashes).size === 1);
    expect(equalAfter).toEqual([false, false, true, false, false, true, false, true]);
    expect(equalAfter.map((_, i) => strategy.replicasEqualAfter!(i + 1))).toEqual(equalAfter);
  });

  it('fp16 on the outer exchange: replicas equal after each outer step; half the bytes of float32', async () => {
    const bytes = async (compression: 'none' | 'fp16') => {
      const room = await trainRoom(2, testConfig({ mode: 'diloco', inner: 4, compression }));
      expect(room.hashesPerStep.map((hashes) => new Set(hashes).size === 1)).toEqual([false, false, false, true, false, false, false, true]);
      return room.ranks[0].steps.reduce((sum, s) => sum + s.bytesSent, 0);
    };
    const f32 = await bytes('none');
    expect(f32).toBeGreaterThan(0);
    expect(await bytes('fp16')).toBe(f32 / 2);
  });

  it.each([2, 4])('%i ranks, H = 1, outer SGD lr 1 (outermomentum=0), inner SGD with momentum 0.9: ends where the dense ring ends within 1e-5 of the distance trained', async (world) => {
    // Momentum is linear, so the mean of each rank's momentum update is the update of the mean gradient.
    const sgd = { optimizer: 'momentum' as const, lr: 0.05 };
    const noClip = { recipe: { clipNorm: 0 } };
    const dense = await trainRoom(world, testConfig(sgd), noClip);
    const diloco = await trainRoom(world, testConfig({ ...sgd, mode: 'diloco', inner: 1, outerlr: 1, outermomentum: 0 }), noClip);
    for (const hashes of diloco.hashesPerStep) expect(new Set(hashes).size).toBe(1);
    const error = relativeError(diloco.params[0], dense.params[0], dense.initial);
    expect(error).toBeLessThan(1e-5);
    // And it is not vacuous: Nesterov defaults end elsewhere.
    const nesterov = await trainRoom(world, testConfig({ ...sgd, mode: 'diloco', inner: 1 }), noClip);
    expect(relativeError(nesterov.params[0], dense.params[0], dense.initial)).toBeGreaterThan(1e-2);
  });
});

describe('collective= in a room', () => {
  it.each(['tree', 'rhd', 'naive', 'auto'] as const)('3 ranks, collective=%s: replicas bitwise equal after every step; ends where the ring ends within 1e-5 of the distance trained', async (collective) => {
    const sgd = { optimizer: 'sgd' as const, lr: 0.05, bucket: 256 };
    const ring = await trainRoom(3, testConfig(sgd));
    const chosen = await trainRoom(3, testConfig({ ...sgd, collective }), { mesh: { latencyMs: 1 } });
    for (const hashes of chosen.hashesPerStep) expect(new Set(hashes).size).toBe(1);
    expect(relativeError(chosen.params[0], ring.params[0], ring.initial)).toBeLessThan(1e-5);
    if (collective !== 'auto') expect(chosen.ranks[0].chunks.some((c) => c.collective === `${collective}-allreduce`)).toBe(true);
  });
});

describe('Top-K compression error', () => {
  it('||g - topk(g)||^2/||g||^2 lies in (0, (d-k)/d] at 10%, and is 0 when every entry is kept', async () => {
    const errors = async (ratio: number) => {
      const room = await trainRoom(2, testConfig({ compression: 'topk', ratio }), { makeHooks: (ctx) => sparseHooks(ctx, 'topk') });
      return room.ranks.map((r) => r.hooks.sync().lastStep!);
    };
    for (const step of await errors(0.1)) {
      expect(step.errorBound).toBeCloseTo(1 - step.k / (step.k / 0.1), 2);
      expect(step.compressionError).toBeGreaterThan(0);
      expect(step.compressionError).toBeLessThanOrEqual(step.errorBound);
    }
    for (const step of await errors(1)) expect([step.compressionError, step.errorBound]).toEqual([0, 0]);
  });
});

describe('the URL keys', () => {
  const parse = (query: string) => parseConfig(new URLSearchParams(query));

  it('read rank, inner and the outer optimizer, with DiLoCo\'s defaults', () => {
    expect(parse('compression=powersgd&rank=4')).toMatchObject({ compression: 'powersgd', rank: 4, minrate: 5 });
    expect(parse('compression=powersgd&minrate=1.5')).toMatchObject({ minrate: 1.5 });
    expect(parse('mode=diloco')).toMatchObject({ mode: 'diloco', inner: 50, outerlr: 0.7, outermomentum: 0.9 });
    expect(parse('mode=diloco&inner=10&outerlr=1&outermomentum=0&compression=fp16')).toMatchObject({ inner: 10, outerlr: 1, outermomentum: 0, compression: 'fp16' });
  });

  it('refuse combinations that mean nothing, naming the key', () => {
    expect(() => parse('rank=4')).toThrow(/rank sets PowerSGD's rank: use compression=powersgd/);
    expect(() => parse('minrate=2')).toThrow(/minrate sets which matrices PowerSGD compresses: use compression=powersgd/);
    expect(() => parse('compression=powersgd&minrate=0.5')).toThrow(/minrate must be a number from 1/);
    expect(() => parse('inner=10')).toThrow(/inner tunes DiLoCo: use mode=diloco/);
    expect(() => parse('mode=ps&compression=powersgd')).toThrow(/use mode=ring/);
    expect(() => parse('mode=diloco&compression=randk')).toThrow(/fp16 or topk only/);
    expect(() => parse('mode=diloco&zero=1')).toThrow(/zero=0/);
    expect(() => parse('compression=powersgd&zero=2')).toThrow(/compression=none/);
    expect(() => parse('mode=diloco&outermomentum=1')).toThrow(/outermomentum must be a number from 0 to 0.999/);
    expect(() => parse('mode=diloco&inner=0')).toThrow(/inner must be an integer from 1/);
    expect(() => parse('collective=tree&compression=topk')).toThrow(/collective=tree picks the algorithm of the dense all-reduces/);
    expect(() => parse('collective=auto&mode=diloco&compression=topk')).toThrow(/mode=diloco with compression none or fp16/);
    expect(() => parse('collective=auto&mode=ps')).toThrow(/collective=auto picks the algorithm of the dense all-reduces/);
    expect(parse('collective=auto&compression=powersgd')).toMatchObject({ collective: 'auto', compression: 'powersgd' });
    expect(parse('collective=auto&mode=diloco&compression=fp16')).toMatchObject({ collective: 'auto', mode: 'diloco' });
    expect(() => parse('collective=star')).toThrow(/collective must be one of auto, ring, tree, rhd, naive/);
    expect(parse('collective=auto&compression=fp16')).toMatchObject({ collective: 'auto' });
    expect(parse('latency=20&bandwidth=5')).toMatchObject({ latency: 20, bandwidth: 5 });
    expect(() => parse('latency=-1')).toThrow(/latency must be a number from 0 to 10000/);
    expect(parse('slow=200&slowrank=1')).toMatchObject({ slow: 200, slowrank: 1 });
    expect(parse('slow=200')).toMatchObject({ slow: 200, slowrank: -1 });
    expect(parse('optimizer=momentum')).toMatchObject({ optimizer: 'momentum' });
  });
});
