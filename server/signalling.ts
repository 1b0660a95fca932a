// The signalling service, attachable to any Node HTTP(S) server: WebSocket upgrades on its paths
// ('/signal', and '/' for the standalone server), `GET /signal/health` and `GET /signal/ice`. Tabs use
// it to find each other and relay WebRTC offers/answers/candidates; training data never passes here.
//
// It is meant to face a whole network, so every resource a client can make it spend is bounded, and
// a client that exceeds a bound is closed rather than answered:
// - parsing: a message's length is capped by ws (maxPayload) and again before JSON.parse, its depth by
//   a linear scan (signal-protocol.ts); nothing in the message path can throw, and a last-resort catch
//   closes the one socket instead of the process;
// - sending: a member that stops reading is closed once its unsent bytes pass `maxBufferedBytes`, so
//   the server never queues without limit for it;
// - receiving: per connection, a message-rate and a byte-rate bucket (a flooder is closed with 1008)
//   and a bucket of refused messages (a client that keeps sending bad messages is closed too);
// - admission: an explicit origin list (origins.ts), a global connection cap, per-address caps on
//   connections, rooms and joins (address-limits.ts), and a socket that has not joined within
//   `joinTimeoutMs` is closed;
// - identity: peer ids are assigned by the server (peer-ids.ts), so none can be chosen or taken over.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import { isParseError, parseClientMessage } from '../src/peer/signal-protocol';
import { AddressLimits, DEFAULT_ADDRESS_LIMITS, addressKey, type AddressLimitOptions } from './address-limits';
import { NO_ICE, iceServersFor, validateIceConfig, type IceConfig } from './ice';
import { OriginPolicy } from './origins';
import { DEFAULT_ROOM_LIMITS, RateLimiter, RoomRegistry, type ConnId, type Outgoing, type RoomLimits } from './rooms';

export interface SignallingLimits extends RoomLimits {
  /** Open WebSocket connections in all. */
  maxConnections: number;
  /** Per-address caps (see address-limits.ts). */
  perAddress: AddressLimitOptions;
  /** Largest WebSocket message accepted, bytes (ws closes the socket with 1009 beyond it). */
  maxMessageBytes: number;
  /** Messages per connection: burst, then sustained per second; beyond it the socket is closed. */
  messageBurst: number;
  messagesPerSecond: number;
  /** Bytes per connection: burst, then sustained per second; beyond it the socket is closed. */
  byteBurst: number;
  bytesPerSecond: number;
  /** Refused (malformed or misaddressed) messages per connection: burst, then per second. */
  refusalBurst: number;
  refusalsPerSecond: number;
  /** Unsent bytes queued for one socket; a reader that falls this far behind is closed. */
  maxBufferedBytes: number;
  /** A socket that is not in a room this long after connecting (or after leaving) is closed. */
  joinTimeoutMs: number;
  /** Interval of WebSocket pings; a socket that missed one is closed (its peer leaves). */
  pingIntervalMs: number;
}

export const DEFAULT_SIGNALLING_LIMITS: SignallingLimits = {
  ...DEFAULT_ROOM_LIMITS,
  maxConnections: 4096,
  perAddress: DEFAULT_ADDRESS_LIMITS,
  maxMessageBytes: 64 * 1024,
  // A tab setting up its links sends an offer or answer and a few candidates per link (seven links at
  // most in a full mesh): a few dozen messages and tens of KiB, far under these.
  messageBurst: 200,
  messagesPerSecond: 50,
  byteBurst: 512 * 1024,
  bytesPerSecond: 64 * 1024,
  refusalBurst: 20,
  refusalsPerSecond: 1,
  maxBufferedBytes: 1024 * 1024,
  joinTimeoutMs: 10_000,
  pingIntervalMs: 30_000,
};

export interface SignallingOptions {
  /** Browser origins allowed to open a WebSocket, exactly (e.g. 'https://192.168.1.20:5173'). */
  allowOrigins: string[];
  /** URL paths that take WebSocket upgrades (default ['/signal']). */
  paths?: string[];
  limits?: Partial<Omit<SignallingLimits, 'perAddress'>> & { perAddress?: Partial<AddressLimitOptions> };
  ice?: IceConfig;
  log?: (line: string) => void;
}

export interface Signalling {
  /** Handles an HTTP upgrade on one of its paths; returns false (socket untouched) for other paths. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean;
  /**
   * Handles GET /signal/health ('ok') and GET /signal/ice (JSON { iceServers, ttlSeconds }); returns
   * false (response untouched) for any other request.
   */
  handleRequest(req: IncomingMessage, res: ServerResponse): boolean;
  registry: RoomRegistry;
  /** The origins allowed, normalized (for the start-up banner). */
  allowedOrigins(): string[];
  /** Open connections (for tests and logs). */
  connectionCount(): number;
  close(): Promise<void>;
}

/** WebSocket close codes the server uses (4000-4999 are the application's). */
export const CLOSE = {
  policy: 1008,
  tooBig: 1009,
  internal: 1011,
  noJoin: 4000,
  slowReader: 4001,
} as const;

interface Connection {
  socket: WebSocket;
  address: string;
  alive: boolean;
  messages: RateLimiter;
  bytes: RateLimiter;
  refusals: RateLimiter;
  joinTimer: ReturnType<typeof setTimeout> | undefined;
  /** Being closed by the server: nothing more it sends is read. */
  dropping: boolean;
}

function pathOf(req: IncomingMessage): string {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  return q < 0 ? url : url.slice(0, q);
}

function refuseUpgrade(socket: Duplex, status: number, text: string): void {
  if (!socket.writable) return void socket.destroy();
  socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(text)}\r\n\r\n${text}`);
}

export function createSignalling(opts: SignallingOptions): Signalling {
  const limits: SignallingLimits = {
    ...DEFAULT_SIGNALLING_LIMITS,
    ...opts.limits,
    perAddress: { ...DEFAULT_SIGNALLING_LIMITS.perAddress, ...opts.limits?.perAddress },
  };
  const log = opts.log ?? (() => {});
  const origins = new OriginPolicy(opts.allowOrigins);
  const ice = validateIceConfig(opts.ice ?? NO_ICE);
  const paths = new Set(opts.paths ?? ['/signal']);
  const addresses = new AddressLimits(limits.perAddress);
  const registry = new RoomRegistry({ limits, iceServersFor: (peerId) => iceServersFor(ice, peerId) });
  const connections = new Map<ConnId, Connection>();
  let pendingUpgrades = 0;
  let nextConn = 1;
  let closed = false;

  const wss = new WebSocketServer({ noServer: true, maxPayload: limits.maxMessageBytes, clientTracking: false });

  /** Closes a connection with a reason the client sees; its room hears peer-left when the socket closes. */
  const drop = (conn: ConnId, code: number, reason: string) => {
    const c = connections.get(conn);
    if (!c || c.dropping) return;
    c.dropping = true;
    log(`closing connection ${conn} (${c.address}): ${reason}`);
    if (code === CLOSE.slowReader) return c.socket.terminate(); // its queue is the problem: add no close frame
    // Send the reason, stop reading (whatever else it sends stays in its own TCP buffers, not in this
    // process), and cut the connection shortly after, whether or not it completes the close handshake.
    c.socket.close(code, reason.slice(0, 120));
    c.socket.pause();
    setTimeout(() => c.socket.terminate(), 1000).unref();
  };

  const deliver = (outgoing: Outgoing[]) => {
    for (const { to, message } of outgoing) {
      const c = connections.get(to);
      if (!c || c.socket.readyState !== c.socket.OPEN) continue;
      const text = JSON.stringify(message);
      if (c.socket.bufferedAmount + text.length > limits.maxBufferedBytes) {
        drop(to, CLOSE.slowReader, `not reading: over ${limits.maxBufferedBytes} bytes queued`);
        continue;
      }
      c.socket.send(text);
    }
  };

  const armJoinTimer = (conn: ConnId, c: Connection) => {
    clearTimeout(c.joinTimer);
    c.joinTimer = setTimeout(() => drop(conn, CLOSE.noJoin, `no room joined within ${limits.joinTimeoutMs} ms`), limits.joinTimeoutMs);
  };

  const leaveRoom = (conn: ConnId, c: Connection, disconnected: boolean) => {
    const room = registry.roomOf(conn);
    if (room === undefined) return;
    deliver(registry.leave(conn, disconnected));
    addresses.left(c.address, room);
  };

  const onMessage = (conn: ConnId, c: Connection, data: RawData, isBinary: boolean) => {
    if (c.dropping) return;
    const now = performance.now();
    const size = Array.isArray(data) ? data.reduce((n, b) => n + b.length, 0) : data instanceof ArrayBuffer ? data.byteLength : data.length;
    if (!c.messages.take(now) || !c.bytes.take(now, size)) return drop(conn, CLOSE.policy, 'rate limit exceeded');
    const refuse = (reason: string) => {
      if (!c.refusals.take(now)) return drop(conn, CLOSE.policy, `too many refused messages (last: ${reason})`);
      deliver([{ to: conn, message: { type: 'error', reason } }]);
    };
    if (isBinary) return refuse('binary messages are not part of the protocol');
    const msg = parseClientMessage(data.toString());
    if (isParseError(msg)) return refuse(msg.error);
    switch (msg.type) {
      case 'join': {
        if (registry.roomOf(conn) !== undefined) return refuse('already in a room: leave first');
        const no = addresses.mayJoin(c.address, msg.room, now);
        if (no) return refuse(no);
        const out = registry.join(conn, msg.room);
        if (registry.roomOf(conn) === msg.room) {
          addresses.joined(c.address, msg.room);
          clearTimeout(c.joinTimer);
          c.joinTimer = undefined;
          return deliver(out);
        }
        const error = out[0]?.message;
        return refuse(error?.type === 'error' ? error.reason : 'join refused');
      }
      case 'leave':
        leaveRoom(conn, c, false);
        return armJoinTimer(conn, c);
      case 'signal': {
        const out = registry.relay(conn, msg.to, msg.data);
        const first = out[0];
        if (first && first.to === conn && first.message.type === 'error') return refuse(first.message.reason);
        return deliver(out);
      }
    }
  };

  const onConnection = (socket: WebSocket, address: string) => {
    const conn = nextConn++;
    const now = performance.now();
    const c: Connection = {
      socket,
      address,
      alive: true,
      messages: new RateLimiter(limits.messageBurst, limits.messagesPerSecond, now),
      bytes: new RateLimiter(limits.byteBurst, limits.bytesPerSecond, now),
      refusals: new RateLimiter(limits.refusalBurst, limits.refusalsPerSecond, now),
      joinTimer: undefined,
      dropping: false,
    };
    connections.set(conn, c);
    armJoinTimer(conn, c);
    socket.on('pong', () => (c.alive = true));
    socket.on('message', (data, isBinary) => {
      try {
        onMessage(conn, c, data, isBinary);
      } catch (err) {
        // Nothing above is meant to throw; if something does, this socket goes, not the process.
        log(`connection ${conn}: ${err instanceof Error ? err.message : String(err)}`);
        drop(conn, CLOSE.internal, 'internal error');
      }
    });
    socket.on('close', () => {
      clearTimeout(c.joinTimer);
      try {
        // A tab that closes says leave first; a crashed one cannot, and the browser closes its socket at once.
        leaveRoom(conn, c, true);
      } finally {
        connections.delete(conn);
      }
    });
    socket.on('error', (err) => log(`connection ${conn}: ${err.message}`));
  };

  // Browsers that vanish (crash, network drop) leave half-open sockets: ping, and drop the silent.
  const pinger = setInterval(() => {
    for (const [conn, c] of connections) {
      if (!c.alive) {
        log(`connection ${conn} (${c.address}) did not answer a ping: closed`);
        c.socket.terminate();
        continue;
      }
      c.alive = false;
      c.socket.ping();
    }
  }, limits.pingIntervalMs);
  const sweeper = setInterval(() => addresses.sweep(performance.now()), 5000);
  pinger.unref();
  sweeper.unref();

  return {
    registry,
    allowedOrigins: () => origins.list(),
    connectionCount: () => connections.size,

    handleUpgrade(req, socket, head) {
      if (!paths.has(pathOf(req))) return false;
      socket.on('error', () => socket.destroy());
      if (closed) {
        refuseUpgrade(socket, 503, 'server closing');
        return true;
      }
      const origin = req.headers.origin;
      if (!origins.allowsOrigin(origin)) {
        log(`refused origin ${String(origin).slice(0, 100)}`);
        refuseUpgrade(socket, 403, 'origin not allowed (the server takes pages from its own origins and --allow-origin)');
        return true;
      }
      if (connections.size + pendingUpgrades >= limits.maxConnections) {
        refuseUpgrade(socket, 503, 'server full: too many connections');
        return true;
      }
      const address = addressKey(req.socket.remoteAddress);
      const no = addresses.connect(address, performance.now());
      if (no) {
        refuseUpgrade(socket, 429, no);
        return true;
      }
      // The address's count follows the TCP socket, whatever becomes of the handshake.
      pendingUpgrades++;
      let pending = true;
      const settle = () => {
        if (pending) pendingUpgrades--;
        pending = false;
      };
      socket.once('close', () => {
        settle();
        addresses.disconnect(address);
      });
      wss.handleUpgrade(req, socket, head, (ws) => {
        settle();
        if (closed) return ws.terminate();
        onConnection(ws, address);
      });
      return true;
    },

    handleRequest(req, res) {
      const path = pathOf(req);
      if (path !== '/signal/health' && path !== '/signal/ice') return false;
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { 'content-type': 'text/plain', allow: 'GET' }).end('method not allowed');
        return true;
      }
      if (path === '/signal/health') {
        res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'no-store' }).end('ok');
        return true;
      }
      // Credentials go only to pages of the allowed origins: a cross-origin page is refused by its
      // Origin, a DNS-rebinding page (same-origin to itself, so no Origin) by the host it asked for.
      if (!origins.allowsOrigin(req.headers.origin) || !origins.allowsHost(req.headers.host)) {
        res.writeHead(403, { 'content-type': 'text/plain' }).end('not one of this server\'s origins');
        return true;
      }
      const body = JSON.stringify({ iceServers: iceServersFor(ice, 'lab'), ttlSeconds: ice.ttlSeconds });
      const headers: Record<string, string> = { 'content-type': 'application/json', 'cache-control': 'no-store', vary: 'origin' };
      // A page of an allowed origin fetching the standalone server (another port: cross-origin) may read it.
      if (req.headers.origin) headers['access-control-allow-origin'] = req.headers.origin;
      res.writeHead(200, headers).end(body);
      return true;
    },

    close() {
      closed = true;
      clearInterval(pinger);
      clearInterval(sweeper);
      for (const c of connections.values()) {
        clearTimeout(c.joinTimer);
        c.socket.terminate();
      }
      return new Promise<void>((done) => wss.close(() => done()));
    },
  };
}
