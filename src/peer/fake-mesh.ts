// Test support: an in-memory stand-in for the mesh (mesh.ts) with real frames and real validation, and
// channels whose send queue fills and drains like RTCDataChannel's. For unit tests only; the product
// always runs over real WebRTC data channels.
import type { ChannelLike, MeshLinks } from './datachannel-transport';
import { decodeFrame, isFrameError, roomHash } from './frame';
import type { MeshListener } from './mesh';
import { isInitiator, wantedPeers } from './membership';

export class FakeChannel extends EventTarget implements ChannelLike {
  readyState: RTCDataChannelState = 'open';
  bufferedAmount = 0;
  bufferedAmountLowThreshold = 0;
  maxBuffered = 0;
}

/** N fake meshes whose links deliver frames after `delayMs`, with a hook to tamper with bytes in flight. */
export class FakeNet {
  readonly nodes: FakeMesh[] = [];
  tamper: (bytes: Uint8Array, from: string, to: string) => Uint8Array | null = (b) => b;
  /** Bytes put on every link, as a real mesh would count them (frame plus sealBytes). */
  wireBytes = 0;
  /**
   * Rooms larger than this link as mesh.ts does (membership.ts wantedPeers plus what was required,
   * opened by the lower id): a pair without a link is not open and send throws. Default: every pair.
   */
  fullMeshMax = Infinity;
  constructor(
    ids: string[],
    readonly delayMs = 0,
    readonly maxMessage = 262144,
    /** Bytes each frame grows by on the wire (a room MAC), as Mesh.sealBytes. */
    readonly sealBytes = 0,
  ) {
    for (const id of ids) this.nodes.push(new FakeMesh(id, this));
  }
  node(id: string): FakeMesh {
    return this.nodes.find((n) => n.peerId === id)!;
  }
  /** A tab opens: every other tab sees a new member whose link is open. */
  add(id: string): FakeMesh {
    const node = new FakeMesh(id, this);
    this.nodes.push(node);
    for (const other of this.nodes) {
      if (other === node || other.dead) continue;
      other.emit((l) => l.members?.(other.memberList()));
      if (this.linked(other.peerId, id)) other.emit((l) => l.peerOpen?.(id));
    }
    return node;
  }
  /** Whether two live tabs hold a link: the one that initiates (lower id) wants it. */
  linked(a: string, b: string): boolean {
    if (a === b) return false;
    const [low, high] = isInitiator(a, b) ? [a, b] : [b, a];
    const node = this.node(low);
    return !node.dead && !this.node(high).dead && node.wanted().includes(high);
  }
  /**
   * A tab dies: it hears and sends nothing more, and every other tab loses it (as signalling tells them).
   * `crash`: only the tabs linked to it notice (by heartbeat silence); the rest learn it from them.
   */
  kill(id: string, how: 'leave' | 'crash' = 'leave'): void {
    const node = this.node(id);
    const linked = new Set(this.nodes.filter((n) => this.linked(n.peerId, id)).map((n) => n.peerId));
    node.dead = true;
    for (const other of this.nodes) if (!other.dead && (how === 'leave' || linked.has(other.peerId))) other.lose(id);
  }
}

export class FakeMesh implements MeshLinks {
  readonly roomHash = roomHash('TEST');
  readonly listeners = new Set<MeshListener>();
  readonly channels = new Map<string, FakeChannel>();
  readonly refused: string[] = [];
  readonly required = new Set<string>();
  dead = false;
  constructor(
    readonly peerId: string,
    private readonly net: FakeNet,
  ) {}
  on(listener: MeshListener) {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
  channel(peerId: string): FakeChannel {
    let ch = this.channels.get(peerId);
    if (!ch) this.channels.set(peerId, (ch = new FakeChannel()));
    return ch;
  }
  maxMessageSize() {
    return this.net.maxMessage - this.net.sealBytes;
  }
  get sealBytes() {
    return this.net.sealBytes;
  }
  memberList(): string[] {
    return this.net.nodes.filter((n) => !n.dead).map((n) => n.peerId).sort();
  }
  isOpen(peerId: string): boolean {
    return peerId !== this.peerId && !this.dead && this.net.nodes.some((n) => n.peerId === peerId && !n.dead) && this.net.linked(this.peerId, peerId);
  }
  wanted(): string[] {
    const members = this.memberList();
    const wanted = new Set(wantedPeers(this.peerId, members, this.net.fullMeshMax));
    for (const id of this.required) if (members.includes(id)) wanted.add(id);
    return [...wanted];
  }
  /** As Mesh.require: a link that opens by it is announced to both ends on the next tick. */
  require(peerIds: readonly string[]): void {
    const before = new Set(peerIds.filter((id) => this.isOpen(id)));
    for (const id of peerIds) if (id !== this.peerId) this.required.add(id);
    setTimeout(() => {
      for (const id of peerIds) {
        if (before.has(id) || !this.isOpen(id)) continue;
        this.emit((l) => l.peerOpen?.(id));
        this.net.node(id).emit((l) => l.peerOpen?.(this.peerId));
      }
    }, 0);
  }
  emit(call: (listener: MeshListener) => void): void {
    for (const l of [...this.listeners]) call(l);
  }
  sendRaw(peerId: string, bytes: Uint8Array) {
    if (bytes.length > this.net.maxMessage) throw new Error('message too big');
    if (this.dead || this.net.node(peerId).dead) return;
    if (!this.net.linked(this.peerId, peerId)) throw new Error(`no link from ${this.peerId} to ${peerId}`);
    this.net.wireBytes += bytes.length + this.net.sealBytes;
    const ch = this.channel(peerId);
    ch.bufferedAmount += bytes.length;
    ch.maxBuffered = Math.max(ch.maxBuffered, ch.bufferedAmount);
    setTimeout(() => {
      const before = ch.bufferedAmount;
      ch.bufferedAmount -= bytes.length;
      if (before > ch.bufferedAmountLowThreshold && ch.bufferedAmount <= ch.bufferedAmountLowThreshold) {
        ch.dispatchEvent(new Event('bufferedamountlow'));
      }
      const delivered = this.net.tamper(bytes.slice(), this.peerId, peerId);
      const to = this.net.node(peerId);
      if (delivered && !to.dead) to.receive(this.peerId, delivered);
    }, this.net.delayMs);
  }
  refuse(peerId: string, reason: string) {
    this.refused.push(`${peerId}: ${reason}`);
  }
  /** What mesh.ts does with an incoming message: decode, check room, hand data frames on. */
  receive(from: string, bytes: Uint8Array) {
    const frame = decodeFrame(bytes);
    if (isFrameError(frame)) return this.refuse(from, frame.error);
    if (frame.roomHash !== this.roomHash) return this.refuse(from, 'frame for another room');
    for (const l of this.listeners) l.frame?.(from, frame);
  }
  lose(peerId: string) {
    for (const l of [...this.listeners]) l.peerLost?.(peerId, 'test');
  }
}
