// TEST SUPPORT (used by e2e/hostile.spec.ts through window.lab.mesh.fuzz): a seeded stream of frames
// that a hostile or broken peer might send. Every one of them must be refused by the receiving tab
// (by the frame decoder, the room check, the heartbeat check or the transport's group checks) without
// crashing it or touching its model. Kinds cover random bytes, mutations of valid frames (bit flips,
// truncation, extension), well-formed frames with a recomputed checksum but bad fields, frames of
// another room, malformed heartbeats, and valid-looking gradient messages full of NaN that claim to
// come from a training rank.
import { mulberry32 } from '../collective/codecs';
import { crc32 } from '../shared/crc32';
import { encodeFrame, FRAME_HEADER_BYTES, type FrameHeader } from './frame';

export const HOSTILE_KINDS = [
  'random-bytes',
  'bit-flip',
  'truncated',
  'extended',
  'bad-magic',
  'bad-version',
  'bad-type',
  'future-epoch',
  'bad-parts',
  'other-room',
  'malformed-heartbeat',
  'nan-gradient-claiming-a-rank',
] as const;
export type HostileKind = (typeof HOSTILE_KINDS)[number];

export interface HostileTarget {
  /** The receiving room's hash (frame.roomHash). */
  roomHash: number;
  /** Ranks the frames may pretend to be (the training group's). */
  ranks: number[];
}


/** Rewrites the checksum so that only the field the test broke is wrong. */
function reseal(frame: Uint8Array): Uint8Array {
  const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  view.setUint32(36, crc32(frame.subarray(FRAME_HEADER_BYTES), crc32(frame.subarray(0, 36))), true);
  return frame;
}

/** `count` hostile frames from `seed`, round-robin over the kinds, each with its kind. */
export function* hostileFrames(seed: number, count: number, target: HostileTarget): Generator<{ kind: HostileKind; bytes: Uint8Array }> {
  const rand = mulberry32(seed);
  const int = (n: number) => Math.floor(rand() * n);
  const bytes = (n: number) => Uint8Array.from({ length: n }, () => int(256));
  const rank = () => target.ranks[int(target.ranks.length)] ?? 0;
  const header = (over: Partial<FrameHeader> = {}): FrameHeader => ({
    type: 'data',
    roomHash: target.roomHash,
    round: int(1000),
    collective: 16 + int(4),
    chunk: int(8),
    sender: rank(),
    part: 0,
    parts: 1,
    ...over,
  });
  const valid = () => encodeFrame(header(), bytes(4 * (1 + int(64))));
  for (let i = 0; i < count; i++) {
    const kind = HOSTILE_KINDS[i % HOSTILE_KINDS.length];
    let out: Uint8Array;
    switch (kind) {
      case 'random-bytes':
        out = bytes(1 + int(300));
        break;
      case 'bit-flip': {
        out = valid();
        const at = int(out.length * 8);
        out[at >> 3] ^= 1 << (at & 7);
        break;
      }
      case 'truncated': {
        const v = valid();
        out = v.slice(0, 1 + int(v.length - 1)); // never empty: an empty message may not be delivered at all
        break;
      }
      case 'extended': {
        const v = valid();
        out = new Uint8Array(v.length + 1 + int(16));
        out.set(v);
        out.set(bytes(out.length - v.length), v.length);
        break;
      }
      case 'bad-magic':
        out = reseal(((f) => ((f[0] ^= 0xff), f))(valid()));
        break;
      case 'bad-version':
        out = reseal(((f) => ((f[2] = 2 + int(250)), f))(valid()));
        break;
      case 'bad-type':
        out = reseal(((f) => ((f[3] = 3 + int(250)), f))(valid()));
        break;
      case 'future-epoch':
        // A membership epoch far beyond the room's: an honest peer is at most one epoch ahead.
        out = reseal(((f) => (new DataView(f.buffer).setUint16(22, 1000 + int(30000), true), f))(valid()));
        break;
      case 'bad-parts': {
        const f = valid();
        const view = new DataView(f.buffer);
        view.setUint32(24, 5 + int(100), true); // part
        view.setUint32(28, 1 + int(5), true); // parts <= part
        out = reseal(f);
        break;
      }
      case 'other-room':
        out = encodeFrame(header({ roomHash: (target.roomHash ^ (1 + int(0xffff))) >>> 0 }), bytes(16));
        break;
      case 'malformed-heartbeat':
        out = encodeFrame(header({ type: 'heartbeat', sender: 0xffff }), bytes(int(2) ? 3 : 20));
        break;
      case 'nan-gradient-claiming-a-rank': {
        const payload = new Float32Array(1 + int(256)).fill(Number.NaN);
        out = encodeFrame(header(), new Uint8Array(payload.buffer));
        break;
      }
    }
    yield { kind, bytes: out };
  }
}
