// mesh.ts's own logic over an in-memory simple-peer (fake-simple-peer.ts) and the real
// BroadcastChannel signalling (Node 20 has BroadcastChannel). Real WebRTC: e2e/ring.spec.ts.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { EventBus, type LabEvent } from '../shared/events';
import { runAllReduce } from '../collective/collectives';
import { DataChannelTransport } from './datachannel-transport';
import { FakePeer, type FakeChannel } from './fake-simple-peer';
import { Mesh, type MeshOptions } from './mesh';
import { BroadcastChannelSignalling } from './signalling';

vi.mock('simple-peer/simplepeer.min.js', async () => ({ default: (await import('./fake-simple-peer')).FakePeer }));

const open: Mesh[] = [];
afterEach(() => {
  for (const m of open.splice(0)) m.close();
  FakePeer.created = [];
});

let roomCounter = 0;
async function room(count: number, opts: Partial<MeshOptions> = {}, presenceMs = 3000): Promise<Mesh[]> {
  const name = `MESH-${roomCounter++}`;
  const meshes = Array.from({ length: count }, (_, i) => {
    const signalling = new BroadcastChannelSignalling(name, `peer-${String(i).padStart(2, '0')}`, presenceMs);
    const mesh = new Mesh({ signalling, ...opts });
    open.push(mesh);
    return mesh;
  });
  await Promise.all(meshes.map((m) => m.start()));
  return meshes;
}

describe('Mesh', () => {
  it('links every pair of a small room once, and every tab agrees on the ranks', async () => {
    const meshes = await room(4);
    const lists = await Promise.all(meshes.map((m) => m.waitForRoom(4, 5000)));
    for (const list of lists) expect(list).toEqual(['peer-00', 'peer-01', 'peer-02', 'peer-03']);
    for (const m of meshes) expect(m.linkStats().filter((l) => l.state === 'connected')).toHaveLength(3);
    // one initiator per pair: 6 pairs, 6 initiating peers
    expect(FakePeer.created.filter((p) => p.initiator)).toHaveLength(6);
    expect(meshes[2].peersReport().self).toEqual({ peerId: 'peer-02', rank: 2, world: 4, room: meshes[2].room });
    // Once a ring runs over the mesh, ranks are the ring's: a tab outside it (joining) is rank -1.
    meshes[2].ringMembers = () => ['peer-00', 'peer-02', 'peer-03'];
    const report = meshes[2].peersReport();
    expect(report.self).toMatchObject({ rank: 1, world: 3 });
    expect(report.peers.map((p) => [p.peerId, p.rank])).toEqual([['peer-00', 0], ['peer-01', -1], ['peer-03', 2]]);
  });

  it('links hubs and near neighbours only in a large room, opens what a ring epoch requires, and a ring all-reduce runs over them', async () => {
    const meshes = await room(10, { fullMeshMax: 4 });
    const lists = await Promise.all(meshes.map((m) => m.waitForRoom(10, 10_000)));
    for (const m of meshes) for (const id of m.wanted()) expect(m.isOpen(id)).toBe(true);
    expect(meshes[5].wanted().sort()).toEqual(['peer-00', 'peer-01', 'peer-03', 'peer-04', 'peer-06', 'peer-07']);
    // A ring epoch asks both ends for a link the topology lacks (links made while the room was smaller
    // are kept, so it may be open already): it becomes wanted, and open.
    const [a, b] = [meshes[5], meshes[9]];
    expect(a.wanted()).not.toContain(b.peerId);
    a.require([b.peerId]);
    b.require([a.peerId]);
    expect(a.wanted()).toContain(b.peerId);
    await expect.poll(() => a.isOpen(b.peerId) && b.isOpen(a.peerId), { timeout: 10_000 }).toBe(true);
    const transports = meshes.map((m, r) => new DataChannelTransport(m, { members: lists[r] }));
    const vectors = transports.map((t) => Float32Array.from({ length: 5000 }, (_, i) => (i % 7) + t.rank));
    await Promise.all(transports.map((t, r) => runAllReduce(t, vectors[r], { round: 0, collective: 0 })));
    const expected = Float32Array.from({ length: 5000 }, (_, i) => 10 * (i % 7) + 45);
    for (const v of vectors) expect(Array.from(v)).toEqual(Array.from(expected));
  });

  it('measures heartbeat round trips and per-link throughput', async () => {
    const meshes = await room(2, { heartbeatMs: 20 });
    await Promise.all(meshes.map((m) => m.waitForRoom(2, 5000)));
    await expect.poll(() => meshes[0].linkStats()[0].rttMs).toBeGreaterThanOrEqual(0);
    const stats = meshes[0].linkStats()[0];
    expect(stats.bytesSent).toBeGreaterThan(0);
    expect(stats.bytesReceived).toBeGreaterThan(0);
    await expect.poll(() => meshes[0].linkStats()[0].recvRate).toBeGreaterThan(0);
    expect(meshes[0].peersReport().peers[0]).toMatchObject({ peerId: 'peer-01', rank: 1, state: 'connected' });
  });

  it('drops a peer that goes silent without closing (a closed tab), by heartbeat deadline', async () => {
    // presence refresh off: a crashed tab's signalling is silent too
    const meshes = await room(3, { heartbeatMs: 20, deadAfterMs: 200 }, 0);
    await Promise.all(meshes.map((m) => m.waitForRoom(3, 5000)));
    const lost: string[] = [];
    meshes[0].on({ peerLost: (id, reason) => lost.push(`${id}: ${reason}`) });
    for (const id of ['peer-00', 'peer-01']) (meshes[2].channel(id) as unknown as FakeChannel).owner.muted = true;
    await expect.poll(() => meshes[0].memberList(), { timeout: 3000 }).toEqual(['peer-00', 'peer-01']);
    expect(lost[0]).toMatch(/^peer-02: silent for \d+ ms/);
    // Each mesh keeps its own deadline: the other one may notice a heartbeat or two later on a busy machine.
    await expect.poll(() => meshes[1].memberList(), { timeout: 3000 }).toEqual(['peer-00', 'peer-01']);
  });

  it('re-announces a member dropped as silent once it speaks again (a frozen tab that recovers)', async () => {
    const meshes = await room(2, { heartbeatMs: 20, deadAfterMs: 200 }, 100);
    await Promise.all(meshes.map((m) => m.waitForRoom(2, 5000)));
    const peerOfB = (meshes[1].channel('peer-00') as unknown as FakeChannel).owner;
    peerOfB.muted = true;
    await expect.poll(() => meshes[0].memberList(), { timeout: 3000 }).toEqual(['peer-00']);
    await expect.poll(() => meshes[0].memberList(), { timeout: 3000 }).toEqual(['peer-00', 'peer-01']);
    await meshes[0].waitForRoom(2, 3000);
    expect(meshes[0].isOpen('peer-01')).toBe(true);
  });

  it('retries a failed link without dropping the member, and reports the lost link', async () => {
    const meshes = await room(2);
    await Promise.all(meshes.map((m) => m.waitForRoom(2, 5000)));
    const linkLost: string[] = [];
    const peerLost: string[] = [];
    meshes[0].on({ linkLost: (id, reason) => linkLost.push(`${id}: ${reason}`), peerLost: (id) => peerLost.push(id) });
    const before = FakePeer.created.length;
    (meshes[0].channel('peer-01') as unknown as FakeChannel).owner.emit('error', new Error('ICE failed'));
    expect(linkLost).toEqual(['peer-01: link error: ICE failed']);
    expect(meshes[0].memberList()).toEqual(['peer-00', 'peer-01']);
    await expect.poll(() => meshes[0].isOpen('peer-01'), { timeout: 3000 }).toBe(true);
    expect(FakePeer.created.length).toBeGreaterThan(before);
    expect(peerLost).toEqual([]);
  });

  it('tells the others at once when a tab closes its mesh', async () => {
    const meshes = await room(3);
    await Promise.all(meshes.map((m) => m.waitForRoom(3, 5000)));
    meshes[1].close();
    await expect.poll(() => meshes[0].memberList(), { timeout: 1000 }).toEqual(['peer-00', 'peer-02']);
    await expect.poll(() => meshes[2].memberList(), { timeout: 1000 }).toEqual(['peer-00', 'peer-02']);
  });

  it('refuses frames that do not validate and reports them on the bus', async () => {
    const bus = new EventBus();
    const events: LabEvent[] = [];
    bus.subscribe((e) => events.push(e));
    const [a] = await room(1);
    const b = new Mesh({ signalling: new BroadcastChannelSignalling(a.room, 'peer-99'), bus });
    open.push(b);
    await b.start();
    await Promise.all([a.waitForRoom(2, 5000), b.waitForRoom(2, 5000)]);
    const refused: string[] = [];
    b.on({ refused: (_from, reason) => refused.push(reason) });
    a.sendRaw('peer-99', new Uint8Array([1, 2, 3]));
    await expect.poll(() => refused).toEqual(['too short: 3 bytes, a header is 40']);
    expect(events.some((e) => e.type === 'refused' && e.from === 'peer-00' && /too short/.test(e.reason))).toBe(true);
    expect(events.some((e) => e.type === 'peers')).toBe(true);
    expect(b.isOpen('peer-00')).toBe(true); // a bad frame does not cost the link
  });

  it('names what is missing when the room does not fill in time', async () => {
    const meshes = await room(2);
    await expect(meshes[0].waitForRoom(3, 200)).rejects.toThrow(/2\/3 members after 200 ms/);
  });
});
