// Room secrets: the HMAC primitives, and the mesh over an in-memory simple-peer with the real
// BroadcastChannel signalling, where a tab with a wrong secret shares the room with two right ones.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { runAllReduce } from '../collective/collectives';
import { EventBus, type LabEvent } from '../shared/events';
import { createRoomAuth, MAC_BYTES, SIGNAL_MAX_AGE_MS } from './auth';
import { DataChannelTransport } from './datachannel-transport';
import { FakePeer } from './fake-simple-peer';
import { encodeFrame, roomHash } from './frame';
import { Mesh } from './mesh';
import { BroadcastChannelSignalling } from './signalling';

vi.mock('simple-peer/simplepeer.min.js', async () => ({ default: (await import('./fake-simple-peer')).FakePeer }));

const frame = encodeFrame({ type: 'data', roomHash: roomHash('R'), round: 3, collective: 16, chunk: 1, sender: 0, part: 0, parts: 1 }, new Uint8Array(1000).fill(7));

describe('room auth primitives', () => {
  it('a sealed frame opens with the same secret and room only', async () => {
    const [a, b, wrong, otherRoom] = await Promise.all([
      createRoomAuth('s3cret', 'R'),
      createRoomAuth('s3cret', 'R'),
      createRoomAuth('guess', 'R'),
      createRoomAuth('s3cret', 'S'),
    ]);
    const sealed = await a.sealFrame(frame);
    expect(sealed.length).toBe(frame.length + MAC_BYTES);
    const opened = await b.openFrame(sealed);
    expect('frame' in opened && Array.from(opened.frame)).toEqual(Array.from(frame));
    expect(await wrong.openFrame(sealed)).toEqual({ error: expect.stringMatching(/bad room MAC/) });
    expect(await otherRoom.openFrame(sealed)).toEqual({ error: expect.stringMatching(/bad room MAC/) });
    const altered = sealed.slice();
    altered[50] ^= 1;
    expect(await b.openFrame(altered)).toEqual({ error: expect.stringMatching(/bad room MAC/) });
    expect(await b.openFrame(frame.subarray(0, 10))).toEqual({ error: expect.stringMatching(/too short/) });
    // an unsealed frame is refused too (its last 16 bytes are not a tag)
    expect('error' in (await b.openFrame(frame))).toBe(true);
  });

  it('signals: sealed for one sender and recipient, fresh, with the secret', async () => {
    const a = await createRoomAuth('s3cret', 'R');
    const wrong = await createRoomAuth('nope', 'R');
    const sealed = await a.sealSignal('peer-a', 'peer-b', { type: 'offer', sdp: 'x' });
    expect(await a.openSignal('peer-a', 'peer-b', sealed)).toEqual({ body: { type: 'offer', sdp: 'x' } });
    expect(await a.openSignal('peer-c', 'peer-b', sealed)).toEqual({ error: expect.stringMatching(/another sender/) });
    expect(await a.openSignal('peer-a', 'peer-c', sealed)).toEqual({ error: expect.stringMatching(/another sender/) });
    expect(await wrong.openSignal('peer-a', 'peer-b', sealed)).toEqual({ error: expect.stringMatching(/bad room MAC/) });
    expect(await a.openSignal('peer-a', 'peer-b', { type: 'offer', sdp: 'x' })).toEqual({ error: expect.stringMatching(/unsealed/) });
    expect(await a.openSignal('peer-a', 'peer-b', sealed, Date.now() + SIGNAL_MAX_AGE_MS + 1000)).toEqual({ error: expect.stringMatching(/stale/) });
    const forged = { ...sealed, sealed: (sealed.sealed as string).replace('"x"', '"y"') };
    expect(await a.openSignal('peer-a', 'peer-b', forged)).toEqual({ error: expect.stringMatching(/bad room MAC/) });
  });

  it('seals and opens 40 frames of 256 KiB byte for byte, MAC_BYTES longer on the wire (throughput printed, not compared)', async () => {
    const a = await createRoomAuth('s3cret', 'R');
    const big = Uint8Array.from({ length: 256 * 1024 - MAC_BYTES }, (_, i) => (i * 31) & 0xff);
    const n = 40;
    let sealedBytes = 0;
    let opened: Uint8Array | undefined;
    const t0 = performance.now();
    for (let i = 0; i < n; i++) {
      const sealed = await a.sealFrame(big);
      sealedBytes += sealed.length;
      const result = await a.openFrame(sealed);
      if ('error' in result) throw new Error(result.error);
      opened = result.frame;
    }
    const ms = performance.now() - t0;
    console.log(`room MAC: seal+open ${((n * big.length) / 1e6 / (ms / 1000)).toFixed(0)} MB/s on 256 KiB frames (${(ms / n).toFixed(2)} ms/frame)`);
    expect(sealedBytes).toBe(n * (big.length + MAC_BYTES));
    expect(opened).toEqual(big);
  });
});

const open: Mesh[] = [];
afterEach(() => {
  for (const m of open.splice(0)) m.close();
  FakePeer.created = [];
});

let counter = 0;
async function meshes(secrets: string[], maxRefusedPerPeer?: number) {
  const room = `AUTH-${counter++}`;
  return Promise.all(
    secrets.map(async (secret, i) => {
      const bus = new EventBus();
      const events: LabEvent[] = [];
      bus.subscribe((e) => events.push(e));
      const signalling = new BroadcastChannelSignalling(room, `peer-${i}${'x'.repeat(3)}`, 100);
      const mesh = new Mesh({ signalling, bus, auth: await createRoomAuth(secret, room), heartbeatMs: 50, maxRefusedPerPeer });
      open.push(mesh);
      await mesh.start();
      return { mesh, events };
    }),
  );
}

describe('a mesh with a room secret', () => {
  it('right-secret tabs link and all-reduce; a wrong-secret tab never becomes a member', async () => {
    const [a, b, intruder] = await meshes(['s3cret', 's3cret', 'wrong'], 0);
    const lists = await Promise.all([a.mesh.waitForRoom(2, 5000), b.mesh.waitForRoom(2, 5000)]);
    expect(lists[0]).toEqual([a.mesh.peerId, b.mesh.peerId]);
    // presence refreshes keep coming (every 100 ms): give the intruder time to try
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(a.mesh.memberList()).not.toContain(intruder.mesh.peerId);
    expect(intruder.mesh.memberList()).toEqual([intruder.mesh.peerId]);
    expect(intruder.mesh.linkStats()).toEqual([]);
    const refusedAtA = a.events.filter((e) => e.type === 'refused' && e.from === intruder.mesh.peerId);
    expect(refusedAtA.length).toBeGreaterThan(0);
    expect(refusedAtA[0]).toMatchObject({ reason: expect.stringMatching(/bad room MAC/) });

    const transports = lists.map((members) => members).map((members, r) => new DataChannelTransport([a.mesh, b.mesh][r], { members }));
    const vectors = transports.map((t) => Float32Array.from({ length: 300_000 }, (_, i) => (i % 5) + t.rank));
    await Promise.all(transports.map((t, r) => runAllReduce(t, vectors[r], { round: 0, collective: 0 })));
    for (const v of vectors) expect(v[7]).toBe(2 * (7 % 5) + 1);
    expect(transports[0].refusedFrames).toBe(0);
  });

  it('excludes a peer after too many refusals and ignores it from then on', async () => {
    const [a, , intruder] = await meshes(['s3cret', 's3cret', 'wrong'], 3);
    await expect.poll(() => a.mesh.excludedPeers().map((x) => x.peerId), { timeout: 5000 }).toContain(intruder.mesh.peerId);
    const log = a.events.find((e) => e.type === 'log' && /excluded peer/.test(e.message));
    expect(log).toMatchObject({ level: 'error', message: expect.stringMatching(/4 refused frames or signals \(last: .*MAC/) });
    const refusals = a.events.filter((e) => e.type === 'refused').length;
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(a.events.filter((e) => e.type === 'refused').length).toBe(refusals);
  });
});
