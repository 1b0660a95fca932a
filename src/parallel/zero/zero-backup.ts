// ZeRO state that survives a dead rank. Under ZeRO each rank holds the optimizer state (and, at stage 3,
// the parameters) of its shard only, so a tab that dies takes its slice with it unless someone else
// holds a copy. After every backed-up step each rank snapshots its slice (parameters and optimizer
// state over its shard, at that step) in host memory and sends a copy to its ring successor: every
// slice then lives on two tabs. When the ring re-forms, the survivors pool what they hold: each rank of
// the new ring fetches the ranges of its new shard, at the newest step they cover between them, from
// whoever holds them (planTransfers; src/lab/elastic/zero-state-transfer.ts). Nobody assembles the
// whole state.
//
// Two generations are kept. A failure during step s+1 or during its backup leaves every slice of step s
// on two tabs (every rank finished backing up step s before any could start step s+1's collectives), so
// one failure at a time, or several that are not ring neighbours, never loses state.
//
// Slices arrive from other tabs, so they are decoded like any untrusted frame: magic, version, sizes,
// CRC-32 and finite values are checked before anything is kept.
import type { FlatRange } from '../../model/layout';
import { crc32 } from '../../shared/crc32';

/** One rank's part of a run's state at the end of a step. */
export interface ZeroSlice {
  /** Optimizer steps completed when it was taken. */
  step: number;
  /** The part of the flat buffers it covers. */
  range: FlatRange;
  /** The flat buffers' full length (a slice of another model does not fit). */
  total: number;
  /** Parameters over `range`. */
  params: Float32Array;
  /** Optimizer state buffers over `range`, by name (e.g. adam.m, adam.v). */
  state: Map<string, Float32Array>;
}

export const SLICE_MAGIC = 'WGLABZSL';
export const SLICE_VERSION = 1;
const PREFIX_BYTES = 16;
const MAX_HEADER_BYTES = 64 * 1024;

export class SliceError extends Error {
  override name = 'SliceError';
}

interface SliceHeader {
  step: number;
  offset: number;
  length: number;
  total: number;
  buffers: string[];
}

/** magic(8) version(u32) headerLength(u32) header JSON (padded to 4) floats... CRC-32(u32) */
export function encodeSlice(slice: ZeroSlice): Uint8Array {
  const header: SliceHeader = { step: slice.step, offset: slice.range.offset, length: slice.range.length, total: slice.total, buffers: [...slice.state.keys()] };
  const raw = new TextEncoder().encode(JSON.stringify(header));
  const headerBytes = Math.ceil(raw.length / 4) * 4;
  const sections = [slice.params, ...slice.state.values()];
  const out = new Uint8Array(PREFIX_BYTES + headerBytes + sections.length * slice.range.length * 4 + 4);
  const view = new DataView(out.buffer);
  for (let i = 0; i < 8; i++) out[i] = SLICE_MAGIC.charCodeAt(i);
  view.setUint32(8, SLICE_VERSION, true);
  view.setUint32(12, headerBytes, true);
  out.fill(0x20, PREFIX_BYTES, PREFIX_BYTES + headerBytes);
  out.set(raw, PREFIX_BYTES);
  let at = PREFIX_BYTES + headerBytes;
  for (const s of sections) {
    if (s.length !== slice.range.length) throw new RangeError(`a slice section holds ${s.length} floats, its range ${slice.range.length}`);
    out.set(new Uint8Array(s.buffer, s.byteOffset, s.byteLength), at);
    at += s.byteLength;
  }
  view.setUint32(at, crc32(out.subarray(0, at)), true);
  return out;
}

/** Verifies and decodes a slice. `total` and `buffers` are what this run expects; anything else is refused. */
export function decodeSlice(bytes: Uint8Array, expect: { total: number; buffers: readonly string[] }): ZeroSlice {
  const bad = (why: string): never => {
    throw new SliceError(`ZeRO slice refused: ${why}`);
  };
  if (bytes.length < PREFIX_BYTES + 4) bad(`only ${bytes.length} bytes`);
  if (String.fromCharCode(...bytes.subarray(0, 8)) !== SLICE_MAGIC) bad('wrong magic bytes');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = view.getUint32(8, true);
  if (version !== SLICE_VERSION) bad(`format version ${version}, this lab reads ${SLICE_VERSION}`);
  const headerBytes = view.getUint32(12, true);
  if (headerBytes > MAX_HEADER_BYTES || headerBytes % 4 !== 0 || PREFIX_BYTES + headerBytes + 4 > bytes.length) bad(`header of ${headerBytes} bytes in ${bytes.length}`);
  const end = bytes.length - 4;
  if (crc32(bytes.subarray(0, end)) !== view.getUint32(end, true)) bad('CRC-32 mismatch (corrupt or truncated)');
  let header: SliceHeader;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(PREFIX_BYTES, PREFIX_BYTES + headerBytes))) as SliceHeader;
  } catch {
    return bad('header is not JSON');
  }
  const int = (x: unknown, min: number) => Number.isInteger(x) && (x as number) >= min;
  if (typeof header !== 'object' || header === null) bad('header is not an object');
  if (!int(header.step, 0) || !int(header.offset, 0) || !int(header.length, 1) || !int(header.total, 1)) bad('step, offset, length and total must be integers');
  if (header.total !== expect.total) bad(`it covers a model of ${header.total} floats, this run has ${expect.total}`);
  if (header.offset + header.length > header.total) bad('its range lies outside the model');
  if (!Array.isArray(header.buffers) || JSON.stringify(header.buffers) !== JSON.stringify(expect.buffers)) {
    bad(`optimizer buffers ${JSON.stringify(header.buffers)}, this run has ${JSON.stringify(expect.buffers)}`);
  }
  const floats = header.length * (1 + header.buffers.length);
  if (floats * 4 !== end - PREFIX_BYTES - headerBytes) bad(`the header promises ${floats * 4} bytes of floats, ${end - PREFIX_BYTES - headerBytes} follow`);
  let at = PREFIX_BYTES + headerBytes;
  const section = (name: string): Float32Array => {
    const data = new Float32Array(header.length);
    new Uint8Array(data.buffer).set(bytes.subarray(at, at + data.byteLength));
    at += data.byteLength;
    for (let i = 0; i < data.length; i++) if (!Number.isFinite(data[i])) bad(`non-finite ${name} value at element ${header.offset + i}`);
    return data;
  };
  const params = section('params');
  const state = new Map(header.buffers.map((name) => [name, section(name)]));
  return { step: header.step, range: { offset: header.offset, length: header.length }, total: header.total, params, state };
}

// --- planning the re-form ------------------------------------------------------------------------

/** What one tab holds: (step, range) of each slice, in the order of its store; `own`: its own snapshot. */
export interface SliceInfo {
  step: number;
  offset: number;
  length: number;
  own?: boolean;
}

/** The flat ranges one rank of the new ring holds: its parameters (all, or its stage-3 shard) and its optimizer state. */
export interface StateWants {
  params: FlatRange;
  state: FlatRange;
}

/**
 * One piece of the re-form: member `from` sends the part [offset, offset + length) of its slice `index`
 * to member `to` (from === to: the member takes it from its own store, nothing on the wire). A
 * `paramsOnly` piece carries the parameters and no optimizer state (stages 1-2 hold every parameter
 * but only their shard's state).
 */
export interface Transfer {
  from: number;
  index: number;
  to: number;
  offset: number;
  length: number;
  paramsOnly: boolean;
}

export interface TransferPlan {
  step: number;
  transfers: Transfer[];
}

interface Candidate {
  member: number;
  index: number;
  start: number;
  end: number;
  own: boolean;
}

/**
 * Covers [from, end) with parts of the candidates' slices for member `to`: its own store first (nothing
 * on the wire), then a slice's owner, then a copy holder, the one reaching furthest; a piece from
 * elsewhere stops where one of `to`'s own slices takes over. Null when some position is not covered.
 */
function cover(candidates: readonly Candidate[], from: number, end: number, to: number, paramsOnly: boolean): Transfer[] | null {
  const preference = (c: Candidate) => (c.member === to ? 0 : c.own ? 1 : 2);
  const picks: Transfer[] = [];
  let at = from;
  while (at < end) {
    let best: Candidate | undefined;
    for (const c of candidates) {
      if (c.start > at || c.end <= at) continue;
      if (!best || preference(c) < preference(best) || (preference(c) === preference(best) && c.end > best.end)) best = c;
    }
    if (!best) return null;
    let stop = Math.min(best.end, end);
    if (best.member !== to) for (const c of candidates) if (c.member === to && c.start > at && c.start < stop) stop = c.start;
    picks.push({ from: best.member, index: best.index, to, offset: at, length: stop - at, paramsOnly });
    at = stop;
  }
  return picks;
}

/**
 * The newest step whose slices, pooled over the members, cover every member's wanted ranges, and who
 * sends what to whom: each member's state range as whole pieces (parameters and optimizer state), and
 * the parameters it holds outside that range as parameters-only pieces. Null when no step is covered.
 */
export function planTransfers(inventories: readonly SliceInfo[][], wants: readonly StateWants[]): TransferPlan | null {
  const steps = [...new Set(inventories.flat().map((s) => s.step))].sort((a, b) => b - a);
  for (const step of steps) {
    const candidates = inventories.flatMap((slices, member) =>
      slices.flatMap((s, index) => (s.step === step ? [{ member, index, start: s.offset, end: s.offset + s.length, own: !!s.own }] : [])),
    );
    const transfers: Transfer[] = [];
    const covered = wants.every((want, to) => {
      const stateEnd = want.state.offset + want.state.length;
      const paramsEnd = want.params.offset + want.params.length;
      const parts = [
        cover(candidates, want.state.offset, stateEnd, to, false),
        cover(candidates, want.params.offset, Math.min(want.state.offset, paramsEnd), to, true),
        cover(candidates, Math.max(stateEnd, want.params.offset), paramsEnd, to, true),
      ];
      if (parts.some((p) => p === null)) return false;
      for (const p of parts) transfers.push(...p!);
      return true;
    });
    if (covered) return { step, transfers };
  }
  return null;
}

// --- the store ------------------------------------------------------------------------------------

/** The slices one tab holds: its own snapshots and the copies its ring predecessor sent. */
export class ZeroBackups {
  private slices: { slice: ZeroSlice; own: boolean }[] = [];

  /**
   * Keeps a slice; drops what is older than the two newest steps of this tab's own snapshots (or, on a
   * tab that only keeps copies, e.g. the parameter server's backup holder, of the copies).
   */
  add(slice: ZeroSlice, own: boolean): void {
    this.slices = this.slices.filter((s) => !(s.own === own && s.slice.step === slice.step && s.slice.range.offset === slice.range.offset));
    this.slices.push({ slice, own });
    const basis = this.slices.some((s) => s.own) ? this.slices.filter((s) => s.own) : this.slices;
    const steps = [...new Set(basis.map((s) => s.slice.step))].sort((a, b) => b - a);
    if (steps.length >= 2) this.slices = this.slices.filter((s) => s.slice.step >= steps[1]);
  }

  /** After a re-form went back to `step`: slices of later steps belong to a timeline that was abandoned. */
  rewind(step: number): void {
    this.slices = this.slices.filter((s) => s.slice.step <= step);
  }

  /**
   * Takes every slice out of the store and hands them over: the re-form's backup of the new partition
   * starts an empty store, and the caller puts these back (`reattach`) only if that backup fails.
   */
  detach(): { slice: ZeroSlice; own: boolean }[] {
    return this.slices.splice(0);
  }

  /** Puts detached slices back beside what the store holds now. */
  reattach(slices: readonly { slice: ZeroSlice; own: boolean }[]): void {
    this.slices.unshift(...slices);
  }

  inventory(): SliceInfo[] {
    return this.slices.map(({ slice, own }) => ({ step: slice.step, offset: slice.range.offset, length: slice.range.length, own }));
  }

  at(index: number): ZeroSlice {
    const s = this.slices[index];
    if (!s) throw new RangeError(`no slice ${index} (this tab holds ${this.slices.length})`);
    return s.slice;
  }

  /** Floats held (parameters and optimizer state), for memory reports. */
  floats(): number {
    return this.slices.reduce((n, { slice }) => n + slice.range.length * (1 + slice.state.size), 0);
  }

  clear(): void {
    this.slices = [];
  }
}

/** The part [offset, offset + length) of a slice, as its own slice (views, not copies). */
export function subSlice(slice: ZeroSlice, offset: number, length: number): ZeroSlice {
  const from = offset - slice.range.offset;
  if (from < 0 || from + length > slice.range.length) throw new RangeError(`[${offset}, ${offset + length}) is not inside the slice's range`);
  const cut = (a: Float32Array) => a.subarray(from, from + length);
  return { step: slice.step, range: { offset, length }, total: slice.total, params: cut(slice.params), state: new Map([...slice.state].map(([k, v]) => [k, cut(v)])) };
}
