// The strategy as a value: what the run loop reads of it without knowing which one it is.
import { describe, expect, it } from 'vitest';
import { createMemoryMesh } from '../collective/memory-transport';
import { CpuBackend } from '../engine/cpu-backend';
import { defaults } from '../train/defaults';
import type { ParallelConfig } from './parallel-types';
import { notElasticBecause, SOLO_STRATEGY, statePlacementOf, strategyFor } from './strategy';

const base: ParallelConfig = {
  mode: 'ring',
  zero: 0,
  compression: 'none',
  ratio: 0.01,
  seed: 1,
  staleness: 0,
  offload: false,
  shares: 'auto',
  rebalance: 10,
  rank: 2,
  minrate: 5,
  inner: 50,
  outerlr: 0.7,
  outermomentum: 0.9,
  collective: 'ring',
};
const unused = (): never => {
  throw new Error('not built in this test');
};

function strategyOf(config: Partial<ParallelConfig>) {
  const [transport] = createMemoryMesh(2);
  return strategyFor({ config: { ...base, ...config }, recipe: defaults.synthetic, bucketElements: 1 << 16, backend: new CpuBackend(), transport, model: unused, optimizer: unused, microBatches: 1, publish: () => undefined });
}

describe('strategy values', () => {
  it('data parallelism: replicated state, replicas checked every step, nothing to gather', () => {
    const s = strategyOf({});
    expect([s.name, s.statePlacement, s.replicasEqualEveryStep, s.gatherParams]).toEqual(['ring', 'replicated', true, null]);
    expect(typeof s.hooks.gradSync).toBe('function');
  });

  it('ZeRO-3 shards the state and gathers the parameters; ZeRO-1 does not gather', () => {
    const zero3 = strategyOf({ zero: 3 });
    expect([zero3.name, zero3.statePlacement, typeof zero3.gatherParams]).toEqual(['zero-3', 'sharded', 'function']);
    expect(strategyOf({ zero: 1 }).gatherParams).toBeNull();
    // Stage 3's replica check hashes what it gathers layer by layer; every other strategy hashes its params buffer.
    expect(typeof zero3.replicaDigest).toBe('function');
    expect(strategyOf({ zero: 1 }).replicaDigest).toBeNull();
  });

  it('the parameter server keeps the state on one tab; asynchronous, replicas differ between steps and the ring cannot re-form', () => {
    expect(strategyOf({ mode: 'ps' }).statePlacement).toBe('server');
    const async = strategyOf({ mode: 'ps', staleness: 2 });
    expect([async.replicasEqualEveryStep, notElasticBecause({ ...base, mode: 'ps', staleness: 2 }) !== null]).toEqual([false, true]);
    expect(statePlacementOf({ ...base, mode: 'ps', staleness: 2 })).toBe('replicated');
    expect(notElasticBecause(base)).toBeNull();
  });

  it('PowerSGD and DiLoCo: named with their settings, replicated state, elastic; DiLoCo checks replicas after outer steps only', () => {
    const powerSgd = strategyOf({ compression: 'powersgd', rank: 4 });
    expect([powerSgd.name, powerSgd.statePlacement, powerSgd.replicasEqualEveryStep, powerSgd.hooks.gradHooks]).toEqual(['ring powersgd r=4', 'replicated', true, undefined]);
    const diloco = strategyOf({ mode: 'diloco', inner: 10, compression: 'fp16' });
    expect([diloco.name, diloco.statePlacement, diloco.replicasEqualEveryStep, typeof diloco.replicasEqualAfter]).toEqual(['diloco H=10 fp16', 'replicated', false, 'function']);
    expect(typeof diloco.hooks.afterUpdate).toBe('function');
    expect(notElasticBecause({ ...base, mode: 'diloco' })).toBeNull();
    expect(notElasticBecause({ ...base, compression: 'powersgd' })).toBeNull();
    expect(() => strategyOf({ mode: 'diloco', compression: 'randk' })).toThrow(/fp16 or topk/);
  });

  it('a tab alone has no hooks', () => {
    expect(SOLO_STRATEGY.hooks).toEqual({});
  });
});
