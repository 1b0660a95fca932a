// TEMPORARY: until server/server.ts exports `createSignalling` (the `server` helper's same-origin API),
// this gives today's `startSignallingServer` that API's shape: the real server listens on an ephemeral
// loopback port and `/signal` upgrades on the page's own server are piped to it byte for byte; the
// HTTP side (`/signal/health`, `/signal/ice`) is answered here. Replace every import of this file by
// server/server.ts's createSignalling and delete it once that lands.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { connect, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { startSignallingServer, type RunningServer } from '../server/server';
import { iceResponse, type IceConfig } from './ice-config';

export interface SignallingOptions {
  /** Origins whose pages may open the socket (exact `scheme://host:port`). */
  allowOrigins: string[];
  ice: IceConfig;
  log?: (line: string) => void;
}

export interface Signalling {
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean;
  handleRequest(req: IncomingMessage, res: ServerResponse): boolean;
  close(): Promise<void>;
}

export const SIGNAL_PATH = '/signal';

export function pathOf(url: string | undefined): string {
  return (url ?? '').split('?')[0];
}

export function createSignalling(opts: SignallingOptions): Signalling {
  const inner: Promise<RunningServer> = startSignallingServer({ port: 0, host: '127.0.0.1', allowOrigins: opts.allowOrigins, log: opts.log });
  const open = new Set<Duplex>();
  return {
    handleUpgrade(req, socket, head) {
      if (pathOf(req.url) !== SIGNAL_PATH) return false;
      open.add(socket);
      socket.on('close', () => open.delete(socket));
      socket.on('error', () => socket.destroy());
      void inner.then(({ port }) => {
        const upstream: Socket = connect(port, '127.0.0.1', () => {
          const head0 = [`${req.method} / HTTP/1.1`];
          for (let i = 0; i < req.rawHeaders.length; i += 2) head0.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`);
          upstream.write(`${head0.join('\r\n')}\r\n\r\n`);
          if (head.length > 0) upstream.write(head);
          socket.pipe(upstream).pipe(socket);
        });
        upstream.on('error', () => socket.destroy());
        socket.on('close', () => upstream.destroy());
      }, () => socket.destroy());
      return true;
    },
    handleRequest(req, res) {
      const path = pathOf(req.url);
      if (req.method !== 'GET' || (path !== `${SIGNAL_PATH}/health` && path !== `${SIGNAL_PATH}/ice`)) return false;
      const body = path.endsWith('/health') ? { ok: true } : iceResponse(opts.ice, Date.now());
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(JSON.stringify(body));
      return true;
    },
    async close() {
      for (const socket of open) socket.destroy();
      await (await inner).close();
    },
  };
}
