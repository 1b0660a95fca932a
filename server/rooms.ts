// Pure room logic of the signalling server: who is in which room, and which messages go where.
// No sockets here (server.ts owns those), so every rule is unit-tested with plain values.
//
// Rules: a connection joins exactly one room under one peer id; signals are relayed only between
// members of the same room; a room is forgotten as soon as it empties; rooms and members are bounded.
import type { ClientMessage, ServerMessage, SignalData } from '../src/peer/signal-protocol';

export type ConnId = number;

export interface RoomLimits {
  maxRooms: number;
  maxPeersPerRoom: number;
}

export const DEFAULT_ROOM_LIMITS: RoomLimits = { maxRooms: 1000, maxPeersPerRoom: 64 };

export interface Outgoing {
  to: ConnId;
  message: ServerMessage;
}

interface Member {
  conn: ConnId;
  peerId: string;
}

export class RoomRegistry {
  /** room -> members in join order (Map keeps insertion order). */
  private rooms = new Map<string, Map<string, Member>>();
  private byConn = new Map<ConnId, { room: string; peerId: string }>();

  constructor(private readonly limits: RoomLimits = DEFAULT_ROOM_LIMITS) {}

  roomCount(): number {
    return this.rooms.size;
  }

  /** Peer ids of a room in join order; empty when the room does not exist. */
  members(room: string): string[] {
    return [...(this.rooms.get(room)?.keys() ?? [])];
  }

  roomOf(conn: ConnId): string | undefined {
    return this.byConn.get(conn)?.room;
  }

  handle(conn: ConnId, msg: ClientMessage): Outgoing[] {
    switch (msg.type) {
      case 'join':
        return this.join(conn, msg.room, msg.peerId);
      case 'signal':
        return this.relay(conn, msg.to, msg.data);
      case 'leave':
        return this.leave(conn);
    }
  }

  join(conn: ConnId, room: string, peerId: string): Outgoing[] {
    const refuse = (reason: string): Outgoing[] => [{ to: conn, message: { type: 'error', reason } }];
    if (this.byConn.has(conn)) return refuse('already in a room: leave first');
    let members = this.rooms.get(room);
    if (!members && this.rooms.size >= this.limits.maxRooms) return refuse('server full: too many rooms');
    if (members && members.size >= this.limits.maxPeersPerRoom) {
      return refuse(`room full: at most ${this.limits.maxPeersPerRoom} peers`);
    }
    if (members?.has(peerId)) return refuse('peer id already taken in this room');
    if (!members) {
      members = new Map();
      this.rooms.set(room, members);
    }
    const others = [...members.values()];
    members.set(peerId, { conn, peerId });
    this.byConn.set(conn, { room, peerId });
    return [
      { to: conn, message: { type: 'welcome', room, peerId, members: others.map((m) => m.peerId) } },
      ...others.map((m): Outgoing => ({ to: m.conn, message: { type: 'peer-joined', peerId } })),
    ];
  }

  relay(conn: ConnId, to: string, data: SignalData): Outgoing[] {
    const self = this.byConn.get(conn);
    if (!self) return [{ to: conn, message: { type: 'error', reason: 'join a room before signalling' } }];
    const target = this.rooms.get(self.room)?.get(to);
    if (!target) return [{ to: conn, message: { type: 'error', reason: `no peer ${to} in this room` } }];
    return [{ to: target.conn, message: { type: 'signal', from: self.peerId, data } }];
  }

  /** Removes the connection (explicit leave or socket closed); forgets the room when it empties. */
  leave(conn: ConnId): Outgoing[] {
    const self = this.byConn.get(conn);
    if (!self) return [];
    this.byConn.delete(conn);
    const members = this.rooms.get(self.room);
    if (!members) return [];
    members.delete(self.peerId);
    if (members.size === 0) {
      this.rooms.delete(self.room);
      return [];
    }
    return [...members.values()].map((m) => ({ to: m.conn, message: { type: 'peer-left', peerId: self.peerId } }));
  }
}

/**
 * Token bucket per connection: `capacity` messages at once, refilled at `perSecond`. Time is passed
 * in (milliseconds) so that tests need no clock.
 */
export class RateLimiter {
  private tokens: number;
  private last: number;

  constructor(
    private readonly capacity: number,
    private readonly perSecond: number,
    now: number,
  ) {
    this.tokens = capacity;
    this.last = now;
  }

  take(now: number): boolean {
    this.tokens = Math.min(this.capacity, this.tokens + ((now - this.last) / 1000) * this.perSecond);
    this.last = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}

const LOCAL_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]', '::1']);

/**
 * Whether a browser page at `origin` may use this server. Allowed: pages served from localhost, from
 * the host name the client used to reach this server (a LAN address), and any origin in `allowList`
 * ('*' allows all). A missing Origin means a non-browser client (which could forge one anyway): allowed.
 */
export function isOriginAllowed(origin: string | undefined, allowList: string[], requestHost: string | undefined): boolean {
  if (origin === undefined) return true;
  if (allowList.includes('*') || allowList.includes(origin)) return true;
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    return false;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return false;
  if (LOCAL_HOSTS.has(url.hostname)) return true;
  if (requestHost) {
    const hostname = requestHost.replace(/:\d+$/, '');
    if (hostname === url.hostname) return true;
  }
  return false;
}
