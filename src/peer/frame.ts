// The wire protocol: every message on a data channel is one frame. A frame that does not validate is
// refused with a reason (shown on the dashboard) and never reaches a collective, so nothing a peer
// sends can crash a tab or corrupt its model. decodeFrame never throws, whatever the bytes.
//
// Layout (little-endian), 40-byte header then the payload:
//   0  u16 magic 0x4C57 ("WL")     20 u16 sender rank (0xFFFF: not ranked yet, heartbeats/control)
//   2  u8  version (1)              22 u16 membership epoch (elastic rooms; 0 for heartbeats/control)
//   3  u8  type (0 data, 1 heartbeat, 2 control)
//   4  u32 room hash (FNV-1a)       24 u32 part  (index of this piece of a split message)
//   8  u32 round (training step)    28 u32 parts (how many pieces the message was split into)
//  12  u32 collective id            32 u32 payload length
//  16  u32 chunk id                 36 u32 CRC-32 of header bytes 0..35 followed by the payload
import { crc32 } from '../shared/crc32';

export const FRAME_MAGIC = 0x4c57;
export const FRAME_VERSION = 1;
export const FRAME_HEADER_BYTES = 40;
/** Rank field of frames sent before ranks are known (heartbeats, control). */
export const NO_RANK = 0xffff;
const U32_MAX = 0xffffffff;

export type FrameType = 'data' | 'heartbeat' | 'control';
const TYPE_CODES: Record<FrameType, number> = { data: 0, heartbeat: 1, control: 2 };
const TYPES_BY_CODE: FrameType[] = ['data', 'heartbeat', 'control'];

export interface FrameHeader {
  type: FrameType;
  roomHash: number;
  round: number;
  collective: number;
  chunk: number;
  sender: number;
  part: number;
  parts: number;
  /**
   * The room's membership epoch the sender was in (elastic.ts): data frames of an earlier membership
   * are stale after the ring re-forms and must never be summed into the new one. Default 0.
   */
  epoch?: number;
}

export interface Frame extends FrameHeader {
  epoch: number;
  version: number;
  /** A view into the decoded buffer (no copy). */
  payload: Uint8Array;
}

export interface FrameError {
  error: string;
}

export function isFrameError(x: Frame | FrameError): x is FrameError {
  return (x as FrameError).error !== undefined;
}

/** FNV-1a 32-bit hash of the room code: frames of another room are refused without naming it. */
export function roomHash(room: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < room.length; i++) {
    h ^= room.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

function checkU32(name: string, v: number): void {
  if (!Number.isInteger(v) || v < 0 || v > U32_MAX) throw new RangeError(`frame ${name} must be a u32, got ${v}`);
}

/** Encodes one frame. Throws on out-of-range header fields: that is a bug in the caller, not bad input. */
export function encodeFrame(header: FrameHeader, payload: Uint8Array): Uint8Array {
  for (const key of ['roomHash', 'round', 'collective', 'chunk', 'part', 'parts'] as const) checkU32(key, header[key]);
  for (const key of ['sender', 'epoch'] as const) {
    const v = header[key] ?? 0;
    if (!Number.isInteger(v) || v < 0 || v > 0xffff) throw new RangeError(`frame ${key} must be a u16, got ${v}`);
  }
  if (header.parts < 1 || header.part >= header.parts) {
    throw new RangeError(`frame part ${header.part} of ${header.parts} is not a valid piece`);
  }
  const out = new Uint8Array(FRAME_HEADER_BYTES + payload.length);
  const view = new DataView(out.buffer);
  view.setUint16(0, FRAME_MAGIC, true);
  view.setUint8(2, FRAME_VERSION);
  view.setUint8(3, TYPE_CODES[header.type]);
  view.setUint32(4, header.roomHash, true);
  view.setUint32(8, header.round, true);
  view.setUint32(12, header.collective, true);
  view.setUint32(16, header.chunk, true);
  view.setUint16(20, header.sender, true);
  view.setUint16(22, header.epoch ?? 0, true);
  view.setUint32(24, header.part, true);
  view.setUint32(28, header.parts, true);
  view.setUint32(32, payload.length, true);
  out.set(payload, FRAME_HEADER_BYTES);
  view.setUint32(36, checksum(out), true);
  return out;
}

function checksum(frame: Uint8Array): number {
  return crc32(frame.subarray(FRAME_HEADER_BYTES), crc32(frame.subarray(0, 36)));
}

/** Decodes and validates one frame. Returns `{ error }` with a human-readable reason for anything invalid. */
export function decodeFrame(bytes: unknown): Frame | FrameError {
  if (!(bytes instanceof Uint8Array)) return { error: `not binary (${describe(bytes)})` };
  if (bytes.length < FRAME_HEADER_BYTES) {
    return { error: `too short: ${bytes.length} bytes, a header is ${FRAME_HEADER_BYTES}` };
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = view.getUint16(0, true);
  if (magic !== FRAME_MAGIC) return { error: `bad magic 0x${magic.toString(16)}` };
  const version = view.getUint8(2);
  if (version !== FRAME_VERSION) return { error: `unsupported version ${version} (this tab speaks ${FRAME_VERSION})` };
  const type = TYPES_BY_CODE[view.getUint8(3)];
  if (type === undefined) return { error: `unknown frame type ${view.getUint8(3)}` };
  const part = view.getUint32(24, true);
  const parts = view.getUint32(28, true);
  if (parts < 1 || part >= parts) return { error: `part ${part} of ${parts} is not a valid piece` };
  const length = view.getUint32(32, true);
  if (length !== bytes.length - FRAME_HEADER_BYTES) {
    return { error: `payload length ${length} but ${bytes.length - FRAME_HEADER_BYTES} bytes follow the header` };
  }
  const expected = view.getUint32(36, true);
  const actual = checksum(bytes);
  if (expected !== actual) {
    return { error: `checksum mismatch (frame says ${hex(expected)}, bytes give ${hex(actual)})` };
  }
  return {
    version,
    type,
    roomHash: view.getUint32(4, true),
    round: view.getUint32(8, true),
    collective: view.getUint32(12, true),
    chunk: view.getUint32(16, true),
    sender: view.getUint16(20, true),
    epoch: view.getUint16(22, true),
    part,
    parts,
    payload: bytes.subarray(FRAME_HEADER_BYTES),
  };
}

function hex(n: number): string {
  return `0x${n.toString(16).padStart(8, '0')}`;
}

function describe(x: unknown): string {
  if (x === null) return 'null';
  if (typeof x === 'string') return `a string of ${x.length} chars`;
  if (typeof x === 'object') return (x as object).constructor?.name ?? 'object';
  return typeof x;
}
