// Checks of checkpoint.ts that mutation testing (npm run mutate) showed missing. checkpoint.test.ts
// damages files only in ways the CRC-32 catches first, so none of the header checks behind it ever ran:
// each check could be removed, or its message emptied, and every test still passed. Here each file is
// damaged and then sealed again with a correct CRC (what a buggy writer, or a hand-edited header,
// produces), so that the check meant for that damage is the one that answers. The byte layout (offsets,
// padding, the little-endian CRC), the refusals and warnings of a restore, a ZeRO shard's offsets and the
// text vocabulary mapping are pinned the same way: each test says the bug it catches.
import { describe, expect, it } from 'vitest';
import { viewOf } from '../engine/backend';
import { CpuBackend } from '../engine/cpu-backend';
import { syntheticData } from '../data/synthetic';
import { textDataFromString } from '../data/text';
import { crc32 } from '../shared/crc32';
import {
  captureCheckpoint,
  CHECKPOINT_MAGIC,
  CHECKPOINT_VERSION,
  CheckpointError,
  checkpointPrefix,
  checkpointTrailer,
  incompatibilities,
  loadCheckpoint,
  mapTextToVocab,
  restoreCheckpoint,
  saveCheckpoint,
  writeHeldParams,
  type CheckpointableRun,
  type CheckpointHeader,
} from './checkpoint';
import { defaults, type ClassifierRecipe } from './defaults';
import { charLmRun, classifierRun } from './recipes';

const TOTAL = 10;
const ramp = (n: number, scale: number) => Float32Array.from({ length: n }, (_, i) => scale * (i + 1));

function baseHeader(): CheckpointHeader {
  return {
    format: 'webgpu-lab-checkpoint',
    model: { kind: 'mlp', config: { sizes: [2, 3] } },
    layout: { totalLength: TOTAL, tensors: [{ name: 'w', shape: [TOTAL] }] },
    optimizer: { config: { kind: 'sgd', lr: 0.1, momentum: 0.9, weightDecay: 0 }, stateRange: { offset: 0, length: TOTAL }, buffers: ['sgd.v'] },
    step: 3,
    world: 1,
    rank: 0,
    seed: 1,
    sampler: { globalBatch: 8, microBatches: 1, epoch: 0, batchInEpoch: 3 },
    rng: { kind: 'derived-from-seed-and-step', seed: 1, step: 3 },
    recipe: {},
    createdAt: '2026-01-01T00:00:00.000Z',
    sections: [
      { name: 'params', length: TOTAL },
      { name: 'sgd.v', length: TOTAL },
    ],
  };
}

/** A file with this header (any JSON, written as is) and body, and a correct CRC: only the header's own checks can refuse it. */
function sealed(header: unknown, body: Float32Array = ramp(2 * TOTAL, 1), headerLength?: number): Uint8Array {
  const prefix = checkpointPrefix(header as CheckpointHeader);
  if (headerLength !== undefined) new DataView(prefix.buffer).setUint32(12, headerLength, true);
  const bytes = new Uint8Array(prefix.length + body.byteLength + 4);
  bytes.set(prefix);
  bytes.set(new Uint8Array(body.buffer, body.byteOffset, body.byteLength), prefix.length);
  bytes.set(checkpointTrailer(crc32(bytes.subarray(0, bytes.length - 4))), bytes.length - 4);
  return bytes;
}

/** The header with `change` applied to a deep copy. */
function headerWith(change: (h: Record<string, any>) => void): Record<string, any> {
  const h = structuredClone(baseHeader()) as Record<string, any>;
  change(h);
  return h;
}

const refusal = (bytes: Uint8Array): string => {
  try {
    loadCheckpoint(bytes);
  } catch (e) {
    expect(e).toBeInstanceOf(CheckpointError);
    return (e as Error).message;
  }
  throw new Error('the file was accepted');
};

describe('checkpoint bytes: the layout other tools read', () => {
  it('magic, version, header length padded to 4, header, sections in order, little-endian CRC-32 of all before it (a moved offset or a wrong padding makes files no other build reads)', () => {
    const header = baseHeader();
    const { sections: _s, ...rest } = header;
    const params = ramp(TOTAL, 0.5);
    const v = ramp(TOTAL, -0.25);
    const bytes = saveCheckpoint(rest, params, new Map([['sgd.v', v]]));
    const json = new TextEncoder().encode(JSON.stringify(header));
    const padded = Math.ceil(json.length / 4) * 4;
    expect(padded).toBeGreaterThan(json.length); // the test header needs padding, or the padding would go untested
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    expect(String.fromCharCode(...bytes.subarray(0, 8))).toBe(CHECKPOINT_MAGIC);
    expect(view.getUint32(8, true)).toBe(CHECKPOINT_VERSION);
    expect(view.getUint32(12, true)).toBe(padded);
    expect(bytes.length).toBe(16 + padded + 2 * TOTAL * 4 + 4);
    expect(Array.from(bytes.subarray(16, 16 + json.length))).toEqual(Array.from(json));
    expect(Array.from(bytes.subarray(16 + json.length, 16 + padded)).every((b) => b === 0x20)).toBe(true);
    for (let i = 0; i < TOTAL; i++) {
      expect(view.getFloat32(16 + padded + 4 * i, true)).toBe(params[i]);
      expect(view.getFloat32(16 + padded + 4 * (TOTAL + i), true)).toBe(v[i]);
    }
    expect(view.getUint32(bytes.length - 4, true)).toBe(crc32(bytes.subarray(0, bytes.length - 4)));
    const loaded = loadCheckpoint(bytes);
    expect(Array.from(loaded.params)).toEqual(Array.from(params));
    expect(Array.from(loaded.state.get('sgd.v')!)).toEqual(Array.from(v));
  });

  it('the error is a CheckpointError by name, and a CRC mismatch names both CRCs as 0x + 8 hex digits', () => {
    const bytes = sealed(baseHeader());
    const view = new DataView(bytes.buffer);
    const actual = crc32(bytes.subarray(0, bytes.length - 4));
    view.setUint32(bytes.length - 4, 0xabc, true);
    const message = refusal(bytes);
    expect(message).toBe(`checkpoint is corrupt or truncated (CRC-32 0x${actual.toString(16).padStart(8, '0')}, file says 0x00000abc)`);
    expect(new CheckpointError('x').name).toBe('CheckpointError');
  });

  it('refuses what is not bytes by name (not with a TypeError from deep inside)', () => {
    expect(() => loadCheckpoint(Array.from(sealed(baseHeader())) as unknown as Uint8Array)).toThrow(/a checkpoint must be bytes \(Uint8Array\)/);
  });

  it('a file shorter than prefix + trailer (20 bytes) is refused by its size; one of exactly 20 gets as far as its header', () => {
    const prefix = new Uint8Array(20);
    prefix.set(new TextEncoder().encode(CHECKPOINT_MAGIC));
    new DataView(prefix.buffer).setUint32(8, CHECKPOINT_VERSION, true);
    expect(refusal(prefix.subarray(0, 16))).toBe('not a checkpoint: only 16 bytes');
    new DataView(prefix.buffer).setUint32(16, crc32(prefix.subarray(0, 16)), true);
    expect(refusal(prefix)).toBe('checkpoint header is not valid JSON');
  });

  it('a header length that is not a multiple of 4, over 4 MiB, or runs into the trailer is refused as damaged', () => {
    const good = sealed(baseHeader());
    const h = new DataView(good.buffer).getUint32(12, true);
    const body = 2 * TOTAL * 4;
    const damaged = (length: number) => `truncated or damaged checkpoint: header of ${length} bytes in a file of ${good.length}`;
    expect(refusal(sealed(baseHeader(), undefined, h - 1))).toBe(damaged(h - 1));
    expect(refusal(sealed(baseHeader(), undefined, h + body + 4))).toBe(damaged(h + body + 4));
    expect(refusal(sealed(baseHeader(), undefined, 4 * 1024 * 1024 + 4))).toBe(damaged(4 * 1024 * 1024 + 4));
    // Up to the trailer exactly is a legal length: the header then swallows the body (spaces here), and
    // the sections' sum is what refuses it.
    const spaces = new Float32Array(new Uint8Array(body).fill(0x20).buffer);
    expect(refusal(sealed(baseHeader(), spaces, h + body))).toBe(`checkpoint sections hold ${body} bytes but 0 follow the header`);
  });

  it('a header of exactly 4 MiB is not too large; one 4 bytes longer is refused even when the file holds it', () => {
    const big = headerWith((x) => (x.dataset = 'x'));
    const json = JSON.stringify(big);
    big.dataset = 'x'.repeat(4 * 1024 * 1024 - json.length + 1);
    expect(new TextEncoder().encode(JSON.stringify(big)).length).toBe(4 * 1024 * 1024);
    expect(loadCheckpoint(sealed(big)).header.dataset).toBe(big.dataset);
    big.dataset += 'yyyy';
    const tooBig = sealed(big);
    expect(refusal(tooBig)).toBe(`truncated or damaged checkpoint: header of ${4 * 1024 * 1024 + 4} bytes in a file of ${tooBig.length}`);
  });

  it('a header with a byte that is not UTF-8 is refused (decoded leniently it would load as another string)', () => {
    const bytes = sealed(headerWith((x) => (x.dataset = 'xQx')));
    const at = bytes.indexOf('Q'.charCodeAt(0), 16);
    bytes[at] = 0xff;
    bytes.set(checkpointTrailer(crc32(bytes.subarray(0, bytes.length - 4))), bytes.length - 4);
    expect(refusal(bytes)).toBe('checkpoint header is not valid JSON');
  });

  it('the body must hold exactly the floats the sections declare', () => {
    expect(refusal(sealed(baseHeader(), ramp(2 * TOTAL - 1, 1)))).toBe(`checkpoint sections hold ${2 * TOTAL * 4} bytes but ${(2 * TOTAL - 1) * 4} follow the header`);
  });
});

describe('checkpoint header: each rule refused with its own reason', () => {
  const cases: [string, unknown, string][] = [
    ['an array as the header', [1], 'the header must be an object'],
    ['null as the header', null, 'the header must be an object'],
    ['a string as the header', 'mlp', 'the header must be an object'],
    ['another format', headerWith((h) => (h.format = 'zip')), 'not a webgpu-lab checkpoint'],
    ['no model', headerWith((h) => delete h.model), 'model must be an object'],
    ['a model given as a list', headerWith((h) => (h.model = [])), 'model must be an object'],
    ['a model given as null', headerWith((h) => (h.model = null)), 'model must be an object'],
    ['an unknown model kind', headerWith((h) => (h.model.kind = 'cnn')), 'unknown model kind "cnn"'],
    ['a model without config', headerWith((h) => delete h.model.config), 'model.config must be an object'],
    ['no layout', headerWith((h) => delete h.layout), 'layout must be an object'],
    ['a layout of length 0', headerWith((h) => (h.layout.totalLength = 0)), 'layout.totalLength must be an integer >= 1'],
    ['a layout of length 1.5', headerWith((h) => (h.layout.totalLength = 1.5)), 'layout.totalLength must be an integer >= 1'],
    ['layout tensors not a list', headerWith((h) => (h.layout.tensors = {})), 'layout.tensors must be a list'],
    ['no optimizer', headerWith((h) => delete h.optimizer), 'optimizer must be an object'],
    ['an optimizer without config', headerWith((h) => delete h.optimizer.config), 'optimizer.config must be an object'],
    ['no state range', headerWith((h) => delete h.optimizer.stateRange), 'optimizer.stateRange must be an object'],
    ['a negative state offset', headerWith((h) => (h.optimizer.stateRange.offset = -1)), 'optimizer.stateRange.offset must be an integer >= 0'],
    ['an empty state range', headerWith((h) => (h.optimizer.stateRange.length = 0)), 'optimizer.stateRange.length must be an integer >= 1'],
    ['a state range past the end', headerWith((h) => (h.optimizer.stateRange = { offset: 1, length: TOTAL })), 'optimizer.stateRange lies outside the parameters'],
    ['buffers not a list', headerWith((h) => (h.optimizer.buffers = 'sgd.v')), 'optimizer.buffers must be a list of names'],
    ['a buffer name that is not a string', headerWith((h) => (h.optimizer.buffers = ['sgd.v', 7])), 'optimizer.buffers must be a list of names'],
    ['a negative step', headerWith((h) => (h.step = -1)), 'step must be an integer >= 0'],
    ['a world of 0', headerWith((h) => (h.world = 0)), 'world must be an integer >= 1'],
    ['a seed of 1.5', headerWith((h) => (h.seed = 1.5)), 'seed must be an integer >= 0'],
    ['sections not a list', headerWith((h) => (h.sections = {})), 'sections must be a list'],
    ['a section that is not an object', headerWith((h) => h.sections.push(3)), 'a section must be an object'],
    ['a section named twice', headerWith((h) => (h.sections[1].name = 'params')), 'section names must be distinct strings'],
    ['a section named by a number', headerWith((h) => (h.sections[1].name = 5)), 'section names must be distinct strings'],
    ['a section of negative length', headerWith((h) => (h.sections[1].length = -1)), 'section sgd.v length must be an integer >= 0'],
    ['params of the wrong length', headerWith((h) => (h.sections = [{ name: 'params', length: TOTAL - 1 }, { name: 'sgd.v', length: TOTAL + 1 }])), 'the params section must hold layout.totalLength (10) floats'],
    ['a state buffer of the wrong length', headerWith((h) => (h.sections = [{ name: 'params', length: TOTAL }, { name: 'sgd.v', length: TOTAL - 1 }, { name: 'x', length: 1 }])), 'optimizer buffer sgd.v must hold stateRange.length (10) floats'],
    ['a state buffer with no section', headerWith((h) => (h.optimizer.buffers = ['sgd.m'])), 'optimizer buffer sgd.m must hold stateRange.length (10) floats'],
    ['a vocabulary that is not a list', headerWith((h) => (h.vocab = 'ab')), 'vocab must be a list of strings'],
    ['a vocabulary with a number in it', headerWith((h) => (h.vocab = ['a', 1])), 'vocab must be a list of strings'],
  ];
  for (const [what, header, reason] of cases) {
    it(`${what}: "${reason}"`, () => {
      expect(refusal(sealed(header))).toBe(`checkpoint header: ${reason}`);
    });
  }

  const part = (change: (p: Record<string, any>) => void, params = 4) =>
    headerWith((h) => {
      h.part = { kind: 'zero-3 shard', ranges: [{ offset: 0, length: 6 }, { offset: 6, length: 4 }], index: 1 };
      change(h.part);
      h.sections[0].length = params;
    });
  const partCases: [string, unknown, string][] = [
    ['a part that is not an object', headerWith((h) => (h.part = 'shard')), 'part must be an object'],
    ['a part kind that is not a string', part((p) => (p.kind = 3)), 'part.kind must be a string'],
    ['part ranges not a list', part((p) => (p.ranges = {})), 'part.ranges must be a non-empty list'],
    ['no part ranges', part((p) => (p.ranges = [])), 'part.ranges must be a non-empty list'],
    ['a range that is not an object', part((p) => (p.ranges[1] = 4)), 'part.ranges[1] must be an object'],
    ['a range of negative offset', part((p) => (p.ranges[1].offset = -1)), 'part.ranges[1].offset must be an integer >= 0'],
    ['a range of negative length', part((p) => (p.ranges[1].length = -4)), 'part.ranges[1].length must be an integer >= 0'],
    ['a range past the end', part((p) => (p.ranges[1].offset = 7)), 'part.ranges[1] lies outside the parameters'],
    ['a part index that is not an integer', part((p) => (p.index = 0.5)), 'part.index must be an integer >= 0'],
    ['a part index past the parts', part((p) => (p.index = 2)), 'part.index 2 is not one of the 2 parts'],
    ["params that are not the part's length", part(() => {}, 6), "the params section must hold its part's (4) floats"],
  ];
  for (const [what, header, reason] of partCases) {
    it(`${what}: "${reason}"`, () => {
      const body = ramp((header as CheckpointHeader).sections.reduce((n, s) => n + (typeof s === 'object' ? s.length : 0), 0), 1);
      expect(refusal(sealed(header, body))).toBe(`checkpoint header: ${reason}`);
    });
  }

  it('the legal edges load: a part ending exactly at the end, a state range covering all, a vocabulary of strings', () => {
    const ok = part(() => {});
    expect(loadCheckpoint(sealed(ok, ramp(4 + TOTAL, 1))).params.length).toBe(4);
    expect(loadCheckpoint(sealed(headerWith((h) => (h.vocab = ['a', 'b'])))).header.vocab).toEqual(['a', 'b']);
  });
});

// --- runs -------------------------------------------------------------------------------------------

const spirals = syntheticData({ kind: 'spirals', classes: 3, trainCount: 256, testCount: 64, noise: 0.03, seed: 2 });
const recipe: ClassifierRecipe = { ...defaults.synthetic, globalBatch: 32, steps: 10, warmupSteps: 3 };
const sgdRecipe: ClassifierRecipe = { ...recipe, optimizer: { kind: 'sgd', lr: 0.05, momentum: 0.9, weightDecay: 0 } };

async function trained(steps: number, r: ClassifierRecipe = recipe) {
  const backend = new CpuBackend();
  const run = classifierRun(backend, spirals, r);
  await run.trainer.train(steps);
  return { backend, run };
}

const read = async (backend: CpuBackend, buf: Parameters<typeof viewOf>[0]) => Array.from(await backend.read(viewOf(buf)));

/** A ZeRO-3 rank's view of a run: it holds only the parameters [offset, offset + length), and optimizer state for the same range. */
function shardOf(backend: CpuBackend, r: ClassifierRecipe, offset: number, length: number): CheckpointableRun {
  const whole = classifierRun(backend, spirals, r, undefined, { optimizerStateRange: { offset, length } });
  const params = backend.alloc(length, 'shard params', 'params');
  const model = { kind: whole.model.kind, config: whole.model.config, layout: whole.model.layout, params } as unknown as CheckpointableRun['model'];
  return { model, optimizer: whole.optimizer, trainer: { step: 0 } };
}

describe('checkpoint header of a run', () => {
  it('records the layout tensor by tensor, the lab settings, data set, time stamp; without steps per epoch the sampler position is the step', async () => {
    const { backend, run } = await trained(3);
    const lab = { model: 'mlp', steps: 10 };
    const ckpt = loadCheckpoint(await captureCheckpoint(backend, run, { recipe, world: 1, rank: 0, lab, dataset: 'spirals', createdAt: '2026-12-07T00:00:00.000Z' }));
    expect(ckpt.header.layout.tensors).toEqual(run.model.layout.entries.map((e) => ({ name: e.name, shape: e.shape })));
    expect(ckpt.header.lab).toEqual(lab);
    expect(ckpt.header.dataset).toBe('spirals');
    expect(ckpt.header.createdAt).toBe('2026-12-07T00:00:00.000Z');
    expect(ckpt.header.sampler).toEqual({ globalBatch: 32, microBatches: 1, epoch: 0, batchInEpoch: 3 });
  });

  it('a GPT run is recorded as a GPT, with its config', async () => {
    const data = textDataFromString('the cat sat on the mat. '.repeat(10));
    const gptRecipe = { ...defaults.sotu, model: { blockSize: 8, nLayer: 1, nHead: 2, nEmbd: 16 }, globalBatch: 4, steps: 1 };
    const backend = new CpuBackend();
    const run = charLmRun(backend, data, gptRecipe);
    const ckpt = loadCheckpoint(await captureCheckpoint(backend, run, { recipe: gptRecipe, world: 1, rank: 0 }));
    expect(ckpt.header.model).toEqual({ kind: 'gpt', config: { ...gptRecipe.model, vocabSize: data.vocab.length } });
  });

  it('a run holding a part saves that part when told which; refuses without it; saves the whole vector when handed it', async () => {
    const backend = new CpuBackend();
    const total = classifierRun(backend, spirals, recipe).model.layout.totalLength;
    const half = Math.floor(total / 2 / 64) * 64;
    const shard = shardOf(backend, recipe, half, total - half);
    const values = ramp(total - half, 0.001);
    backend.write(viewOf(shard.model.params), values);
    const meta = { recipe, world: 2, rank: 1 };
    await expect(captureCheckpoint(backend, shard, meta)).rejects.toThrow(/this run holds a part of the parameters: a checkpoint needs the full vector/);
    const part = { kind: 'zero-3 shard', ranges: [{ offset: 0, length: half }, { offset: half, length: total - half }], index: 1 };
    // A part description whose range is not the run's length is refused too.
    const misfit = { ...part, ranges: [{ offset: 0, length: half + 64 }, { offset: half + 64, length: total - half - 64 }] };
    await expect(captureCheckpoint(backend, shard, { ...meta, part: misfit })).rejects.toThrow(/holds a part/);
    // So is one whose index names no range (a CheckpointError, not a TypeError from deep inside).
    await expect(captureCheckpoint(backend, shard, { ...meta, part: { ...part, index: 5 } })).rejects.toThrow(CheckpointError);
    const saved = loadCheckpoint(await captureCheckpoint(backend, shard, { ...meta, part }));
    expect(saved.header.part).toEqual(part);
    expect(Array.from(saved.params)).toEqual(Array.from(values));
    const full = ramp(total, 0.01);
    const gathered = loadCheckpoint(await captureCheckpoint(backend, shard, { ...meta, fullParams: full }));
    expect(gathered.header.part).toBeUndefined();
    expect(Array.from(gathered.params)).toEqual(Array.from(full));
  });
});

describe('restoring a checkpoint: refusals, warnings and offsets', () => {
  it('another model kind is named in capitals, before any shape comparison', async () => {
    const { backend, run } = await trained(1);
    const ckpt = loadCheckpoint(await captureCheckpoint(backend, run, { recipe, world: 1, rank: 0 }));
    const gpt = { ...ckpt, header: { ...ckpt.header, model: { kind: 'gpt' as const, config: ckpt.header.model.config as never } } };
    expect(incompatibilities(gpt, run, 'finetune')).toEqual(['the checkpoint holds a GPT, this run trains a MLP']);
  });

  it('the same shapes with another layout are refused (a different version of the model code)', async () => {
    const { backend, run } = await trained(1);
    const ckpt = loadCheckpoint(await captureCheckpoint(backend, run, { recipe, world: 1, rank: 0 }));
    const renamed = structuredClone(ckpt.header);
    renamed.layout.tensors[0].name = 'renamed';
    expect(() => restoreCheckpoint(backend, run, { ...ckpt, header: renamed }, 'finetune')).toThrow(
      'checkpoint does not fit this run: parameter layouts differ (a different version of the model code?)',
    );
  });

  it("one part into a run that needs all of it is refused with the ranges; every problem is listed, '; '-separated", async () => {
    const { backend, run } = await trained(1);
    const ckpt = loadCheckpoint(await captureCheckpoint(backend, run, { recipe, world: 1, rank: 0 }));
    const total = ckpt.header.layout.totalLength;
    const header = { ...ckpt.header, part: { kind: 'pipeline stage', ranges: [{ offset: 0, length: 64 }, { offset: 64, length: total - 64 }], index: 0 } };
    const asPart = { ...ckpt, header, params: ckpt.params.subarray(0, 64) };
    const partProblem = `the checkpoint holds the parameters [0, 64) (pipeline stage 1 of 2), this rank needs [0, ${total}): load it together with the other parts`;
    expect(incompatibilities(asPart, run, 'finetune')).toEqual([partProblem]);
    const sgd = classifierRun(new CpuBackend(), spirals, sgdRecipe);
    expect(() => restoreCheckpoint(backend, sgd, asPart, 'resume')).toThrow(`checkpoint does not fit this run: ${partProblem}; optimizer differs: checkpoint adamw, this run sgd`);
  });

  it('a whole checkpoint of a smaller model names its range as "part 1 of 1" beside the shape difference', async () => {
    const small = { ...recipe, model: { sizes: [2, 16, 3] } };
    const { backend, run } = await trained(1, small);
    const ckpt = loadCheckpoint(await captureCheckpoint(backend, run, { recipe: small, world: 1, rank: 0 }));
    const big = classifierRun(new CpuBackend(), spirals, recipe);
    const [have, need] = [run.model.layout.totalLength, big.model.layout.totalLength];
    expect(incompatibilities(ckpt, big, 'finetune')).toEqual([
      `model shapes differ: checkpoint ${JSON.stringify(small.model)}, this run ${JSON.stringify(recipe.model)}`,
      `the checkpoint holds the parameters [0, ${have}) (part 1 of 1), this rank needs [0, ${need}): load it together with the other parts`,
    ]);
  });

  it('resume needs the same optimizer kind and state buffers; fine-tuning does not (it starts the optimizer over)', async () => {
    const { backend, run } = await trained(2);
    const ckpt = loadCheckpoint(await captureCheckpoint(backend, run, { recipe, world: 1, rank: 0 }));
    const sgdBackend = new CpuBackend();
    const sgd = classifierRun(sgdBackend, spirals, sgdRecipe);
    expect(incompatibilities(ckpt, sgd, 'resume')).toEqual(['optimizer differs: checkpoint adamw, this run sgd']);
    expect(restoreCheckpoint(sgdBackend, sgd, ckpt, 'finetune')).toEqual([]);
    const otherBuffers = { ...ckpt, header: { ...ckpt.header, optimizer: { ...ckpt.header.optimizer, buffers: ['adam.v', 'adam.m'] } } };
    expect(incompatibilities(otherBuffers, run, 'resume')).toEqual(['optimizer differs: checkpoint adamw, this run adamw']);
  });

  it('a shard the file lacks is refused with both state ranges', async () => {
    const backend = new CpuBackend();
    const total = classifierRun(backend, spirals, recipe).model.layout.totalLength;
    const half = Math.floor(total / 2 / 64) * 64;
    const low = classifierRun(backend, spirals, recipe, undefined, { optimizerStateRange: { offset: 0, length: half } });
    const ckpt = loadCheckpoint(await captureCheckpoint(backend, low, { recipe, world: 2, rank: 0 }));
    const high = classifierRun(backend, spirals, recipe, undefined, { optimizerStateRange: { offset: half, length: total - half } });
    expect(incompatibilities(ckpt, high, 'resume')).toEqual([
      `the checkpoint holds optimizer state for [0, ${half}), this rank needs [${half}, ${total}) (a ZeRO shard of another rank?)`,
    ]);
  });

  it('resume warns of another world size, batch or seed (each alone); fine-tuning and a resume without meta do not', async () => {
    const { backend, run } = await trained(2);
    const ckpt = loadCheckpoint(await captureCheckpoint(backend, run, { recipe, world: 1, rank: 0 }));
    const restore = (mode: 'resume' | 'finetune', meta?: { recipe: ClassifierRecipe; world: number }) => {
      const into = new CpuBackend();
      return restoreCheckpoint(into, classifierRun(into, spirals, recipe), ckpt, mode, meta);
    };
    expect(restore('resume', { recipe, world: 2 })).toEqual(['saved with 1 tab(s), resumed with 2: equal only within float tolerance']);
    expect(restore('resume', { recipe: { ...recipe, globalBatch: 64 }, world: 1 })).toEqual([
      `batch or seed differ from the saved run (batch 32 -> 64, seed ${recipe.seed} -> ${recipe.seed}): a different trajectory`,
    ]);
    expect(restore('resume', { recipe: { ...recipe, seed: recipe.seed + 1 }, world: 1 })).toHaveLength(1);
    expect(restore('finetune', { recipe: { ...recipe, seed: recipe.seed + 1 }, world: 2 })).toEqual([]);
    expect(restore('resume')).toEqual([]);
  });

  it('fine-tuning a run that has trained zeroes its optimizer state and its step', async () => {
    const { backend, run } = await trained(3);
    const ckpt = loadCheckpoint(await captureCheckpoint(backend, run, { recipe, world: 1, rank: 0 }));
    const target = await trained(2);
    restoreCheckpoint(target.backend, target.run, ckpt, 'finetune');
    expect(target.run.trainer.step).toBe(0);
    for (const { buf } of target.run.optimizer.stateBuffers()) expect((await read(target.backend, buf)).every((x) => x === 0)).toBe(true);
  });

  it("a ZeRO-3 rank's own part resumes into the same rank: parameters and state at their offsets (not shifted by the part's start)", async () => {
    const backend = new CpuBackend();
    const total = classifierRun(backend, spirals, recipe).model.layout.totalLength;
    const half = Math.floor(total / 2 / 64) * 64;
    const part = { kind: 'zero-3 shard', ranges: [{ offset: 0, length: half }, { offset: half, length: total - half }], index: 1 };
    const header = {
      ...baseHeaderOf(backend, recipe),
      part,
      optimizer: { config: recipe.optimizer, stateRange: { offset: half, length: total - half }, buffers: ['adam.m', 'adam.v'] },
    };
    const params = ramp(total - half, 0.001);
    const m = ramp(total - half, 0.002);
    const v = ramp(total - half, 0.003);
    const ckpt = loadCheckpoint(saveCheckpoint(header, params, new Map([['adam.m', m], ['adam.v', v]])));
    const shard = shardOf(backend, recipe, half, total - half);
    restoreCheckpoint(backend, shard, ckpt, 'resume');
    expect(await read(backend, shard.model.params)).toEqual(Array.from(params));
    const [mBuf, vBuf] = shard.optimizer.stateBuffers();
    expect(await read(backend, mBuf.buf)).toEqual(Array.from(m));
    expect(await read(backend, vBuf.buf)).toEqual(Array.from(v));
    expect(shard.trainer.step).toBe(3);
  });

  it('writeHeldParams writes the whole vector by default and refuses a range that does not cover the run, naming both', async () => {
    const { backend, run } = await trained(1);
    const total = run.model.layout.totalLength;
    const values = ramp(total, 0.001);
    writeHeldParams(backend, run, values);
    expect(await read(backend, run.model.params)).toEqual(Array.from(values));
    expect(() => writeHeldParams(backend, run, values.subarray(0, 64), { offset: 0, length: 64 })).toThrow(`parameters [0, 64) do not cover the run's [0, ${total})`);
  });

  it('a run holding all parameters but a shard of the state (ZeRO-1/2) gets every parameter', async () => {
    const { backend, run } = await trained(2);
    const ckpt = loadCheckpoint(await captureCheckpoint(backend, run, { recipe, world: 1, rank: 0 }));
    const total = run.model.layout.totalLength;
    const target = new CpuBackend();
    const zero1 = classifierRun(target, spirals, recipe, undefined, { optimizerStateRange: { offset: 64, length: total - 64 } });
    restoreCheckpoint(target, zero1, ckpt, 'finetune');
    expect(await read(target, zero1.model.params)).toEqual(Array.from(ckpt.params));
  });
});

/** A whole header for the spirals run (step 3), without sections. */
function baseHeaderOf(backend: CpuBackend, r: ClassifierRecipe): Omit<CheckpointHeader, 'sections'> {
  const run = classifierRun(backend, spirals, r);
  return {
    format: 'webgpu-lab-checkpoint',
    model: { kind: 'mlp', config: structuredClone(run.model.config) },
    layout: { totalLength: run.model.layout.totalLength, tensors: run.model.layout.entries.map((e) => ({ name: e.name, shape: [...e.shape] })) },
    optimizer: { config: r.optimizer, stateRange: { offset: 0, length: run.model.layout.totalLength }, buffers: ['adam.m', 'adam.v'] },
    step: 3,
    world: 2,
    rank: 1,
    seed: r.seed,
    sampler: { globalBatch: r.globalBatch, microBatches: 1, epoch: 0, batchInEpoch: 3 },
    rng: { kind: 'derived-from-seed-and-step', seed: r.seed, step: 3 },
    recipe: {},
    createdAt: '2026-01-01T00:00:00.000Z',
  };
}

describe('mapping a text onto a checkpoint vocabulary', () => {
  const data = textDataFromString('abcabc cab bac '.repeat(4));
  it('the same vocabulary in the same order is used as it is', () => {
    expect(mapTextToVocab(data, [...data.vocab])).toBe(data);
  });

  it('the same characters in another order are re-encoded (a model would otherwise read every token as another character)', () => {
    const reversed = [...data.vocab].reverse();
    const mapped = mapTextToVocab(data, reversed);
    expect(mapped.vocab).toEqual(reversed);
    const decode = (d: typeof data) => Array.from(d.train, (t) => d.vocab[t]).join('');
    expect(decode(mapped)).toBe(decode(data));
    expect(Array.from(mapped.train)).not.toEqual(Array.from(data.train));
    // Two characters swapped, the rest in place: one position agreeing is not the same vocabulary.
    const swapped = [data.vocab[1], data.vocab[0], ...data.vocab.slice(2)];
    expect(decode(mapTextToVocab(data, swapped))).toBe(decode(data));
    expect(mapTextToVocab(data, swapped).vocab).toEqual(swapped);
  });

  it("a vocabulary that extends the text's takes the checkpoint's size (the model's embedding has a row per character)", () => {
    const mapped = mapTextToVocab(data, [...data.vocab, 'z']);
    expect(mapped.vocab).toEqual([...data.vocab, 'z']);
  });

  it('names up to 12 missing characters, then " ..."', () => {
    const vocab = [' '];
    const twelve = 'abcdefghijkl';
    expect(() => mapTextToVocab(textDataFromString(`${twelve} `.repeat(2)), vocab)).toThrow(
      `the text uses 12 character(s) the checkpoint's vocabulary lacks (${[...twelve].map((c) => `"${c}"`).join(' ')}): fine-tune on text written with its 1 characters`,
    );
    expect(() => mapTextToVocab(textDataFromString(`${twelve}m `.repeat(2)), vocab)).toThrow(`(${[...twelve].map((c) => `"${c}"`).join(' ')} ...): fine-tune`);
  });
});
