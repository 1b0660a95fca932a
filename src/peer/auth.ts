// Room secrets. With `secret=...` every signalling message and every data-channel frame of a room
// carries an HMAC-SHA-256 tag made with a key that only holders of the secret can derive, so a tab
// without it (or with a wrong one) is never accepted as a member, never gets a link opened, and every
// frame it manages to send is refused before it is even decoded.
//
// Keys: PBKDF2-SHA-256 (100,000 iterations, salt = the room name) stretches the secret, which a person
// typed and may be short; HKDF then splits the result into one key for signalling and one for frames,
// so a tag from one context is never valid in the other. The room name in the salt means the same
// secret gives unrelated keys in two rooms.
//
// Frames: the tag is HMAC(frameKey, frame) truncated to 16 bytes (128 bits, as RFC 2104 allows), sent
// after the frame. Signals: the sender seals JSON {from, to, t, body}; the receiver checks the tag,
// that the sealed from/to are the real sender and itself, and that t is recent (a replayed offer from
// long ago is refused). The signalling server relays sealed messages and never learns the secret.
//
// The secret only authenticates: WebRTC's DTLS already encrypts the channels.
import type { SignalData } from './signal-protocol';

export const MAC_BYTES = 16;
const PBKDF2_ITERATIONS = 100_000;
/** Sealed signals older (or further in the future) than this are refused as replays. */
export const SIGNAL_MAX_AGE_MS = 5 * 60_000;

export interface RoomAuth {
  readonly room: string;
  /** The 16-byte tag of a frame. */
  tagFrame(frame: Uint8Array): Promise<Uint8Array>;
  /** Frame + tag, ready for the channel. */
  sealFrame(frame: Uint8Array): Promise<Uint8Array>;
  /** Checks the trailing tag; returns the frame without it, or the reason it is refused. */
  openFrame(bytes: Uint8Array): Promise<{ frame: Uint8Array } | { error: string }>;
  sealSignal(from: string, to: string, body: SignalData): Promise<SignalData>;
  openSignal(from: string, to: string, data: SignalData, now?: number): Promise<{ body: SignalData } | { error: string }>;
}

const encoder = new TextEncoder();

function subtle(): SubtleCrypto {
  const s = globalThis.crypto?.subtle;
  if (!s) throw new Error('room secrets need WebCrypto (crypto.subtle): serve the page from https:// or localhost');
  return s;
}

async function hmacKey(base: CryptoKey, info: string, room: string): Promise<CryptoKey> {
  return subtle().deriveKey(
    { name: 'HKDF', hash: 'SHA-256', salt: encoder.encode(`webgpu-lab room ${room}`), info: encoder.encode(info) },
    base,
    { name: 'HMAC', hash: 'SHA-256', length: 256 },
    false,
    ['sign'],
  );
}

/** Same bytes? Looks at every byte whatever the first difference (no early exit to time). */
function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}

function toBase64(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes));
}

function fromBase64(text: string): Uint8Array | null {
  try {
    return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
  } catch {
    return null;
  }
}

/** Derives a room's keys from its secret (about 50-100 ms: PBKDF2 is slow on purpose). */
export async function createRoomAuth(secret: string, room: string): Promise<RoomAuth> {
  if (secret.length === 0) throw new Error('a room secret must not be empty');
  const s = subtle();
  const password = await s.importKey('raw', encoder.encode(secret), 'PBKDF2', false, ['deriveBits']);
  const stretched = await s.deriveBits(
    { name: 'PBKDF2', hash: 'SHA-256', salt: encoder.encode(`webgpu-lab room ${room}`), iterations: PBKDF2_ITERATIONS },
    password,
    256,
  );
  const base = await s.importKey('raw', stretched, 'HKDF', false, ['deriveKey']);
  const frameKey = await hmacKey(base, 'frames', room);
  const signalKey = await hmacKey(base, 'signals', room);
  const tag = async (key: CryptoKey, bytes: Uint8Array) =>
    new Uint8Array(await s.sign('HMAC', key, bytes as Uint8Array<ArrayBuffer>)).subarray(0, MAC_BYTES);

  return {
    room,
    tagFrame: (frame) => tag(frameKey, frame),
    async sealFrame(frame) {
      const out = new Uint8Array(frame.length + MAC_BYTES);
      out.set(frame);
      out.set(await tag(frameKey, frame), frame.length);
      return out;
    },
    async openFrame(bytes) {
      if (!(bytes instanceof Uint8Array)) return { error: 'not binary' };
      if (bytes.length <= MAC_BYTES) return { error: `too short to carry a room MAC (${bytes.length} bytes)` };
      const frame = bytes.subarray(0, bytes.length - MAC_BYTES);
      const expected = await tag(frameKey, frame);
      if (!equalBytes(expected, bytes.subarray(bytes.length - MAC_BYTES))) return { error: 'bad room MAC (sender lacks the room secret, or the frame was altered)' };
      return { frame };
    },
    async sealSignal(from, to, body) {
      const sealed = JSON.stringify({ from, to, t: Date.now(), body });
      return { sealed, mac: toBase64(await tag(signalKey, encoder.encode(sealed))) };
    },
    async openSignal(from, to, data, now = Date.now()) {
      if (typeof data.sealed !== 'string' || typeof data.mac !== 'string') return { error: 'unsealed signal in a room with a secret' };
      const mac = fromBase64(data.mac);
      if (!mac || !equalBytes(mac, await tag(signalKey, encoder.encode(data.sealed)))) return { error: 'signal with a bad room MAC (wrong or missing secret)' };
      let inner: { from?: unknown; to?: unknown; t?: unknown; body?: unknown };
      try {
        inner = JSON.parse(data.sealed) as typeof inner;
      } catch {
        return { error: 'sealed signal is not JSON' };
      }
      if (inner.from !== from || inner.to !== to) return { error: 'sealed signal names another sender or recipient (relayed or replayed)' };
      if (typeof inner.t !== 'number' || Math.abs(now - inner.t) > SIGNAL_MAX_AGE_MS) return { error: 'sealed signal is stale (replayed?)' };
      if (typeof inner.body !== 'object' || inner.body === null || Array.isArray(inner.body)) return { error: 'sealed signal has no body' };
      return { body: inner.body as SignalData };
    },
  };
}
