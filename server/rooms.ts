// Pure room logic of the signalling server: who is in which room, and which messages go where.
// No sockets here (signalling.ts owns those), so every rule is unit-tested with plain values.
//
// Rules: a connection joins at most one room at a time, under a peer id the server assigns (see
// peer-ids.ts: ids sort in join order and cannot be chosen, so no client can squat an id, take over a
// departed member's id, or make itself rank 0 or the elastic room's coordinator); signals are relayed
// only between members of the same room, stamped with the sender's real id; a room is forgotten as
// soon as it empties; rooms and members are bounded.
import type { ClientMessage, IceServer, ServerMessage, SignalData } from '../src/peer/signal-protocol';
import { peerIdSource } from './peer-ids';

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

export interface RoomRegistryOptions {
  limits?: RoomLimits;
  /** Where fresh peer ids come from (tests pass a predictable one). */
  newPeerId?: () => string;
  /** ICE servers handed to a member in its welcome (time-limited TURN credentials named after it). */
  iceServersFor?: (peerId: string) => IceServer[];
}

interface Member {
  conn: ConnId;
  peerId: string;
}

export class RoomRegistry {
  /** room -> members in join order (Map keeps insertion order). */
  private rooms = new Map<string, Map<string, Member>>();
  private byConn = new Map<ConnId, { room: string; peerId: string }>();
  private readonly limits: RoomLimits;
  private readonly newPeerId: () => string;
  private readonly iceServersFor: (peerId: string) => IceServer[];

  constructor(opts: RoomRegistryOptions = {}) {
    this.limits = opts.limits ?? DEFAULT_ROOM_LIMITS;
    this.newPeerId = opts.newPeerId ?? peerIdSource();
    this.iceServersFor = opts.iceServersFor ?? (() => []);
  }

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

  peerIdOf(conn: ConnId): string | undefined {
    return this.byConn.get(conn)?.peerId;
  }

  handle(conn: ConnId, msg: ClientMessage): Outgoing[] {
    switch (msg.type) {
      case 'join':
        return this.join(conn, msg.room);
      case 'signal':
        return this.relay(conn, msg.to, msg.data);
      case 'leave':
        return this.leave(conn);
    }
  }

  join(conn: ConnId, room: string): Outgoing[] {
    const refuse = (reason: string): Outgoing[] => [{ to: conn, message: { type: 'error', reason } }];
    if (this.byConn.has(conn)) return refuse('already in a room: leave first');
    let members = this.rooms.get(room);
    if (!members && this.rooms.size >= this.limits.maxRooms) return refuse('server full: too many rooms');
    if (members && members.size >= this.limits.maxPeersPerRoom) {
      return refuse(`room full: at most ${this.limits.maxPeersPerRoom} peers`);
    }
    if (!members) {
      members = new Map();
      this.rooms.set(room, members);
    }
    const peerId = this.newPeerId();
    const others = [...members.values()];
    members.set(peerId, { conn, peerId });
    this.byConn.set(conn, { room, peerId });
    const welcome: ServerMessage = {
      type: 'welcome',
      room,
      peerId,
      members: others.map((m) => m.peerId),
      iceServers: this.iceServersFor(peerId),
    };
    return [
      { to: conn, message: welcome },
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

  /**
   * Removes the connection; forgets the room when it empties. `disconnected`: its socket closed without
   * a leave (the tab closed or crashed, or lost the network), which the others are told, so that they
   * drop it at once rather than after their heartbeat deadline.
   */
  leave(conn: ConnId, disconnected = false): Outgoing[] {
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
    const message: ServerMessage = disconnected ? { type: 'peer-left', peerId: self.peerId, reason: 'disconnected' } : { type: 'peer-left', peerId: self.peerId };
    return [...members.values()].map((m) => ({ to: m.conn, message }));
  }
}

/**
 * Token bucket: `capacity` units at once, refilled at `perSecond`. Time is passed in (milliseconds) so
 * that tests need no clock.
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

  /** Takes `amount` units if the bucket holds them; false (and nothing taken) otherwise. */
  take(now: number, amount = 1): boolean {
    this.refill(now);
    if (this.tokens < amount) return false;
    this.tokens -= amount;
    return true;
  }

  /** Whether the bucket is full again (its owner can be forgotten without giving anything away). */
  isFull(now: number): boolean {
    this.refill(now);
    return this.tokens >= this.capacity;
  }

  private refill(now: number): void {
    this.tokens = Math.min(this.capacity, this.tokens + (Math.max(0, now - this.last) / 1000) * this.perSecond);
    this.last = Math.max(this.last, now);
  }
}
