import { describe, expect, it } from 'vitest';
import { createMemoryMesh } from '../collective/memory-transport';
import { CpuBackend } from '../engine/cpu-backend';
import { gatherShards } from '../model/tensor-split';
import { TensorGpt } from '../model/tensor-gpt';
import { TensorMlp } from '../model/tensor-mlp';
import { ConfigError, parseConfig, type LabConfig } from './config';
import type { LoadedData } from './datasets';
import type { TensorFigures } from './partitioned-run';
import { relativeError, testConfig } from './parallel-test-support';
import { classification, expectPartsResumeExactly, expectPlacedInPairs, memoryRoom, oneTab, text, trainRoom } from './partitioned-test-support';
import { TENSOR_RUN_KIND, tensorPlace } from './tensor-run';

// T tensor ranks x D groups end where one tab ends with the same micro-batches on the same global
// batch: sums in another order only (the row-split partial sums all-reduced, the clip's norm summed over
// the group, the DP average); 1e-5 of the distance trained, as the data-parallel tests use.
const TOLERANCE = 1e-5;

/** The one tab a tensor room is compared with: the same model unsplit. */
const oneTabOf = (config: LabConfig, data: LoadedData) => oneTab({ ...config, room: '', tensor: 1, world: 0 }, data);

async function tensorRoom(config: LabConfig, data: LoadedData) {
  const world = config.world;
  const { runs } = memoryRoom(TENSOR_RUN_KIND, config, data);
  const replicatedEqual: boolean[] = [];
  const T = config.tensor;
  const model = (runs[0] as unknown as { model: TensorMlp | TensorGpt }).model;
  const { hashes, losses, evals } = await trainRoom(runs, config.steps, (parts) => {
    for (let g = 0; g < world / T; g++) replicatedEqual.push(gatherShards(model.wholeLayout, model.plan, parts.slice(g * T, (g + 1) * T)).replicasEqual);
  });
  const parts = await Promise.all(runs.slice(0, T).map((r) => r.partParams()));
  const whole = gatherShards(model.wholeLayout, model.plan, parts).values;
  const figures = runs.map((r) => r.figures() as TensorFigures);
  const groups = runs.map((r) => r.replicaGroup);
  for (const run of runs) run.dispose();
  return { whole, hashes, losses, replicatedEqual, evals, figures, groups };
}

describe('tensor run (the lab wiring of tensor parallelism)', () => {
  it('places rank r at tensor rank r % T of group floor(r / T); refuses a room T does not divide and what it cannot combine with', () => {
    expectPlacedInPairs(TENSOR_RUN_KIND, 'tensor', (r) => {
      const { tensorRank, group } = tensorPlace(r, 2);
      return [tensorRank, group];
    });
    const parse = (q: string) => () => parseConfig(new URLSearchParams(q));
    expect(parse('room=r&world=3&tensor=2')).toThrow(/tensor=2 needs a room whose size it divides/);
    expect(parse('room=r&world=4&tensor=2&pipeline=2')).toThrow(/tensor and pipeline parallelism do not combine/);
    expect(parse('room=r&world=4&tensor=2&zero=1')).toThrow(/tensor parallelism and ZeRO do not combine/);
    expect(parse('room=r&world=4&tensor=2&mode=ps')).toThrow(/use mode=ring/);
    expect(parse('room=r&world=4&tensor=2&compression=fp16')).toThrow(/full precision: use compression=none/);
    expect(parse('room=r&world=4&tensor=2&batch=6&accum=2')).toThrow(ConfigError);
    expect(parse('room=r&world=4&tensor=2').call(null)).toMatchObject({ tensor: 2 });
  });

  it('refuses a model whose hidden layer the tensor ranks do not split', () => {
    const config = testConfig({ room: 'r', world: 4, tensor: 4, hidden: '30' });
    const [transport] = createMemoryMesh(4);
    expect(() => TENSOR_RUN_KIND.build({ config, backend: new CpuBackend(), data: classification, transport, publish: () => undefined })).toThrow(/split|divid/);
  });

  it.each([
    ['MLP, T=2, AdamW', { tensor: 2, world: 2 }],
    ['MLP, T=4, SGD, 2 micro-batches', { tensor: 4, world: 4, optimizer: 'sgd', accum: 2 }],
    ['MLP, TP2 x DP2, AdamW', { tensor: 2, world: 4 }],
  ] as const)(`%s: ends within ${TOLERANCE.toExponential()} of the distance trained of one tab; each shard's replicas and the replicated tensors hash-equal every step`, async (name, overrides) => {
    const config = testConfig({ room: 'r', steps: 4, ...overrides });
    const reference = await oneTabOf(config, classification);
    const room = await tensorRoom(config, classification);
    const error = relativeError(room.whole, reference.end.subarray(0, room.whole.length), reference.start.subarray(0, room.whole.length));
    console.log(`${name}: ${error.toExponential(2)} of the distance trained`);
    expect(error).toBeLessThan(TOLERANCE);
    for (const stepHashes of room.hashes) for (const group of room.groups) expect(new Set(group.map((r) => stepHashes[r])).size).toBe(1);
    expect(room.replicatedEqual.every(Boolean)).toBe(true);
    // Every tab shows the room's loss and validation loss, the same figure everywhere.
    for (const stepLosses of room.losses) expect(new Set(stepLosses).size).toBe(1);
    expect(new Set(room.evals.map((e) => e.valLoss)).size).toBe(1);
    // The validation loss and accuracy of one tab with the same parameters (to float tolerance).
    expect(Math.abs(room.evals[0].valLoss - reference.valLoss) / reference.valLoss).toBeLessThan(1e-4);
    expect(room.evals[0].accuracy).toBeCloseTo(reference.accuracy!, 2);
    // One all-reduce forward per column/row pair and none backward (the first pair's input needs no gradient).
    for (const f of room.figures) {
      expect(f.collectivesPerStep).toEqual({ forward: f.micro, backward: 0 });
      expect(f.wireBytesPerStep).toBe(f.wireFormulaBytesPerStep);
      expect(f.dataParallelBytesPerStep).toBe(f.dataParallelFormulaBytesPerStep);
    }
  });

  it.each([
    ['GPT, T=2', { tensor: 2, world: 2 }],
    ['GPT, T=4', { tensor: 4, world: 4 }],
    ['GPT, TP2 x DP2', { tensor: 2, world: 4 }],
  ] as const)(`%s: ends within ${TOLERANCE.toExponential()} of one tab (heads split, MLP columns then rows, the norm clipped over the group)`, async (name, overrides) => {
    const config = testConfig({ room: 'r', model: 'gpt', dataset: 'text', batch: 4, steps: 2, lr: 0.01, ...overrides });
    const reference = await oneTabOf(config, text);
    const room = await tensorRoom(config, text);
    const error = relativeError(room.whole, reference.end.subarray(0, room.whole.length), reference.start.subarray(0, room.whole.length));
    console.log(`${name}: ${error.toExponential(2)} of the distance trained`);
    expect(error).toBeLessThan(TOLERANCE);
    for (const stepHashes of room.hashes) for (const group of room.groups) expect(new Set(group.map((r) => stepHashes[r])).size).toBe(1);
    expect(room.replicatedEqual.every(Boolean)).toBe(true);
    expect(Math.abs(room.evals[0].valLoss - reference.valLoss) / reference.valLoss).toBeLessThan(1e-4);
    // The figures: parameter and optimizer bytes per tab within 5% of the formula, the wire bytes exact.
    for (const f of room.figures) {
      expect(Math.abs(f.paramBytes / f.paramFormulaBytes - 1)).toBeLessThan(0.05);
      expect(Math.abs(f.optimizerBytes / f.optimizerFormulaBytes - 1)).toBeLessThan(0.05);
      expect(f.collectivesPerStep).toEqual({ forward: 2 * 2, backward: 2 * 2 });
      expect(f.wireBytesPerStep).toBe(f.wireFormulaBytesPerStep);
      expect(f.dataParallelBytesPerStep).toBe(f.dataParallelFormulaBytesPerStep);
    }
  }, 240_000);

  it("a shard resumes from its own checkpoint to the bits of an uninterrupted run, and refuses another shard's", async () => {
    const config = testConfig({ room: 'r', steps: 4, tensor: 2, world: 2 });
    await expectPartsResumeExactly(TENSOR_RUN_KIND, config, classification, /this checkpoint holds the part .*"rank":0.*; this tab is .*"rank":1/);
  });
});
