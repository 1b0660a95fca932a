// TEST SUPPORT (used by e2e/hostile.spec.ts through window.lab.mesh.fuzz): a seeded stream of frames
// that a hostile or broken peer might send. Every one of them must be refused by the receiving tab
// (by the frame decoder, the room check, the heartbeat check or the transport's group checks) without
// crashing it or touching its model. Kinds cover random bytes, mutations of valid frames (bit flips,
// truncation, extension), well-formed frames with a recomputed checksum but bad fields, frames of
// another room, malformed heartbeats, and valid-looking gradient messages full of NaN that claim to
// come from a training rank.
import { encodeFp16, encodeSparseCompact, mulberry32 } from '../collective/codecs';
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

// --- frames from a member --------------------------------------------------------------------------
//
// A hostile (or broken) tab that is a real member of the ring: it holds the room secret (its frames
// carry a valid MAC), the room hash, its own rank and the ring's epoch, so its frames pass the decoder's
// room check and the group check and reach the deeper ones. Each kind breaks one rule; the receiving
// transport must refuse it with that rule's reason. They use tags no real collective uses (round from
// MEMBER_ROUND_BASE, collective from MEMBER_COLLECTIVE_BASE), so that what is accepted on the way (the
// first frame of a duplicate, a piece before a changed piece count) can never be taken into a step.

export const MEMBER_KINDS = [
  'epoch-ahead',
  'wrong-sender',
  'bad-parts',
  'bad-checksum',
  'too-short',
  'piece-twice',
  'piece-count-changed',
  'duplicate-message',
  'non-finite-payload',
  'malformed-topk',
] as const;
export type MemberKind = (typeof MEMBER_KINDS)[number];

/**
 * The reason each kind is refused with, as the mesh counts it (Mesh.refusalStats blanks numbers to #).
 * 'non-finite-payload' depends on the room's codec; 'malformed-topk' is sent to Top-K rooms only.
 */
export const MEMBER_REFUSALS: Record<MemberKind, RegExp> = {
  'epoch-ahead': /^data frame of membership epoch # ?; this room is in epoch #$/,
  'wrong-sender': /^frame claims rank #, the link is rank #$/,
  'bad-parts': /^part # of # is not a valid piece$/,
  'bad-checksum': /checksum/,
  'too-short': /^too short: # bytes, a header is #$/,
  'piece-twice': /^message #\|#\|#\|#: piece # twice$/,
  'piece-count-changed': /^message #\|#\|#\|#: piece count changed$/,
  'duplicate-message': /^duplicate message #\|#\|#\|#$/,
  'non-finite-payload': /^message #\|#\|#\|# from rank # refused: non-finite (float#|float# Top-K value) at (element|entry) # \(a gradient that blew up, or a hostile peer\)$/,
  'malformed-topk': /^message #\|#\|#\|# from rank # refused: malformed Top-K payload: # entries claimed in # bytes$/,
};

export const MEMBER_ROUND_BASE = 1_000_000;
export const MEMBER_COLLECTIVE_BASE = 900;

export interface MemberTarget {
  roomHash: number;
  /** The fuzzing member's own rank and the ring's epoch (what its honest frames carry). */
  rank: number;
  epoch: number;
  world: number;
  /** The room's codec (lab config `compression`): the non-finite payload is written in it. */
  compression: string;
}

export interface MemberFrame {
  kind: MemberKind;
  bytes: Uint8Array;
  /** Whether the receiver must refuse this frame (the first of a duplicate pair is accepted). */
  refused: boolean;
}

/** `count` kinds round-robin from `seed` (a kind may put several frames on the wire), in sending order. */
export function* memberFrames(seed: number, count: number, target: MemberTarget): Generator<MemberFrame> {
  const rand = mulberry32(seed);
  const int = (n: number) => Math.floor(rand() * n);
  const kinds = MEMBER_KINDS.filter((k) => k !== 'malformed-topk' || target.compression === 'topk');
  let serial = 0;
  const header = (over: Partial<FrameHeader> = {}): FrameHeader => ({
    type: 'data',
    roomHash: target.roomHash,
    round: MEMBER_ROUND_BASE + serial++,
    collective: MEMBER_COLLECTIVE_BASE + int(50),
    chunk: int(8),
    sender: target.rank,
    epoch: target.epoch,
    part: 0,
    parts: 1,
    ...over,
  });
  // One 32-bit word: a finite float32, two finite float16s, and a Top-K size word, so it passes every codec's check.
  const harmless = () => Uint8Array.of(1 + int(100), 0, 0, 0);
  for (let i = 0; i < count; i++) {
    const kind = kinds[i % kinds.length];
    switch (kind) {
      case 'epoch-ahead':
        // epoch + 1 may be the next ring's (elastic rooms keep it); anything further no honest peer sends.
        yield { kind, bytes: encodeFrame(header({ epoch: target.epoch + 2 + int(1000) }), harmless()), refused: true };
        break;
      case 'wrong-sender': {
        // Another member's rank (the ring has at least 2), or a rank outside the ring.
        const sender = target.world >= 2 ? (target.rank + 1 + int(target.world - 1)) % target.world : target.rank + 1;
        yield { kind, bytes: encodeFrame(header({ sender }), harmless()), refused: true };
        break;
      }
      case 'bad-parts': {
        const f = encodeFrame(header(), harmless());
        const view = new DataView(f.buffer);
        view.setUint32(24, 5 + int(100), true);
        view.setUint32(28, 1 + int(5), true);
        yield { kind, bytes: reseal(f), refused: true };
        break;
      }
      case 'bad-checksum': {
        const f = encodeFrame(header(), Uint8Array.from({ length: 4 * (1 + int(16)) }, () => int(256)));
        f[FRAME_HEADER_BYTES + int(f.length - FRAME_HEADER_BYTES)] ^= 1 << int(8);
        yield { kind, bytes: f, refused: true };
        break;
      }
      case 'too-short':
        yield { kind, bytes: encodeFrame(header(), harmless()).slice(0, 1 + int(FRAME_HEADER_BYTES - 1)), refused: true };
        break;
      case 'piece-twice': {
        const h = header({ parts: 2 });
        yield { kind, bytes: encodeFrame(h, harmless()), refused: false };
        yield { kind, bytes: encodeFrame(h, harmless()), refused: true };
        break;
      }
      case 'piece-count-changed': {
        const h = header({ parts: 3 });
        yield { kind, bytes: encodeFrame(h, harmless()), refused: false };
        yield { kind, bytes: encodeFrame({ ...h, parts: 2, part: 1 }, harmless()), refused: true };
        break;
      }
      case 'duplicate-message': {
        const h = header();
        yield { kind, bytes: encodeFrame(h, harmless()), refused: false };
        yield { kind, bytes: encodeFrame(h, harmless()), refused: true };
        break;
      }
      case 'non-finite-payload':
        yield { kind, bytes: encodeFrame(header(), nonFinitePayload(target.compression, int)), refused: true };
        break;
      case 'malformed-topk': {
        const payload = encodeSparseCompact({ indices: Uint32Array.of(3, 9), values: Float32Array.of(0.5, -1) });
        new DataView(payload.buffer).setUint32(0, 1000 + int(1000), true); // more entries than the bytes hold
        yield { kind, bytes: encodeFrame(header(), payload), refused: true };
        break;
      }
    }
  }
}

/** A payload of the room's codec with one NaN or +-Infinity among finite values. */
function nonFinitePayload(compression: string, int: (n: number) => number): Uint8Array {
  const n = 2 + int(200);
  const bad = [Number.NaN, Infinity, -Infinity][int(3)];
  const values = Float32Array.from({ length: n }, (_, i) => (i === n >> 1 ? bad : (i % 7) - 3));
  switch (compression) {
    case 'none':
    case 'randk':
    case 'powersgd':
      return new Uint8Array(values.buffer);
    case 'fp16':
      return new Uint8Array(encodeFp16(values).buffer);
    case 'topk':
      return encodeSparseCompact({ indices: Uint32Array.from({ length: n }, (_, i) => 2 * i + 1), values });
    default:
      throw new RangeError(`no hostile payload for compression "${compression}"`);
  }
}

export interface MemberFuzzResult {
  /** Frames put on the wire to each other member. */
  sent: number;
  /** Per kind: the frames each other member must refuse. */
  refusals: Partial<Record<MemberKind, number>>;
  ms: number;
}

/**
 * TEST SUPPORT (window.lab.fuzzAsMember, e2e/hostile.spec.ts): sends memberFrames as this ring member
 * to every other member, through the mesh (sealed with the room secret when there is one), under the
 * same backpressure as honest traffic.
 */
export async function sendMemberFrames(
  mesh: { roomHash: number; peerId: string; sendRaw(peerId: string, bytes: Uint8Array): void | Promise<void>; channel(peerId: string): { bufferedAmount: number } | undefined },
  ring: { rank: number; world: number; epoch: number; members: string[] },
  compression: string,
  opts: { count: number; seed?: number },
): Promise<MemberFuzzResult> {
  const t0 = performance.now();
  const targets = ring.members.filter((id) => id !== mesh.peerId);
  const refusals: Partial<Record<MemberKind, number>> = {};
  let sent = 0;
  const frames = memberFrames(opts.seed ?? 1, opts.count, { roomHash: mesh.roomHash, rank: ring.rank, epoch: ring.epoch, world: ring.world, compression });
  for (const frame of frames) {
    for (const to of targets) {
      for (let waited = 0; (mesh.channel(to)?.bufferedAmount ?? 0) > 1 << 20; waited++) {
        if (waited > 2000) throw new Error(`channel to ${to} stalled`);
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      await mesh.sendRaw(to, frame.bytes);
    }
    sent++;
    if (frame.refused) refusals[frame.kind] = (refusals[frame.kind] ?? 0) + 1;
  }
  return { sent, refusals, ms: performance.now() - t0 };
}
