// Checkpoints: a run's parameters, optimizer state and position, in one self-checking binary file.
//
// Layout (little-endian):
//   0   8 bytes  magic "WGLABCKP"
//   8   u32      format version (CHECKPOINT_VERSION)
//   12  u32      header length H in bytes (UTF-8 JSON, padded with spaces to a multiple of 4)
//   16  H bytes  header JSON (CheckpointHeader): model, optimizer, step, world, sampler position...
//   16+H         the sections the header lists, in order, each `length` float32s
//   end-4 u32    CRC-32 of every byte before it
//
// A file may hold a PART of the model (header.part): a ZeRO-3 rank's shard, a pipeline stage. Its
// params section then holds only the part's flat range, the optimizer state covers stateRange as
// always, and `part.ranges` records the whole partition (every part's range), so that parts saved by a
// room of one size can be re-cut for a room of another (checkpoint-parts.ts combineCheckpointParts).
// A file without `part` is the one-tab format: the whole vector.
//
// Everything a run draws at random derives from (seed, step): the sampler shuffles epoch e with
// Rng(deriveSeed(seed, e)), text samples are seeded by seed + step, and there is no dropout. So the
// step and the seed ARE the RNG state, and resuming at step s with the same seed and world continues
// the very trajectory of the run that never stopped (checkpoint.test.ts proves it bit for bit).
//
// Loading never touches a live run until the whole file has been verified: a corrupt, truncated or
// foreign file is refused with a CheckpointError and whatever was loaded before stays as it was.
import { viewOf, type Backend } from '../engine/backend';
import type { GptConfig } from '../model/gpt';
import type { FlatRange, ParamLayout } from '../model/layout';
import type { MlpConfig } from '../model/mlp';
import type { Model } from '../model/model';
import type { TextData } from '../data/types';
import { crc32 } from '../shared/crc32';
import type { Optimizer, OptimizerConfig } from './optimizer';
import type { Trainer } from './trainer';

export const CHECKPOINT_MAGIC = 'WGLABCKP';
export const CHECKPOINT_VERSION = 1;
const PREFIX_BYTES = 16;
const TRAILER_BYTES = 4;
/** A header larger than this is not one of ours (the GPT's vocabulary is the biggest part: a few KiB). */
const MAX_HEADER_BYTES = 4 * 1024 * 1024;

export class CheckpointError extends Error {
  override name = 'CheckpointError';
}

export type ModelSpec = { kind: 'mlp'; config: MlpConfig } | { kind: 'gpt'; config: GptConfig };

/** Which part of the model a file holds (see the file comment). */
export interface CheckpointPart {
  /** What cut the model, shown in messages: 'zero-3 shard', 'pipeline stage', 're-cut'. */
  kind: string;
  /** Every part's flat range, in the partition's order: the partition itself. */
  ranges: FlatRange[];
  /** This file's part: its params section holds ranges[index]. */
  index: number;
}

export interface CheckpointHeader {
  format: 'webgpu-lab-checkpoint';
  /** Absent: the whole parameter vector. Present: the params section holds part.ranges[part.index]. */
  part?: CheckpointPart;
  model: ModelSpec;
  /** Tensor names and shapes in layout order, and the padded flat length: what the floats mean. */
  layout: { totalLength: number; tensors: { name: string; shape: number[] }[] };
  optimizer: {
    config: OptimizerConfig;
    /** The slice of the flat buffers the state covers (all of it unless ZeRO sharded it). */
    stateRange: FlatRange;
    /** Section names of the state buffers, e.g. ['adam.m', 'adam.v']. */
    buffers: string[];
  };
  /** Optimizer steps completed: training continues with step `step` (0-based). */
  step: number;
  world: number;
  rank: number;
  seed: number;
  /** Where the sampler stands: the epoch and the global batch within it that come next. */
  sampler: { globalBatch: number; microBatches: number; epoch: number; batchInEpoch: number };
  /** See the file comment: all randomness is a function of (seed, step). */
  rng: { kind: 'derived-from-seed-and-step'; seed: number; step: number };
  /** The recipe the run trained with (schedule, batch, clipping), as JSON. */
  recipe: Record<string, unknown>;
  /** The lab's URL settings, when saved by the lab. */
  lab?: Record<string, unknown>;
  /** Text models: vocab[id] is the character of token id. */
  vocab?: string[];
  dataset?: string;
  createdAt: string;
  /** The float sections that follow the header, in order. */
  sections: { name: string; length: number }[];
}

export interface Checkpoint {
  header: CheckpointHeader;
  params: Float32Array;
  /** Optimizer state buffers by name, each header.optimizer.stateRange.length floats. */
  state: Map<string, Float32Array>;
}

// --- bytes ------------------------------------------------------------------------------------------

/** Serialises a checkpoint. `header.sections` is filled in here from params and state. */
export function saveCheckpoint(header: Omit<CheckpointHeader, 'sections'>, params: Float32Array, state: Map<string, Float32Array>): Uint8Array {
  const sections = [{ name: 'params', data: params }, ...[...state].map(([name, data]) => ({ name, data }))];
  const prefix = checkpointPrefix({ ...header, sections: sections.map((s) => ({ name: s.name, length: s.data.length })) });
  const floats = sections.reduce((n, s) => n + s.data.length, 0);
  const out = new Uint8Array(prefix.length + floats * 4 + TRAILER_BYTES);
  out.set(prefix);
  let at = prefix.length;
  for (const s of sections) {
    out.set(new Uint8Array(s.data.buffer, s.data.byteOffset, s.data.byteLength), at);
    at += s.data.byteLength;
  }
  new DataView(out.buffer).setUint32(at, crc32(out.subarray(0, at)), true);
  return out;
}

/** The bytes before the float sections: magic, version, header length and the header (padded). */
export function checkpointPrefix(header: CheckpointHeader): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.length / 4) * 4;
  const out = new Uint8Array(PREFIX_BYTES + padded).fill(0x20);
  const view = new DataView(out.buffer);
  for (let i = 0; i < 8; i++) out[i] = CHECKPOINT_MAGIC.charCodeAt(i);
  view.setUint32(8, CHECKPOINT_VERSION, true);
  view.setUint32(12, padded, true);
  out.set(json, PREFIX_BYTES);
  return out;
}

/** The CRC-32 trailer of a file whose bytes before it checksum to `crc`. */
export function checkpointTrailer(crc: number): Uint8Array {
  const out = new Uint8Array(TRAILER_BYTES);
  new DataView(out.buffer).setUint32(0, crc, true);
  return out;
}

/** The flat range a checkpoint's params section holds: its part's, or the whole vector. */
export function paramsRangeOf(header: CheckpointHeader): FlatRange {
  return header.part ? header.part.ranges[header.part.index] : { offset: 0, length: header.layout.totalLength };
}

/** Parses and verifies a checkpoint file. Throws CheckpointError with the reason for anything invalid. */
export function loadCheckpoint(bytes: Uint8Array): Checkpoint {
  if (!(bytes instanceof Uint8Array)) throw new CheckpointError('a checkpoint must be bytes (Uint8Array)');
  if (bytes.length < PREFIX_BYTES + TRAILER_BYTES) throw new CheckpointError(`not a checkpoint: only ${bytes.length} bytes`);
  const magic = String.fromCharCode(...bytes.subarray(0, 8));
  if (magic !== CHECKPOINT_MAGIC) throw new CheckpointError('not a checkpoint of this lab (wrong magic bytes)');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = view.getUint32(8, true);
  if (version !== CHECKPOINT_VERSION) throw new CheckpointError(`checkpoint format version ${version}; this lab reads version ${CHECKPOINT_VERSION}`);
  const headerBytes = view.getUint32(12, true);
  if (headerBytes > MAX_HEADER_BYTES || headerBytes % 4 !== 0 || PREFIX_BYTES + headerBytes + TRAILER_BYTES > bytes.length) {
    throw new CheckpointError(`truncated or damaged checkpoint: header of ${headerBytes} bytes in a file of ${bytes.length}`);
  }
  const end = bytes.length - TRAILER_BYTES;
  const expected = view.getUint32(end, true);
  const actual = crc32(bytes.subarray(0, end));
  if (expected !== actual) throw new CheckpointError(`checkpoint is corrupt or truncated (CRC-32 ${hex(actual)}, file says ${hex(expected)})`);
  let raw: unknown;
  try {
    raw = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(PREFIX_BYTES, PREFIX_BYTES + headerBytes)));
  } catch {
    throw new CheckpointError('checkpoint header is not valid JSON');
  }
  const header = checkHeader(raw);
  const floats = header.sections.reduce((n, s) => n + s.length, 0);
  const bodyBytes = end - PREFIX_BYTES - headerBytes;
  if (floats * 4 !== bodyBytes) throw new CheckpointError(`checkpoint sections hold ${floats * 4} bytes but ${bodyBytes} follow the header`);
  // Copies (never views) so the result is aligned and independent of the caller's buffer.
  const sections = new Map<string, Float32Array>();
  let at = PREFIX_BYTES + headerBytes;
  for (const s of header.sections) {
    const data = new Float32Array(s.length);
    new Uint8Array(data.buffer).set(bytes.subarray(at, at + s.length * 4));
    sections.set(s.name, data);
    at += s.length * 4;
  }
  const params = sections.get('params')!;
  const state = new Map(header.optimizer.buffers.map((name) => [name, sections.get(name)!]));
  return { header, params, state };
}

function hex(n: number): string {
  return `0x${n.toString(16).padStart(8, '0')}`;
}

function checkHeader(raw: unknown): CheckpointHeader {
  const bad = (what: string): never => {
    throw new CheckpointError(`checkpoint header: ${what}`);
  };
  const obj = (x: unknown, what: string): Record<string, unknown> =>
    typeof x === 'object' && x !== null && !Array.isArray(x) ? (x as Record<string, unknown>) : bad(`${what} must be an object`);
  const int = (x: unknown, what: string, min = 0): number => (Number.isInteger(x) && (x as number) >= min ? (x as number) : bad(`${what} must be an integer >= ${min}`));
  const h = obj(raw, 'the header');
  if (h.format !== 'webgpu-lab-checkpoint') bad('not a webgpu-lab checkpoint');
  const model = obj(h.model, 'model');
  if (model.kind !== 'mlp' && model.kind !== 'gpt') bad(`unknown model kind ${JSON.stringify(model.kind)}`);
  obj(model.config, 'model.config');
  const layout = obj(h.layout, 'layout');
  const totalLength = int(layout.totalLength, 'layout.totalLength', 1);
  if (!Array.isArray(layout.tensors)) bad('layout.tensors must be a list');
  const optimizer = obj(h.optimizer, 'optimizer');
  obj(optimizer.config, 'optimizer.config');
  const range = obj(optimizer.stateRange, 'optimizer.stateRange');
  const rangeOffset = int(range.offset, 'optimizer.stateRange.offset');
  const rangeLength = int(range.length, 'optimizer.stateRange.length', 1);
  if (rangeOffset + rangeLength > totalLength) bad('optimizer.stateRange lies outside the parameters');
  if (!Array.isArray(optimizer.buffers) || !optimizer.buffers.every((b) => typeof b === 'string')) bad('optimizer.buffers must be a list of names');
  int(h.step, 'step');
  int(h.world, 'world', 1);
  int(h.seed, 'seed');
  if (!Array.isArray(h.sections)) bad('sections must be a list');
  const sections = h.sections as unknown[];
  const names = new Set<string>();
  for (const s of sections) {
    const sec = obj(s, 'a section');
    if (typeof sec.name !== 'string' || names.has(sec.name)) bad('section names must be distinct strings');
    names.add(sec.name as string);
    int(sec.length, `section ${String(sec.name)} length`);
  }
  const lengthOf = (name: string) => (sections as { name: string; length: number }[]).find((s) => s.name === name)?.length;
  let held = totalLength;
  if (h.part !== undefined) {
    const part = obj(h.part, 'part');
    if (typeof part.kind !== 'string') bad('part.kind must be a string');
    if (!Array.isArray(part.ranges) || part.ranges.length === 0) bad('part.ranges must be a non-empty list');
    const ranges = (part.ranges as unknown[]).map((r, i) => {
      const range = obj(r, `part.ranges[${i}]`);
      const offset = int(range.offset, `part.ranges[${i}].offset`);
      const length = int(range.length, `part.ranges[${i}].length`);
      if (offset + length > totalLength) bad(`part.ranges[${i}] lies outside the parameters`);
      return length;
    });
    held = ranges[int(part.index, 'part.index')] ?? bad(`part.index ${String(part.index)} is not one of the ${ranges.length} parts`);
  }
  if (lengthOf('params') !== held) bad(`the params section must hold ${h.part ? 'its part\'s' : 'layout.totalLength'} (${held}) floats`);
  for (const b of optimizer.buffers as string[]) {
    if (lengthOf(b) !== rangeLength) bad(`optimizer buffer ${b} must hold stateRange.length (${rangeLength}) floats`);
  }
  if (h.vocab !== undefined && (!Array.isArray(h.vocab) || !h.vocab.every((c) => typeof c === 'string'))) bad('vocab must be a list of strings');
  return raw as CheckpointHeader;
}

// --- runs -------------------------------------------------------------------------------------------

/** What a checkpoint reads from and writes to: recipes.ts's Run has all of it. */
export interface CheckpointableRun {
  model: Model & { readonly config: MlpConfig | GptConfig };
  optimizer: Optimizer;
  /** Only its step is read and written (a pipeline stage's trainer has one too). */
  trainer: Pick<Trainer, 'step'>;
}

export interface CheckpointMeta {
  recipe: { globalBatch: number; microBatches: number; seed: number } & object;
  world: number;
  rank: number;
  /** Steps per epoch of the run's sampler (for the sampler position in the header). */
  stepsPerEpoch?: number;
  lab?: Record<string, unknown>;
  vocab?: string[];
  dataset?: string;
  /** The full parameter vector, when the run holds only a shard of it (ZeRO-3: the last gathered one). */
  fullParams?: Float32Array;
  /** The run holds a part of the vector and saves just that (ZeRO-3 while training): which part. */
  part?: CheckpointPart;
  /** The header's time stamp (default now). */
  createdAt?: string;
}

export function modelSpecOf(model: CheckpointableRun['model']): ModelSpec {
  return model.kind === 'mlp' ? { kind: 'mlp', config: structuredClone(model.config as MlpConfig) } : { kind: 'gpt', config: structuredClone(model.config as GptConfig) };
}

function layoutSummary(layout: ParamLayout): CheckpointHeader['layout'] {
  return { totalLength: layout.totalLength, tensors: layout.entries.map((e) => ({ name: e.name, shape: [...e.shape] })) };
}

/**
 * The header of a checkpoint of this run (sections left to saveCheckpoint, or given by a streamed
 * export): the params section covers `part`'s range (absent: the whole vector), the optimizer state
 * `stateRange`.
 */
export function checkpointHeaderOf(run: CheckpointableRun, meta: CheckpointMeta, cover: { part?: CheckpointPart; stateRange: FlatRange }): Omit<CheckpointHeader, 'sections'> {
  const step = run.trainer.step;
  const perEpoch = meta.stepsPerEpoch ?? 0;
  return {
    format: 'webgpu-lab-checkpoint',
    ...(cover.part ? { part: structuredClone(cover.part) } : {}),
    model: modelSpecOf(run.model),
    layout: layoutSummary(run.model.layout),
    optimizer: { config: { ...run.optimizer.config }, stateRange: { ...cover.stateRange }, buffers: run.optimizer.stateBuffers().map((s) => s.name) },
    step,
    world: meta.world,
    rank: meta.rank,
    seed: meta.recipe.seed,
    sampler: {
      globalBatch: meta.recipe.globalBatch,
      microBatches: meta.recipe.microBatches,
      epoch: perEpoch > 0 ? Math.floor(step / perEpoch) : 0,
      batchInEpoch: perEpoch > 0 ? step % perEpoch : step,
    },
    rng: { kind: 'derived-from-seed-and-step', seed: meta.recipe.seed, step },
    recipe: JSON.parse(JSON.stringify(meta.recipe)) as Record<string, unknown>,
    ...(meta.lab ? { lab: { ...meta.lab } } : {}),
    ...(meta.vocab ? { vocab: [...meta.vocab] } : {}),
    ...(meta.dataset ? { dataset: meta.dataset } : {}),
    createdAt: meta.createdAt ?? new Date().toISOString(),
  };
}

/** Reads the run's parameters and optimizer state back from the device and serialises them. */
export async function captureCheckpoint(backend: Backend, run: CheckpointableRun, meta: CheckpointMeta): Promise<Uint8Array> {
  const total = run.model.layout.totalLength;
  const whole = run.model.params.length === total || meta.fullParams?.length === total;
  const part = whole ? undefined : meta.part;
  if (!whole && part?.ranges[part.index]?.length !== run.model.params.length) {
    throw new CheckpointError('this run holds a part of the parameters: a checkpoint needs the full vector (gathered) or the description of its part');
  }
  const params = meta.fullParams ?? (await backend.read(viewOf(run.model.params)));
  const state = new Map<string, Float32Array>();
  for (const { name, buf } of run.optimizer.stateBuffers()) state.set(name, await run.optimizer.backend.read(viewOf(buf)));
  const header = checkpointHeaderOf(run, meta, { part, stateRange: run.optimizer.stateRange });
  return saveCheckpoint(header, params, state);
}

/**
 * 'resume': parameters, optimizer state and step (the run continues where the checkpoint stopped).
 * 'finetune': parameters only; the optimizer starts fresh at step 0 (another data set, another recipe).
 */
export type RestoreMode = 'resume' | 'finetune';

/**
 * Everything that makes a checkpoint unfit for a run, as reasons (empty: compatible). Checked before
 * anything is written, so a refused checkpoint leaves the run untouched.
 */
export function incompatibilities(ckpt: Checkpoint, run: CheckpointableRun, mode: RestoreMode): string[] {
  const problems: string[] = [];
  const h = ckpt.header;
  const here = modelSpecOf(run.model);
  if (h.model.kind !== here.kind) return [`the checkpoint holds a ${h.model.kind.toUpperCase()}, this run trains a ${here.kind.toUpperCase()}`];
  if (JSON.stringify(h.model.config) !== JSON.stringify(here.config)) {
    problems.push(`model shapes differ: checkpoint ${JSON.stringify(h.model.config)}, this run ${JSON.stringify(here.config)}`);
  } else if (JSON.stringify(h.layout) !== JSON.stringify(layoutSummary(run.model.layout))) {
    problems.push('parameter layouts differ (a different version of the model code?)');
  }
  const needParams = heldRange(run);
  const haveParams = paramsRangeOf(h);
  if (!within(needParams, haveParams)) {
    problems.push(
      `the checkpoint holds the parameters [${haveParams.offset}, ${haveParams.offset + haveParams.length}) (${h.part?.kind ?? 'part'} ${(h.part?.index ?? 0) + 1} of ${h.part?.ranges.length ?? 1}), this rank needs [${needParams.offset}, ${needParams.offset + needParams.length}): load it together with the other parts`,
    );
  }
  if (mode === 'resume') {
    const names = run.optimizer.stateBuffers().map((s) => s.name);
    if (h.optimizer.config.kind !== run.optimizer.config.kind || JSON.stringify(h.optimizer.buffers) !== JSON.stringify(names)) {
      problems.push(`optimizer differs: checkpoint ${h.optimizer.config.kind}, this run ${run.optimizer.config.kind}`);
    }
    const need = run.optimizer.stateRange;
    const have = h.optimizer.stateRange;
    if (!within(need, have)) {
      problems.push(
        `the checkpoint holds optimizer state for [${have.offset}, ${have.offset + have.length}), this rank needs [${need.offset}, ${need.offset + need.length}) (a ZeRO shard of another rank?)`,
      );
    }
  }
  return problems;
}

/**
 * Writes a verified checkpoint into a run. Throws CheckpointError (leaving the run as it was) if it
 * does not fit. Returns warnings: things that load but change the result (another world size, another
 * batch), which the caller should show.
 */
export function restoreCheckpoint(backend: Backend, run: CheckpointableRun, ckpt: Checkpoint, mode: RestoreMode, meta?: Pick<CheckpointMeta, 'recipe' | 'world'>): string[] {
  const problems = incompatibilities(ckpt, run, mode);
  if (problems.length > 0) throw new CheckpointError(`checkpoint does not fit this run: ${problems.join('; ')}`);
  const warnings: string[] = [];
  const h = ckpt.header;
  if (mode === 'resume' && meta) {
    if (h.world !== meta.world) warnings.push(`saved with ${h.world} tab(s), resumed with ${meta.world}: equal only within float tolerance`);
    if (h.sampler.globalBatch !== meta.recipe.globalBatch || h.seed !== meta.recipe.seed) {
      warnings.push(`batch or seed differ from the saved run (batch ${h.sampler.globalBatch} -> ${meta.recipe.globalBatch}, seed ${h.seed} -> ${meta.recipe.seed}): a different trajectory`);
    }
  }
  writeHeldParams(backend, run, ckpt.params, paramsRangeOf(h));
  const stateBackend = run.optimizer.backend;
  if (mode === 'resume') {
    const shift = run.optimizer.stateRange.offset - h.optimizer.stateRange.offset;
    for (const { name, buf } of run.optimizer.stateBuffers()) {
      const saved = ckpt.state.get(name)!;
      stateBackend.write(viewOf(buf), saved.subarray(shift, shift + buf.length));
    }
    run.trainer.step = h.step;
  } else {
    for (const { buf } of run.optimizer.stateBuffers()) stateBackend.fill(viewOf(buf), 0);
    run.trainer.step = 0;
  }
  return warnings;
}

/**
 * Writes parameters covering the flat range `from` (the whole vector, or a checkpoint's part) into a
 * run: all of the vector, or (ZeRO-3, which holds only its shard: the optimizer's state range) the part
 * the run holds.
 */
export function writeHeldParams(backend: Backend, run: CheckpointableRun, params: Float32Array, from: FlatRange = { offset: 0, length: params.length }): void {
  const need = heldRange(run);
  if (!within(need, from)) throw new CheckpointError(`parameters [${from.offset}, ${from.offset + from.length}) do not cover the run's [${need.offset}, ${need.offset + need.length})`);
  const at = need.offset - from.offset;
  backend.write(viewOf(run.model.params), params.subarray(at, at + need.length));
}

/** The flat range of the parameters a run holds: all of them, or (ZeRO-3) its shard. */
export function heldRange(run: CheckpointableRun): FlatRange {
  const total = run.model.layout.totalLength;
  return run.model.params.length === total ? { offset: 0, length: total } : { ...run.optimizer.stateRange };
}

function within(inner: FlatRange, outer: FlatRange): boolean {
  return inner.offset >= outer.offset && inner.offset + inner.length <= outer.offset + outer.length;
}

// --- fine-tuning text models --------------------------------------------------------------------------

/**
 * Re-encodes a text data set with a checkpoint's vocabulary, so a trained char model can continue on
 * new text. Every character of the text must be in that vocabulary (the embedding has no row for a new
 * one); otherwise a CheckpointError names the missing characters.
 */
export function mapTextToVocab(data: TextData, vocab: readonly string[]): TextData {
  if (data.vocab.length === vocab.length && data.vocab.every((c, i) => c === vocab[i])) return data;
  const idOf = new Map(vocab.map((c, i) => [c, i]));
  const missing = data.vocab.filter((c) => !idOf.has(c));
  if (missing.length > 0) {
    const shown = missing.slice(0, 12).map((c) => JSON.stringify(c)).join(' ');
    throw new CheckpointError(
      `the text uses ${missing.length} character(s) the checkpoint's vocabulary lacks (${shown}${missing.length > 12 ? ' ...' : ''}): fine-tune on text written with its ${vocab.length} characters`,
    );
  }
  const table = Uint32Array.from(data.vocab, (c) => idOf.get(c)!);
  const remap = (tokens: Uint32Array) => tokens.map((t) => table[t]);
  return { name: data.name, vocab: [...vocab], train: remap(data.train), val: remap(data.val) };
}

// --- JSON-friendly transport (window.lab, page.evaluate) -----------------------------------------------

/** Base64 of bytes, in chunks (String.fromCharCode on megabytes at once overflows the stack). */
export function bytesToBase64(bytes: Uint8Array): string {
  let binary = '';
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary);
}

export function base64ToBytes(text: string): Uint8Array {
  let binary: string;
  try {
    binary = atob(text);
  } catch {
    throw new CheckpointError('checkpoint text is not valid base64');
  }
  const out = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
  return out;
}
