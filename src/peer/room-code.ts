// Room codes people can read aloud and type: 6 characters from an alphabet without look-alikes
// (no 0/O, 1/I/L), so "K7QX2M" survives a projector and a phone keyboard. Share links carry the room
// and, for rooms across machines, the signalling server: `?room=K7QX2M&signal=ws://host:8787`.

export const ROOM_CODE_ALPHABET = 'ABCDEFGHJKMNPQRSTUVWXYZ23456789';
export const ROOM_CODE_LENGTH = 6;
/** Any room name the signalling accepts (generated codes are a subset): letters, digits, '-' and '_'. */
export const ROOM_NAME_PATTERN = /^[A-Za-z0-9_-]{1,32}$/;

export function generateRoomCode(random: () => number = Math.random): string {
  let code = '';
  for (let i = 0; i < ROOM_CODE_LENGTH; i++) {
    code += ROOM_CODE_ALPHABET[Math.floor(random() * ROOM_CODE_ALPHABET.length)];
  }
  return code;
}

/**
 * Turns what a person typed into a room name: trims, and upper-cases anything that looks like a
 * generated code (so "k7qx2m" finds "K7QX2M"). Throws with a clear message on anything unusable.
 */
export function normalizeRoomName(input: string): string {
  const trimmed = input.trim();
  const upper = trimmed.toUpperCase();
  if (upper.length === ROOM_CODE_LENGTH && [...upper].every((c) => ROOM_CODE_ALPHABET.includes(c))) return upper;
  if (!ROOM_NAME_PATTERN.test(trimmed)) {
    throw new Error(`room "${input}" is not valid: use 1-32 letters, digits, '-' or '_'`);
  }
  return trimmed;
}

export interface ShareTarget {
  room?: string;
  /** ws:// or wss:// URL of a signalling server; absent means BroadcastChannel (tabs of one browser). */
  signal?: string;
}

/** `base` with `room` (and `signal` when given) set in its query string; other parameters are kept. */
export function shareLink(base: string, room: string, signal?: string): string {
  const url = new URL(base);
  url.searchParams.set('room', normalizeRoomName(room));
  if (signal) url.searchParams.set('signal', checkSignalUrl(signal));
  else url.searchParams.delete('signal');
  return url.toString();
}

/** Reads room and signalling server from a page URL; invalid values are dropped, not trusted. */
export function parseShareLink(href: string): ShareTarget {
  const url = new URL(href);
  const out: ShareTarget = {};
  const room = url.searchParams.get('room');
  const signal = url.searchParams.get('signal');
  if (room) {
    try {
      out.room = normalizeRoomName(room);
    } catch {
      // a bad room in a link is ignored: the page then offers a fresh code
    }
  }
  if (signal) {
    try {
      out.signal = checkSignalUrl(signal);
    } catch {
      // same for a bad server URL
    }
  }
  return out;
}

export function checkSignalUrl(signal: string): string {
  let url: URL;
  try {
    url = new URL(signal);
  } catch {
    throw new Error(`signalling server "${signal}" is not a URL (expected ws://host:port)`);
  }
  if (url.protocol !== 'ws:' && url.protocol !== 'wss:') {
    throw new Error(`signalling server "${signal}" must be a ws:// or wss:// URL`);
  }
  return signal;
}
