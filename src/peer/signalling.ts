// How tabs of a room find each other and exchange WebRTC offers, answers and ICE candidates.
// Two implementations of one interface:
// - BroadcastChannelSignalling (default): tabs of one browser profile, no server at all.
// - WebSocketSignalling: through server/ (npm run server), for browsers on different machines.
// Signalling only introduces peers; all training traffic then flows over WebRTC data channels.
import { PEER_ID_PATTERN, isParseError, parseServerMessage, type SignalData } from './signal-protocol';

export type { SignalData } from './signal-protocol';

export interface SignallingHandlers {
  /**
   * A member is in the room (it entered, was there when we joined, or refreshed its presence). May be
   * called again for a known member: handlers must be idempotent.
   */
  peerJoined(peerId: string): void;
  /** A member left the room (said goodbye, or the server saw its socket close). */
  peerLeft(peerId: string): void;
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

/**
 * Tabs of one browser profile meet on a BroadcastChannel named after the room. A newcomer says
 * `hello`; everyone answers `here` to it, so both sides learn of each other without a server. Every
 * tab repeats its `hello` every `presenceMs`, so a tab that a peer dropped as silent (a tab frozen on
 * a loaded machine) is re-announced once it runs again; a closed tab says `bye` and then nothing.
 */
export class BroadcastChannelSignalling implements Signalling {
  readonly kind = 'broadcast' as const;
  private channel: BroadcastChannel | null = null;
  private known = new Set<string>();
  private presence: ReturnType<typeof setInterval> | undefined;

  constructor(
    readonly room: string,
    readonly peerId: string,
    /** Presence refresh interval; 0 turns it off. */
    private readonly presenceMs = 3000,
  ) {}

  join(handlers: SignallingHandlers): Promise<void> {
    if (this.channel) return Promise.reject(new Error('already joined'));
    const channel = new BroadcastChannel(`webgpu-lab-room:${this.room}`);
    this.channel = channel;
    const meet = (peerId: string) => {
      if (peerId === this.peerId) return;
      this.known.add(peerId);
      handlers.peerJoined(peerId);
    };
    channel.onmessage = (event: MessageEvent) => {
      const msg = parseBroadcast(event.data);
      if (!msg || msg.from === this.peerId) return;
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
          if (this.known.delete(msg.from)) handlers.peerLeft(msg.from);
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
    return Promise.resolve();
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
    this.known.clear();
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

const OPEN = 1;

export class WebSocketSignalling implements Signalling {
  readonly kind = 'websocket' as const;
  private socket: WebSocketLike | null = null;

  constructor(
    readonly url: string,
    readonly room: string,
    readonly peerId: string,
    private readonly factory: WebSocketFactory = (u) => new WebSocket(u) as unknown as WebSocketLike,
    private readonly timeoutMs = 10_000,
  ) {}

  join(handlers: SignallingHandlers): Promise<void> {
    if (this.socket) return Promise.reject(new Error('already joined'));
    return new Promise((resolve, reject) => {
      let welcomed = false;
      const fail = (reason: string) => {
        if (welcomed) handlers.problem?.(reason);
        else reject(new Error(reason));
      };
      const timer = setTimeout(() => {
        fail(`signalling server ${this.url} did not answer within ${this.timeoutMs} ms`);
        this.leave();
      }, this.timeoutMs);
      const socket = this.factory(this.url);
      this.socket = socket;
      socket.onopen = () => socket.send(JSON.stringify({ type: 'join', room: this.room, peerId: this.peerId }));
      socket.onerror = () => fail(`cannot reach signalling server ${this.url}`);
      socket.onclose = (ev) => {
        clearTimeout(timer);
        if (this.socket === socket) this.socket = null;
        fail(`signalling connection closed (${ev.code}${ev.reason ? ` ${ev.reason}` : ''})`);
      };
      socket.onmessage = (ev) => {
        if (typeof ev.data !== 'string') return fail('signalling server sent binary data');
        const msg = parseServerMessage(ev.data);
        if (isParseError(msg)) return fail(`bad message from signalling server: ${msg.error}`);
        switch (msg.type) {
          case 'welcome':
            welcomed = true;
            clearTimeout(timer);
            for (const member of msg.members) handlers.peerJoined(member);
            resolve();
            break;
          case 'peer-joined':
            handlers.peerJoined(msg.peerId);
            break;
          case 'peer-left':
            handlers.peerLeft(msg.peerId);
            break;
          case 'signal':
            handlers.signal(msg.from, msg.data);
            break;
          case 'error':
            fail(`signalling server: ${msg.reason}`);
            break;
        }
      };
    });
  }

  signal(to: string, data: SignalData): void {
    if (this.socket?.readyState === OPEN) this.socket.send(JSON.stringify({ type: 'signal', to, data }));
  }

  leave(): void {
    const socket = this.socket;
    if (!socket) return;
    this.socket = null;
    socket.onclose = null;
    if (socket.readyState === OPEN) socket.send(JSON.stringify({ type: 'leave' }));
    socket.close(1000, 'leave');
  }
}

/** The signalling a page should use: the WebSocket server when a URL is given, else BroadcastChannel. */
export function createSignalling(room: string, peerId: string, signalUrl?: string): Signalling {
  return signalUrl ? new WebSocketSignalling(signalUrl, room, peerId) : new BroadcastChannelSignalling(room, peerId);
}
