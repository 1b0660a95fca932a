// The run loop's replica check under ZeRO-3 keeps stage 3's promise: in a room of 4 ranks (CPU backend,
// in-memory transport, the real strategy), no rank allocates a host or device buffer of the whole
// parameter vector (>= P floats) while it trains and checks its replicas every step; the check still
// agrees on every rank when nothing is wrong, and stops naming the step and the ranks that differ when
// one rank received different bytes of a gathered layer. Under ZeRO-3 a rank's autosave holds its part
// and its optimizer slice only, and the streamed export of the whole model gathers it a piece at a time:
// neither allocates the whole vector either, the export is the one-tab checkpoint format, and the parts
// resume the same room bit for bit and re-cut into a room of another size.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { loadCheckpoint, restoreCheckpoint, saveCheckpoint, heldRange, type Checkpoint } from '../train/checkpoint';
import { combineCheckpointParts } from '../train/checkpoint-parts';
import { zeroPartition } from '../parallel/zero/zero-hooks';
import { CheckpointKeeper } from './checkpoint-keeper';
import type { CheckpointStore } from './checkpoint-store';
import { createMemoryMesh } from '../collective/memory-transport';
import { COLLECTIVE_IDS } from '../collective/collective-ids';
import type { Transport } from '../collective/types';
import { CpuBackend } from '../engine/cpu-backend';
import type { Mlp } from '../model/mlp';
import { contextFor, spirals, testConfig } from './parallel-test-support';
import { strategyFor, type Strategy } from '../parallel/strategy';
import { EventBus } from '../shared/events';
import { classifierRun, type Run } from '../train/recipes';
import { paramsHash } from '../model/layout';
import type { LabMetrics } from './api';
import { recipeFor } from './recipe';
import { ReplicaCheck } from './replica-check';
import type { JoinedRoom } from './room';
import { RunMetrics } from './run-metrics';
import { LargeAllocations, watchBackend, watchHostArrays } from './allocation-test-support';

const WORLD = 4;
const SIZES = [2, 128, 128, 128, 3];

interface Tab {
  backend: CpuBackend;
  run: Run<Mlp>;
  strategy: Strategy;
  check: ReplicaCheck;
  metrics: LabMetrics;
  keeper: CheckpointKeeper;
  warnings: string[];
}

/** The newest save per key, as the browser's store keeps it. */
class MemoryStore implements CheckpointStore {
  readonly files = new Map<string, Uint8Array>();
  async put(key: string, bytes: Uint8Array) {
    this.files.set(key, bytes.slice());
  }
  async get(key: string) {
    return this.files.get(key) ?? null;
  }
  async list() {
    return [];
  }
  async delete(key: string) {
    this.files.delete(key);
  }
}

/** Times a check read the whole parameter vector through its `params` dependency. */
let paramsReads = 0;

function buildRoom(watch: LargeAllocations, transports: Transport[], store: CheckpointStore | null = null, autosave = 0): Tab[] {
  const world = transports.length;
  const config = testConfig({ zero: 3, steps: 6, autosave });
  const recipe = recipeFor(config, world);
  if (recipe.kind !== 'classifier') throw new Error('the test room trains the MLP');
  const classifier = { ...recipe.recipe, model: { ...recipe.recipe.model, sizes: SIZES } };
  return transports.map((transport) => {
    const backend = new CpuBackend();
    watchBackend(backend, watch, transport.rank);
    let run: Run<Mlp> | undefined;
    const strategy: Strategy = strategyFor(contextFor(config, backend, transport, () => run, recipe.recipe.microBatches));
    const built = (run = classifierRun(backend, spirals, classifier, { world, rank: transport.rank }, strategy.hooks));
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
    const warnings: string[] = [];
    // The session's wiring (session.ts): its part is its ZeRO shard, the export gathers in pieces.
    const keeper = new CheckpointKeeper({
      config,
      store,
      staged: undefined,
      run: () => built,
      backend: () => backend,
      recipe: () => classifier,
      position: () => ({ world, rank: transport.rank, step: built.trainer.step, steps: config.steps, stepsPerEpoch: 10 }),
      vocab: () => null,
      fullParams: () => undefined,
      part: () => ({ kind: 'zero-3 shard', ranges: zeroPartition(built.model.layout, world).shards, index: transport.rank }),
      gatherInPieces: () => strategy.gatherInPieces ?? null,
      training: () => true,
      settleReplicaCheck: () => check.settle(),
      warn: (message) => warnings.push(message),
    });
    return { backend, run: built, strategy, check, metrics, keeper, warnings };
  });
}

/**
 * Trains `steps` steps in lockstep, checking replicas after each as the session does: the digest of
 * what the step gathered, left on the wire beside the next step; after the last step a verification pass, awaited.
 */
async function train(tabs: Tab[], steps: number): Promise<void> {
  const first = tabs[0].run.trainer.step + 1;
  const last = first + steps - 1;
  for (let step = first; step <= last; step++) {
    await Promise.all(tabs.map((t) => t.run.trainer.trainStep()));
    await Promise.all(tabs.map((t) => t.check.settle()));
    await Promise.all(tabs.map((t) => t.check.check(step, { alongsideNextStep: step < last, afterStep: step < last })));
    // Autosaves (when due) and checkpoints asked for, between two steps as in the session.
    await Promise.all(tabs.map((t) => t.keeper.betweenSteps()));
  }
  await Promise.all(tabs.map((t) => t.check.settle()));
}

/** Every rank exports at once (a collective); each one's file, as the chunks its sink received. */
async function exportAll(tabs: Tab[]): Promise<Uint8Array[]> {
  return Promise.all(
    tabs.map(async (t) => {
      const chunks: Uint8Array[] = [];
      await t.keeper.exportModel((chunk) => void chunks.push(chunk.slice()), '2026-01-01T00:00:00.000Z');
      const bytes = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
      chunks.reduce((at, c) => (bytes.set(c, at), at + c.length), 0);
      return bytes;
    }),
  );
}

/** The room's digest of its parameters by a verification pass (no whole vector). */
async function verifiedDigest(tabs: Tab[], round: number): Promise<string[]> {
  return Promise.all(tabs.map((t) => t.strategy.replicaDigest!(round, false)));
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
    for (const t of tabs) expect(t.metrics.hashChecks).toBe(6);
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

describe('checkpoints under ZeRO-3', () => {
  it('autosaves of each rank\'s part and a streamed export allocate no whole vector; the export is the one-tab format; the parts resume bit for bit and re-cut for 2 tabs', async () => {
    const watch = new LargeAllocations();
    const store = new MemoryStore();
    const tabs = buildRoom(watch, createMemoryMesh(WORLD), store, 3);
    const P = tabs[0].run.model.layout.totalLength;
    watchHostArrays(watch);
    watch.threshold = P;
    await train(tabs, 6);
    const exported = await exportAll(tabs);
    vi.unstubAllGlobals();
    expect(watch.seen).toEqual([]);
    for (const t of tabs) expect(t.warnings).toEqual([]);

    // Each rank's autosave (step 6) is its part: its shard of the parameters and its optimizer slice.
    const ranges = zeroPartition(tabs[0].run.model.layout, WORLD).shards;
    const parts: Checkpoint[] = [...store.files.keys()].sort().map((key) => loadCheckpoint(store.files.get(key)!));
    expect(parts.map((p) => [p.header.step, p.header.part?.index, p.params.length])).toEqual(ranges.map((r, i) => [6, i, r.length]));
    for (const p of parts) expect(p.header.part?.ranges).toEqual(ranges);

    // The export: the same file on every rank, the one-tab format, holding the parts' floats.
    // (Compared by FNV-1a hash: vitest's element-wise equality of 400 KB takes seconds.)
    const hashOf = (a: Float32Array | Uint8Array) => `${a.length}:${paramsHash(a)}`;
    expect(exported.map(hashOf)).toEqual(Array(WORLD).fill(hashOf(exported[0])));
    const file = loadCheckpoint(exported[0]);
    expect(file.header.part).toBeUndefined();
    expect(file.header.optimizer.stateRange).toEqual({ offset: 0, length: P });
    const whole = combineCheckpointParts(parts, { offset: 0, length: P });
    expect(hashOf(file.params)).toBe(hashOf(whole.params));
    expect([...file.state].map(([name, data]) => [name, hashOf(data)])).toEqual([...whole.state].map(([name, data]) => [name, hashOf(data)]));
    expect(hashOf(exported[0])).toBe(hashOf(saveCheckpoint(file.header, whole.params, whole.state)));

    // The parts resume a fresh room of 4 where the first one stands, and both train on alike.
    const digestAt6 = tabs[0].metrics.lastHash;
    const resumed = buildRoom(new LargeAllocations(), createMemoryMesh(WORLD));
    resumed.forEach((t, rank) => restoreCheckpoint(t.backend, t.run, parts[rank], 'resume'));
    expect(await verifiedDigest(resumed, 6)).toEqual(Array(WORLD).fill(digestAt6));
    await train(tabs, 2);
    await train(resumed, 2);
    expect(resumed.map((t) => t.metrics.lastHash)).toEqual(tabs.map((t) => t.metrics.lastHash));

    // Re-cut for a room of 2: each rank takes the range it holds from the parts that overlap it.
    const two = buildRoom(new LargeAllocations(), createMemoryMesh(2));
    for (const t of two) restoreCheckpoint(t.backend, t.run, combineCheckpointParts(parts, heldRange(t.run)), 'resume');
    expect(await verifiedDigest(two, 6)).toEqual([digestAt6, digestAt6]);
  });
});
