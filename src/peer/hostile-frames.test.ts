import { describe, expect, it } from 'vitest';
import { decodeFrame, isFrameError, roomHash } from './frame';
import { hostileFrames, HOSTILE_KINDS, MEMBER_KINDS, MEMBER_REFUSALS, memberFrames } from './hostile-frames';
import { runAllReduce, runSparseAllGather } from '../collective/collectives';
import { encodeSparseCompact } from '../collective/codecs';
import type { Transport } from '../collective/types';
import { DataChannelTransport } from './datachannel-transport';
import { FakeNet } from './fake-mesh';
import { finiteModelDataCheck } from './payload-checks';

describe('hostileFrames', () => {
  it('is seeded, covers every kind, and each frame fails the decoder, the room check or the heartbeat check, or claims a rank', () => {
    const target = { roomHash: roomHash('fuzz-room'), ranks: [0, 1] };
    const frames = [...hostileFrames(7, 600, target)];
    expect([...hostileFrames(7, 600, target)].map((f) => f.bytes)).toEqual(frames.map((f) => f.bytes));
    expect(new Set(frames.map((f) => f.kind))).toEqual(new Set(HOSTILE_KINDS));
    for (const { kind, bytes } of frames) {
      const frame = decodeFrame(bytes);
      if (isFrameError(frame)) continue;
      // what decodes must be refused later, by the room, heartbeat or group checks
      if (frame.roomHash !== target.roomHash) continue;
      if (frame.type === 'heartbeat') {
        expect(frame.payload.length).not.toBe(9);
        continue;
      }
      if (kind === 'future-epoch') {
        // decodes, but names a membership epoch no honest peer can be in (the transport refuses it)
        expect(frame.epoch).toBeGreaterThanOrEqual(1000);
        continue;
      }
      expect(['nan-gradient-claiming-a-rank', 'extended', 'truncated', 'bit-flip', 'random-bytes']).toContain(kind);
      expect(frame.type).toBe('data');
      expect(target.ranks).toContain(frame.sender);
    }
  });
});

describe('memberFrames: a ring member breaking one rule per frame', () => {
  // Real transports over the in-memory mesh, with the run's payload check: every frame meant to be
  // refused is refused with its kind's reason, the rest are taken without harm, and an all-reduce that
  // runs through the flood gives the same bits as one without it.
  it.each(['none', 'fp16', 'topk', 'randk'])('%s room: each kind refused with its own reason; a concurrent collective of the room is bitwise unchanged', async (compression) => {
    const members = ['peer-0', 'peer-1', 'peer-2'];
    const net = new FakeNet(members);
    const transports = members.map((id) => new DataChannelTransport(net.node(id), { members, checkMessage: finiteModelDataCheck(compression, 16) }));
    const target = { roomHash: roomHash('TEST'), rank: 2, epoch: 0, world: 3, compression };
    const frames = [...memberFrames(5, 400, target)];
    const kinds = new Set(frames.map((f) => f.kind));
    expect(kinds).toEqual(new Set(MEMBER_KINDS.filter((k) => k !== 'malformed-topk' || compression === 'topk')));

    // The room's own traffic meanwhile, in its codec: the sparse all-gather of Top-K payloads, else an all-reduce.
    const vector = (r: number) => Float32Array.from({ length: 1000 }, (_, i) => ((i * 7 + r) % 13) - 6);
    const collective = async (t: Transport, r: number): Promise<Uint8Array[]> => {
      if (compression === 'topk') {
        const mine = encodeSparseCompact({ indices: Uint32Array.of(r, 100 + r, 900 + r), values: Float32Array.of(r, -r, 0.5) });
        return (await runSparseAllGather(t, mine, { round: 1, collective: 16 })).payloads.map((p) => p.slice());
      }
      const v = vector(r);
      await runAllReduce(t, v, { round: 1, collective: 16, wire: compression === 'fp16' ? 'f16' : 'f32' });
      return [new Uint8Array(v.buffer)];
    };
    const cleanNet = new FakeNet(members);
    const clean = await Promise.all(cleanNet.nodes.map((n, r) => collective(new DataChannelTransport(n, { members }), r)));

    const running = Promise.all(transports.map((t, r) => collective(t, r)));
    for (const frame of frames) for (const to of ['peer-0', 'peer-1']) net.node('peer-2').sendRaw(to, frame.bytes);
    const fuzzed = await running;
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(fuzzed).toEqual(clean);

    for (const receiver of ['peer-0', 'peer-1']) {
      const refused = net.node(receiver).refused.map((line) => line.replace(/^peer-2: /, '').replace(/0x[0-9a-f]+/gi, '#').replace(/\d+/g, '#'));
      expect(refused).toHaveLength(frames.filter((f) => f.refused).length);
      // In sending order, each refusal carries the reason of the frame's kind.
      const expected = frames.filter((f) => f.refused);
      refused.forEach((reason, i) => expect(reason).toMatch(MEMBER_REFUSALS[expected[i].kind]));
    }
  });
});
