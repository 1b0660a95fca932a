// Both signalling implementations, for real: Node 20 has BroadcastChannel, and the WebSocket one talks
// to the real server (server/server.ts) through the `ws` client.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { startSignallingServer, type RunningServer } from '../../server/server';
import {
  BroadcastChannelSignalling,
  unreachableServerReason,
  WebSocketSignalling,
  type Signalling,
  type SignallingHandlers,
  type WebSocketLike,
} from './signalling';

/** Records what a signalling told us, with a way to wait for a condition. */
function recorder() {
  const log: string[] = [];
  const handlers: SignallingHandlers = {
    peerJoined: (id) => log.push(`joined ${id}`),
    peerLeft: (id) => log.push(`left ${id}`),
    signal: (from, data) => log.push(`signal ${from} ${JSON.stringify(data)}`),
    problem: (reason) => log.push(`problem ${reason}`),
  };
  return { log, handlers };
}

async function exerciseRoom(make: (peerId: string) => Signalling | Promise<Signalling>) {
  const a = await make('peer-aaaa');
  const b = await make('peer-bbbb');
  const ra = recorder();
  const rb = recorder();
  await a.join(ra.handlers);
  await b.join(rb.handlers);
  await expect.poll(() => ra.log).toContain(`joined ${b.peerId}`);
  await expect.poll(() => rb.log).toContain(`joined ${a.peerId}`);
  b.signal(a.peerId, { type: 'offer', sdp: 'v=0' });
  await expect.poll(() => ra.log).toContain(`signal ${b.peerId} {"type":"offer","sdp":"v=0"}`);
  b.leave();
  await expect.poll(() => ra.log).toContain(`left ${b.peerId}`);
  a.leave();
}

describe('BroadcastChannelSignalling', () => {
  it('introduces tabs, relays addressed signals and announces leaving', async () => {
    await exerciseRoom((id) => new BroadcastChannelSignalling('BCROOM', id));
  });

  it('refreshes presence, so that a member dropped as silent is announced again', async () => {
    const a = new BroadcastChannelSignalling('PRESENCE', 'peer-aaaa', 30);
    const b = new BroadcastChannelSignalling('PRESENCE', 'peer-bbbb', 30);
    const ra = recorder();
    await a.join(ra.handlers);
    await b.join(recorder().handlers);
    await expect.poll(() => ra.log.filter((l) => l === 'joined peer-bbbb').length).toBeGreaterThanOrEqual(3);
    b.leave();
    await expect.poll(() => ra.log).toContain('left peer-bbbb');
    const count = ra.log.length;
    await new Promise((r) => setTimeout(r, 100));
    expect(ra.log.length).toBe(count); // a tab that left is silent
    a.leave();
  });

  it('keeps rooms apart', async () => {
    const a = new BroadcastChannelSignalling('ROOM-A', 'peer-aaaa');
    const b = new BroadcastChannelSignalling('ROOM-B', 'peer-bbbb');
    const ra = recorder();
    await a.join(ra.handlers);
    await b.join(recorder().handlers);
    b.signal('peer-aaaa', { x: 1 });
    await new Promise((r) => setTimeout(r, 100));
    expect(ra.log).toEqual([]);
    a.leave();
    b.leave();
  });
});

describe('WebSocketSignalling', () => {
  const PAGE = 'http://127.0.0.1:5173';
  let server: RunningServer;
  let url: string;
  beforeAll(async () => {
    server = await startSignallingServer({
      port: 0,
      host: '127.0.0.1',
      allowOrigins: [PAGE],
      ice: { stun: ['stun:127.0.0.1:3478'], turn: [], ttlSeconds: 3600 },
    });
    url = `ws://127.0.0.1:${server.port}/signal`;
  });
  afterAll(() => server.close());
  const factory = (u: string) => new WebSocket(u, { origin: PAGE }) as unknown as WebSocketLike;

  it('introduces peers through the server, relays signals and announces leaving', async () => {
    await exerciseRoom(() => WebSocketSignalling.connect(url, 'WSROOM', { factory }));
    await expect.poll(() => server.registry.roomCount()).toBe(0);
  });

  it('takes its peer id and ICE servers from the server; newcomers sort after earlier members', async () => {
    const a = await WebSocketSignalling.connect(url, 'IDS', { factory });
    const b = await WebSocketSignalling.connect(url, 'IDS', { factory });
    expect(server.registry.members('IDS')).toEqual([a.peerId, b.peerId]);
    expect(b.peerId > a.peerId).toBe(true);
    expect(a.iceServers).toEqual([{ urls: ['stun:127.0.0.1:3478'] }]);
    a.leave();
    b.leave();
  });

  it('replays what arrived between the welcome and join(handlers), in order', async () => {
    const a = await WebSocketSignalling.connect(url, 'LATE', { factory });
    const b = await WebSocketSignalling.connect(url, 'LATE', { factory });
    await b.join(recorder().handlers);
    b.signal(a.peerId, { n: 1 });
    b.signal(a.peerId, { n: 2 });
    await new Promise((r) => setTimeout(r, 200));
    const ra = recorder();
    await a.join(ra.handlers);
    expect(ra.log).toEqual([`joined ${b.peerId}`, `signal ${b.peerId} {"n":1}`, `signal ${b.peerId} {"n":2}`]);
    a.leave();
    b.leave();
  });

  it('rejects the connection with a clear reason when the page origin is not allowed', async () => {
    const foreign = (u: string) => new WebSocket(u, { origin: 'http://127.0.0.1:9999' }) as unknown as WebSocketLike;
    await expect(WebSocketSignalling.connect(url, 'ROOM', { factory: foreign })).rejects.toThrow(/refused this page's origin|closed/);
  });

  it('tells a tab turned away from a full room what happened and what to do', async () => {
    const small = await startSignallingServer({ port: 0, host: '127.0.0.1', allowOrigins: [PAGE], limits: { maxPeersPerRoom: 2 } });
    const at = `ws://127.0.0.1:${small.port}/signal`;
    const members = [await WebSocketSignalling.connect(at, 'FULL', { factory }), await WebSocketSignalling.connect(at, 'FULL', { factory })];
    await expect(WebSocketSignalling.connect(at, 'FULL', { factory })).rejects.toThrow(
      /^signalling server: room full: at most 2 peers\. This tab did not join \(the room's tabs go on without it\): ask for another room$/,
    );
    expect(small.registry.members('FULL')).toEqual(members.map((m) => m.peerId));
    for (const m of members) m.leave();
    await small.close();
  });

  it('names a changed certificate as a cause only over wss://, where a browser cannot tell it from a dead server', () => {
    expect(unreachableServerReason('wss://10.0.0.5:5443/signal')).toMatch(/certificate changed since this page was opened: reload the page and accept the new certificate/);
    expect(unreachableServerReason('ws://127.0.0.1:9/signal')).not.toMatch(/certificate/);
  });

  it('rejects the connection when no server answers', async () => {
    await expect(WebSocketSignalling.connect('ws://127.0.0.1:9', 'ROOM', { factory, timeoutMs: 2000 })).rejects.toThrow(/cannot reach|closed|did not answer/);
  });
});
