// Collectives over the real data-channel transport (src/peer/fake-mesh.ts: real frames and checks,
// in memory), where a mistake the in-memory transport forgives is refused: two messages under one
// tag (the transport refuses a duplicate), or a negative message number (not a frame field). Written
// to kill mutants that survived `npm run mutate` (docs/testing.md): message numbering of the sparse
// all-gather's two phases, payload offsets of the fixed all-gather, and the statistics they return.
import { describe, expect, it } from 'vitest';
import { DataChannelTransport } from '../peer/datachannel-transport';
import { FakeNet } from '../peer/fake-mesh';
import { finiteModelDataCheck } from '../peer/payload-checks';
import { DEFAULT_MAX_MESSAGE_BYTES } from './chunking';
import { encodeSparseCompact } from './codecs';
import { runAllReduce, runFixedAllGather, runSparseAllGather } from './collectives';
import { runSchedule } from './executor';
import { createMemoryMesh } from './memory-transport';
import { ringAllReduce } from './schedules';

const ids = ['peer-0', 'peer-1', 'peer-2'];

function dataChannelRing(world = 3) {
  const net = new FakeNet(ids.slice(0, world));
  const members = net.nodes.map((n) => n.peerId);
  return { net, transports: net.nodes.map((n) => new DataChannelTransport(n, { members })) };
}

const words = (...values: number[]) => new Uint8Array(Float32Array.from(values).buffer);

describe('collectives over the data-channel transport', () => {
  it('fixed all-gather: every rank gets every rank\'s multi-word payload at its own offset, bit for bit (copied, never averaged)', async () => {
    const { net, transports } = dataChannelRing();
    // Two words each (offsets are rank x 2 words) with values a division by the world would change.
    const payloads = [words(1.5, -7), words(3, 1e-3), words(-2.25, 9)];
    const results = await Promise.all(transports.map((t, r) => runFixedAllGather(t, payloads[r], { round: 2, collective: 3 })));
    for (const { payloads: got } of results) expect(got.map((p) => Array.from(p))).toEqual(payloads.map((p) => Array.from(p)));
    for (const node of net.nodes) expect(node.refused).toEqual([]);
  });

  it('sparse all-gather: the sizes and the payloads travel under distinct message numbers (nothing refused as a duplicate); stats add both phases', async () => {
    const { net, transports } = dataChannelRing();
    const payloads = [words(1, 2, 3), words(4), words(5, 6)];
    const results = await Promise.all(transports.map((t, r) => runSparseAllGather(t, payloads[r], { round: 4, collective: 16, maxMessageElements: 2 })));
    for (const { payloads: got } of results) expect(got.map((p) => Array.from(p))).toEqual(payloads.map((p) => Array.from(p)));
    for (const node of net.nodes) expect(node.refused).toEqual([]);
    // Ring all-gathers: each rank forwards N-1 size words, then N-1 of the payloads (all but its successor's).
    const N = 3;
    results.forEach(({ stats }, r) => {
      const forwarded = payloads.reduce((sum, p, j) => (j === (r + 1) % N ? sum : sum + p.byteLength), 0);
      expect(stats.bytesSent).toBe(4 * (N - 1) + forwarded);
      expect(transports[r].wire.payloadBytes).toBe(stats.bytesSent);
    });
    const total = (key: 'bytesSent' | 'bytesReceived' | 'messagesSent' | 'messagesReceived') => results.reduce((sum, { stats }) => sum + stats[key], 0);
    expect(total('bytesReceived')).toBe(total('bytesSent'));
    expect(total('messagesReceived')).toBe(total('messagesSent'));
    expect(total('messagesSent')).toBeGreaterThanOrEqual(2 * N * (N - 1));
  });

  it('sparse all-gather of Top-K payloads larger than one data-channel message: each travels whole, passes the Top-K check, arrives bit for bit', async () => {
    const { net, transports } = dataChannelRing();
    for (const t of transports) t.setMessageCheck(finiteModelDataCheck('topk', 16));
    // Half of 203,530 gradient entries (Top-K 0.5 on the MNIST MLP): about twice the largest message (5 bytes an entry).
    const length = 203_530;
    const payloads = [0, 1, 2].map((r) => {
      const indices = Array.from({ length: length >> 1 }, (_, i) => 2 * i + (r % 2));
      return encodeSparseCompact({ indices: Uint32Array.from(indices), values: Float32Array.from(indices, (i) => (i % 97) - 48 + r / 8) });
    });
    expect(payloads[0].byteLength).toBeGreaterThan(1.5 * DEFAULT_MAX_MESSAGE_BYTES);
    const results = await Promise.all(transports.map((t, r) => runSparseAllGather(t, payloads[r], { round: 0, collective: 16 })));
    for (const node of net.nodes) expect(node.refused).toEqual([]);
    for (const { payloads: got } of results) got.forEach((p, r) => expect(Buffer.from(p).equals(Buffer.from(payloads[r]))).toBe(true));
  });

  it('all-reduce statistics: what every rank sent was received, message for message and byte for byte', async () => {
    const { transports } = dataChannelRing();
    const stats = await Promise.all(transports.map((t, r) => runAllReduce(t, Float32Array.from({ length: 300 }, (_, i) => i + r), { round: 1, collective: 16, maxMessageElements: 40 })));
    for (const s of stats) {
      expect(s.messagesSent).toBeGreaterThanOrEqual(2 * 2);
      expect(s.messagesReceived).toBe(s.messagesSent);
      expect(s.bytesReceived).toBe(s.bytesSent);
      expect(s.ms).toBeGreaterThanOrEqual(0);
    }
  });

  it('refuses a schedule made for another world size, even at the right rank', async () => {
    const [t] = createMemoryMesh(2);
    await expect(runSchedule(t, ringAllReduce(3, 0, 12), new Float32Array(12), { round: 0, collective: 0 })).rejects.toThrow(/schedule is for rank 0\/3, transport is rank 0\/2/);
  });
});
