// Test support: an in-memory stand-in for the mesh (mesh.ts) with real frames and real validation, and
// channels whose send queue fills and drains like RTCDataChannel's. For unit tests only; the product
// always runs over real WebRTC data channels.
import type { ChannelLike, MeshLinks } from './datachannel-transport';
import { decodeFrame, isFrameError, roomHash } from './frame';
import type { MeshListener } from './mesh';

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
      other.emit((l) => l.peerOpen?.(id));
    }
    return node;
  }
  /** A tab dies: it hears and sends nothing more, and every other tab loses it. */
  kill(id: string): void {
    const node = this.node(id);
    node.dead = true;
    for (const other of this.nodes) if (!other.dead) other.lose(id);
  }
}

export class FakeMesh implements MeshLinks {
  readonly roomHash = roomHash('TEST');
  readonly listeners = new Set<MeshListener>();
  readonly channels = new Map<string, FakeChannel>();
  readonly refused: string[] = [];
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
    return peerId !== this.peerId && !this.dead && this.net.nodes.some((n) => n.peerId === peerId && !n.dead);
  }
  emit(call: (listener: MeshListener) => void): void {
    for (const l of [...this.listeners]) call(l);
  }
  sendRaw(peerId: string, bytes: Uint8Array) {
    if (bytes.length > this.net.maxMessage) throw new Error('message too big');
    if (this.dead || this.net.node(peerId).dead) return;
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
