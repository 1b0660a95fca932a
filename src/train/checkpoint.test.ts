import { describe, expect, it } from 'vitest';
import { viewOf } from '../engine/backend';
import { CpuBackend } from '../engine/cpu-backend';
import { syntheticData } from '../data/synthetic';
import { textDataFromString } from '../data/text';
import { paramsHash } from '../model/layout';
import {
  base64ToBytes,
  bytesToBase64,
  captureCheckpoint,
  CheckpointError,
  loadCheckpoint,
  mapTextToVocab,
  restoreCheckpoint,
} from './checkpoint';
import { defaults, type ClassifierRecipe } from './defaults';
import { charLmRun, classifierRun } from './recipes';

const spirals = syntheticData({ kind: 'spirals', classes: 3, trainCount: 256, testCount: 64, noise: 0.03, seed: 2 });
// 256 points / batch 32 = 8 steps per epoch: 10 steps cross an epoch boundary (a new shuffle).
const recipe: ClassifierRecipe = { ...defaults.synthetic, globalBatch: 32, steps: 10, warmupSteps: 3 };

async function stateOf(backend: CpuBackend, run: ReturnType<typeof classifierRun>) {
  const params = await backend.read(viewOf(run.model.params));
  const state = await Promise.all(run.optimizer.stateBuffers().map(({ buf }) => backend.read(viewOf(buf))));
  return { params: paramsHash(params), state: state.map((s) => paramsHash(s)), step: run.trainer.step };
}

async function savedAfter(steps: number) {
  const backend = new CpuBackend();
  const run = classifierRun(backend, spirals, recipe);
  await run.trainer.train(steps);
  return { backend, run, bytes: await captureCheckpoint(backend, run, { recipe, world: 1, rank: 0, stepsPerEpoch: 8, dataset: 'spirals' }) };
}

describe('checkpoints', () => {
  it('resume: 5 steps, save, load into a fresh run, 5 more = 10 steps straight, bit for bit', async () => {
    const straightBackend = new CpuBackend();
    const straight = classifierRun(straightBackend, spirals, recipe);
    await straight.trainer.train(10);

    const { bytes } = await savedAfter(5);
    const backend = new CpuBackend();
    const resumed = classifierRun(backend, spirals, recipe);
    const warnings = restoreCheckpoint(backend, resumed, loadCheckpoint(bytes), 'resume', { recipe, world: 1 });
    expect(warnings).toEqual([]);
    expect(resumed.trainer.step).toBe(5);
    await resumed.trainer.train(5);

    const a = await stateOf(straightBackend, straight);
    const b = await stateOf(backend, resumed);
    expect(b).toEqual(a);
    // and the check has teeth: without the optimizer state the result differs
    const fresh = new CpuBackend();
    const paramsOnly = classifierRun(fresh, spirals, recipe);
    restoreCheckpoint(fresh, paramsOnly, loadCheckpoint(bytes), 'finetune');
    paramsOnly.trainer.step = 5;
    await paramsOnly.trainer.train(5);
    expect((await stateOf(fresh, paramsOnly)).params).not.toBe(a.params);
  });

  it('records the position: step, sampler epoch, seed, sections', async () => {
    const { bytes } = await savedAfter(10);
    const { header, params, state } = loadCheckpoint(bytes);
    expect(header.step).toBe(10);
    expect(header.sampler).toEqual({ globalBatch: 32, microBatches: 1, epoch: 1, batchInEpoch: 2 });
    expect(header.rng).toEqual({ kind: 'derived-from-seed-and-step', seed: recipe.seed, step: 10 });
    expect(header.model).toEqual({ kind: 'mlp', config: { sizes: [2, 32, 32, 3] } });
    expect([...state.keys()]).toEqual(['adam.m', 'adam.v']);
    expect(params.length).toBe(header.layout.totalLength);
  });

  it('refuses a corrupt, truncated or foreign file with a reason', async () => {
    const { bytes } = await savedAfter(2);
    const flipped = bytes.slice();
    flipped[bytes.length - 100] ^= 0x01;
    expect(() => loadCheckpoint(flipped)).toThrow(/corrupt or truncated/);
    expect(() => loadCheckpoint(bytes.subarray(0, bytes.length - 8))).toThrow(CheckpointError);
    expect(() => loadCheckpoint(bytes.subarray(0, 10))).toThrow(/only 10 bytes/);
    expect(() => loadCheckpoint(new TextEncoder().encode('PK\u0003\u0004 a zip file, not ours at all'))).toThrow(/wrong magic/);
    const future = bytes.slice();
    future[8] = 2;
    expect(() => loadCheckpoint(future)).toThrow(/version 2/);
    expect(() => base64ToBytes('%%%')).toThrow(/base64/);
  });

  it('a checkpoint of another model is refused and the run keeps its parameters', async () => {
    const { bytes } = await savedAfter(2);
    const backend = new CpuBackend();
    const other = classifierRun(backend, spirals, { ...recipe, model: { sizes: [2, 16, 3] } });
    const before = paramsHash(await backend.read(viewOf(other.model.params)));
    expect(() => restoreCheckpoint(backend, other, loadCheckpoint(bytes), 'resume')).toThrow(/model shapes differ/);
    expect(paramsHash(await backend.read(viewOf(other.model.params)))).toBe(before);
    expect(other.trainer.step).toBe(0);
  });

  it('resume into a ZeRO shard takes its slice; a shard the file lacks is refused', async () => {
    const { bytes, run } = await savedAfter(3);
    const ckpt = loadCheckpoint(bytes);
    const total = run.model.layout.totalLength;
    const half = Math.floor(total / 2 / 64) * 64;
    const backend = new CpuBackend();
    const shard = classifierRun(backend, spirals, recipe, undefined, { optimizerStateRange: { offset: half, length: total - half } });
    restoreCheckpoint(backend, shard, ckpt, 'resume');
    const m = await backend.read(viewOf(shard.optimizer.stateBuffers()[0].buf));
    expect(Array.from(m)).toEqual(Array.from(ckpt.state.get('adam.m')!.subarray(half)));

    const sharded = loadCheckpoint(await captureCheckpoint(backend, shard, { recipe, world: 2, rank: 1 }));
    const full = classifierRun(new CpuBackend(), spirals, recipe);
    expect(() => restoreCheckpoint(new CpuBackend(), full, sharded, 'resume')).toThrow(/ZeRO shard/);
  });

  it('fine-tunes on another data set: parameters kept, optimizer and step start over', async () => {
    const { bytes } = await savedAfter(5);
    const ckpt = loadCheckpoint(bytes);
    const gaussians = syntheticData({ kind: 'gaussians', classes: 3, trainCount: 256, testCount: 64, seed: 3 });
    const backend = new CpuBackend();
    const run = classifierRun(backend, gaussians, recipe);
    restoreCheckpoint(backend, run, ckpt, 'finetune');
    expect(run.trainer.step).toBe(0);
    expect(paramsHash(await backend.read(viewOf(run.model.params)))).toBe(paramsHash(ckpt.params));
    expect(Array.from(await backend.read(viewOf(run.optimizer.stateBuffers()[1].buf))).every((v) => v === 0)).toBe(true);
    await run.trainer.train(3);
    expect(run.trainer.step).toBe(3);
  });

  it('text: maps a new text onto the checkpoint vocabulary, refuses unknown characters', async () => {
    const corpus = 'the cat sat on the mat. the dog ate the hat! '.repeat(20);
    const data = textDataFromString(corpus);
    const gptRecipe = { ...defaults.sotu, model: { blockSize: 8, nLayer: 1, nHead: 2, nEmbd: 16 }, globalBatch: 4, steps: 2 };
    const backend = new CpuBackend();
    const run = charLmRun(backend, data, gptRecipe);
    await run.trainer.train(2);
    const ckpt = loadCheckpoint(await captureCheckpoint(backend, run, { recipe: gptRecipe, world: 1, rank: 0, vocab: data.vocab }));
    expect(ckpt.header.vocab).toEqual(data.vocab);

    const user = textDataFromString('a hat. a mat. the cat ate. '.repeat(20));
    const mapped = mapTextToVocab(user, ckpt.header.vocab!);
    expect(mapped.vocab).toEqual(data.vocab);
    const decode = (d: typeof user) => Array.from(d.train, (t) => d.vocab[t]).join('');
    expect(decode(mapped)).toBe(decode(user));
    const tunedBackend = new CpuBackend();
    const tuned = charLmRun(tunedBackend, mapped, gptRecipe);
    restoreCheckpoint(tunedBackend, tuned, ckpt, 'finetune');
    expect(paramsHash(await tunedBackend.read(viewOf(tuned.model.params)))).toBe(paramsHash(ckpt.params));
    // without the mapping the model (its vocabulary size) would not fit
    const unmapped = charLmRun(new CpuBackend(), user, gptRecipe);
    expect(() => restoreCheckpoint(new CpuBackend(), unmapped, ckpt, 'finetune')).toThrow(/vocabSize/);

    expect(() => mapTextToVocab(textDataFromString('Zebras quiz XYZ jumping! '.repeat(5)), ckpt.header.vocab!)).toThrow(/lacks .*"Z"/);
  });

  it('base64 round trip (the window.lab form)', async () => {
    const { bytes } = await savedAfter(1);
    expect(base64ToBytes(bytesToBase64(bytes))).toEqual(bytes);
  });
});
