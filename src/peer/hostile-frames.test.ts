import { describe, expect, it } from 'vitest';
import { decodeFrame, isFrameError, roomHash } from './frame';
import { hostileFrames, HOSTILE_KINDS } from './hostile-frames';

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
