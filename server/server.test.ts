// Integration: the real server on an ephemeral port, real `ws` clients; and the same service attached
// to a page's own HTTP server (one origin, one port).
import { createServer, get as httpGet, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { createSignalling, startSignallingServer, type RunningServer, type Signalling } from './server';
import type { ServerMessage } from '../src/peer/signal-protocol';

const PAGE = 'http://127.0.0.1:5173';
let server: RunningServer;
let url: string;

beforeAll(async () => {
  server = await startSignallingServer({
    port: 0,
    host: '127.0.0.1',
    allowOrigins: [PAGE],
    limits: { maxMessageBytes: 4096, messageBurst: 20, messagesPerSecond: 1, refusalBurst: 5 },
  });
  url = `ws://127.0.0.1:${server.port}`;
});
afterAll(() => server.close());

/** A client that queues every message so that tests can await them in order. */
class Client {
  readonly socket: WebSocket;
  private queue: ServerMessage[] = [];
  private waiters: Array<(m: ServerMessage) => void> = [];
  readonly closed: Promise<number>;

  constructor(origin?: string, target = url) {
    this.socket = new WebSocket(target, origin ? { origin } : {});
    this.socket.on('message', (data) => {
      const msg = JSON.parse(data.toString()) as ServerMessage;
      const waiter = this.waiters.shift();
      if (waiter) waiter(msg);
      else this.queue.push(msg);
    });
    this.closed = new Promise((resolve) => this.socket.on('close', (code) => resolve(code)));
  }

  opened(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.socket.once('open', () => resolve());
      this.socket.once('error', reject);
    });
  }

  next(): Promise<ServerMessage> {
    const queued = this.queue.shift();
    if (queued) return Promise.resolve(queued);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no message within 5 s')), 5000);
      this.waiters.push((m) => {
        clearTimeout(timer);
        resolve(m);
      });
    });
  }

  send(msg: unknown): void {
    this.socket.send(typeof msg === 'string' ? msg : JSON.stringify(msg));
  }
}

async function joined(room: string, target = url, origin = PAGE): Promise<{ client: Client; peerId: string; welcome: ServerMessage }> {
  const client = new Client(origin, target);
  await client.opened();
  client.send({ type: 'join', room });
  const welcome = await client.next();
  expect(welcome).toMatchObject({ type: 'welcome', room });
  return { client, peerId: (welcome as { peerId: string }).peerId, welcome };
}

describe('standalone signalling server', () => {
  it('answers GET /health and GET /signal/health with 200 ok', async () => {
    for (const path of ['/health', '/signal/health']) {
      const res = await fetch(`http://127.0.0.1:${server.port}${path}`);
      expect(res.status).toBe(200);
      expect(await res.text()).toBe('ok');
    }
  });

  it('joins on / and /signal, relays signals between members, and forgets the room when it empties', async () => {
    const a = await joined('ROOM1');
    const b = await joined('ROOM1', `${url}/signal`);
    expect(await a.client.next()).toEqual({ type: 'peer-joined', peerId: b.peerId });
    b.client.send({ type: 'signal', to: a.peerId, data: { type: 'offer', sdp: 'v=0' } });
    expect(await a.client.next()).toEqual({ type: 'signal', from: b.peerId, data: { type: 'offer', sdp: 'v=0' } });
    expect(server.registry.members('ROOM1')).toEqual([a.peerId, b.peerId]);

    b.client.socket.close();
    expect(await a.client.next()).toEqual({ type: 'peer-left', peerId: b.peerId, reason: 'disconnected' });
    a.client.send({ type: 'leave' });
    await expect.poll(() => server.registry.roomCount()).toBe(0);
    a.client.socket.close();
  });

  it('refuses a malformed message with a reason and keeps the connection (up to the refusal burst)', async () => {
    const { client: a } = await joined('ROOM2');
    a.send('{"type":"signal","to":"peer-zz","data":"nope"}');
    expect(await a.next()).toEqual({ type: 'error', reason: 'signal data must be an object' });
    a.send('garbage');
    expect(await a.next()).toEqual({ type: 'error', reason: 'not JSON' });
    a.send({ type: 'signal', to: 'peer-zz', data: {} });
    expect(await a.next()).toEqual({ type: 'error', reason: 'no peer peer-zz in this room' });
    expect(a.socket.readyState).toBe(WebSocket.OPEN);
    a.socket.close();
  });

  it('closes a connection that sends an oversize message (1009) and removes its peer', async () => {
    const a = await joined('ROOM3');
    const b = await joined('ROOM3');
    await a.client.next(); // peer-joined
    b.client.send({ type: 'signal', to: a.peerId, data: { blob: 'x'.repeat(8000) } });
    expect(await b.client.closed).toBe(1009);
    expect(await a.client.next()).toEqual({ type: 'peer-left', peerId: b.peerId, reason: 'disconnected' });
    a.client.socket.close();
  });

  it('closes a flooding connection (1008) instead of answering each message', async () => {
    const a = await joined('ROOM4');
    const b = await joined('ROOM4');
    for (let i = 0; i < 30; i++) a.client.send({ type: 'signal', to: b.peerId, data: { i } });
    expect(await a.client.closed).toBe(1008);
    b.client.socket.close();
  });

  it('refuses a WebSocket from a foreign origin, and from another port of the same host', async () => {
    await expect(new Client('https://evil.example').opened()).rejects.toThrow(/403/);
    await expect(new Client('http://127.0.0.1:5174').opened()).rejects.toThrow(/403/);
  });

  it('refuses a client-chosen peer id with a reason', async () => {
    const c = new Client(PAGE);
    await c.opened();
    c.send({ type: 'join', room: 'ROOM5', peerId: '000000000-aaaa' });
    expect(await c.next()).toMatchObject({ type: 'error', reason: expect.stringMatching(/server assigns peer ids/) });
    c.socket.close();
  });
});

describe('signalling attached to a page server (one origin, one port)', () => {
  let http: Server;
  let signalling: Signalling;
  let origin: string;
  beforeAll(async () => {
    http = createServer((req, res) => {
      if (!signalling.handleRequest(req, res)) res.writeHead(200, { 'content-type': 'text/html' }).end('the page');
    });
    http.on('upgrade', (req, socket, head) => {
      if (!signalling.handleUpgrade(req, socket, head)) socket.destroy();
    });
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    origin = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
    signalling = createSignalling({
      allowOrigins: [origin],
      ice: { stun: ['stun:127.0.0.1:3478'], turn: ['turn:127.0.0.1:3478'], turnSecret: 'S', ttlSeconds: 3600 },
    });
  });
  afterAll(async () => {
    await signalling.close();
    http.closeAllConnections();
    await new Promise<void>((resolve) => http.close(() => resolve()));
  });

  it('leaves other paths to the page server', async () => {
    expect(await (await fetch(`${origin}/index.html`)).text()).toBe('the page');
    await expect(new Client(origin, `${origin.replace('http', 'ws')}/other`).opened()).rejects.toThrow();
  });

  it('hands out ICE servers with TURN credentials, in the welcome and at GET /signal/ice', async () => {
    const res = await fetch(`${origin}/signal/ice`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { iceServers: { urls: string[]; username?: string; credential?: string }[]; ttlSeconds: number };
    expect(body.ttlSeconds).toBe(3600);
    expect(body.iceServers[1].username).toMatch(/^\d+:lab$/);
    expect(Number(body.iceServers[1].username!.split(':')[0]) - Date.now() / 1000).toBeGreaterThan(3590);
    const { client, peerId, welcome } = await joined('ATTACHED', `${origin.replace('http', 'ws')}/signal`, origin);
    client.socket.close();
    expect(peerId).toMatch(/^[0-9a-z]{9}-/);
    expect(welcome).toMatchObject({ iceServers: [{ urls: ['stun:127.0.0.1:3478'] }, { urls: ['turn:127.0.0.1:3478'], username: expect.stringMatching(new RegExp(`^\\d+:${peerId}$`)) }] });
  });

  it('refuses the ICE credentials to a DNS-rebinding page (another Host) and to a foreign Origin', async () => {
    const port = (http.address() as AddressInfo).port;
    const get = (headers: Record<string, string>) =>
      new Promise<number>((resolve, reject) => {
        const req = httpGet({ host: '127.0.0.1', port, path: '/signal/ice', headers }, (r) => {
          r.resume();
          resolve(r.statusCode ?? 0);
        });
        req.on('error', reject);
      });
    expect(await get({ host: `evil.example:${port}` })).toBe(403);
    expect(await get({ host: `127.0.0.1:${port}`, origin: 'https://evil.example' })).toBe(403);
    expect(await get({ host: `127.0.0.1:${port}` })).toBe(200);
    const cors = await fetch(`${origin}/signal/ice`, { headers: { origin } });
    expect(cors.headers.get('access-control-allow-origin')).toBe(origin);
  });
});
