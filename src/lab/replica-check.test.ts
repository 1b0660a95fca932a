// The run loop's replica check under ZeRO-3 keeps stage 3's promise: in a room of 4 ranks (CPU backend,
// in-memory transport, the real strategy), no rank allocates a host or device buffer of the whole
// parameter vector (>= P floats) while it trains and checks its replicas every step; the check still
// agrees on every rank when nothing is wrong, and stops naming the step and the ranks that differ when
// one rank received different bytes of a gathered layer.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createMemoryMesh } from '../collective/memory-transport';
import { COLLECTIVE_IDS } from '../collective/collective-ids';
import type { Transport } from '../collective/types';
import { CpuBackend } from '../engine/cpu-backend';
import type { Mlp } from '../model/mlp';
import { contextFor, spirals, testConfig } from './parallel-test-support';
import { strategyFor, type Strategy } from '../parallel/strategy';
import { EventBus } from '../shared/events';
import { classifierRun, type Run } from '../train/recipes';
import type { LabMetrics } from './api';
import { recipeFor } from './recipe';
import { ReplicaCheck } from './replica-check';
import type { JoinedRoom } from './room';
import { RunMetrics } from './run-metrics';

const WORLD = 4;
const SIZES = [2, 128, 128, 128, 3];

/** Records every allocation of at least `threshold` floats: host Float32Arrays, device buffers, device reads. */
class LargeAllocations {
  readonly seen: string[] = [];
  threshold = Infinity;
  note(floats: number, what: string): void {
    if (floats >= this.threshold) this.seen.push(`${what} of ${floats} floats`);
  }
}

function watchHostArrays(watch: LargeAllocations): void {
  const Native = Float32Array;
  class Watched extends Native {
    constructor(...args: unknown[]) {
      const first = args[0];
      if (typeof first === 'number') watch.note(first, 'host Float32Array');
      else if (first instanceof ArrayBuffer) watch.note((first.byteLength - ((args[1] as number) ?? 0)) / 4, 'host Float32Array over a buffer');
      else if (first && typeof (first as ArrayLike<number>).length === 'number') watch.note((first as ArrayLike<number>).length, 'host Float32Array copy');
      super(...(args as []));
    }
    static override [Symbol.hasInstance](value: unknown): boolean {
      return value instanceof Native;
    }
  }
  vi.stubGlobal('Float32Array', Watched);
}

function watchBackend(backend: CpuBackend, watch: LargeAllocations, rank: number): void {
  const alloc = backend.alloc.bind(backend);
  backend.alloc = (length, label, kind, dtype) => {
    watch.note(length, `rank ${rank}: device buffer ${label}`);
    return alloc(length, label, kind, dtype);
  };
  const read = backend.read.bind(backend);
  backend.read = (view) => {
    watch.note(view.length, `rank ${rank}: device read`);
    return read(view);
  };
}

interface Tab {
  run: Run<Mlp>;
  strategy: Strategy;
  check: ReplicaCheck;
  metrics: LabMetrics;
}

/** Times a check read the whole parameter vector through its `params` dependency. */
let paramsReads = 0;

function buildRoom(watch: LargeAllocations, transports: Transport[]): Tab[] {
  const config = testConfig({ zero: 3, steps: 6 });
  const recipe = recipeFor(config, WORLD);
  if (recipe.kind !== 'classifier') throw new Error('the test room trains the MLP');
  return transports.map((transport) => {
    const backend = new CpuBackend();
    watchBackend(backend, watch, transport.rank);
    let run: Run<Mlp> | undefined;
    const strategy: Strategy = strategyFor(contextFor(config, backend, transport, () => run, recipe.recipe.microBatches));
    run = classifierRun(backend, spirals, { ...recipe.recipe, model: { ...recipe.recipe.model, sizes: SIZES } }, { world: WORLD, rank: transport.rank }, strategy.hooks);
    const metrics = new RunMetrics(() => transport.rank).values;
    const room = { transport, elastic: null } as unknown as JoinedRoom;
    const check = new ReplicaCheck({
      bus: new EventBus(),
      metrics,
      room: () => room,
      rank: () => transport.rank,
      strategy: () => strategy,
      // The session under ZeRO-3 holds no whole vector to read during training: counted, never to be read.
      params: async () => {
        paramsReads++;
        return new Float32Array(0);
      },
    });
    return { run, strategy, check, metrics };
  });
}

/**
 * Trains `steps` steps in lockstep, checking replicas after each as the session does: the digest of
 * what the step gathered, left on the wire beside the next step; after the last step a verification pass, awaited.
 */
async function train(tabs: Tab[], steps: number): Promise<void> {
  for (let step = 1; step <= steps; step++) {
    await Promise.all(tabs.map((t) => t.run.trainer.trainStep()));
    await Promise.all(tabs.map((t) => t.check.settle()));
    await Promise.all(tabs.map((t) => t.check.check(step, { alongsideNextStep: step < steps, afterStep: step < steps })));
  }
  await Promise.all(tabs.map((t) => t.check.settle()));
}

afterEach(() => vi.unstubAllGlobals());

describe('the replica check under ZeRO-3', () => {
  it('no rank allocates a host or device buffer of the whole parameter vector while training and checking every step', async () => {
    const watch = new LargeAllocations();
    const tabs = buildRoom(watch, createMemoryMesh(WORLD));
    const P = tabs[0].run.model.layout.totalLength;
    watchHostArrays(watch);
    watch.threshold = P;
    await train(tabs, 6);
    vi.unstubAllGlobals();
    expect(watch.seen).toEqual([]);
    expect(paramsReads).toBe(0);
    // The verification pass after the last step moved the layers once: about P floats received per rank.
    expect(tabs[0].metrics.replicaCheck?.bytesSent).toBeGreaterThan(0);
    // Host memory as the strategy reports it: its largest host array is one layer group, not the vector.
    const largestGroup = Math.max(...tabs[0].run.model.layout.groups.map((g) => g.range.length));
    for (const t of tabs) expect(t.strategy.hostBytes?.().staging).toBe(4 * largestGroup);
    const hashes = tabs.map((t) => t.metrics.lastHash);
    expect(hashes[0]).toMatch(/^[0-9a-f]{16}$/);
    expect(new Set(hashes).size).toBe(1);
    for (const t of tabs) expect(t.metrics.hashesAgree).toBe(true);
  });

  it.each([
    [3, 4, 'a step forward\'s gather'],
    [6, 6, 'the last step\'s verification pass'],
  ])('stops naming the step and the ranks when one rank received different bytes in round %i (step %i: %s)', async (round, step) => {
    const transports = createMemoryMesh(WORLD);
    // Rank 2 receives the first ZeRO message of the round (a layer's all-gather) with its lowest bit flipped.
    const corrupted = transports[2];
    const recv = corrupted.recv.bind(corrupted);
    let flipped = false;
    corrupted.recv = async (from, tag) => {
      const payload = await recv(from, tag);
      if (flipped || tag.round !== round || tag.collective < COLLECTIVE_IDS.zeroCollectives.first) return payload;
      flipped = true;
      const copy = payload.slice();
      copy[0] ^= 1;
      return copy;
    };
    const tabs = buildRoom(new LargeAllocations(), transports);
    const failure = train(tabs, 6);
    await expect(failure).rejects.toThrow(new RegExp(`replicas disagree after step ${step}: ranks (\\d, )*2(, \\d)* differ from rank 0`));
    expect(flipped).toBe(true);
  });
});
