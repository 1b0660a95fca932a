// Messages between a tab and the signalling server (server/), validated on both ends. Shared by the
// browser client (signalling.ts) and the Node server, so there is one definition of the protocol.
// Nothing here touches the DOM or Node: it is plain data checking.
import { ROOM_NAME_PATTERN } from './room-code';

export const PEER_ID_PATTERN = /^[A-Za-z0-9_-]{4,64}$/;
/** simple-peer's offers/answers are a few KiB; candidates far less. Anything bigger is refused. */
export const MAX_SIGNAL_DATA_CHARS = 32 * 1024;

/** What simple-peer passes to `signal` (SDP offer/answer, ICE candidate, renegotiation): opaque JSON. */
export type SignalData = Record<string, unknown>;

export type ClientMessage =
  | { type: 'join'; room: string; peerId: string }
  | { type: 'signal'; to: string; data: SignalData }
  | { type: 'leave' };

export type ServerMessage =
  /** Sent once after a join: the members already in the room, in join order. */
  | { type: 'welcome'; room: string; peerId: string; members: string[] }
  | { type: 'peer-joined'; peerId: string }
  | { type: 'peer-left'; peerId: string }
  | { type: 'signal'; from: string; data: SignalData }
  | { type: 'error'; reason: string };

export type Parsed<T> = T | { error: string };

export function isParseError<T>(x: Parsed<T>): x is { error: string } {
  return typeof (x as { error?: unknown }).error === 'string' && !('type' in (x as object));
}

function isPlainObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function checkSignalData(data: unknown): string | undefined {
  if (!isPlainObject(data)) return 'signal data must be an object';
  if (JSON.stringify(data).length > MAX_SIGNAL_DATA_CHARS) return `signal data over ${MAX_SIGNAL_DATA_CHARS} chars`;
  return undefined;
}

/** Parses one message a client sent. Never throws: bad input gets `{ error }` with the reason. */
export function parseClientMessage(raw: string): Parsed<ClientMessage> {
  let msg: unknown;
  try {
    msg = JSON.parse(raw);
  } catch {
    return { error: 'not JSON' };
  }
  if (!isPlainObject(msg)) return { error: 'message must be a JSON object' };
  switch (msg.type) {
    case 'join': {
      if (typeof msg.room !== 'string' || !ROOM_NAME_PATTERN.test(msg.room)) {
        return { error: 'join.room must be 1-32 letters, digits, - or _' };
      }
      if (typeof msg.peerId !== 'string' || !PEER_ID_PATTERN.test(msg.peerId)) {
        return { error: 'join.peerId must be 4-64 letters, digits, - or _' };
      }
      return { type: 'join', room: msg.room, peerId: msg.peerId };
    }
    case 'signal': {
      if (typeof msg.to !== 'string' || !PEER_ID_PATTERN.test(msg.to)) return { error: 'signal.to must be a peer id' };
      const bad = checkSignalData(msg.data);
      if (bad) return { error: bad };
      return { type: 'signal', to: msg.to, data: msg.data as SignalData };
    }
    case 'leave':
      return { type: 'leave' };
    default:
      return { error: `unknown message type ${JSON.stringify(msg.type)?.slice(0, 40)}` };
  }
}

/** Parses one message from the server (the client does not trust the server's shapes either). */
export function parseServerMessage(raw: string): Parsed<ServerMessage> {
  let msg: unknown;
  try {
    msg = JSON.parse(raw);
  } catch {
    return { error: 'not JSON' };
  }
  if (!isPlainObject(msg)) return { error: 'message must be a JSON object' };
  const id = (x: unknown): x is string => typeof x === 'string' && PEER_ID_PATTERN.test(x);
  switch (msg.type) {
    case 'welcome':
      if (typeof msg.room !== 'string' || !id(msg.peerId) || !Array.isArray(msg.members) || !msg.members.every(id)) {
        return { error: 'malformed welcome' };
      }
      return { type: 'welcome', room: msg.room, peerId: msg.peerId, members: msg.members as string[] };
    case 'peer-joined':
    case 'peer-left':
      if (!id(msg.peerId)) return { error: `malformed ${msg.type}` };
      return { type: msg.type, peerId: msg.peerId };
    case 'signal': {
      if (!id(msg.from)) return { error: 'malformed signal' };
      const bad = checkSignalData(msg.data);
      if (bad) return { error: bad };
      return { type: 'signal', from: msg.from, data: msg.data as SignalData };
    }
    case 'error':
      return { type: 'error', reason: String(msg.reason).slice(0, 200) };
    default:
      return { error: 'unknown message type' };
  }
}
