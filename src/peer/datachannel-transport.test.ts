// The transport against an in-memory stand-in for the mesh (fake-mesh.ts): real frames, real validation,
// a channel whose queue fills and drains like RTCDataChannel's. The real WebRTC path is covered by
// e2e/ring.spec.ts.
import { describe, expect, it } from 'vitest';
import { runAllReduce } from '../collective/collectives';
import { DataChannelTransport } from './datachannel-transport';
import { FRAME_HEADER_BYTES, decodeFrame, encodeFrame, isFrameError, roomHash } from './frame';
import { FakeNet } from './fake-mesh';
import { MAC_BYTES } from './auth';

const ids = ['peer-0', 'peer-1', 'peer-2', 'peer-3'];
const tag = (chunk: number) => ({ round: 1, collective: 0, chunk });

function transports(net: FakeNet, opts: Partial<ConstructorParameters<typeof DataChannelTransport>[1]> = {}) {
  const members = net.nodes.map((n) => n.peerId);
  return net.nodes.map((n) => new DataChannelTransport(n, { members, ...opts }));
}

function randomBytes(n: number, seed = 1): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

describe('DataChannelTransport', () => {
  it('serves one membership epoch: earlier epochs are stale, the next one is left alone, further ones refused', async () => {
    const net = new FakeNet(ids.slice(0, 2));
    const members = ids.slice(0, 2);
    const old = new DataChannelTransport(net.node('peer-0'), { members, epoch: 3 });
    const [a, b] = net.nodes.map((n) => new DataChannelTransport(n, { members, epoch: 4, nextEpochExpected: true }));
    const frame = (epoch: number, chunk: number) =>
      encodeFrame({ type: 'data', roomHash: roomHash('TEST'), round: 1, collective: 0, chunk, sender: 0, epoch, part: 0, parts: 1 }, new Uint8Array([epoch]));
    const got = b.recv(0, tag(0));
    await old.send(1, tag(0), new Uint8Array([3])); // in flight from the ring before the re-form
    net.node('peer-1').receive('peer-0', frame(5, 1)); // the next ring's: someone else keeps it
    net.node('peer-1').receive('peer-0', frame(9, 2)); // no honest peer is there
    await a.send(1, tag(0), new Uint8Array([4]));
    expect(Array.from(await got)).toEqual([4]);
    expect(b.staleFrames).toBe(1);
    expect(net.node('peer-1').refused).toEqual(['peer-0: data frame of membership epoch 9; this room is in epoch 4']);
    b.deliver('peer-0', decodeOk(frame(4, 3)));
    expect(Array.from(await b.recv(0, tag(3)))).toEqual([4]);
  });

  it('delivers a message split over the max message size, byte for byte, and counts bytes', async () => {
    const net = new FakeNet(ids.slice(0, 2), 0, 4096);
    const [a, b] = transports(net);
    const payload = randomBytes(50_000);
    const got = b.recv(0, tag(7));
    await a.send(1, tag(7), payload);
    expect(Array.from(await got)).toEqual(Array.from(payload));
    const frames = Math.ceil(50_000 / (4096 - FRAME_HEADER_BYTES));
    expect(a.bytesSent).toBe(50_000 + frames * FRAME_HEADER_BYTES);
    expect(b.bytesReceived).toBe(a.bytesSent);
    expect([a.rank, b.rank, a.world]).toEqual([0, 1, 2]);
  });

  it('keeps early arrivals until they are asked for, by tag', async () => {
    const net = new FakeNet(ids.slice(0, 2));
    const [a, b] = transports(net);
    await a.send(1, tag(2), new Uint8Array([2]));
    await a.send(1, tag(1), new Uint8Array([1]));
    await new Promise((r) => setTimeout(r, 10));
    expect(Array.from(await b.recv(0, tag(1)))).toEqual([1]);
    expect(Array.from(await b.recv(0, tag(2)))).toEqual([2]);
  });

  it('waits on backpressure: the channel queue never grows far past the high-water mark', async () => {
    const net = new FakeNet(ids.slice(0, 2), 1, 65536);
    const [a, b] = transports(net, { highWaterBytes: 256 * 1024, lowWaterBytes: 64 * 1024 });
    const payload = randomBytes(4 * 1024 * 1024, 3);
    const got = b.recv(0, tag(0));
    await a.send(1, tag(0), payload);
    expect((await got).length).toBe(payload.length);
    const channel = net.node('peer-0').channel('peer-1');
    expect(channel.maxBuffered).toBeGreaterThan(128 * 1024);
    expect(channel.maxBuffered).toBeLessThanOrEqual(256 * 1024 + 65536);
  });

  it('rejects a send whose channel queue never drains, instead of hanging', async () => {
    const net = new FakeNet(ids.slice(0, 2), 0, 65536);
    const [a] = transports(net, { highWaterBytes: 1000, deadlineMs: 150 });
    net.node('peer-0').channel('peer-1').bufferedAmount = 5000; // a queue stuck above the high-water mark
    await expect(a.send(1, tag(0), new Uint8Array(10))).rejects.toThrow(/stalled: 5000 bytes queued for 150 ms/);
  });

  it('refuses corrupted, spoofed, foreign and duplicate frames, and still delivers the intact message', async () => {
    const net = new FakeNet(ids.slice(0, 3), 0, 1024);
    const [a, b, c] = transports(net);
    const refused: string[] = [];
    const bRefused = new DataChannelTransport(net.node('peer-1'), {
      members: ids.slice(0, 3),
      onRefused: (_p, reason) => refused.push(reason),
    });
    b.close(); // bRefused replaces b on the same fake mesh
    let flips = 0;
    net.tamper = (bytes) => {
      // corrupt the first copy of every third frame, then let the retransmission below through
      if (flips < 3 && bytes.length > FRAME_HEADER_BYTES + 10) {
        flips++;
        bytes[FRAME_HEADER_BYTES + 5] ^= 0xff;
      }
      return bytes;
    };
    const payload = randomBytes(3000, 9);
    const got = bRefused.recv(0, tag(4));
    await a.send(1, tag(4), payload); // first 3 pieces arrive corrupted and are refused
    await new Promise((r) => setTimeout(r, 10));
    net.tamper = (x) => x;
    await a.send(1, tag(4), payload); // the resend completes the message
    expect(Array.from(await got)).toEqual(Array.from(payload));
    expect(net.node('peer-1').refused.filter((r) => /checksum/.test(r))).toHaveLength(3);

    // rank 2 claims to be rank 0
    const spoof = encodeFrame(
      { type: 'data', roomHash: roomHash('TEST'), round: 1, collective: 0, chunk: 9, sender: 0, part: 0, parts: 1 },
      new Uint8Array([6, 6, 6]),
    );
    net.node('peer-1').receive('peer-2', spoof);
    // another room
    const foreign = encodeFrame(
      { type: 'data', roomHash: roomHash('OTHER'), round: 1, collective: 0, chunk: 9, sender: 2, part: 0, parts: 1 },
      new Uint8Array([6]),
    );
    net.node('peer-1').receive('peer-2', foreign);
    // a stranger
    net.node('peer-1').receive('peer-x', encodeFrame({ ...decodeOk(spoof), sender: 0 }, new Uint8Array([1])));
    // a duplicate of the delivered message (the resend above delivered 3 pieces twice already)
    await a.send(1, tag(4), payload);
    await new Promise((r) => setTimeout(r, 10));
    expect(refused.some((r) => /claims rank 0/.test(r))).toBe(true);
    expect(refused.some((r) => /outside this group/.test(r))).toBe(true);
    expect(refused.some((r) => /duplicate/.test(r) || /twice/.test(r))).toBe(true);
    expect(net.node('peer-1').refused.some((r) => /another room/.test(r))).toBe(true);
    expect(bRefused.refusedFrames).toBe(refused.length);
    c.close();
  });

  it('rejects recv at the deadline and on peer loss; sends to a lost peer reject too', async () => {
    const net = new FakeNet(ids.slice(0, 3));
    const [a, b] = transports(net, { deadlineMs: 50 });
    await expect(b.recv(0, tag(1))).rejects.toThrow(/within 50 ms/);
    const pending = b.recv(2, tag(2));
    net.node('peer-1').lose('peer-2');
    await expect(pending).rejects.toThrow(/rank 2 .* lost/);
    await expect(b.recv(2, tag(3))).rejects.toThrow(/lost/);
    net.node('peer-0').lose('peer-1');
    await expect(a.send(1, tag(1), new Uint8Array(4))).rejects.toThrow(/lost/);
    await expect(a.send(0, tag(1), new Uint8Array(4))).rejects.toThrow(/this tab/);
    await expect(a.send(5, tag(1), new Uint8Array(4))).rejects.toThrow(/outside/);
  });

  it('runs the ring all-reduce of src/collective to the exact sum on 4 ranks', async () => {
    const net = new FakeNet(ids, 0, 8192);
    const ts = transports(net);
    const n = 10_007;
    const vectors = ts.map((_, r) => Float32Array.from({ length: n }, (_, i) => ((i * 7 + r * 13) % 101) - 50));
    const expected = Float32Array.from({ length: n }, (_, i) => vectors.reduce((s, v) => s + v[i], 0));
    await Promise.all(ts.map((t, r) => runAllReduce(t, vectors[r], { round: 3, collective: 0, maxMessageElements: 1000 })));
    for (const v of vectors) expect(Array.from(v)).toEqual(Array.from(expected));
  });

  // The executor counts payload bytes from the schedule (elements x bytes per element); the transport
  // counts what it put on the channel. They must reconcile exactly: nothing sent uncounted, no
  // bookkeeping figure that the wire does not carry.
  it.each([
    ['f32', 0],
    ['f32', MAC_BYTES],
    ['f16', 0],
    ['f16', MAC_BYTES],
  ] as const)('wire bytes = schedule payload + frames x (header + MAC), exactly (%s, MAC %i bytes)', async (wire, mac) => {
    const maxMessage = 1024; // small: the larger messages split into several frames
    const net = new FakeNet(ids.slice(0, 3), 0, maxMessage, mac);
    const ts = transports(net);
    const n = 5000;
    const stats = await Promise.all(ts.map((t, r) => runAllReduce(t, Float32Array.from({ length: n }, (_, i) => (i % 7) + r), { round: 1, collective: 16, wire })));
    let frames = 0;
    ts.forEach((t, r) => {
      expect(t.wire.payloadBytes).toBe(stats[r].bytesSent);
      expect(t.wire.wireBytes).toBe(t.wire.payloadBytes + t.wire.frames * (FRAME_HEADER_BYTES + mac));
      frames += t.wire.frames;
    });
    // Every frame that went on a link is counted by some transport; some messages were split.
    expect(ts.reduce((sum, t) => sum + t.wire.wireBytes, 0)).toBe(net.wireBytes);
    const messages = stats.reduce((sum, s) => sum + s.messagesSent, 0);
    expect(frames).toBeGreaterThan(messages);
    // A ring all-reduce sends 2(N-1)/N of the vector per rank: 4 bytes an element, 2 with fp16.
    const elementBytes = wire === 'f16' ? 2 : 4;
    expect(stats.reduce((sum, s) => sum + s.bytesSent, 0)).toBe(2 * (3 - 1) * n * elementBytes);
  });
});

function decodeOk(bytes: Uint8Array) {
  const f = decodeFrame(bytes);
  if (isFrameError(f)) throw new Error(f.error);
  return f;
}
