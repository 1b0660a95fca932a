// The standalone signalling server (Node only): an HTTP server that carries the signalling service
// (signalling.ts) on '/' and '/signal', plus `GET /health` for process supervisors and tests. The same
// service attaches to the page's own HTTP(S) server under `npm start` (one origin, one port), through
// `createSignalling`, re-exported here.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createSignalling, type SignallingOptions } from './signalling';
import type { RoomRegistry } from './rooms';

export { createSignalling, DEFAULT_SIGNALLING_LIMITS, CLOSE } from './signalling';
export type { Signalling, SignallingLimits, SignallingOptions } from './signalling';
export { ICE_FLAGS, ICE_FLAGS_USAGE, applyIceFlag, iceConfigFromEnv, validateIceConfig } from './ice';
export type { IceConfig } from './ice';

export interface SignallingServerOptions extends Omit<SignallingOptions, 'paths'> {
  port: number;
  host?: string;
}

export interface RunningServer {
  port: number;
  registry: RoomRegistry;
  allowedOrigins(): string[];
  close(): Promise<void>;
}

export const DEFAULT_PORT = 8787;

/** Slow or silent HTTP clients are cut off after this long (headers and whole request). */
const REQUEST_TIMEOUT_MS = 10_000;

export function startSignallingServer(opts: SignallingServerOptions): Promise<RunningServer> {
  const signalling = createSignalling({ ...opts, paths: ['/', '/signal'] });
  const http: Server = createServer((req, res) => {
    if (signalling.handleRequest(req, res)) return;
    if (req.method === 'GET' && req.url === '/health') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
  });
  http.headersTimeout = REQUEST_TIMEOUT_MS;
  http.requestTimeout = REQUEST_TIMEOUT_MS;
  http.on('upgrade', (req, socket, head) => {
    if (!signalling.handleUpgrade(req, socket, head)) socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n');
  });
  http.on('clientError', (_err, socket) => socket.destroy());

  return new Promise((resolve, reject) => {
    http.once('error', reject);
    http.listen(opts.port, opts.host ?? '0.0.0.0', () => {
      const port = (http.address() as AddressInfo).port;
      resolve({
        port,
        registry: signalling.registry,
        allowedOrigins: () => signalling.allowedOrigins(),
        close: async () => {
          await signalling.close();
          http.closeAllConnections();
          await new Promise<void>((done) => http.close(() => done()));
        },
      });
    });
  });
}
