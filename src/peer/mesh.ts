// Over 400 lines because one mesh owns its links, heartbeats, signalling, refusals and exclusions, which share its peer table.
// A room's WebRTC mesh: one simple-peer connection (one ordered data channel) per linked pair.
// - Who links to whom: membership.ts (every pair up to 8 members, hubs and near neighbours above), plus
//   what a ring epoch asks for (require).
// - Every message on a channel is a frame (frame.ts) and is validated here; data and control frames
//   go to listeners (the transport), heartbeats are answered here and give the RTT.
// - A member that is gone is announced by signalling at once: a goodbye (this tab says one on
//   `pagehide`), or proof that its tab closed or crashed (the server saw its socket close; in a
//   BroadcastChannel room the browser freed its Web Lock: tab-locks.ts). A member that falls silent
//   without such proof (frozen, starved, or its network gone) is dropped by heartbeat silence, the
//   backstop, never by waiting for the channel's close: a closed tab does not close the remote channel
//   (docs/architecture.md, facts about browsers), and a failed link is retried, not taken as a departure.
import SimplePeer from 'simple-peer/simplepeer.min.js';
import type { Instance as PeerInstance, SignalData as SimplePeerSignal } from 'simple-peer';
import type { EventBus, PeerInfo, PeersReport } from '../shared/events';
import { MAC_BYTES, type RoomAuth } from './auth';
import { iceServersFor, selectedPath, type IceServers, type LinkPath } from './ice';
import { NO_RANK, decodeFrame, encodeFrame, isFrameError, roomHash, type Frame } from './frame';
import { FULL_MESH_MAX, isInitiator, rankOrder, wantedPeers } from './membership';
import type { SignalData, Signalling } from './signalling';
import { everyMs } from './wake-timer';
import { LinkShaper, UNSHAPED, type LinkShape } from './link-shaper';

/** Chromium's `sctp.maxMessageSize`; one byte more and send() throws. */
export const DEFAULT_MAX_MESSAGE_SIZE = 262144;

export interface MeshOptions {
  signalling: Signalling;
  /**
   * STUN/TURN servers. Default: those the signalling server hands out (ice.ts; a WebSocket server's
   * GET <path>/ice), else none: enough on one machine or a LAN (host candidates).
   */
  iceServers?: RTCIceServer[];
  fullMeshMax?: number;
  heartbeatMs?: number;
  /** A linked peer silent for this long is dropped (left the room, crashed, or its tab froze). */
  deadAfterMs?: number;
  /** A link that has not opened after this long is torn down and tried again. */
  connectTimeoutMs?: number;
  /** Where PeersReport, FrameRefused and LogLine events go (the store, the dashboard). */
  bus?: EventBus;
  /**
   * The room secret's keys (auth.ts). Set: only peers that prove the secret become members, every
   * signal is sealed and every frame carries a MAC; anything else is refused.
   */
  auth?: RoomAuth;
  /**
   * A peer whose frames or signals this tab refused more than this many times is excluded from the
   * room for good (its link dropped, its signals ignored). 0: never exclude. Default 200.
   */
  maxRefusedPerPeer?: number;
}

export interface MeshListener {
  /** Room members in rank order (self included), after every change. */
  members?(members: string[]): void;
  peerOpen?(peerId: string): void;
  /** A member is gone from the room: it left, or fell silent past the deadline. */
  peerLost?(peerId: string, reason: string): void;
  /**
   * The link to a member closed or failed while the member is still in the room. The mesh retries the
   * link; anything in flight on it is lost, so a collective using it must fail.
   */
  linkLost?(peerId: string, reason: string): void;
  /** A data or control frame that validated. */
  frame?(peerId: string, frame: Frame): void;
  refused?(peerId: string, reason: string): void;
}

export interface LinkStats {
  peerId: string;
  state: PeerInfo['state'];
  rttMs?: number;
  bytesSent: number;
  bytesReceived: number;
  /** Bytes per second over the last heartbeat interval, each direction. */
  sendRate: number;
  recvRate: number;
  /** The candidate types the link's selected pair uses (host, srflx/prflx through a NAT, relay through TURN). */
  path?: LinkPath;
}

interface Link {
  peerId: string;
  peer: PeerInstance;
  initiator: boolean;
  state: PeerInfo['state'];
  createdAt: number;
  lastHeard: number;
  rttMs?: number;
  bytesSent: number;
  bytesReceived: number;
  sendRate: number;
  recvRate: number;
  rateMark: { t: number; sent: number; received: number };
  path?: LinkPath;
  /** With a room secret: frames are sealed and opened asynchronously, in order, one after another. */
  sendChain: Promise<void>;
  recvChain: Promise<void>;
}

/** Pause before re-creating a failed link (the other side needs a moment to notice too). */
const LINK_RETRY_MS = 500;
/** Refusals per peer per second that reach the dashboard one by one (see publishRefusal). */
const REFUSAL_EVENTS_PER_SECOND = 20;
const PING = 0;
const PONG = 1;
/** Heartbeats between two readings of each link's path (getStats is not free). */
const PATH_EVERY_TICKS = 5;

/** simple-peer keeps the RTCPeerConnection and RTCDataChannel in underscore fields; we need both. */
interface PeerInternals {
  _channel?: RTCDataChannel | null;
  _pc?: RTCPeerConnection | null;
}

export class Mesh {
  readonly peerId: string;
  readonly room: string;
  readonly roomHash: number;
  private readonly members = new Set<string>();
  private readonly links = new Map<string, Link>();
  /** Links asked for by ring epochs (require). */
  private readonly required = new Set<string>();
  private readonly listeners = new Set<MeshListener>();
  private stopHeartbeat: (() => void) | undefined;
  private closed = false;
  private readonly onPageHide = () => this.close();
  private refusedTotal = 0;
  private readonly refusedByReason: Record<string, number> = {};
  private readonly refusalWindows = new Map<string, { start: number; shown: number; suppressed: number }>();
  /** Refusals per peer (frames and signals), for exclusion. */
  private readonly refusals = new Map<string, number>();
  /** Peers excluded from the room, with the reason. */
  private readonly excluded = new Map<string, string>();
  /** With a room secret: each sender's signals are opened in arrival order. */
  private readonly signalChains = new Map<string, Promise<void>>();
  private ice: IceServers = { servers: [], refreshAfter: Infinity };
  private readonly iceProblems = new Set<string>();
  private ticks = 0;
  private shaper: LinkShaper | null = null;

  constructor(private readonly opts: MeshOptions) {
    this.peerId = opts.signalling.peerId;
    this.room = opts.signalling.room;
    this.roomHash = roomHash(this.room);
    this.members.add(this.peerId);
  }

  /** Joins the room through signalling and starts heartbeats. */
  async start(): Promise<void> {
    this.ice = this.opts.iceServers
      ? { servers: this.opts.iceServers, refreshAfter: Infinity }
      : await iceServersFor(this.opts.signalling, (message) => this.log('warn', message));
    await this.opts.signalling.join({
      peerJoined: (id) => (this.opts.auth ? this.probe(id) : this.memberJoined(id)),
      peerLeft: (id, reason) => this.drop(id, reason ?? 'left the room', true),
      signal: (from, data) => this.onSignal(from, data),
      problem: (reason) => this.log('warn', reason),
    });
    // From a worker's timer: a tab in the background must keep its heartbeats going (wake-timer.ts).
    this.stopHeartbeat = everyMs(this.opts.heartbeatMs ?? 1000, () => this.tick());
    if (typeof window !== 'undefined') window.addEventListener('pagehide', this.onPageHide);
  }

  on(listener: MeshListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Members in rank order, self included. */
  memberList(): string[] {
    return rankOrder(this.members);
  }

  /** Peers this tab should be linked to right now. */
  wanted(): string[] {
    const wanted = new Set(wantedPeers(this.peerId, this.members, this.opts.fullMeshMax ?? FULL_MESH_MAX));
    for (const id of this.required) if (this.members.has(id)) wanted.add(id);
    return [...wanted];
  }

  /**
   * Links a ring epoch needs besides the topology's (membership.ts ringLinks); the mesh opens them and
   * keeps them while both tabs stay in the room. The other end asks for the same link from the same roster.
   */
  require(peerIds: readonly string[]): void {
    for (const id of peerIds) if (id !== this.peerId) this.required.add(id);
    this.reconcile();
  }

  isOpen(peerId: string): boolean {
    return this.links.get(peerId)?.state === 'connected' && this.channel(peerId)?.readyState === 'open';
  }

  /** The open data channel to a peer (for backpressure: bufferedAmount and its low-water event). */
  channel(peerId: string): RTCDataChannel | undefined {
    const link = this.links.get(peerId);
    if (!link || link.state !== 'connected') return undefined;
    return (link.peer as unknown as PeerInternals)._channel ?? undefined;
  }

  /** Bytes sendRaw adds to every frame on the wire: the room MAC with a secret, else none. */
  get sealBytes(): number {
    return this.opts.auth ? MAC_BYTES : 0;
  }

  /**
   * Largest frame the link accepts, capped at 256 KiB so one message never hogs a channel (less the
   * MAC that a room secret appends).
   */
  maxMessageSize(peerId: string): number {
    const link = this.links.get(peerId);
    const negotiated = (link?.peer as unknown as PeerInternals | undefined)?._pc?.sctp?.maxMessageSize;
    const cap = Math.min(negotiated && negotiated > 0 ? negotiated : DEFAULT_MAX_MESSAGE_SIZE, DEFAULT_MAX_MESSAGE_SIZE);
    return this.opts.auth ? cap - MAC_BYTES : cap;
  }

  /**
   * Puts an encoded frame on a peer's channel. Throws if the link is not open or the queue is full.
   * With a room secret the frame is sealed first: then it returns a promise that settles once the
   * frame is on the channel (and rejects instead of throwing).
   */
  sendRaw(peerId: string, bytes: Uint8Array): void | Promise<void> {
    const shaper = this.shaper;
    if (!shaper) return this.sendNow(peerId, bytes);
    if (this.channel(peerId)?.readyState !== 'open') throw new Error(`no open channel to ${peerId}`);
    return shaper.send(peerId, bytes.length, () => this.sendNow(peerId, bytes));
  }

  /**
   * Link shaping for teaching (link-shaper.ts): every frame this tab sends from now on is delayed and
   * rate-limited per link; null: the links as they are.
   */
  shapeLinks(shape: LinkShape | null): void {
    if (!shape && (this.shaper?.overridden().length ?? 0) === 0) this.shaper = null;
    else if (this.shaper) this.shaper.set(shape ?? UNSHAPED);
    else this.shaper = new LinkShaper(shape ?? UNSHAPED);
  }

  /**
   * One link's own shape (the dashboard's per-link override), in place of shapeLinks' for the frames
   * this tab sends to `peerId`; null: back to the tab's.
   */
  shapeLink(peerId: string, shape: LinkShape | null): void {
    this.shaper ??= new LinkShaper(UNSHAPED);
    this.shaper.setLink(peerId, shape);
  }

  /** The shape this tab's frames to `peerId` get (UNSHAPED when none). */
  linkShape(peerId: string): LinkShape {
    return this.shaper?.shapeOf(peerId) ?? { ...UNSHAPED };
  }

  private sendNow(peerId: string, bytes: Uint8Array): void | Promise<void> {
    const channel = this.channel(peerId);
    const link = this.links.get(peerId);
    if (!channel || !link || channel.readyState !== 'open') throw new Error(`no open channel to ${peerId}`);
    const auth = this.opts.auth;
    if (!auth) {
      channel.send(bytes as Uint8Array<ArrayBuffer>);
      link.bytesSent += bytes.length;
      return;
    }
    const sent = link.sendChain.then(async () => {
      const sealed = await auth.sealFrame(bytes);
      const open = this.channel(peerId);
      if (!open || open.readyState !== 'open') throw new Error(`no open channel to ${peerId}`);
      open.send(sealed as Uint8Array<ArrayBuffer>);
      link.bytesSent += sealed.length;
    });
    // The chain must go on after a failure; and a caller that does not await (heartbeats) must not
    // leave an unhandled rejection behind.
    link.sendChain = sent.catch(() => undefined);
    return sent;
  }

  /** Peers excluded from this room and why. */
  excludedPeers(): { peerId: string; reason: string }[] {
    return [...this.excluded].map(([peerId, reason]) => ({ peerId, reason }));
  }

  /**
   * Resolves with the members (rank order) once at least `expect` are in the room and every link this
   * tab wants is open. Rejects after `timeoutMs`, naming what is missing.
   */
  waitForRoom(expect: number, timeoutMs: number): Promise<string[]> {
    return new Promise((resolve, reject) => {
      const check = (): boolean => {
        if (this.members.size < expect) return false;
        if (!this.wanted().every((id) => this.isOpen(id))) return false;
        clearTimeout(timer);
        unsubscribe();
        resolve(this.memberList());
        return true;
      };
      const timer = setTimeout(() => {
        unsubscribe();
        const missing = this.wanted().filter((id) => !this.isOpen(id));
        reject(
          new Error(
            `room ${this.room}: ${this.members.size}/${expect} members after ${timeoutMs} ms` +
              (missing.length ? `, links not open: ${missing.join(', ')}` : ''),
          ),
        );
      }, timeoutMs);
      const unsubscribe = this.on({ members: () => check(), peerOpen: () => check() });
      check();
    });
  }

  linkStats(): LinkStats[] {
    return [...this.links.values()].map((l) => ({
      peerId: l.peerId,
      state: l.state,
      rttMs: l.rttMs,
      bytesSent: l.bytesSent,
      bytesReceived: l.bytesReceived,
      sendRate: l.sendRate,
      recvRate: l.recvRate,
      path: l.path,
    }));
  }

  /**
   * The ring's members in rank order, when a ring runs over this mesh: the peers report then gives ring
   * ranks (a tab that is in the room but not yet in the ring, e.g. waiting to join, gets rank -1).
   */
  ringMembers: (() => readonly string[]) | null = null;

  /** What a presence board (presence.ts) knows of a peer, or of this tab (its own id): merged into the peers report. */
  presenceOf: ((peerId: string) => Pick<PeerInfo, 'name' | 'step' | 'msPerStep' | 'backend'> | undefined) | null = null;

  peersReport(): PeersReport {
    const order = this.memberList();
    const ring = this.ringMembers?.() ?? [];
    const ranks = ring.length > 0 ? ring : order;
    return {
      type: 'peers',
      self: { peerId: this.peerId, rank: ranks.indexOf(this.peerId), world: ranks.length, room: this.room, ...this.selfPresence() },
      peers: order
        .filter((id) => id !== this.peerId)
        .map((id) => {
          const link = this.links.get(id);
          return {
            peerId: id,
            rank: ranks.indexOf(id),
            state: link?.state ?? 'disconnected',
            rttMs: link?.rttMs,
            throughputBytesPerSec: link ? link.sendRate + link.recvRate : undefined,
            path: link?.state === 'connected' ? link.path : undefined,
            ...this.presenceOf?.(id),
          };
        }),
    };
  }

  private selfPresence(): { name?: string; step?: number; msPerStep?: number } {
    const own = this.presenceOf?.(this.peerId);
    return own ? { name: own.name, step: own.step, msPerStep: own.msPerStep } : {};
  }

  /** Leaves the room and closes every link (idempotent). Remote tabs see their channels close at once. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.stopHeartbeat?.();
    if (typeof window !== 'undefined') window.removeEventListener('pagehide', this.onPageHide);
    this.opts.signalling.leave();
    for (const id of [...this.links.keys()]) this.drop(id, 'this tab left', false);
  }

  // --- membership and links -------------------------------------------------------------------------

  private memberJoined(peerId: string): void {
    if (this.closed || this.members.has(peerId) || this.excluded.has(peerId)) return;
    this.members.add(peerId);
    this.emitMembers();
    this.reconcile();
  }

  /** Opens the links this tab is responsible for (it initiates towards larger ids). */
  private reconcile(): void {
    if (this.closed) return;
    for (const id of this.wanted()) {
      if (!this.links.has(id) && isInitiator(this.peerId, id)) this.createLink(id, true);
    }
  }

  private createLink(peerId: string, initiator: boolean): Link {
    const peer = new SimplePeer({
      initiator,
      trickle: true,
      config: { iceServers: this.iceServersNow() },
      channelConfig: { ordered: true },
    });
    const now = performance.now();
    const link: Link = {
      peerId,
      peer,
      initiator,
      state: 'connecting',
      createdAt: now,
      lastHeard: now,
      bytesSent: 0,
      bytesReceived: 0,
      sendRate: 0,
      recvRate: 0,
      rateMark: { t: now, sent: 0, received: 0 },
      sendChain: Promise.resolve(),
      recvChain: Promise.resolve(),
    };
    this.links.set(peerId, link);
    const current = () => this.links.get(peerId) === link;
    const pc = (peer as unknown as PeerInternals)._pc;
    if (typeof pc?.addEventListener === 'function') {
      pc.addEventListener('icecandidateerror', (event) => this.iceServerProblem(event as RTCPeerConnectionIceErrorEvent));
    }
    peer.on('signal', (data: SimplePeerSignal) => {
      if (current()) this.sendSignal(peerId, data as unknown as SignalData);
    });
    peer.on('connect', () => {
      if (!current()) return;
      link.state = 'connected';
      link.lastHeard = performance.now();
      this.log('info', `link to ${peerId} open`);
      for (const l of this.listeners) l.peerOpen?.(peerId);
      this.publishPeers();
      void this.readPath(link);
    });
    peer.on('data', (data: Uint8Array) => {
      if (current()) this.onData(link, data);
    });
    peer.on('close', () => {
      if (current()) this.linkFailed(link, 'channel closed');
    });
    peer.on('error', (err: Error) => {
      if (current()) this.linkFailed(link, `link error: ${err.message}`);
    });
    this.publishPeers();
    return link;
  }

  /** Signal data to a peer: sealed with the room secret when there is one. */
  private sendSignal(to: string, data: SignalData): void {
    const auth = this.opts.auth;
    if (!auth) return this.opts.signalling.signal(to, data);
    void auth.sealSignal(this.peerId, to, data).then((sealed) => {
      if (!this.closed) this.opts.signalling.signal(to, sealed);
    });
  }

  /**
   * With a room secret, a peer that signalling announces is not a member yet: it becomes one when a
   * sealed probe from it verifies. So each side probes every peer it hears of (again on each presence
   * refresh, until it is a member) and answers a valid probe with its own.
   */
  private probe(peerId: string): void {
    if (this.closed || this.members.has(peerId) || this.excluded.has(peerId)) return;
    this.sendSignal(peerId, { probe: true });
  }

  /** Incoming signal data: opened (checked) first when the room has a secret. */
  private onSignal(from: string, data: SignalData): void {
    if (this.closed || this.excluded.has(from)) return;
    const auth = this.opts.auth;
    if (!auth) return this.onOpenSignal(from, data);
    const chain = (this.signalChains.get(from) ?? Promise.resolve()).then(async () => {
      const opened = await auth.openSignal(from, this.peerId, data);
      if (this.closed || this.excluded.has(from)) return;
      if ('error' in opened) return this.refuse(from, opened.error);
      if (opened.body.probe === true) {
        if (!this.members.has(from)) {
          this.memberJoined(from);
          this.sendSignal(from, { probe: true });
        }
        return;
      }
      this.onOpenSignal(from, opened.body);
    });
    this.signalChains.set(from, chain.catch(() => undefined));
  }

  private onOpenSignal(from: string, data: SignalData): void {
    if (!this.members.has(from)) this.memberJoined(from);
    let link = this.links.get(from);
    // A fresh offer from the initiating side replaces a link that never opened (it gave up and retried).
    if (link && !link.initiator && link.state !== 'connected' && data.type === 'offer') {
      this.destroyLink(link);
      link = undefined;
    }
    if (!link) {
      if (isInitiator(this.peerId, from)) return; // stale answer/candidate for a link we dropped
      link = this.createLink(from, false);
    }
    try {
      link.peer.signal(data as unknown as SimplePeerSignal);
    } catch (err) {
      this.refuse(from, `bad signal: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  /**
   * A link closed or failed but its peer may still be in the room (a link can fail on a loaded machine
   * while both tabs live). Membership is left to signalling and heartbeats; the link is retried.
   */
  private linkFailed(link: Link, reason: string): void {
    this.destroyLink(link);
    this.log('warn', `link to ${link.peerId}: ${reason}`);
    for (const l of this.listeners) l.linkLost?.(link.peerId, reason);
    setTimeout(() => this.reconcile(), LINK_RETRY_MS);
  }

  /** Tears a link down. `lost`: the peer is gone from the room too (it left, or fell silent). */
  private drop(peerId: string, reason: string, lost: boolean): void {
    const link = this.links.get(peerId);
    if (link) this.destroyLink(link);
    if (!lost) return;
    const wasMember = this.members.delete(peerId);
    this.required.delete(peerId);
    this.signalChains.delete(peerId);
    if (!link && !wasMember) return;
    this.log('warn', `peer ${peerId}: ${reason}`);
    for (const l of this.listeners) l.peerLost?.(peerId, reason);
    this.emitMembers();
    this.reconcile();
  }

  private destroyLink(link: Link): void {
    if (this.links.get(link.peerId) === link) this.links.delete(link.peerId);
    try {
      link.peer.destroy();
    } catch {
      // already torn down
    }
    this.publishPeers();
  }

  // --- frames and heartbeats ------------------------------------------------------------------------

  private onData(link: Link, data: Uint8Array): void {
    link.bytesReceived += data.byteLength;
    const auth = this.opts.auth;
    if (!auth) return this.onFrameBytes(link, data);
    // Opened in arrival order: the transport and heartbeats see frames in the order they were sent.
    link.recvChain = link.recvChain
      .then(async () => {
        const opened = await auth.openFrame(data);
        if (this.links.get(link.peerId) !== link) return;
        if ('error' in opened) return this.refuse(link.peerId, opened.error);
        this.onFrameBytes(link, opened.frame);
      })
      .catch((error: unknown) => this.refuse(link.peerId, `frame handling failed: ${error instanceof Error ? error.message : String(error)}`));
  }

  private onFrameBytes(link: Link, data: Uint8Array): void {
    const frame = decodeFrame(data);
    if (isFrameError(frame)) return this.refuse(link.peerId, frame.error);
    if (frame.roomHash !== this.roomHash) return this.refuse(link.peerId, 'frame for another room');
    link.lastHeard = performance.now();
    if (frame.type === 'heartbeat') return this.onHeartbeat(link, frame);
    for (const l of this.listeners) l.frame?.(link.peerId, frame);
  }

  private onHeartbeat(link: Link, frame: Frame): void {
    const p = frame.payload;
    if (p.length !== 9 || (p[0] !== PING && p[0] !== PONG)) return this.refuse(link.peerId, 'malformed heartbeat');
    const sentAt = new DataView(p.buffer, p.byteOffset, p.byteLength).getFloat64(1, true);
    if (p[0] === PING) this.sendHeartbeat(link.peerId, PONG, sentAt);
    else if (Number.isFinite(sentAt)) link.rttMs = performance.now() - sentAt;
  }

  private sendHeartbeat(peerId: string, kind: number, time: number): void {
    const payload = new Uint8Array(9);
    payload[0] = kind;
    new DataView(payload.buffer).setFloat64(1, time, true);
    const frame = encodeFrame(
      { type: 'heartbeat', roomHash: this.roomHash, round: 0, collective: 0, chunk: 0, sender: NO_RANK, part: 0, parts: 1 },
      payload,
    );
    try {
      void this.sendRaw(peerId, frame);
    } catch {
      // a full or closing channel: the deadline below decides whether the peer is gone
    }
  }

  /** The ICE servers for a new link; TURN credentials past half their life are fetched again for later links. */
  private iceServersNow(): RTCIceServer[] {
    if (performance.now() > this.ice.refreshAfter) {
      const current = this.ice;
      this.ice = { ...current, refreshAfter: Infinity };
      void iceServersFor(this.opts.signalling, (message) => this.log('warn', message)).then((fresh) => {
        this.ice = fresh.servers.length > 0 ? fresh : { ...current, refreshAfter: performance.now() + 60_000 };
      });
    }
    return this.ice.servers;
  }

  /**
   * A STUN/TURN server that refused or did not answer, said once per server and error: a TURN server
   * refusing the credentials is the usual reason a room behind a firewall never links.
   */
  private iceServerProblem(event: RTCPeerConnectionIceErrorEvent): void {
    const key = `${event.url} ${event.errorCode}`;
    if (!event.url || this.iceProblems.has(key)) return;
    this.iceProblems.add(key);
    this.log(
      'error',
      event.errorCode === 401 || event.errorCode === 403
        ? `TURN server ${event.url} refused the credentials (${event.errorCode} ${event.errorText}): the lab server's LAB_TURN_SECRET must equal the TURN server's static-auth-secret, and the server's and this machine's clocks must agree`
        : `STUN/TURN server ${event.url} failed (${event.errorCode} ${event.errorText}): links can only go direct`,
    );
  }

  /** Reads which path the link's selected candidate pair takes (shown in the peers table). */
  private async readPath(link: Link): Promise<void> {
    const pc = (link.peer as unknown as PeerInternals)._pc;
    if (!pc) return;
    try {
      const path = await selectedPath(pc);
      if (this.links.get(link.peerId) === link && path && path !== link.path) {
        link.path = path;
        this.log('info', `link to ${link.peerId} goes ${path === 'host' ? 'direct (host)' : path === 'relay' ? 'through the TURN relay' : `through a NAT (${path})`}`);
        this.publishPeers();
      }
    } catch {
      // a closing connection has no stats: the next reading, if any, tells
    }
  }

  private tick(): void {
    const now = performance.now();
    const readPaths = ++this.ticks % PATH_EVERY_TICKS === 0;
    const deadAfter = this.opts.deadAfterMs ?? 10_000;
    const connectTimeout = this.opts.connectTimeoutMs ?? 30_000;
    for (const link of [...this.links.values()]) {
      if (link.state === 'connected') {
        if (now - link.lastHeard > deadAfter) {
          this.drop(link.peerId, `silent for ${Math.round(now - link.lastHeard)} ms`, true);
          continue;
        }
        this.sendHeartbeat(link.peerId, PING, now);
        if (readPaths) void this.readPath(link);
        const dt = (now - link.rateMark.t) / 1000;
        if (dt > 0) {
          link.sendRate = (link.bytesSent - link.rateMark.sent) / dt;
          link.recvRate = (link.bytesReceived - link.rateMark.received) / dt;
        }
        link.rateMark = { t: now, sent: link.bytesSent, received: link.bytesReceived };
      } else if (now - link.createdAt > connectTimeout) {
        this.log('warn', `link to ${link.peerId} did not open in ${connectTimeout} ms: retrying`);
        this.destroyLink(link);
        this.reconcile();
      }
    }
    this.publishPeers();
  }

  /**
   * Reports a refused frame or signal: to listeners and to the dashboard (the transport refuses some
   * too). A peer refused more than maxRefusedPerPeer times is excluded from the room.
   */
  refuse(peerId: string, reason: string): void {
    for (const l of this.listeners) l.refused?.(peerId, reason);
    this.refusedTotal++;
    const key = reason.replace(/0x[0-9a-f]+/gi, '#').replace(/\d+/g, '#');
    if (key in this.refusedByReason || Object.keys(this.refusedByReason).length < 200) this.refusedByReason[key] = (this.refusedByReason[key] ?? 0) + 1;
    this.publishRefusal(peerId, reason);
    const count = (this.refusals.get(peerId) ?? 0) + 1;
    this.refusals.set(peerId, count);
    const limit = this.opts.maxRefusedPerPeer ?? 200;
    if (limit > 0 && count > limit && !this.excluded.has(peerId)) this.exclude(peerId, `${count} refused frames or signals (last: ${reason})`);
  }

  /** Every frame and signal this tab refused: the total and the count per reason (numbers blanked). */
  refusalStats(): { count: number; reasons: Record<string, number> } {
    return { count: this.refusedTotal, reasons: { ...this.refusedByReason } };
  }

  /**
   * A flood of bad frames must not cost more than checking them: the dashboard hears of at most
   * REFUSAL_EVENTS_PER_SECOND refusals per peer each second, then one line saying how many more.
   */
  private publishRefusal(peerId: string, reason: string): void {
    const now = performance.now();
    let w = this.refusalWindows.get(peerId);
    if (!w || now - w.start >= 1000) {
      if (w && w.suppressed > 0) {
        this.opts.bus?.publish({ type: 'refused', from: peerId, reason: `${w.suppressed} more refused in one second (a flood: not listed one by one)`, t: now });
      }
      w = { start: now, shown: 0, suppressed: 0 };
      this.refusalWindows.set(peerId, w);
    }
    if (w.shown < REFUSAL_EVENTS_PER_SECOND) {
      w.shown++;
      this.opts.bus?.publish({ type: 'refused', from: peerId, reason, t: now });
    } else {
      w.suppressed++;
    }
  }

  /** Drops a peer for good: its link closes, its signals and presence are ignored from now on. */
  exclude(peerId: string, reason: string): void {
    if (this.excluded.has(peerId) || peerId === this.peerId) return;
    this.excluded.set(peerId, reason);
    this.log('error', `excluded peer ${peerId} from the room: ${reason}`);
    this.drop(peerId, `excluded: ${reason}`, true);
  }

  private emitMembers(): void {
    const order = this.memberList();
    for (const l of this.listeners) l.members?.(order);
    this.publishPeers();
  }

  private publishPeers(): void {
    this.opts.bus?.publish(this.peersReport());
  }

  private log(level: 'info' | 'warn' | 'error', message: string): void {
    this.opts.bus?.publish({ type: 'log', level, message: `[mesh ${this.room}] ${message}`, t: performance.now() });
  }
}
