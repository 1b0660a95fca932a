// The signalling server (Node only): HTTP for `GET /health`, WebSocket for rooms. Tabs use it to find
// each other across browsers and machines; it relays WebRTC offers/answers/candidates and nothing else
// (training data flows peer to peer). Every message is validated; sizes, rates, rooms and origins are
// bounded (see rooms.ts for the rules).
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { isParseError, parseClientMessage, type ServerMessage } from '../src/peer/signal-protocol';
import { DEFAULT_ROOM_LIMITS, RateLimiter, RoomRegistry, isOriginAllowed, type ConnId, type RoomLimits } from './rooms';

export interface SignallingServerOptions {
  port: number;
  host?: string;
  /** Extra allowed origins ('*' for any); localhost and the server's own host are always allowed. */
  allowOrigins?: string[];
  limits?: RoomLimits;
  /** Largest WebSocket message accepted, bytes (ws closes the socket with 1009 beyond it). */
  maxPayload?: number;
  /** Rate limit per connection: burst size and sustained messages per second. */
  rateBurst?: number;
  ratePerSecond?: number;
  /** Interval of WebSocket pings; a socket that missed one is terminated (its peer leaves). */
  pingIntervalMs?: number;
  log?: (line: string) => void;
}

export interface RunningServer {
  port: number;
  registry: RoomRegistry;
  close(): Promise<void>;
}

export const DEFAULT_PORT = 8787;
export const DEFAULT_MAX_PAYLOAD = 64 * 1024;

export function startSignallingServer(opts: SignallingServerOptions): Promise<RunningServer> {
  const log = opts.log ?? (() => {});
  const registry = new RoomRegistry(opts.limits ?? DEFAULT_ROOM_LIMITS);
  const sockets = new Map<ConnId, WebSocket>();
  const alive = new Map<ConnId, boolean>();
  let nextConn = 1;

  const http: Server = createServer((req, res) => {
    if (req.method === 'GET' && req.url === '/health') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
  });

  const wss = new WebSocketServer({
    server: http,
    maxPayload: opts.maxPayload ?? DEFAULT_MAX_PAYLOAD,
    verifyClient: (
      info: { origin: string; req: IncomingMessage },
      done: (ok: boolean, code?: number, message?: string) => void,
    ) => {
      const origin = info.req.headers.origin;
      if (isOriginAllowed(origin, opts.allowOrigins ?? [], info.req.headers.host)) return done(true);
      log(`refused origin ${origin}`);
      done(false, 403, 'origin not allowed');
    },
  });

  const deliver = (outgoing: { to: ConnId; message: ServerMessage }[]) => {
    for (const { to, message } of outgoing) {
      const socket = sockets.get(to);
      if (socket && socket.readyState === socket.OPEN) socket.send(JSON.stringify(message));
    }
  };

  wss.on('connection', (socket) => {
    const conn = nextConn++;
    sockets.set(conn, socket);
    alive.set(conn, true);
    const limiter = new RateLimiter(opts.rateBurst ?? 200, opts.ratePerSecond ?? 50, performance.now());
    socket.on('pong', () => alive.set(conn, true));
    socket.on('message', (data, isBinary) => {
      const refuse = (reason: string) => deliver([{ to: conn, message: { type: 'error', reason } }]);
      if (!limiter.take(performance.now())) return refuse('rate limit exceeded: message dropped');
      if (isBinary) return refuse('binary messages are not part of the protocol');
      const msg = parseClientMessage(data.toString());
      if (isParseError(msg)) return refuse(msg.error);
      deliver(registry.handle(conn, msg));
    });
    socket.on('close', () => {
      sockets.delete(conn);
      alive.delete(conn);
      deliver(registry.leave(conn));
    });
    socket.on('error', (err) => log(`socket ${conn}: ${err.message}`));
  });

  // Browsers that vanish (crash, network drop) leave half-open sockets: ping, and drop the silent.
  const pinger = setInterval(() => {
    for (const [conn, socket] of sockets) {
      if (!alive.get(conn)) {
        socket.terminate();
        continue;
      }
      alive.set(conn, false);
      socket.ping();
    }
  }, opts.pingIntervalMs ?? 30_000);

  return new Promise((resolve, reject) => {
    http.once('error', reject);
    http.listen(opts.port, opts.host ?? '0.0.0.0', () => {
      const port = (http.address() as AddressInfo).port;
      resolve({
        port,
        registry,
        close: () =>
          new Promise<void>((done) => {
            clearInterval(pinger);
            for (const socket of sockets.values()) socket.terminate();
            wss.close(() => http.close(() => done()));
          }),
      });
    });
  });
}
