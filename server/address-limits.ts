// Per-address admission limits of the signalling server: how many sockets one network address may
// hold open, in how many rooms at once, and how fast it may join. Global caps alone let one client
// lock everyone out (1,000 sockets fill the server's rooms, 64 fill a known room); with these, one
// address gets a bounded share and an attacker needs many addresses.
//
// An address is a client's IP; IPv6 addresses count per /64 (one host usually holds a whole /64, so
// per-address limits on full IPv6 addresses would be limits on nothing). A class behind one NAT shares
// one address, which is why the defaults fit a class of 32 plus its teacher.
// Pure bookkeeping: time is passed in, sockets live in signalling.ts.
import { isIPv4, isIPv6 } from 'node:net';
import { RateLimiter } from './rooms';

export interface AddressLimitOptions {
  /** Open WebSocket connections per address. */
  maxConnections: number;
  /** Distinct rooms the connections of one address may be in at once. */
  maxRooms: number;
  /** Joins per address: a burst (a class joining at once from behind one NAT), then a sustained rate. */
  joinBurst: number;
  joinsPerSecond: number;
}

export const DEFAULT_ADDRESS_LIMITS: AddressLimitOptions = { maxConnections: 48, maxRooms: 16, joinBurst: 48, joinsPerSecond: 4 };

interface AddressState {
  connections: number;
  /** room -> members of this address in it */
  rooms: Map<string, number>;
  joins: RateLimiter;
}

/** The key one client is counted under: IPv4 as is (also when IPv4-mapped), IPv6 by its /64. */
export function addressKey(remote: string | undefined): string {
  if (!remote) return 'unknown';
  const bare = remote.replace(/%.*$/, '');
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(bare);
  if (mapped) return mapped[1];
  if (isIPv4(bare)) return bare;
  if (!isIPv6(bare)) return bare;
  const [head, tail = ''] = bare.split('::');
  const headParts = head ? head.split(':') : [];
  const tailParts = bare.includes('::') && tail ? tail.split(':') : [];
  // an embedded IPv4 tail (::a.b.c.d forms) sits in the low 64 bits, which the key drops anyway
  const missing = 8 - headParts.length - tailParts.length;
  const groups = bare.includes('::') ? [...headParts, ...Array<string>(Math.max(0, missing)).fill('0'), ...tailParts] : headParts;
  return `${groups
    .slice(0, 4)
    .map((g) => parseInt(g, 16).toString(16))
    .join(':')}::/64`;
}

export class AddressLimits {
  private readonly byAddress = new Map<string, AddressState>();

  constructor(private readonly opts: AddressLimitOptions = DEFAULT_ADDRESS_LIMITS) {}

  private state(address: string, now: number): AddressState {
    let s = this.byAddress.get(address);
    if (!s) {
      s = { connections: 0, rooms: new Map(), joins: new RateLimiter(this.opts.joinBurst, this.opts.joinsPerSecond, now) };
      this.byAddress.set(address, s);
    }
    return s;
  }

  /** Counts a new connection; returns why it is refused instead (then nothing is counted). */
  connect(address: string, now: number): string | undefined {
    const s = this.state(address, now);
    if (s.connections >= this.opts.maxConnections) return `too many connections from your address (at most ${this.opts.maxConnections})`;
    s.connections++;
    return undefined;
  }

  disconnect(address: string): void {
    const s = this.byAddress.get(address);
    if (s) s.connections = Math.max(0, s.connections - 1);
  }

  /** Whether a connection of `address` may join `room` now (takes a join token); the reason if not. */
  mayJoin(address: string, room: string, now: number): string | undefined {
    const s = this.state(address, now);
    if (!s.rooms.has(room) && s.rooms.size >= this.opts.maxRooms) return `your address is in too many rooms (at most ${this.opts.maxRooms})`;
    if (!s.joins.take(now)) return `joining too fast from your address (at most ${this.opts.joinsPerSecond} a second after a burst of ${this.opts.joinBurst})`;
    return undefined;
  }

  joined(address: string, room: string): void {
    const s = this.byAddress.get(address);
    if (s) s.rooms.set(room, (s.rooms.get(room) ?? 0) + 1);
  }

  left(address: string, room: string): void {
    const s = this.byAddress.get(address);
    const n = s?.rooms.get(room);
    if (!s || n === undefined) return;
    if (n <= 1) s.rooms.delete(room);
    else s.rooms.set(room, n - 1);
  }

  /**
   * Forgets addresses with nothing open and a full join bucket (forgetting one earlier would hand a
   * client that reconnects a fresh burst). Keeps memory bounded by the addresses active recently.
   */
  sweep(now: number): void {
    for (const [address, s] of this.byAddress) {
      if (s.connections === 0 && s.rooms.size === 0 && s.joins.isFull(now)) this.byAddress.delete(address);
    }
  }

  /** Number of addresses tracked (for tests and logs). */
  size(): number {
    return this.byAddress.size;
  }
}
