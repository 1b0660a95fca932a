// The same-origin signalling as `npm run dev` and the e2e server have it: a real Vite dev server with
// the lab-server plugin, a real WebSocket client.
import type { AddressInfo } from 'node:net';
import { createServer, type ViteDevServer } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { labViteConfig } from '../vite.config';
import { ISOLATION_HEADERS, labServerPlugin, NO_ICE } from './lab-server-plugin';
import { parseLabServerInfo } from '../src/lab/lab-server';
import { DEFAULT_TURN_TTL_SECONDS } from '../server/ice';

let vite: ViteDevServer;
let origin: string;

beforeAll(async () => {
  const base = labViteConfig();
  vite = await createServer({ ...base, configFile: false, logLevel: 'silent', server: { ...base.server, port: 0, hmr: false }, optimizeDeps: { noDiscovery: true } });
  await vite.listen();
  origin = `http://127.0.0.1:${(vite.httpServer!.address() as AddressInfo).port}`;
});
afterAll(() => vite.close());

/** Opens /signal with the given Origin header and joins a room: the first answer, or the refusal. */
function join(pageOrigin: string): Promise<string> {
  return new Promise((resolve) => {
    const socket = new WebSocket(`${origin.replace('http', 'ws')}/signal`, { origin: pageOrigin });
    socket.on('open', () => socket.send(JSON.stringify({ type: 'join', room: 'plugin-test' })));
    socket.on('message', (data) => {
      resolve(JSON.parse(String(data)).type as string);
      socket.close();
    });
    socket.on('error', (error) => resolve(`error: ${error.message}`));
  });
}

describe('the lab-server plugin', () => {
  it('tells the page where its signalling is, and that it is not to use it unasked (npm run dev)', async () => {
    const html = await (await fetch(`${origin}/`)).text();
    const content = /<meta name="lab-server" content="([^"]*)"/.exec(html)?.[1].replaceAll('&quot;', '"');
    expect(parseLabServerInfo(content)).toEqual({ signalPath: '/signal', discover: false, shareOrigin: null });
  });

  it('serves the signalling on the same origin: health, ICE servers, and the socket for its own pages only', async () => {
    expect(await (await fetch(`${origin}/signal/health`)).text()).toBe('ok');
    expect(await (await fetch(`${origin}/signal/ice`)).json()).toEqual({ iceServers: [], ttlSeconds: DEFAULT_TURN_TTL_SECONDS });
    expect(await join(origin)).toBe('welcome');
    expect(await join('http://evil.example')).toMatch(/error: Unexpected server response: 403/);
  });

  it('isolates every answer (COOP same-origin, COEP require-corp): the page, a module, the signalling', async () => {
    for (const path of ['/', '/src/main.tsx', '/index.html', '/signal/health']) {
      const response = await fetch(`${origin}${path}`);
      expect(response.status, path).toBe(200);
      expect(response.headers.get('cross-origin-opener-policy'), path).toBe('same-origin');
      expect(response.headers.get('cross-origin-embedder-policy'), path).toBe('require-corp');
    }
  });

  it('isolates the preview server too (vite preview)', () => {
    const used: unknown[] = [];
    const plugin = labServerPlugin({ discover: false, shareOrigin: null, allowOrigins: null, ice: NO_ICE });
    const hook = plugin.configurePreviewServer as (server: { middlewares: { use(m: unknown): void } }) => void;
    hook({ middlewares: { use: (m) => used.push(m) } });
    expect(used).toHaveLength(1);
    const headers: Record<string, string> = {};
    let passed = false;
    (used[0] as (req: unknown, res: { setHeader(n: string, v: string): void }, next: () => void) => void)({}, { setHeader: (n, v) => (headers[n] = v) }, () => (passed = true));
    expect(headers).toEqual(ISOLATION_HEADERS);
    expect(passed).toBe(true);
  });
});
