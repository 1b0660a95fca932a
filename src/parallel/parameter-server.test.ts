// The parameter server, synchronous (N ranks must end where one rank ends, replicas bitwise equal after
// every step, only the server holds optimizer state) and asynchronous (workers run ahead of the slowest
// by at most the staleness bound, and all end with the server's final parameters).
import { describe, expect, it } from 'vitest';
import { asyncParameterServerHooks, createParallelHooks } from './strategy';
import { bytesSentBy, maxDifference, relativeError, testConfig, trainRoom } from '../lab/parallel-test-support';
import { createMemoryMesh } from '../collective/memory-transport';
import { CpuBackend } from '../engine/cpu-backend';
import { defaults } from '../train/defaults';

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
// The server sums the workers' gradients in rank order, one rank its whole batch: measured 1.1-1.9e-7
// of the distance trained (printed). 1e-5 is ~50x that; a 1% error in the average gives ~1e-2 under SGD.
const TOLERANCE = 1e-5;

describe('synchronous parameter server', () => {
  it.each([
    [2, 'adamw'],
    [4, 'adamw'],
    [2, 'sgd'],
    [4, 'sgd'],
  ] as const)(`%i ranks (%s) equal one rank on the same global batch within ${TOLERANCE.toExponential()} of the distance trained; replicas bitwise equal every step`, async (world, optimizer) => {
    const config = testConfig({ mode: 'ps', optimizer });
    const single = await trainRoom(1, config);
    const room = await trainRoom(world, config);
    for (const hashes of room.hashesPerStep) expect(new Set(hashes).size).toBe(1);
    const error = relativeError(room.params[0], single.params[0], single.initial);
    console.log(`ps ${optimizer} ${world} ranks vs 1: relative error ${error.toExponential(2)}`);
    expect(error).toBeLessThan(TOLERANCE);

    // Only the server holds optimizer state (AdamW: 2 floats per parameter, SGD 1); workers a 64-float stub.
    const floats = optimizer === 'adamw' ? 2 : 1;
    const paramBytes = room.ranks[0].run.model.params.length * 4;
    expect(room.memory[0].optimizer).toBe(floats * paramBytes);
    for (const memory of room.memory.slice(1)) expect(memory.optimizer).toBe(floats * 64 * 4);
  });

  it('moves whole vectors through the server: (N-1) in and (N-1) out per step, all as ps-round events', async () => {
    const world = 3;
    const config = testConfig({ mode: 'ps', steps: 3 });
    const room = await trainRoom(world, config);
    const vectorBytes = room.ranks[0].run.model.params.length * 4;
    for (const rank of room.ranks) {
      expect(new Set(rank.chunks.map((e) => e.collective))).toEqual(new Set(['ps-round']));
      // Worker: its gradient out each step. Server: the parameters to each worker each step.
      expect(bytesSentBy(rank)).toBe(config.steps * (rank.rank === 0 ? (world - 1) * vectorBytes : vectorBytes));
      for (const step of rank.steps) expect(step.bytesSent).toBe(rank.rank === 0 ? (world - 1) * vectorBytes : vectorBytes);
    }
  });

  it('refuses compression in parameter-server mode', () => {
    const [transport] = createMemoryMesh(1);
    const config = testConfig({ mode: 'ps', compression: 'topk' });
    const ctx = { recipe: defaults.synthetic, bucketElements: 1 << 16, backend: new CpuBackend(), transport, model: () => { throw new Error('unused'); }, optimizer: () => { throw new Error('unused'); }, microBatches: 1, publish: () => undefined };
    expect(() => createParallelHooks({ ...ctx, config })).toThrow(/compression=topk works with mode=ring only/);
  });
});

describe('asynchronous parameter server (bounded staleness)', () => {
  it.each([1, 2])('staleness %i: no worker runs further ahead of the slowest; all end with the server\'s parameters', async (staleness) => {
    const world = 3;
    const config = testConfig({ mode: 'ps', staleness, steps: 12 });
    // Rank 2 is slow, so the others can run ahead as far as the bound lets them.
    const room = await trainRoom(world, config, {
      makeHooks: asyncParameterServerHooks,
      independent: true,
      beforeStep: (rank) => (rank === 2 ? sleep(15) : Promise.resolve()),
    });
    expect(room.ranks[0].hooks.replicasEqualEveryStep).toBe(false);
    // Every rank holds the server's final parameters, bit for bit.
    for (const params of room.params) expect(Array.from(params)).toEqual(Array.from(room.params[0]));

    const ps = room.ranks[0].hooks.server();
    expect(ps.releases.length).toBe(world * (config.steps - 1));
    const ahead = ps.releases.map((r) => r.clock - r.slowest);
    expect(Math.max(...ahead)).toBeLessThanOrEqual(staleness);
    // ...and the fast ranks really did run ahead: this is not lockstep.
    expect(Math.max(...ahead)).toBe(staleness);
    expect(ps.dropped).toBe(0);

    // It trained: the parameters moved, and stay close to synchronous training's.
    const sync = await trainRoom(world, testConfig({ mode: 'ps', steps: 12 }));
    const start = await trainRoom(1, testConfig({ steps: 1 }));
    const moved = maxDifference(start.params[0], sync.params[0]);
    expect(maxDifference(sync.params[0], room.params[0])).toBeLessThan(moved);
  });

  it('sends gradients in and parameters out as ps-round events; workers hold no optimizer state', async () => {
    const world = 3;
    const config = testConfig({ mode: 'ps', staleness: 1, steps: 4 });
    const room = await trainRoom(world, config, { independent: true });
    const vectorBytes = room.ranks[0].run.model.params.length * 4 + 4; // + the round header
    for (const rank of room.ranks.slice(1)) {
      expect(new Set(rank.chunks.map((e) => e.collective))).toEqual(new Set(['ps-round']));
      expect(bytesSentBy(rank)).toBe(config.steps * vectorBytes);
      expect(room.memory[rank.rank].optimizer).toBe(2 * 64 * 4);
    }
    // The server answers every push but the last with parameters, then sends the final ones.
    expect(bytesSentBy(room.ranks[0])).toBe((world - 1) * config.steps * vectorBytes);
    // Its steps report the traffic of its background loop: all of it, by the end.
    expect(room.ranks[0].steps.reduce((sum, step) => sum + step.bytesSent, 0)).toBe(bytesSentBy(room.ranks[0]));
  });
});
