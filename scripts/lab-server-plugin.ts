// The lab's own server parts, as a Vite plugin (vite.config.ts), so `npm run dev`, `npm start` and the
// e2e server all have them on the page's own origin and port:
// - the signalling server at /signal (WebSocket upgrade) with GET /signal/health and GET /signal/ice
//   (one origin: one certificate covers page and socket, and an https page never meets mixed content);
// - a <meta name="lab-server"> in the page saying where the signalling is, whether the page should use
//   it by itself (`discover`, on under `npm start`), and which origin room links should carry (the LAN
//   address the teacher picked). src/lab/lab-server.ts reads it.
// - cross-origin isolation (COOP/COEP) on every response of every server that serves the page (dev,
//   preview, npm start's http and https servers, the e2e and swarm servers), so that the page may use
//   SharedArrayBuffer and the CPU backend runs its kernels on every core (src/engine/kernel-threads.ts).
//   Everything the page loads is its own origin's (modules, data, workers from Blob URLs); the
//   signalling WebSocket and WebRTC are not subject to COEP.
// Extra servers that share Vite's middlewares (start.ts's HTTPS LAN server) call `attach` for upgrades.
import type { Server as HttpServer } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { Plugin, ViteDevServer } from 'vite';
import type { LabServerInfo } from '../src/lab/lab-server';
import { NO_ICE, type IceConfig } from '../server/ice';
import { createSignalling, type Signalling } from '../server/signalling';

/**
 * Cross-origin isolation: the page gets its own browsing context group and loads no cross-origin
 * resource that has not opted in, and in exchange has SharedArrayBuffer (`crossOriginIsolated`).
 * require-corp rather than credentialless: every browser with SharedArrayBuffer knows it.
 */
export const ISOLATION_HEADERS: Readonly<Record<string, string>> = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
};

type Middleware = (req: unknown, res: { setHeader(name: string, value: string): unknown }, next: () => void) => void;

/** Sets ISOLATION_HEADERS on every response that passes through (Vite's own middlewares come after it). */
export const isolate: Middleware = (_req, res, next) => {
  for (const [name, value] of Object.entries(ISOLATION_HEADERS)) res.setHeader(name, value);
  next();
};

/** Where the signalling lives on the page's own origin (server/signalling.ts serves this path). */
export const SIGNAL_PATH = '/signal';

export interface LabServerOptions {
  /** Pages use the same-origin signalling without `signal=` (npm start). Off: BroadcastChannel unless signal= is given. */
  discover: boolean;
  /** The origin room links carry, e.g. "https://192.168.1.20:5443"; null: the page's own. */
  shareOrigin: string | null;
  /**
   * Page origins allowed to open /signal, asked on first use (start.ts knows its ports only once it
   * listens); null: this server's own loopback origins.
   */
  allowOrigins: (() => string[]) | null;
  ice: IceConfig;
  log?: (line: string) => void;
}


export interface LabServerPlugin extends Plugin {
  /** Routes /signal upgrades of another server sharing Vite's middlewares (e.g. the HTTPS LAN server). */
  attach(server: HttpServer | HttpsServer): void;
  /** The origin room links carry from now on (known once the LAN server listens). */
  setShareOrigin(origin: string | null): void;
  close(): Promise<void>;
}

/** The tag's name; src/lab/lab-server.ts reads the same (a type-only import keeps the page's modules out of Vite's config bundle). */
const LAB_SERVER_META = 'lab-server';

/** No STUN/TURN: one machine or one LAN needs none. */
export { NO_ICE };

function loopbackOrigins(server: HttpServer | null): string[] {
  const address = server?.address();
  if (!address || typeof address === 'string') return [];
  const scheme = 'cert' in (server as object) ? 'https' : 'http';
  return ['127.0.0.1', 'localhost', '[::1]'].map((host) => `${scheme}://${host}:${address.port}`);
}

export function labServerPlugin(options: LabServerOptions): LabServerPlugin {
  let signalling: Signalling | null = null;
  let vite: ViteDevServer | null = null;
  // Created on first use: the origins of `npx vite --port N` are known only once it listens.
  const ensure = (): Signalling => {
    signalling ??= createSignalling({
      allowOrigins: options.allowOrigins ? options.allowOrigins() : loopbackOrigins((vite?.httpServer as HttpServer | null) ?? null),
      ice: options.ice,
      log: options.log,
    });
    return signalling;
  };
  const onUpgrade = (req: Parameters<Signalling['handleUpgrade']>[0], socket: Parameters<Signalling['handleUpgrade']>[1], head: Buffer) => {
    if ((req.url ?? '').split('?')[0] === SIGNAL_PATH) ensure().handleUpgrade(req, socket, head);
  };
  const meta: LabServerInfo = { signalPath: SIGNAL_PATH, discover: options.discover, shareOrigin: options.shareOrigin };
  const plugin: LabServerPlugin = {
    name: 'lab-server',
    apply: 'serve',
    configureServer(server) {
      vite = server;
      server.httpServer?.on('upgrade', onUpgrade);
      server.httpServer?.on('close', () => void plugin.close());
      // First, so that every answer (pages, modules, data, the signalling's own) carries it; the https
      // server of npm start shares these middlewares.
      server.middlewares.use(isolate);
      server.middlewares.use((req, res, next) => {
        if ((req.url ?? '').startsWith(`${SIGNAL_PATH}/`) && ensure().handleRequest(req, res)) return;
        next();
      });
    },
    configurePreviewServer(server) {
      server.middlewares.use(isolate);
    },
    transformIndexHtml() {
      return [{ tag: 'meta', attrs: { name: LAB_SERVER_META, content: JSON.stringify(meta) }, injectTo: 'head' }];
    },
    setShareOrigin(origin) {
      meta.shareOrigin = origin;
    },
    attach(server) {
      // Nothing else listens for upgrades there: refuse the rest at once (Vite's client tries its hot
      // reload socket on every origin, and a browser queues a page's later sockets to a host behind
      // one still connecting, so a left-open upgrade would stall the signalling socket).
      server.on('upgrade', (req, socket, head) => {
        if ((req.url ?? '').split('?')[0] === SIGNAL_PATH) ensure().handleUpgrade(req, socket, head);
        else socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n');
      });
    },
    async close() {
      const current = signalling;
      signalling = null;
      await current?.close();
    },
  };
  return plugin;
}
