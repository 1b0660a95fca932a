// Checks of zero-hooks.ts that mutation testing (npm run mutate) showed missing. The parity tests of
// zero-hooks.test.ts train through the hooks a step loop uses and compare results, which leaves the
// rest of what createZeroHooks promises unread:
// - the optimizer-state size the dashboard's memory view is given (zero-layout report) for SGD, with
//   and without momentum (the parity tests only check AdamW's 2);
// - bad input: a stage outside 1-3, a model that does not record its passes layer by layer, and a
//   step before the model was built with ZeRO storage must be refused with a clear error;
// - which hooks each stage hands the trainer (stage 1 reduce-scatters after the backward through
//   gradHooks; stages 2-3 run the passes layer by layer; only stage 3 has the gather/digest hooks
//   that the session's checkpoint export and replica check call);
// - the stage-3 hooks themselves: the streamed export, the replica digest and its traffic;
// - host memory (hostBytes) before the first step and with offload, and the ZeRO workspace freed with
//   the model (its storage's dispose).
import { describe, expect, it } from 'vitest';
import { createMemoryMesh } from '../../collective/memory-transport';
import { syntheticData } from '../../data/synthetic';
import { CpuBackend } from '../../engine/cpu-backend';
import { DEFAULT_CONFIG, type LabConfig, type ZeroStage } from '../../lab/config';
import { contextFor } from '../../lab/parallel-test-support';
import { recipeFor } from '../../lab/recipe';
import type { Mlp } from '../../model/mlp';
import type { LabEvent, ZeroLayoutReport } from '../../shared/events';
import type { ClassifierRecipe } from '../../train/defaults';
import { classifierRun, type Run } from '../../train/recipes';
import type { ParallelHooks } from '../parallel-types';
import { createZeroHooks, optimizerFloatsPerParam } from './zero-hooks';
import type { ZeroStorage } from './shard-storage';

const data = syntheticData({ kind: 'spirals', seed: 5 });

function configFor(zero: ZeroStage, extra: Partial<LabConfig> = {}): LabConfig {
  return { ...DEFAULT_CONFIG, model: 'mlp', dataset: 'spirals', zero, steps: 2, batch: 12, seed: 3, ...extra };
}

interface Rank {
  backend: CpuBackend;
  run: Run<Mlp>;
  hooks: ParallelHooks;
  storage: () => ZeroStorage;
  events: LabEvent[];
}

/** `world` ranks over the in-memory mesh, each an MLP trained through createZeroHooks (nothing stepped yet). */
function room(config: LabConfig, world: number): Rank[] {
  const recipe = recipeFor(config, world).recipe as ClassifierRecipe;
  return createMemoryMesh(world).map((transport) => {
    const backend = new CpuBackend();
    const events: LabEvent[] = [];
    let run: Run<Mlp> | undefined;
    let storage: ZeroStorage | undefined;
    const hooks = createZeroHooks(contextFor(config, backend, transport, () => run, recipe.microBatches, (e) => events.push(e)));
    const { gatherParams: _g, gatherInPieces: _p, replicaDigest: _d, replicaCheckTraffic: _t, hostBytes: _h, ...trainerHooks } = hooks;
    run = classifierRun(backend, data, { ...recipe, logEvery: 1 }, { world, rank: transport.rank }, {
      ...trainerHooks,
      modelStorage: (layout, label) => (storage = hooks.modelStorage!(layout, label) as ZeroStorage),
    });
    return { backend, run, hooks, storage: () => storage ?? fail('no ZeRO storage was built'), events };
  });
}

function fail(message: string): never {
  throw new Error(message);
}

const step = (ranks: Rank[]) => Promise.all(ranks.map(({ run }) => run.trainer.trainStep()));

describe('ZeRO hooks: what they report and refuse', () => {
  it('optimizer floats per parameter: AdamW 2 (two moments), SGD with momentum 1 (velocity), plain SGD 0', () => {
    expect(optimizerFloatsPerParam({ kind: 'adamw', lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 })).toBe(2);
    expect(optimizerFloatsPerParam({ kind: 'sgd', lr: 0.1, momentum: 0.9, weightDecay: 0 })).toBe(1);
    expect(optimizerFloatsPerParam({ kind: 'sgd', lr: 0.1, momentum: 0, weightDecay: 0 })).toBe(0);
  });

  it('the zero-layout report gives the dashboard the recipe optimizer\'s floats per parameter', () => {
    for (const optimizer of ['adamw', 'sgd'] as const) {
      const [rank] = room(configFor(2, { optimizer }), 2);
      const report = rank.events.find((e): e is ZeroLayoutReport => e.type === 'zero-layout')!;
      expect(report.optimizerFloatsPerParam).toBe(optimizerFloatsPerParam(rank.run.optimizer.config));
    }
  });

  it('a stage outside 1-3 is refused by name', () => {
    const [transport] = createMemoryMesh(2);
    for (const zero of [0, 4] as const) {
      const config = { ...configFor(1), zero: zero as ZeroStage };
      expect(() => createZeroHooks(contextFor(config, new CpuBackend(), transport, () => undefined, 1))).toThrow(`ZeRO stage must be 1, 2 or 3, got ${zero}`);
    }
  });

  it('a step before the model was built with ZeRO storage is refused, not run on missing shards', async () => {
    const [transport] = createMemoryMesh(2);
    const hooks = createZeroHooks(contextFor(configFor(2), new CpuBackend(), transport, () => undefined, 1));
    expect(() => hooks.gradSync!({ step: 0 } as never)).toThrow('ZeRO: the model was built without ZeRO storage');
  });

  it('a model that does not record its passes layer by layer is refused by kind', () => {
    const [rank] = room(configFor(2), 2);
    const [transport] = createMemoryMesh(2);
    const notSegmented = { kind: 'opaque-model', layout: rank.run.model.layout } as unknown as Mlp;
    const recipe = recipeFor(configFor(2), 2).recipe as ClassifierRecipe;
    const ctx = contextFor(configFor(2), new CpuBackend(), transport, () => ({ ...rank.run, model: notSegmented }), recipe.microBatches);
    const hooks = createZeroHooks(ctx);
    const storage = hooks.modelStorage!(rank.run.model.layout, 'test');
    expect(() => hooks.gradSync!({ step: 0 } as never)).toThrow('ZeRO needs a model that records its passes layer by layer; opaque-model does not');
    // Nothing was half built: the storage still disposes cleanly.
    expect(() => storage.dispose()).not.toThrow();
    // Recording only the forward pass layer by layer is not enough either.
    const forwardOnly = { kind: 'forward-only-model', layout: rank.run.model.layout, forwardSegments: () => undefined } as unknown as Mlp;
    const hooks2 = createZeroHooks(contextFor(configFor(2), new CpuBackend(), transport, () => ({ ...rank.run, model: forwardOnly }), recipe.microBatches));
    hooks2.modelStorage!(rank.run.model.layout, 'test');
    expect(() => hooks2.gradSync!({ step: 0 } as never)).toThrow('forward-only-model does not');
  });
});

describe('ZeRO hooks: what each stage hands the trainer', () => {
  it.each([1, 2, 3] as const)('stage %i: gradHooks only at stage 1, layer-by-layer passes at 2-3, the gather and digest hooks only at 3', (stage) => {
    const [{ hooks }] = room(configFor(stage), 2);
    expect(hooks.gradHooks !== undefined).toBe(stage === 1);
    expect(hooks.layerwise !== undefined).toBe(stage >= 2);
    for (const name of ['gatherParams', 'gatherInPieces', 'replicaDigest', 'replicaCheckTraffic'] as const) expect(hooks[name] !== undefined).toBe(stage === 3);
    expect(hooks.localUpdate).toBe(false);
  });

  it('stage 3: the streamed export is the gathered parameters then the optimizer state, the same on every rank', async () => {
    const ranks = room(configFor(3), 2);
    await step(ranks);
    const exports = await Promise.all(
      ranks.map(async ({ hooks }) => {
        const pieces: number[] = [];
        await hooks.gatherInPieces!(100, async (floats) => void pieces.push(...floats));
        return pieces;
      }),
    );
    const params = await Promise.all(ranks.map(({ hooks }) => hooks.gatherParams!(101)));
    const P = ranks[0].run.model.layout.totalLength;
    // AdamW: the parameters, then the two moments (each P floats, the padding of the shards left out).
    expect(exports[0]).toHaveLength(3 * P);
    expect(exports[0].slice(0, P)).toEqual(Array.from(params[0]));
    expect(exports[1]).toEqual(exports[0]);
    expect(exports[0].slice(P).some((v) => v !== 0)).toBe(true);
  });

  it('stage 3: the replica digest is the same on every rank, the forward\'s digest is that of the parameters it gathered, and the verification pass counts as check traffic', async () => {
    const ranks = room(configFor(3), 2);
    await step(ranks);
    const before = await Promise.all(ranks.map(({ hooks }) => hooks.replicaDigest!(200, false)));
    expect(before[1]).toBe(before[0]);
    const traffic = ranks.map(({ hooks }) => hooks.replicaCheckTraffic!());
    for (const t of traffic) expect(t.bytesSent).toBeGreaterThan(0);
    // Taken: the next call starts from zero.
    expect(ranks[0].hooks.replicaCheckTraffic!()).toEqual({ bytesSent: 0, bytesReceived: 0 });
    await step(ranks);
    // The digest of what the second step's forward gathered: the parameters the first step left, which
    // the verification pass hashed (no collective), and not what the second step made of them.
    const ofForward = await Promise.all(ranks.map(({ hooks }) => hooks.replicaDigest!(201, true)));
    expect(ofForward).toEqual(before);
    const after = await Promise.all(ranks.map(({ hooks }) => hooks.replicaDigest!(202, false)));
    expect(after[1]).toBe(after[0]);
    expect(after[0]).not.toBe(before[0]);
  });
});

describe('ZeRO hooks: memory', () => {
  it('host bytes are zero before the first step; with offload, the optimizer state the CPU holds after it', async () => {
    const ranks = room(configFor(2, { offload: true }), 2);
    expect(ranks[0].hooks.hostBytes!()).toEqual({ staging: 0, offload: 0 });
    await step(ranks);
    const host = ranks[0].hooks.hostBytes!();
    expect(host.offload).toBeGreaterThan(0);
    expect(host.staging).toBeGreaterThan(0);
    // Offload: the optimizer's backend is the CPU one the hooks made, not the device's.
    expect(ranks[0].hooks.optimizerBackend).toBeDefined();
    expect(ranks[0].hooks.optimizerBackend).not.toBe(ranks[0].backend);
  });

  it.each([1, 2, 3] as const)('stage %i: disposing the run frees every buffer, the ZeRO collectives\' workspace included (freed through the storage)', async (stage) => {
    const ranks = room(configFor(stage), 2);
    await step(ranks);
    expect(ranks[0].backend.memory().workspace).toBeGreaterThan(0);
    ranks[0].run.dispose();
    expect(ranks[0].backend.memory()).toEqual(Object.fromEntries(Object.keys(ranks[0].backend.memory()).map((kind) => [kind, 0])));
  });
});
