// How a room learns that a member is gone, decided without waiting for the heartbeat deadline, and only
// on proof: a BroadcastChannel member whose Web Lock the browser freed (tab-locks.ts, over an in-memory
// lock manager here: fake-tab-locks.ts), or a server room's member whose socket closed without a leave.
// A member that is merely silent (a busy or frozen tab: it still holds its lock, its socket is open) is
// never announced by either; the mesh's heartbeat deadline is the backstop for those. Real Chromium
// tabs with a killed renderer: e2e/elastic-crash.spec.ts.
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import WebSocket from 'ws';
import { startSignallingServer, type RunningServer } from '../../server/server';
import { FakeLockManager } from './fake-tab-locks';
import { FakePeer } from './fake-simple-peer';
import { Mesh } from './mesh';
import { BroadcastChannelSignalling, SOCKET_CLOSED_REASON, TAB_GONE_REASON, WebSocketSignalling, type SignallingHandlers, type WebSocketLike } from './signalling';
import { memberLockName } from './tab-locks';

vi.mock('simple-peer/simplepeer.min.js', async () => ({ default: (await import('./fake-simple-peer')).FakePeer }));

function recorder() {
  const log: string[] = [];
  const handlers: SignallingHandlers = {
    peerJoined: (id) => log.push(`joined ${id}`),
    peerLeft: (id, reason) => log.push(`left ${id}${reason ? `: ${reason}` : ''}`),
    signal: (from) => log.push(`signal ${from}`),
  };
  return { log, handlers };
}

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));
let roomCounter = 0;
const leaving: { leave(): void }[] = [];
afterEach(() => {
  for (const s of leaving.splice(0)) s.leave();
  FakePeer.created = [];
});

/** Two tabs of one browser in a fresh BroadcastChannel room, sharing one lock manager; presence refresh off. */
async function twoTabs() {
  const locks = new FakeLockManager();
  const room = `LOCKS-${roomCounter++}`;
  const a = new BroadcastChannelSignalling(room, 'peer-aaaa', 0, locks.forTab('a'));
  const b = new BroadcastChannelSignalling(room, 'peer-bbbb', 0, locks.forTab('b'));
  leaving.push(a, b);
  const ra = recorder();
  const rb = recorder();
  await a.join(ra.handlers);
  await b.join(rb.handlers);
  await expect.poll(() => ra.log).toContain('joined peer-bbbb');
  await expect.poll(() => rb.log).toContain('joined peer-aaaa');
  return { locks, room, a, b, ra, rb };
}

describe('BroadcastChannel departures through Web Locks', () => {
  it('a tab holds its member lock while in the room and watches every member it knows', async () => {
    const { locks, room, a } = await twoTabs();
    expect(locks.heldBy('a')).toEqual([memberLockName(room, 'peer-aaaa')]);
    expect(locks.heldBy('b')).toEqual([memberLockName(room, 'peer-bbbb')]);
    expect(locks.waitingOn(memberLockName(room, 'peer-bbbb'))).toBe(1);
    expect(locks.waitingOn(memberLockName(room, 'peer-aaaa'))).toBe(1);
    // Leaving releases its own lock and stops watching the others.
    a.leave();
    expect(locks.heldBy('a')).toEqual([]);
    expect(locks.waitingOn(memberLockName(room, 'peer-bbbb'))).toBe(0);
  });

  it('a crashed tab (no goodbye, its lock freed by the browser) is announced as gone at once, with the reason', async () => {
    const { locks, ra } = await twoTabs();
    locks.crash('b');
    await expect.poll(() => ra.log, { timeout: 200 }).toContain(`left peer-bbbb: ${TAB_GONE_REASON}`);
    expect(ra.log.filter((l) => l.startsWith('left'))).toHaveLength(1);
  });

  it('a silent tab that still holds its lock (busy or frozen) is never announced as gone', async () => {
    const { ra } = await twoTabs();
    await pause(150);
    expect(ra.log.filter((l) => l.startsWith('left'))).toEqual([]);
  });

  it('a tab that closes is announced once (its goodbye and its freed lock, whichever comes first, are one departure)', async () => {
    const { b, ra } = await twoTabs();
    b.leave();
    await expect.poll(() => ra.log.filter((l) => l.startsWith('left peer-bbbb'))).toHaveLength(1);
    await pause(50);
    expect(ra.log.filter((l) => l.startsWith('left'))).toHaveLength(1);
  });

  it('a member heard of after its tab died (a late signal) is announced as gone at once', async () => {
    const { locks, room, ra } = await twoTabs();
    const ghost = new BroadcastChannel(`webgpu-lab-room:${room}`);
    ghost.postMessage({ kind: 'signal', from: 'peer-ghost', to: 'peer-aaaa', data: { type: 'candidate' } });
    await expect.poll(() => ra.log).toContain(`left peer-ghost: ${TAB_GONE_REASON}`);
    expect(ra.log).toContain('joined peer-ghost');
    expect(locks.waitingOn(memberLockName(room, 'peer-ghost'))).toBe(0);
    ghost.close();
  });

  it('a live tab whose lock another page stole is dropped, takes its lock back, and is admitted again', async () => {
    const { locks, room, ra } = await twoTabs();
    const name = memberLockName(room, 'peer-bbbb');
    locks.steal(name);
    await expect.poll(() => ra.log).toContain(`left peer-bbbb: ${TAB_GONE_REASON}`);
    await expect.poll(() => ra.log.filter((l) => l === 'joined peer-bbbb').length).toBe(2);
    expect(locks.heldBy('b')).toEqual([name]);
    expect(locks.waitingOn(name)).toBe(1); // watched again: a later crash is found too
    locks.crash('b');
    await expect.poll(() => ra.log.filter((l) => l.startsWith('left peer-bbbb')).length).toBe(2);
  });

  it('the mesh drops a crashed member at once, long before its heartbeat deadline', async () => {
    const locks = new FakeLockManager();
    const room = `LOCKS-MESH-${roomCounter++}`;
    const meshes = ['peer-00', 'peer-01', 'peer-02'].map(
      (id) => new Mesh({ signalling: new BroadcastChannelSignalling(room, id, 0, locks.forTab(id)), deadAfterMs: 60_000 }),
    );
    leaving.push(...meshes.map((m) => ({ leave: () => m.close() })));
    await Promise.all(meshes.map((m) => m.start()));
    await Promise.all(meshes.map((m) => m.waitForRoom(3, 5000)));
    const lost: string[] = [];
    meshes[0].on({ peerLost: (id, why) => lost.push(`${id}: ${why}`) });
    const crashedAt = performance.now();
    locks.crash('peer-02');
    await expect.poll(() => lost, { timeout: 500 }).toEqual([`peer-02: ${TAB_GONE_REASON}`]);
    expect(performance.now() - crashedAt).toBeLessThan(500);
    expect(meshes[0].memberList()).toEqual(['peer-00', 'peer-01']);
  });
});

describe('server-room departures through the socket', () => {
  const PAGE = 'http://127.0.0.1:5173';
  let server: RunningServer;
  let url: string;
  beforeAll(async () => {
    server = await startSignallingServer({ port: 0, host: '127.0.0.1', allowOrigins: [PAGE] });
    url = `ws://127.0.0.1:${server.port}/signal`;
  });
  afterAll(() => server.close());

  it('a member whose socket closes without a leave is announced as disconnected; one that leaves, as left', async () => {
    const sockets: WebSocket[] = [];
    const factory = (u: string) => {
      const socket = new WebSocket(u, { origin: PAGE });
      sockets.push(socket);
      return socket as unknown as WebSocketLike;
    };
    const a = await WebSocketSignalling.connect(url, 'GONE', { factory });
    const b = await WebSocketSignalling.connect(url, 'GONE', { factory });
    const c = await WebSocketSignalling.connect(url, 'GONE', { factory });
    leaving.push(a);
    const ra = recorder();
    await a.join(ra.handlers);
    sockets[1].terminate(); // b's tab is gone: its socket closes, no leave
    await expect.poll(() => ra.log).toContain(`left ${b.peerId}: ${SOCKET_CLOSED_REASON}`);
    c.leave();
    await expect.poll(() => ra.log).toContain(`left ${c.peerId}`);
  });
});
