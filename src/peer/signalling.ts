// How tabs of a room find each other and exchange WebRTC offers, answers and ICE candidates.
// Two implementations of one interface:
// - BroadcastChannelSignalling (default): tabs of one browser profile, no server at all; a member that
//   closed or crashed is announced at once through the browser's Web Locks (tab-locks.ts).
// - WebSocketSignalling: through server/ (npm run server), for browsers on different machines; the
//   server assigns the peer id, so it is connected (and joined) before a Mesh is built around it.
// Signalling only introduces peers; all training traffic then flows over WebRTC data channels.
import { newPeerId } from './membership';
import { PEER_ID_PATTERN, isParseError, parseServerMessage, type IceServer, type SignalData } from './signal-protocol';
import { browserTabLocks, memberLockName, type TabLocks } from './tab-locks';

export type { IceServer, SignalData } from './signal-protocol';

export interface SignallingHandlers {
  /**
   * A member is in the room (it entered, was there when we joined, or refreshed its presence). May be
   * called again for a known member: handlers must be idempotent.
   */
  peerJoined(peerId: string): void;
  /**
   * A member left the room: it said goodbye, or its tab is gone (the server saw its socket close, or the
   * browser released its lock). `reason` says which, for the log. Never a guess: a member that is only
   * slow or silent is not announced here (the mesh's heartbeat deadline covers those).
   */
  peerLeft(peerId: string, reason?: string): void;
  /** Signal data that `from` addressed to us. */
  signal(from: string, data: SignalData): void;
  /** Something went wrong that the user should see (server refused a message, connection lost). */
  problem?(reason: string): void;
}

export interface Signalling {
  readonly kind: 'broadcast' | 'websocket';
  readonly room: string;
  readonly peerId: string;
  /** Enters the room; resolves once this tab is announced. */
  join(handlers: SignallingHandlers): Promise<void>;
  /** Sends signal data to one member. Dropped silently if we are not in a room (nothing to do). */
  signal(to: string, data: SignalData): void;
  /** Leaves the room (idempotent). Other members get peerLeft. */
  leave(): void;
  /** ICE servers this signalling handed out (the WebSocket server's welcome); none for BroadcastChannel. */
  readonly iceServers?: IceServer[];
}

// --- BroadcastChannel ------------------------------------------------------------------------------

type BroadcastMessage =
  | { kind: 'hello'; from: string }
  | { kind: 'here'; from: string; to: string }
  | { kind: 'bye'; from: string }
  | { kind: 'signal'; from: string; to: string; data: SignalData };

function parseBroadcast(x: unknown): BroadcastMessage | undefined {
  if (typeof x !== 'object' || x === null) return undefined;
  const m = x as Record<string, unknown>;
  const id = (v: unknown): v is string => typeof v === 'string' && PEER_ID_PATTERN.test(v);
  if (!id(m.from)) return undefined;
  switch (m.kind) {
    case 'hello':
    case 'bye':
      return { kind: m.kind, from: m.from };
    case 'here':
      return id(m.to) ? { kind: 'here', from: m.from, to: m.to } : undefined;
    case 'signal':
      return id(m.to) && typeof m.data === 'object' && m.data !== null && !Array.isArray(m.data)
        ? { kind: 'signal', from: m.from, to: m.to, data: m.data as SignalData }
        : undefined;
    default:
      return undefined;
  }
}

/** Why a server room's member is dropped when the server saw its socket close without a leave. */
export const SOCKET_CLOSED_REASON = 'its connection to the signalling server closed (its tab closed or crashed, or lost the network)';
/** Why a BroadcastChannel member is dropped when its lock comes free without a goodbye. */
export const TAB_GONE_REASON = 'its tab is gone, closed or crashed (the browser released its lock)';

/**
 * Tabs of one browser profile meet on a BroadcastChannel named after the room. A newcomer says
 * `hello`; everyone answers `here` to it, so both sides learn of each other without a server. Every
 * tab repeats its `hello` every `presenceMs`, so a tab that a peer dropped as silent (a tab frozen on
 * a loaded machine) is re-announced once it runs again; a closed tab says `bye` and then nothing.
 *
 * A crashed tab says no `bye`; so each tab holds its member lock (tab-locks.ts) from before its first
 * `hello` until it leaves, and watches the lock of every member it knows: the browser frees a gone
 * tab's lock at once, and the member is announced as left. Without Web Locks (`locks` null) only
 * `bye` announces a departure, and a crash is found by the mesh's heartbeat deadline.
 */
export class BroadcastChannelSignalling implements Signalling {
  readonly kind = 'broadcast' as const;
  private channel: BroadcastChannel | null = null;
  /** Known members, each with the function that stops watching its lock. */
  private known = new Map<string, () => void>();
  private presence: ReturnType<typeof setInterval> | undefined;
  private releaseLock: (() => void) | null = null;

  constructor(
    readonly room: string,
    readonly peerId: string,
    /** Presence refresh interval; 0 turns it off. */
    private readonly presenceMs = 3000,
    /** The browser's Web Locks; null: departures are known only from `bye` (and the heartbeat). */
    private readonly locks: TabLocks | null = browserTabLocks(),
  ) {}

  async join(handlers: SignallingHandlers): Promise<void> {
    if (this.channel) throw new Error('already joined');
    const channel = new BroadcastChannel(`webgpu-lab-room:${this.room}`);
    this.channel = channel;
    const forget = (peerId: string, reason?: string) => {
      const stopWatching = this.known.get(peerId);
      if (!stopWatching) return;
      stopWatching();
      this.known.delete(peerId);
      handlers.peerLeft(peerId, reason);
    };
    const meet = (peerId: string) => {
      if (peerId === this.peerId) return;
      if (!this.known.has(peerId)) {
        const stopWatching = this.locks?.watch(memberLockName(this.room, peerId), () => forget(peerId, TAB_GONE_REASON)) ?? (() => {});
        this.known.set(peerId, stopWatching);
      }
      handlers.peerJoined(peerId);
    };
    // The lock is held before this tab answers or greets anyone: a watcher granted it knows the tab is gone.
    if (this.locks) await this.holdLock(channel);
    if (this.channel !== channel) return; // left while taking the lock
    channel.onmessage = (event: MessageEvent) => {
      const msg = parseBroadcast(event.data);
      if (!msg || msg.from === this.peerId || this.channel !== channel) return;
      switch (msg.kind) {
        case 'hello':
          // answer newcomers only; a known member's hello is a presence refresh
          if (!this.known.has(msg.from)) this.post({ kind: 'here', from: this.peerId, to: msg.from });
          meet(msg.from);
          break;
        case 'here':
          if (msg.to === this.peerId) meet(msg.from);
          break;
        case 'bye':
          forget(msg.from);
          break;
        case 'signal':
          if (msg.to !== this.peerId) return;
          meet(msg.from); // a signal proves presence even if its hello was missed
          handlers.signal(msg.from, msg.data);
          break;
      }
    };
    this.post({ kind: 'hello', from: this.peerId });
    if (this.presenceMs > 0) this.presence = setInterval(() => this.post({ kind: 'hello', from: this.peerId }), this.presenceMs);
  }

  signal(to: string, data: SignalData): void {
    this.post({ kind: 'signal', from: this.peerId, to, data });
  }

  leave(): void {
    if (!this.channel) return;
    clearInterval(this.presence);
    this.post({ kind: 'bye', from: this.peerId });
    this.channel.close();
    this.channel = null;
    for (const stopWatching of this.known.values()) stopWatching();
    this.known.clear();
    this.releaseLock?.();
    this.releaseLock = null;
  }

  /**
   * Takes this tab's member lock. Should another page steal it, the peers watching it drop this tab:
   * it takes the lock back and says hello, so that they admit it again.
   */
  private async holdLock(channel: BroadcastChannel): Promise<void> {
    const release = await this.locks!.hold(memberLockName(this.room, this.peerId), () => {
      if (this.channel !== channel) return;
      this.releaseLock = null;
      void this.holdLock(channel).then(() => this.post({ kind: 'hello', from: this.peerId }));
    });
    if (this.channel === channel) this.releaseLock = release;
    else release();
  }

  private post(msg: BroadcastMessage): void {
    this.channel?.postMessage(msg);
  }
}

// --- WebSocket -------------------------------------------------------------------------------------

/** The part of the WebSocket API we use; the browser's and the `ws` package's both fit (tests use ws). */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
}

export type WebSocketFactory = (url: string) => WebSocketLike;

export interface WebSocketSignallingOptions {
  factory?: WebSocketFactory;
  /** How long to wait for the server's welcome. */
  timeoutMs?: number;
}

const OPEN = 1;
const defaultFactory: WebSocketFactory = (u) => new WebSocket(u) as unknown as WebSocketLike;

/** What happened between the welcome and `join(handlers)`, replayed to the handlers in order. */
type Pending = { kind: 'joined'; peerId: string } | { kind: 'left'; peerId: string; reason?: string } | { kind: 'signal'; from: string; data: SignalData } | { kind: 'problem'; reason: string };

/**
 * A room through the signalling server (server/). The server assigns this tab's peer id when it
 * joins, so the connection is made first, by `WebSocketSignalling.connect` (the id must be known before
 * a Mesh is built around it); `join(handlers)` then hands over the members named in the welcome and
 * everything that arrived since. The welcome also carries the ICE servers to use (STUN, and TURN with
 * time-limited credentials), exposed as `iceServers`.
 */
export class WebSocketSignalling implements Signalling {
  readonly kind = 'websocket' as const;
  private handlers: SignallingHandlers | null = null;
  private pending: Pending[] = [];
  private joined = false;

  private constructor(
    readonly url: string,
    readonly room: string,
    readonly peerId: string,
    readonly iceServers: IceServer[],
    private socket: WebSocketLike | null,
    private readonly members: string[],
  ) {}

  /** Opens the connection and joins `room`; resolves once the server has welcomed this tab. */
  static connect(url: string, room: string, opts: WebSocketSignallingOptions = {}): Promise<WebSocketSignalling> {
    const timeoutMs = opts.timeoutMs ?? 10_000;
    return new Promise((resolve, reject) => {
      let self: WebSocketSignalling | null = null;
      const socket = (opts.factory ?? defaultFactory)(url);
      const fail = (reason: string) => {
        if (self) return self.problem(reason);
        clearTimeout(timer);
        socket.onclose = null;
        socket.onmessage = null;
        socket.close();
        reject(new Error(reason));
      };
      const timer = setTimeout(() => fail(`signalling server ${url} did not answer within ${timeoutMs} ms`), timeoutMs);
      socket.onopen = () => socket.send(JSON.stringify({ type: 'join', room }));
      socket.onerror = () => fail(unreachableServerReason(url));
      socket.onclose = (ev) => {
        if (self) self.socket = null;
        fail(`signalling connection closed (${ev.code}${ev.reason ? ` ${ev.reason}` : ''})`);
      };
      socket.onmessage = (ev) => {
        if (typeof ev.data !== 'string') return fail('signalling server sent binary data');
        const msg = parseServerMessage(ev.data);
        if (isParseError(msg)) return fail(`bad message from signalling server: ${msg.error}`);
        if (!self) {
          if (msg.type === 'error') return fail(joinRefusedReason(msg.reason));
          if (msg.type !== 'welcome') return; // nothing is addressed to a tab before its welcome
          clearTimeout(timer);
          self = new WebSocketSignalling(url, room, msg.peerId, msg.iceServers, socket, msg.members);
          return resolve(self);
        }
        switch (msg.type) {
          case 'peer-joined':
            return self.deliver({ kind: 'joined', peerId: msg.peerId });
          case 'peer-left':
            return self.deliver({ kind: 'left', peerId: msg.peerId, reason: msg.reason === 'disconnected' ? SOCKET_CLOSED_REASON : undefined });
          case 'signal':
            return self.deliver({ kind: 'signal', from: msg.from, data: msg.data });
          case 'error':
            return self.problem(`signalling server: ${msg.reason}`);
          case 'welcome':
            return self.problem('signalling server sent a second welcome');
        }
      };
    });
  }

  join(handlers: SignallingHandlers): Promise<void> {
    if (this.joined) return Promise.reject(new Error('already joined'));
    if (!this.socket) return Promise.reject(new Error('the signalling connection is closed'));
    this.joined = true;
    this.handlers = handlers;
    for (const member of this.members) handlers.peerJoined(member);
    for (const event of this.pending.splice(0)) this.deliver(event);
    return Promise.resolve();
  }

  signal(to: string, data: SignalData): void {
    if (this.socket?.readyState === OPEN) this.socket.send(JSON.stringify({ type: 'signal', to, data }));
  }

  leave(): void {
    const socket = this.socket;
    if (!socket) return;
    this.socket = null;
    this.handlers = null;
    socket.onclose = null;
    socket.onmessage = null;
    if (socket.readyState === OPEN) socket.send(JSON.stringify({ type: 'leave' }));
    socket.close(1000, 'leave');
  }

  private problem(reason: string): void {
    this.deliver({ kind: 'problem', reason });
  }

  private deliver(event: Pending): void {
    const h = this.handlers;
    if (!h) {
      if (this.socket && this.pending.length < 1000) this.pending.push(event);
      return;
    }
    switch (event.kind) {
      case 'joined':
        return h.peerJoined(event.peerId);
      case 'left':
        return h.peerLeft(event.peerId, event.reason);
      case 'signal':
        return h.signal(event.from, event.data);
      case 'problem':
        return h.problem?.(event.reason);
    }
  }
}

/**
 * The signalling a page should use: the WebSocket server when a URL is given (connected and joined,
 * with the peer id the server assigned), else BroadcastChannel (with a fresh id of this tab's own).
 */
export async function openSignalling(room: string, signalUrl?: string, opts: WebSocketSignallingOptions = {}): Promise<Signalling> {
  return signalUrl ? WebSocketSignalling.connect(signalUrl, room, opts) : new BroadcastChannelSignalling(room, newPeerId());
}

/**
 * Why a socket to the signalling server failed, as far as a page can tell: a browser reports a refused
 * connection, a refused origin and a certificate it does not trust alike. Over wss:// the last is what a
 * student meets when the teacher's server made a new certificate since the page was opened.
 */
export function unreachableServerReason(url: string): string {
  const causes = "not running, unreachable, or it refused this page's origin: see its --allow-origin";
  if (!url.startsWith('wss:')) return `cannot reach signalling server ${url} (${causes})`;
  return `cannot reach signalling server ${url} (${causes}; or its certificate changed since this page was opened: reload the page and accept the new certificate)`;
}

/** The server's reason for refusing a join, told so that a student knows what to do. */
export function joinRefusedReason(reason: string): string {
  if (reason.startsWith('room full')) return `signalling server: ${reason}. This tab did not join (the room's tabs go on without it): ask for another room`;
  return `signalling server: ${reason}`;
}
