// Integration: the real server on an ephemeral port, real `ws` clients.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { startSignallingServer, type RunningServer } from './server';
import type { ServerMessage } from '../src/peer/signal-protocol';

let server: RunningServer;
let url: string;

beforeAll(async () => {
  server = await startSignallingServer({ port: 0, host: '127.0.0.1', maxPayload: 4096, rateBurst: 20, ratePerSecond: 1 });
  url = `ws://127.0.0.1:${server.port}`;
});
afterAll(() => server.close());

/** A client that queues every message so that tests can await them in order. */
class Client {
  readonly socket: WebSocket;
  private queue: ServerMessage[] = [];
  private waiters: Array<(m: ServerMessage) => void> = [];
  readonly closed: Promise<number>;

  constructor(origin?: string) {
    this.socket = new WebSocket(url, origin ? { origin } : {});
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

async function joined(room: string, peerId: string): Promise<Client> {
  const client = new Client('http://127.0.0.1:5173');
  await client.opened();
  client.send({ type: 'join', room, peerId });
  expect(await client.next()).toMatchObject({ type: 'welcome', room, peerId });
  return client;
}

describe('signalling server', () => {
  it('answers GET /health with 200 ok', async () => {
    const res = await fetch(`http://127.0.0.1:${server.port}/health`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('ok');
  });

  it('joins, relays signals between members, and forgets the room when it empties', async () => {
    const a = await joined('ROOM1', 'peer-a');
    const b = await joined('ROOM1', 'peer-b');
    expect(await a.next()).toEqual({ type: 'peer-joined', peerId: 'peer-b' });
    b.send({ type: 'signal', to: 'peer-a', data: { type: 'offer', sdp: 'v=0' } });
    expect(await a.next()).toEqual({ type: 'signal', from: 'peer-b', data: { type: 'offer', sdp: 'v=0' } });
    expect(server.registry.members('ROOM1')).toEqual(['peer-a', 'peer-b']);

    b.socket.close();
    expect(await a.next()).toEqual({ type: 'peer-left', peerId: 'peer-b' });
    a.send({ type: 'leave' });
    await expect.poll(() => server.registry.roomCount()).toBe(0);
    a.socket.close();
  });

  it('refuses a malformed message with a reason and keeps the connection', async () => {
    const a = await joined('ROOM2', 'peer-a');
    a.send('{"type":"signal","to":"peer-zz","data":"nope"}');
    expect(await a.next()).toEqual({ type: 'error', reason: 'signal data must be an object' });
    a.send('garbage');
    expect(await a.next()).toEqual({ type: 'error', reason: 'not JSON' });
    a.send({ type: 'signal', to: 'peer-zz', data: {} });
    expect(await a.next()).toEqual({ type: 'error', reason: 'no peer peer-zz in this room' });
    a.socket.close();
  });

  it('closes a connection that sends an oversize message (1009) and removes its peer', async () => {
    const a = await joined('ROOM3', 'peer-a');
    const b = await joined('ROOM3', 'peer-b');
    await a.next(); // peer-joined
    b.send({ type: 'signal', to: 'peer-a', data: { blob: 'x'.repeat(8000) } });
    expect(await b.closed).toBe(1009);
    expect(await a.next()).toEqual({ type: 'peer-left', peerId: 'peer-b' });
    a.socket.close();
  });

  it('rate-limits a flooding connection', async () => {
    const a = await joined('ROOM4', 'peer-a');
    for (let i = 0; i < 30; i++) a.send({ type: 'signal', to: 'peer-nobody', data: {} });
    const replies: ServerMessage[] = [];
    for (let i = 0; i < 30; i++) replies.push(await a.next());
    const limited = replies.filter((m) => m.type === 'error' && /rate limit/.test(m.reason));
    expect(limited.length).toBeGreaterThanOrEqual(9);
    a.socket.close();
  });

  it('refuses a WebSocket from a foreign origin', async () => {
    const evil = new Client('https://evil.example');
    await expect(evil.opened()).rejects.toThrow(/403/);
  });
});
