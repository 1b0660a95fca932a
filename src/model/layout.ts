// One flat parameter buffer with named views (llm.c's malloc_and_point_parameters). Gradients, momentum
// and Adam moments use the very same layout, so zeroing, updating, averaging, hashing and sharding them
// are each one operation over one flat range.
import { alignUp, VIEW_ALIGNMENT } from '../engine/backend';
import { fnv1a64 } from './fnv1a64';

/** How a tensor starts: GPT-2's N(0, std) for matrices, constants for biases and layer norms. */
export type InitSpec = { kind: 'normal'; std: number } | { kind: 'constant'; value: number };

export interface TensorSpec {
  name: string;
  shape: readonly number[];
  /** Layer this tensor belongs to: a layer's tensors are contiguous, so its gradients form one range. */
  group: string;
  /** Whether weight decay applies (matrices yes; biases and layer-norm parameters no). */
  decay: boolean;
  init: InitSpec;
}

export interface LayoutEntry extends TensorSpec {
  /** In elements, a multiple of VIEW_ALIGNMENT. */
  offset: number;
  /** Number of elements (product of shape), without padding. */
  length: number;
}

/** A contiguous range of the flat buffers, in elements. */
export interface FlatRange {
  offset: number;
  length: number;
}

export interface ParamLayout {
  entries: LayoutEntry[];
  /** Padded total, a multiple of VIEW_ALIGNMENT. */
  totalLength: number;
  /** Number of real parameters (no padding). */
  paramCount: number;
  /** Layer groups in layout order, each a contiguous range (padding included). */
  groups: { name: string; range: FlatRange }[];
}

export function buildLayout(specs: readonly TensorSpec[]): ParamLayout {
  const entries: LayoutEntry[] = [];
  const seen = new Set<string>();
  const groups: { name: string; range: FlatRange }[] = [];
  let offset = 0;
  let paramCount = 0;
  for (const spec of specs) {
    if (seen.has(spec.name)) throw new Error(`duplicate tensor name "${spec.name}"`);
    seen.add(spec.name);
    if (spec.shape.length === 0 || spec.shape.some((d) => !Number.isInteger(d) || d <= 0)) {
      throw new RangeError(`tensor "${spec.name}" has an invalid shape [${spec.shape.join(', ')}]`);
    }
    const length = spec.shape.reduce((a, b) => a * b, 1);
    const last = groups[groups.length - 1];
    if (last?.name === spec.group) {
      last.range.length = alignUp(offset + length, VIEW_ALIGNMENT) - last.range.offset;
    } else {
      if (groups.some((g) => g.name === spec.group)) {
        throw new Error(`group "${spec.group}" is not contiguous: its tensors must be listed together`);
      }
      groups.push({ name: spec.group, range: { offset, length: alignUp(length, VIEW_ALIGNMENT) } });
    }
    entries.push({ ...spec, shape: [...spec.shape], offset, length });
    offset = alignUp(offset + length, VIEW_ALIGNMENT);
    paramCount += length;
  }
  return { entries, totalLength: offset, paramCount, groups };
}

export function entry(layout: ParamLayout, name: string): LayoutEntry {
  const found = layout.entries.find((e) => e.name === name);
  if (!found) throw new Error(`no tensor named "${name}" in the layout`);
  return found;
}

/** Whether the union of `ranges` covers all of `target` (a tensor may be announced in several blocks). */
export function coveredBy(ranges: readonly FlatRange[], target: FlatRange): boolean {
  let at = target.offset;
  const end = target.offset + target.length;
  for (const r of [...ranges].sort((a, b) => a.offset - b.offset)) {
    if (r.offset > at) break;
    at = Math.max(at, r.offset + r.length);
    if (at >= end) return true;
  }
  return at >= end;
}

export function groupRange(layout: ParamLayout, group: string): FlatRange {
  const found = layout.groups.find((g) => g.name === group);
  if (!found) throw new Error(`no layer group named "${group}" in the layout`);
  return found.range;
}

/**
 * A stable 64-bit FNV-1a hash of the bytes of `data`, as 16 hex digits, the same in every browser and
 * in Node (fnv1a64.ts). Replicas compare these after every step.
 */
export function paramsHash(data: Float32Array | Uint32Array | Uint8Array): string {
  return fnv1a64(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
}
