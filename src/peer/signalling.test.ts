// Both signalling implementations, for real: Node 20 has BroadcastChannel, and the WebSocket one talks
// to the real server (server/server.ts) through the `ws` client.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { startSignallingServer, type RunningServer } from '../../server/server';
import {
  BroadcastChannelSignalling,
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

async function exerciseRoom(make: (peerId: string) => Signalling) {
  const a = make('peer-aaaa');
  const b = make('peer-bbbb');
  const ra = recorder();
  const rb = recorder();
  await a.join(ra.handlers);
  await b.join(rb.handlers);
  await expect.poll(() => ra.log).toContain('joined peer-bbbb');
  await expect.poll(() => rb.log).toContain('joined peer-aaaa');
  b.signal('peer-aaaa', { type: 'offer', sdp: 'v=0' });
  await expect.poll(() => ra.log).toContain('signal peer-bbbb {"type":"offer","sdp":"v=0"}');
  b.leave();
  await expect.poll(() => ra.log).toContain('left peer-bbbb');
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
  let server: RunningServer;
  let url: string;
  beforeAll(async () => {
    server = await startSignallingServer({ port: 0, host: '127.0.0.1' });
    url = `ws://127.0.0.1:${server.port}`;
  });
  afterAll(() => server.close());
  const factory = (u: string) => new WebSocket(u) as unknown as WebSocketLike;

  it('introduces peers through the server, relays signals and announces leaving', async () => {
    await exerciseRoom((id) => new WebSocketSignalling(url, 'WSROOM', id, factory));
    await expect.poll(() => server.registry.roomCount()).toBe(0);
  });

  it('rejects the join with the server reason when the id is taken', async () => {
    const a = new WebSocketSignalling(url, 'DUP', 'peer-same', factory);
    await a.join(recorder().handlers);
    const b = new WebSocketSignalling(url, 'DUP', 'peer-same', factory);
    await expect(b.join(recorder().handlers)).rejects.toThrow(/already taken/);
    a.leave();
    b.leave();
  });

  it('rejects the join when no server answers', async () => {
    const s = new WebSocketSignalling('ws://127.0.0.1:9', 'ROOM', 'peer-xxxx', factory, 2000);
    await expect(s.join(recorder().handlers)).rejects.toThrow(/cannot reach|closed|did not answer/);
  });
});
