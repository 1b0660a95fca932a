import { describe, expect, it } from 'vitest';
import { decodeFrame, encodeFrame, isFrameError, NO_RANK, type Frame } from '../peer/frame';
import type { MeshListener } from '../peer/mesh';
import {
  CLASSROOM_COLLECTIVE,
  decodeClassroomMessage,
  encodeClassroomMessage,
  isMessageError,
  meshClassroomChannel,
  type ClassroomMessage,
} from './classroom-protocol';

const bytes = (x: unknown) => new TextEncoder().encode(JSON.stringify(x));

describe('classroom messages', () => {
  it('round-trip', () => {
    const messages: ClassroomMessage[] = [
      { kind: 'start', lesson: 7, teacher: 'a', members: ['a', 'b'] },
      { kind: 'release', lesson: 7, step: 3 },
      { kind: 'state', lesson: 7, step: 1, rank: 1, values: [1, 20.5], received: { chunk: 0, from: 0, values: [1] } },
      { kind: 'start', lesson: 7, teacher: 'a', members: ['a', 'b'], topic: 'pipeline', pipeline: { schedule: '1f1b', micro: 2 } },
      { kind: 'op', lesson: 7, step: 0, rank: 1, tensors: [{ name: 'W', values: [1, -1, 0, 2] }] },
      { kind: 'op', lesson: 7, step: 4, rank: 0, op: { kind: 'send-activation', micro: 1, peer: 1 }, tensors: [{ name: 'activation', values: [3, 4] }] },
    ];
    for (const m of messages) expect(decodeClassroomMessage(encodeClassroomMessage(m))).toEqual(m);
  });

  it('refuses anything malformed with a reason', () => {
    const cases: [unknown, RegExp][] = [
      [{ kind: 'start', lesson: 7, teacher: 'x', members: ['a', 'b'] }, /teacher is not a member/],
      [{ kind: 'start', lesson: 7, teacher: 'a', members: ['a', 'a'] }, /listed twice/],
      [{ kind: 'release', lesson: 7, step: 0 }, /bad step/],
      [{ kind: 'release', lesson: -1, step: 1 }, /bad lesson/],
      [{ kind: 'state', lesson: 7, step: 1, rank: 0, values: [1, null] }, /finite numbers/],
      [{ kind: 'state', lesson: 7, step: 1, rank: 0, values: [1], received: { chunk: 'x' } }, /received/],
      [{ kind: 'teach', lesson: 7 }, /unknown kind/],
      [{ kind: 'start', lesson: 7, teacher: 'a', members: ['a'], topic: 'pipeline', pipeline: { schedule: 'zigzag', micro: 2 } }, /bad pipeline schedule/],
      [{ kind: 'start', lesson: 7, teacher: 'a', members: ['a'], topic: 'pipeline', pipeline: { schedule: 'gpipe', micro: 99 } }, /bad micro-batch count/],
      [{ kind: 'start', lesson: 7, teacher: 'a', members: ['a'], topic: 'expert' }, /unknown lesson topic/],
      [{ kind: 'op', lesson: 7, step: 2, rank: 0, tensors: [] }, /without its op/],
      [{ kind: 'op', lesson: 7, step: 2, rank: 0, op: { kind: 'jump', micro: 0 }, tensors: [] }, /bad op/],
      [{ kind: 'op', lesson: 7, step: 2, rank: 0, op: { kind: 'forward', micro: 0 }, tensors: [{ name: '', values: [] }] }, /bad tensor name/],
      [{ kind: 'op', lesson: 7, step: 2, rank: 0, op: { kind: 'forward', micro: 0 }, tensors: [{ name: 'y', values: ['1'] }] }, /finite numbers/],
      [[1, 2], /not an object/],
    ];
    for (const [message, reason] of cases) {
      const decoded = decodeClassroomMessage(bytes(message));
      expect(isMessageError(decoded) && decoded.error).toMatch(reason);
    }
    expect(decodeClassroomMessage(Uint8Array.of(0xff, 0x7b))).toEqual({ error: 'classroom message: not UTF-8 JSON' });
  });
});

describe('meshClassroomChannel', () => {
  function fakeMesh() {
    const listeners = new Set<MeshListener>();
    const sent: { to: string; frame: Frame }[] = [];
    const refused: string[] = [];
    const mesh = {
      peerId: 'me',
      roomHash: 1234,
      on(l: MeshListener) {
        listeners.add(l);
        return () => listeners.delete(l);
      },
      sendRaw(to: string, raw: Uint8Array) {
        const frame = decodeFrame(raw);
        if (isFrameError(frame)) throw new Error(frame.error);
        sent.push({ to, frame });
      },
      refuse: (from: string, reason: string) => void refused.push(`${from}: ${reason}`),
    };
    const hear = (from: string, frame: Frame) => listeners.forEach((l) => l.frame?.(from, frame));
    return { mesh, sent, refused, hear };
  }
  const frameOf = (type: Frame['type'], collective: number, round: number, payload: Uint8Array): Frame => {
    const decoded = decodeFrame(encodeFrame({ type, roomHash: 1234, round, collective, chunk: 0, sender: NO_RANK, part: 0, parts: 1 }, payload));
    if (isFrameError(decoded)) throw new Error(decoded.error);
    return decoded;
  };

  it('sends control frames tagged with the lesson and hears only the classroom’s', () => {
    const { mesh, sent, refused, hear } = fakeMesh();
    const channel = meshClassroomChannel(mesh);
    const heard: ClassroomMessage[] = [];
    channel.listen((_, m) => heard.push(m));
    channel.send('b', { kind: 'release', lesson: 9, step: 1 });
    expect(sent[0].to).toBe('b');
    expect(sent[0].frame).toMatchObject({ type: 'control', round: 9, collective: CLASSROOM_COLLECTIVE });

    hear('b', sent[0].frame);
    hear('b', frameOf('data', CLASSROOM_COLLECTIVE, 9, encodeClassroomMessage({ kind: 'release', lesson: 9, step: 2 })));
    hear('b', frameOf('control', 99, 9, encodeClassroomMessage({ kind: 'release', lesson: 9, step: 2 })));
    expect(heard).toEqual([{ kind: 'release', lesson: 9, step: 1 }]);

    hear('c', frameOf('control', CLASSROOM_COLLECTIVE, 9, bytes({ kind: 'release', lesson: 9, step: 'x' })));
    hear('c', frameOf('control', CLASSROOM_COLLECTIVE, 8, encodeClassroomMessage({ kind: 'release', lesson: 9, step: 1 })));
    expect(refused).toEqual(['c: classroom message refused: bad step x', 'c: classroom message: lesson and frame round differ']);
    expect(heard).toHaveLength(1);
  });
});
