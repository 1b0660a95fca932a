// The collectives' Transport over the WebRTC mesh: ranks are positions in a fixed member list, every
// message is framed (frame.ts), split to fit the channel's max message size, sent under backpressure,
// checked on arrival, reassembled, and handed to the recv() that asks for its tag.
//
// Backpressure: Chromium's send() throws once 16 MiB are queued on a channel, and simple-peer's send()
// applies none. So each send waits while `bufferedAmount` is above a high-water mark and resumes on
// the channel's `bufferedamountlow` event.
//
// Nothing a peer sends can corrupt a result: a frame that does not validate (checksum, room, sender
// rank, piece numbering, duplicates, size) is dropped and reported; a message is only delivered when
// all of its pieces arrived intact.
import type { MessageTag, Transport } from '../collective/types';
import { FRAME_HEADER_BYTES, encodeFrame, type Frame } from './frame';
import type { MeshListener } from './mesh';

/** What the transport needs of a data channel: its queue and the event that says the queue drained. */
export type ChannelLike = Pick<
  RTCDataChannel,
  'readyState' | 'bufferedAmount' | 'bufferedAmountLowThreshold' | 'addEventListener' | 'removeEventListener'
>;

/** What the transport needs of the mesh (mesh.ts implements it; unit tests use an in-memory pair). */
export interface MeshLinks {
  readonly peerId: string;
  readonly roomHash: number;
  on(listener: MeshListener): () => void;
  channel(peerId: string): ChannelLike | undefined;
  maxMessageSize(peerId: string): number;
  /** With a room secret the mesh seals frames asynchronously and returns a promise. */
  sendRaw(peerId: string, bytes: Uint8Array): void | Promise<void>;
  refuse(peerId: string, reason: string): void;
  /** Bytes sendRaw adds to every frame on the wire (a room secret's MAC); absent or 0: none. */
  readonly sealBytes?: number;
}

/**
 * What transports put on the data channels, counted as it goes out: message payloads, frames, and
 * the bytes on the wire (every frame's header and MAC included), so that
 * wireBytes = payloadBytes + frames x (FRAME_HEADER_BYTES + sealBytes), exactly. One counter may be
 * shared by the transports of successive ring epochs (lab/room.ts).
 */
export interface WireCounter {
  payloadBytes: number;
  frames: number;
  wireBytes: number;
}

export function newWireCounter(): WireCounter {
  return { payloadBytes: 0, frames: 0, wireBytes: 0 };
}

export interface DataChannelTransportOptions {
  /** Members in rank order (mesh.waitForRoom's answer); fixed for the transport's life. */
  members: string[];
  /** A recv that waits longer than this rejects. */
  deadlineMs?: number;
  /** Sending pauses while a channel holds more than this... */
  highWaterBytes?: number;
  /** ...and resumes when it drops to this. */
  lowWaterBytes?: number;
  /** Early arrivals kept at most (bytes); beyond it frames are refused rather than exhausting memory. */
  maxBufferedBytes?: number;
  /** Called for every frame this transport refuses (the mesh's bus also hears of it). */
  onRefused?: (peerId: string, reason: string) => void;
  /** Checks each whole message before delivery (e.g. finite gradients); see setMessageCheck. */
  checkMessage?: MessageCheck;
  /**
   * The room's membership epoch this transport serves (elastic rooms re-form the ring with a new
   * epoch and a new transport). Frames of earlier epochs are dropped as stale; frames of the next
   * epoch are left to whoever builds the next transport (elastic.ts buffers them); anything further
   * ahead is refused, because no honest peer can be there. Default 0.
   */
  epoch?: number;
  /** true: frames of epoch + 1 are someone else's business (elastic rooms). false: refused. */
  nextEpochExpected?: boolean;
  /** Where this transport counts what it sends (default: a counter of its own, `wire`). */
  wire?: WireCounter;
}

/** Returns why a complete message must be refused, or undefined to deliver it. */
export type MessageCheck = (tag: MessageTag, payload: Uint8Array) => string | undefined;

export class TransportError extends Error {
  constructor(
    message: string,
    /** true: a message arrived and was refused (e.g. a non-finite gradient); false: a peer or link is gone. */
    readonly refusedData = false,
  ) {
    super(message);
    this.name = 'TransportError';
  }
}

interface Assembly {
  parts: number;
  received: number;
  pieces: (Uint8Array | undefined)[];
  bytes: number;
}

interface Waiter {
  from: number;
  resolve: (payload: Uint8Array) => void;
  reject: (error: Error) => void;
  timer: ReturnType<typeof setTimeout>;
}

const keyOf = (from: number, tag: MessageTag): string => `${from}|${tag.round}|${tag.collective}|${tag.chunk}`;
/** Fallback re-check of a full send queue, in case a `bufferedamountlow` event is missed. */
const DRAIN_POLL_MS = 50;
/** How many delivered message keys are remembered to refuse duplicates. */
const DELIVERED_MEMORY = 16_384;

export class DataChannelTransport implements Transport {
  readonly rank: number;
  readonly world: number;
  bytesSent = 0;
  bytesReceived = 0;
  refusedFrames = 0;
  /** Frames of an earlier membership epoch, dropped unread (in flight when the ring re-formed). */
  staleFrames = 0;
  readonly epoch: number;
  /** What this transport sent: payloads, frames, bytes on the wire (headers and MACs included). */
  readonly wire: WireCounter;

  private readonly members: string[];
  private readonly rankOf = new Map<string, number>();
  private readonly assemblies = new Map<string, Assembly>();
  private readonly ready = new Map<string, Uint8Array>();
  private readonly waiters = new Map<string, Waiter>();
  private readonly delivered = new Set<string>();
  private readonly lost = new Map<number, string>();
  private readonly drainWaiters = new Set<() => void>();
  private bufferedBytes = 0;
  private closedReason: string | null = null;
  /** Messages refused whole (e.g. non-finite gradients): their recv rejects at once with the reason. */
  private readonly poisoned = new Map<string, string>();
  private checkMessage: MessageCheck | undefined;
  private readonly unsubscribe: () => void;

  constructor(
    private readonly mesh: MeshLinks,
    private readonly opts: DataChannelTransportOptions,
  ) {
    this.members = [...opts.members];
    this.members.forEach((id, rank) => this.rankOf.set(id, rank));
    this.checkMessage = opts.checkMessage;
    this.wire = opts.wire ?? newWireCounter();
    this.epoch = opts.epoch ?? 0;
    this.rank = this.members.indexOf(mesh.peerId);
    this.world = this.members.length;
    if (this.rank < 0) throw new TransportError(`this tab (${mesh.peerId}) is not among the members`);
    this.unsubscribe = mesh.on({
      frame: (peerId, frame) => this.onFrame(peerId, frame),
      peerLost: (peerId, reason) => this.onPeerGone(peerId, reason),
      linkLost: (peerId, reason) => this.onPeerGone(peerId, reason),
    });
  }

  async send(to: number, tag: MessageTag, payload: Uint8Array): Promise<void> {
    const peerId = this.peerIdOf(to);
    const maxPayload = this.mesh.maxMessageSize(peerId) - FRAME_HEADER_BYTES;
    const parts = Math.max(1, Math.ceil(payload.length / maxPayload));
    for (let part = 0; part < parts; part++) {
      await this.drain(to, peerId);
      const piece = payload.subarray(part * maxPayload, Math.min(payload.length, (part + 1) * maxPayload));
      const frame = encodeFrame(
        { type: 'data', roomHash: this.mesh.roomHash, ...tag, sender: this.rank, epoch: this.epoch, part, parts },
        piece,
      );
      try {
        await this.mesh.sendRaw(peerId, frame);
      } catch (err) {
        throw new TransportError(`send to rank ${to} failed: ${err instanceof Error ? err.message : String(err)}`);
      }
      this.bytesSent += frame.length;
      this.wire.payloadBytes += piece.length;
      this.wire.frames++;
      this.wire.wireBytes += frame.length + (this.mesh.sealBytes ?? 0);
    }
  }

  recv(from: number, tag: MessageTag): Promise<Uint8Array> {
    try {
      this.peerIdOf(from); // validates the rank
    } catch (err) {
      return Promise.reject(err);
    }
    const key = keyOf(from, tag);
    const early = this.ready.get(key);
    if (early) {
      this.ready.delete(key);
      this.bufferedBytes -= early.length;
      return Promise.resolve(early);
    }
    if (this.closedReason) return Promise.reject(new TransportError(this.closedReason));
    const poison = this.poisoned.get(key);
    if (poison) return Promise.reject(new TransportError(poison, true));
    const lost = this.lost.get(from);
    if (lost) return Promise.reject(new TransportError(lost));
    if (this.waiters.has(key)) return Promise.reject(new TransportError(`already waiting for ${key}`));
    const deadline = this.opts.deadlineMs ?? 60_000;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(key);
        reject(new TransportError(`no message ${key} from rank ${from} within ${deadline} ms`));
      }, deadline);
      this.waiters.set(key, { from, resolve, reject, timer });
    });
  }

  /**
   * Installs a check that every complete message must pass before delivery. A message that fails is
   * refused with the reason, and the recv waiting for it rejects at once instead of taking bad data
   * into a collective (the run stops; nothing is corrupted).
   */
  setMessageCheck(check: MessageCheck | undefined): void {
    this.checkMessage = check;
  }

  /** Stops the transport: pending and future calls reject. Does not close the mesh. */
  close(reason = 'transport closed'): void {
    if (this.closedReason) return;
    this.closedReason = reason;
    this.unsubscribe();
    for (const [key, w] of this.waiters) {
      clearTimeout(w.timer);
      this.waiters.delete(key);
      w.reject(new TransportError(reason));
    }
    this.wakeDrainers();
    this.assemblies.clear();
    this.ready.clear();
  }

  // --- sending -------------------------------------------------------------------------------------

  private peerIdOf(rank: number): string {
    if (this.closedReason) throw new TransportError(this.closedReason);
    if (!Number.isInteger(rank) || rank < 0 || rank >= this.world) throw new RangeError(`rank ${rank} outside 0..${this.world - 1}`);
    if (rank === this.rank) throw new RangeError(`rank ${rank} is this tab: nothing to move`);
    const lost = this.lost.get(rank);
    if (lost) throw new TransportError(lost);
    return this.members[rank];
  }

  /**
   * Resolves when the channel to `peerId` has room below the high-water mark. Wakes on the channel's
   * `bufferedamountlow` event, and also re-checks every DRAIN_POLL_MS so that a missed event can never
   * stall a send; a queue that does not shrink at all within the deadline rejects.
   */
  private async drain(rank: number, peerId: string): Promise<void> {
    const high = this.opts.highWaterBytes ?? 8 * 1024 * 1024;
    const low = this.opts.lowWaterBytes ?? 1024 * 1024;
    const deadline = this.opts.deadlineMs ?? 60_000;
    let lastProgress = performance.now();
    let lastAmount = Infinity;
    for (;;) {
      if (this.closedReason) throw new TransportError(this.closedReason);
      const lost = this.lost.get(rank);
      if (lost) throw new TransportError(lost);
      const channel = this.mesh.channel(peerId);
      if (!channel || channel.readyState !== 'open') throw new TransportError(`no open channel to rank ${rank}`);
      const amount = channel.bufferedAmount;
      if (amount <= high) return;
      const now = performance.now();
      if (amount < lastAmount) {
        lastAmount = amount;
        lastProgress = now;
      } else if (now - lastProgress > deadline) {
        throw new TransportError(`channel to rank ${rank} stalled: ${amount} bytes queued for ${deadline} ms`);
      }
      channel.bufferedAmountLowThreshold = low;
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          channel.removeEventListener('bufferedamountlow', done);
          channel.removeEventListener('close', done);
          this.drainWaiters.delete(done);
          resolve();
        };
        const timer = setTimeout(done, DRAIN_POLL_MS);
        channel.addEventListener('bufferedamountlow', done);
        channel.addEventListener('close', done);
        this.drainWaiters.add(done);
      });
    }
  }

  private wakeDrainers(): void {
    for (const wake of [...this.drainWaiters]) wake();
  }

  // --- receiving -----------------------------------------------------------------------------------

  private refuse(peerId: string, reason: string): void {
    this.refusedFrames++;
    this.opts.onRefused?.(peerId, reason);
    this.mesh.refuse(peerId, reason);
  }

  /**
   * Takes a data frame of this transport's epoch that arrived before the transport existed (elastic.ts
   * kept it while the ring re-formed). Validated exactly like a frame straight off the channel.
   */
  deliver(peerId: string, frame: Frame): void {
    this.onFrame(peerId, frame);
  }

  private onFrame(peerId: string, frame: Frame): void {
    if (this.closedReason) return;
    if (frame.type !== 'data') return; // control frames belong to others
    // The next ring's frames may come from tabs outside this one (a newcomer): elastic-room.ts keeps them.
    if (frame.epoch === this.epoch + 1 && this.opts.nextEpochExpected) return;
    const from = this.rankOf.get(peerId);
    if (from === undefined) return this.refuse(peerId, 'data frame from a peer outside this group');
    if (frame.epoch !== this.epoch) return this.otherEpoch(peerId, frame.epoch);
    if (frame.sender !== from) return this.refuse(peerId, `frame claims rank ${frame.sender}, the link is rank ${from}`);
    const key = keyOf(from, frame);
    if (this.delivered.has(key)) return this.refuse(peerId, `duplicate message ${key}`);
    let assembly = this.assemblies.get(key);
    if (!assembly) {
      assembly = { parts: frame.parts, received: 0, pieces: new Array(frame.parts), bytes: 0 };
      this.assemblies.set(key, assembly);
    }
    if (frame.parts !== assembly.parts) return this.refuse(peerId, `message ${key}: piece count changed`);
    if (assembly.pieces[frame.part]) return this.refuse(peerId, `message ${key}: piece ${frame.part} twice`);
    if (this.bufferedBytes + frame.payload.length > (this.opts.maxBufferedBytes ?? 512 * 1024 * 1024)) {
      return this.refuse(peerId, 'too many bytes waiting to be received');
    }
    assembly.pieces[frame.part] = frame.payload;
    assembly.received++;
    assembly.bytes += frame.payload.length;
    this.bufferedBytes += frame.payload.length;
    this.bytesReceived += frame.payload.length + FRAME_HEADER_BYTES;
    if (assembly.received < assembly.parts) return;

    this.assemblies.delete(key);
    this.remember(key);
    const message = assembly.parts === 1 ? assembly.pieces[0]! : concat(assembly.pieces as Uint8Array[], assembly.bytes);
    const problem = this.checkMessage?.({ round: frame.round, collective: frame.collective, chunk: frame.chunk }, message);
    if (problem) {
      this.bufferedBytes -= assembly.bytes;
      const reason = `message ${key} from rank ${from} refused: ${problem}`;
      this.refuse(peerId, reason);
      this.poisoned.set(key, reason);
      const w = this.waiters.get(key);
      if (w) {
        this.waiters.delete(key);
        clearTimeout(w.timer);
        w.reject(new TransportError(reason, true));
      }
      return;
    }
    const waiter = this.waiters.get(key);
    if (waiter) {
      this.waiters.delete(key);
      clearTimeout(waiter.timer);
      this.bufferedBytes -= assembly.bytes;
      waiter.resolve(message);
    } else {
      this.ready.set(key, message);
    }
  }

  /** A member's frame of another epoch: stale when earlier (in flight when the ring re-formed), else refused. */
  private otherEpoch(peerId: string, epoch: number): void {
    if (epoch < this.epoch) {
      this.staleFrames++;
      return;
    }
    this.refuse(peerId, `data frame of membership epoch ${epoch}; this room is in epoch ${this.epoch}`);
  }

  private remember(key: string): void {
    this.delivered.add(key);
    if (this.delivered.size > DELIVERED_MEMORY) {
      const oldest = this.delivered.values().next().value;
      if (oldest !== undefined) this.delivered.delete(oldest);
    }
  }

  private onPeerGone(peerId: string, reason: string): void {
    const rank = this.rankOf.get(peerId);
    if (rank !== undefined) this.peerLost(rank, `rank ${rank} (${peerId}) lost: ${reason}`);
  }

  private peerLost(rank: number, reason: string): void {
    if (this.lost.has(rank)) return;
    this.lost.set(rank, reason);
    for (const [key, w] of this.waiters) {
      if (w.from !== rank) continue;
      clearTimeout(w.timer);
      this.waiters.delete(key);
      w.reject(new TransportError(reason));
    }
    this.wakeDrainers();
  }
}

function concat(pieces: Uint8Array[], total: number): Uint8Array {
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of pieces) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
