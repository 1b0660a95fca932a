import { mulberry32 } from '../collective/codecs';
import { describe, expect, it } from 'vitest';
import {
  FRAME_HEADER_BYTES,
  decodeFrame,
  encodeFrame,
  isFrameError,
  roomHash,
  type Frame,
  type FrameHeader,
} from './frame';


const header: FrameHeader = {
  type: 'data',
  roomHash: roomHash('K7QX2M'),
  round: 12345,
  collective: 3,
  chunk: 17,
  sender: 2,
  epoch: 513,
  part: 1,
  parts: 4,
};

function decodeOk(bytes: Uint8Array): Frame {
  const frame = decodeFrame(bytes);
  if (isFrameError(frame)) throw new Error(frame.error);
  return frame;
}

describe('frame encode/decode', () => {
  it('round-trips every header field and the payload', () => {
    const payload = new Uint8Array([1, 2, 3, 250, 0, 7]);
    const frame = decodeOk(encodeFrame(header, payload));
    expect(frame).toMatchObject({ ...header, version: 1 });
    expect(Array.from(frame.payload)).toEqual(Array.from(payload));
  });

  it('round-trips heartbeat and control frames, an empty payload, and maximal field values', () => {
    for (const type of ['heartbeat', 'control'] as const) {
      const h = { ...header, type, round: 0xffffffff, chunk: 0xffffffff, sender: 0xffff, epoch: 0xffff, part: 0, parts: 1 };
      const frame = decodeOk(encodeFrame(h, new Uint8Array(0)));
      expect(frame).toMatchObject(h);
      expect(frame.payload.length).toBe(0);
    }
  });

  it('decodes a frame that sits at an offset inside a larger buffer', () => {
    const encoded = encodeFrame(header, new Uint8Array([9, 8, 7]));
    const big = new Uint8Array(encoded.length + 13);
    big.set(encoded, 5);
    const frame = decodeOk(big.subarray(5, 5 + encoded.length));
    expect(Array.from(frame.payload)).toEqual([9, 8, 7]);
  });

  it('refuses invalid headers at encode time', () => {
    expect(() => encodeFrame({ ...header, round: -1 }, new Uint8Array(0))).toThrow(/round/);
    expect(() => encodeFrame({ ...header, sender: 70000 }, new Uint8Array(0))).toThrow(/sender/);
    expect(() => encodeFrame({ ...header, epoch: 0x10000 }, new Uint8Array(0))).toThrow(/epoch/);
    expect(() => encodeFrame({ ...header, part: 4, parts: 4 }, new Uint8Array(0))).toThrow(/part/);
  });

  it('gives a specific reason for each kind of bad frame', () => {
    const good = encodeFrame(header, new Uint8Array(32).fill(5));
    const cases: Array<[string, (b: Uint8Array) => unknown, RegExp]> = [
      ['not binary', () => 'hello', /not binary/],
      ['short', (b) => b.subarray(0, 10), /too short/],
      ['magic', (b) => ((b[0] ^= 0xff), b), /magic/],
      ['version', (b) => ((b[2] = 9), b), /version 9/],
      ['type', (b) => ((b[3] = 7), b), /type 7/],
      ['epoch changed', (b) => ((b[22] ^= 1), b), /checksum/],
      ['parts', (b) => ((b[28] = 0), (b[29] = 0), (b[30] = 0), (b[31] = 0), b), /piece/],
      ['truncated payload', (b) => b.subarray(0, b.length - 1), /payload length/],
      ['payload bit flip', (b) => ((b[FRAME_HEADER_BYTES + 3] ^= 1), b), /checksum/],
      ['round changed', (b) => ((b[8] ^= 1), b), /checksum/],
    ];
    for (const [name, mutate, reason] of cases) {
      const result = decodeFrame(mutate(good.slice()));
      expect(isFrameError(result), name).toBe(true);
      expect((result as { error: string }).error, name).toMatch(reason);
    }
    expect(decodeFrame(null)).toEqual({ error: 'not binary (null)' });
  });
});

describe('frame fuzz', () => {
  const random = mulberry32(0xc0ffee);
  const randomBytes = (n: number) => {
    const b = new Uint8Array(n);
    for (let i = 0; i < n; i++) b[i] = (random() * 256) | 0;
    return b;
  };
  const randomFrame = () =>
    encodeFrame(
      {
        type: (['data', 'heartbeat', 'control'] as const)[(random() * 3) | 0],
        roomHash: (random() * 2 ** 32) >>> 0,
        round: (random() * 2 ** 32) >>> 0,
        collective: (random() * 100) | 0,
        chunk: (random() * 1000) | 0,
        sender: (random() * 64) | 0,
        part: 0,
        parts: 1 + ((random() * 3) | 0),
      },
      randomBytes((random() * 300) | 0),
    );

  it('never throws on random garbage, and refuses it', () => {
    for (let i = 0; i < 5000; i++) {
      const garbage = randomBytes((random() * 200) | 0);
      const result = decodeFrame(garbage);
      expect(isFrameError(result)).toBe(true);
    }
  });

  it('refuses every single-byte mutation and every truncation or extension of a valid frame', () => {
    let refused = 0;
    for (let i = 0; i < 300; i++) {
      const frame = randomFrame();
      expect(isFrameError(decodeFrame(frame))).toBe(false);
      // Mutate one byte at a random position to a different value (CRC-32 catches every such change).
      for (let k = 0; k < 10; k++) {
        const bad = frame.slice();
        const pos = (random() * bad.length) | 0;
        bad[pos] ^= 1 + ((random() * 255) | 0);
        const result = decodeFrame(bad);
        expect(isFrameError(result), `mutation at ${pos}`).toBe(true);
        refused++;
      }
      const cut = (random() * frame.length) | 0;
      expect(isFrameError(decodeFrame(frame.subarray(0, cut)))).toBe(true);
      const longer = new Uint8Array(frame.length + 1 + ((random() * 8) | 0));
      longer.set(frame);
      expect(isFrameError(decodeFrame(longer))).toBe(true);
      refused += 2;
    }
    expect(refused).toBe(300 * 12);
  });

  it('refuses burst mutations of up to 4 bytes', () => {
    for (let i = 0; i < 2000; i++) {
      const bad = randomFrame();
      const pos = (random() * (bad.length - 4)) | 0;
      const burst = randomBytes(4);
      let changed = false;
      for (let j = 0; j < 4; j++) {
        if (bad[pos + j] !== burst[j]) changed = true;
        bad[pos + j] = burst[j];
      }
      if (changed) expect(isFrameError(decodeFrame(bad))).toBe(true);
    }
  });
});
