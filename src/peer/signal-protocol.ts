// Messages between a tab and the signalling server (server/), validated on both ends. Shared by the
// browser client (signalling.ts) and the Node server, so there is one definition of the protocol.
// Nothing here touches the DOM or Node: it is plain data checking.
//
// Parsing is bounded and cannot throw: a message's length is checked before JSON.parse sees it, and
// its nesting depth is measured by one linear scan of the text (no recursion), so a value nested
// thousands deep is refused before anything walks it. Peer ids are assigned by the server (a join
// names only the room), so no client can choose, squat or take over an id.
import { ROOM_NAME_PATTERN } from './room-code';

export const PEER_ID_PATTERN = /^[A-Za-z0-9_-]{4,64}$/;
/** simple-peer's offers/answers are a few KiB (sealed ones about 1.5x); candidates far less. */
export const MAX_SIGNAL_DATA_CHARS = 32 * 1024;
/** A whole message: the signal data plus its envelope. Longer text is refused unparsed. */
export const MAX_MESSAGE_CHARS = MAX_SIGNAL_DATA_CHARS + 1024;
/** Deepest nesting of objects/arrays in a message (SDP signals nest 3 deep, sealed ones 2). */
export const MAX_JSON_DEPTH = 16;
/** At most this many ICE servers in a welcome (a STUN and a TURN entry are the usual two). */
export const MAX_ICE_SERVERS = 8;

/** What simple-peer passes to `signal` (SDP offer/answer, ICE candidate, renegotiation): opaque JSON. */
export type SignalData = Record<string, unknown>;

/** The RTCIceServer fields the server hands out (the DOM type, restated so that Node needs no DOM). */
export interface IceServer {
  urls: string | string[];
  username?: string;
  credential?: string;
}

export type ClientMessage =
  /** Enter a room; the server answers `welcome` with the peer id it assigned. */
  | { type: 'join'; room: string }
  | { type: 'signal'; to: string; data: SignalData }
  | { type: 'leave' };

export type ServerMessage =
  /**
   * Sent once after a join: this connection's peer id (assigned by the server, sorting after every
   * member already there), the members already in the room in join order, and the ICE servers to use.
   */
  | { type: 'welcome'; room: string; peerId: string; members: string[]; iceServers: IceServer[] }
  | { type: 'peer-joined'; peerId: string }
  /**
   * A member left: by its `leave`, or (`reason: 'disconnected'`) because its socket closed without one:
   * its tab closed or crashed (the browser closes a dead tab's sockets at once) or lost the network.
   */
  | { type: 'peer-left'; peerId: string; reason?: 'disconnected' }
  | { type: 'signal'; from: string; data: SignalData }
  | { type: 'error'; reason: string };

export type Parsed<T> = T | { error: string };

export function isParseError<T>(x: Parsed<T>): x is { error: string } {
  return typeof (x as { error?: unknown }).error === 'string' && !('type' in (x as object));
}

function isPlainObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

/**
 * The deepest nesting of `[`/`{` in JSON text, brackets inside strings not counted. One pass, constant
 * memory; stops counting as soon as `limit` is exceeded. Meant for text that JSON.parse then checks.
 */
export function jsonDepth(text: string, limit = Number.POSITIVE_INFINITY): number {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      depth++;
      if (depth > deepest) {
        deepest = depth;
        if (deepest > limit) return deepest;
      }
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return deepest;
}

/** JSON.parse with the length and depth checked first; never throws. */
function boundedParse(raw: string): Parsed<{ value: unknown }> {
  if (raw.length > MAX_MESSAGE_CHARS) return { error: `message over ${MAX_MESSAGE_CHARS} chars` };
  if (jsonDepth(raw, MAX_JSON_DEPTH) > MAX_JSON_DEPTH) return { error: `message nested deeper than ${MAX_JSON_DEPTH}` };
  try {
    return { value: JSON.parse(raw) as unknown };
  } catch {
    return { error: 'not JSON' };
  }
}

/** Signal data must be an object; its size is bounded by the message's (checked before parsing). */
function checkSignalData(data: unknown): string | undefined {
  return isPlainObject(data) ? undefined : 'signal data must be an object';
}

/** A short, safe description of an unknown `type` value for an error message. */
function describeType(type: unknown): string {
  return typeof type === 'string' ? JSON.stringify(type.slice(0, 40)) : typeof type;
}

/** Parses one message a client sent. Never throws: bad input gets `{ error }` with the reason. */
export function parseClientMessage(raw: string): Parsed<ClientMessage> {
  const parsed = boundedParse(raw);
  if (isParseError(parsed)) return parsed;
  const msg = parsed.value;
  if (!isPlainObject(msg)) return { error: 'message must be a JSON object' };
  switch (msg.type) {
    case 'join': {
      if (typeof msg.room !== 'string' || !ROOM_NAME_PATTERN.test(msg.room)) {
        return { error: 'join.room must be 1-32 letters, digits, - or _' };
      }
      if ('peerId' in msg) return { error: 'join.peerId is not accepted: the server assigns peer ids (reload the page)' };
      return { type: 'join', room: msg.room };
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
      return { error: `unknown message type ${describeType(msg.type)}` };
  }
}

function parseIceServers(x: unknown): IceServer[] | undefined {
  if (!Array.isArray(x) || x.length > MAX_ICE_SERVERS) return undefined;
  const out: IceServer[] = [];
  for (const s of x) {
    if (!isPlainObject(s)) return undefined;
    const urls = s.urls;
    const urlOk = (u: unknown) => typeof u === 'string' && /^(stun|stuns|turn|turns):/.test(u) && u.length <= 512;
    if (!(urlOk(urls) || (Array.isArray(urls) && urls.length > 0 && urls.length <= 8 && urls.every(urlOk)))) return undefined;
    const server: IceServer = { urls: urls as string | string[] };
    if (s.username !== undefined) {
      if (typeof s.username !== 'string' || s.username.length > 256) return undefined;
      server.username = s.username;
    }
    if (s.credential !== undefined) {
      if (typeof s.credential !== 'string' || s.credential.length > 256) return undefined;
      server.credential = s.credential;
    }
    out.push(server);
  }
  return out;
}

/** Parses one message from the server (the client does not trust the server's shapes either). */
export function parseServerMessage(raw: string): Parsed<ServerMessage> {
  const parsed = boundedParse(raw);
  if (isParseError(parsed)) return parsed;
  const msg = parsed.value;
  if (!isPlainObject(msg)) return { error: 'message must be a JSON object' };
  const id = (x: unknown): x is string => typeof x === 'string' && PEER_ID_PATTERN.test(x);
  switch (msg.type) {
    case 'welcome': {
      if (typeof msg.room !== 'string' || !id(msg.peerId) || !Array.isArray(msg.members) || !msg.members.every(id)) {
        return { error: 'malformed welcome' };
      }
      const iceServers = msg.iceServers === undefined ? [] : parseIceServers(msg.iceServers);
      if (!iceServers) return { error: 'malformed welcome: bad iceServers' };
      return { type: 'welcome', room: msg.room, peerId: msg.peerId, members: msg.members as string[], iceServers };
    }
    case 'peer-joined':
      if (!id(msg.peerId)) return { error: `malformed ${msg.type}` };
      return { type: msg.type, peerId: msg.peerId };
    case 'peer-left':
      if (!id(msg.peerId) || (msg.reason !== undefined && msg.reason !== 'disconnected')) return { error: `malformed ${msg.type}` };
      return msg.reason ? { type: 'peer-left', peerId: msg.peerId, reason: msg.reason } : { type: 'peer-left', peerId: msg.peerId };
    case 'signal': {
      if (!id(msg.from)) return { error: 'malformed signal' };
      const bad = checkSignalData(msg.data);
      if (bad) return { error: bad };
      return { type: 'signal', from: msg.from, data: msg.data as SignalData };
    }
    case 'error':
      return { type: 'error', reason: typeof msg.reason === 'string' ? msg.reason.slice(0, 200) : 'unknown error' };
    default:
      return { error: 'unknown message type' };
  }
}
