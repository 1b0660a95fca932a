import { describe, expect, it } from 'vitest';
import { RateLimiter, RoomRegistry } from './rooms';
import { peerIdSource } from './peer-ids';
import { MAX_JSON_DEPTH, MAX_MESSAGE_CHARS, isParseError, jsonDepth, parseClientMessage, parseServerMessage } from '../src/peer/signal-protocol';

/** Predictable ids in join order: peer-0001, peer-0002, ... */
function counter() {
  let n = 0;
  return () => `peer-${String(++n).padStart(4, '0')}`;
}

describe('RoomRegistry', () => {
  it('assigns each joiner an id, welcomes it with the members already there and tells them', () => {
    const rooms = new RoomRegistry({ newPeerId: counter(), iceServersFor: (id) => [{ urls: 'turn:t', username: id, credential: 'c' }] });
    expect(rooms.join(1, 'ABC')).toEqual([
      { to: 1, message: { type: 'welcome', room: 'ABC', peerId: 'peer-0001', members: [], iceServers: [{ urls: 'turn:t', username: 'peer-0001', credential: 'c' }] } },
    ]);
    expect(rooms.join(2, 'ABC')).toEqual([
      { to: 2, message: { type: 'welcome', room: 'ABC', peerId: 'peer-0002', members: ['peer-0001'], iceServers: [{ urls: 'turn:t', username: 'peer-0002', credential: 'c' }] } },
      { to: 1, message: { type: 'peer-joined', peerId: 'peer-0002' } },
    ]);
    expect(rooms.members('ABC')).toEqual(['peer-0001', 'peer-0002']);
    expect(rooms.peerIdOf(2)).toBe('peer-0002');
  });

  it('relays signals only within a room, stamped with the real sender', () => {
    const rooms = new RoomRegistry({ newPeerId: counter() });
    rooms.join(1, 'ONE');
    rooms.join(2, 'ONE');
    rooms.join(3, 'TWO');
    expect(rooms.relay(1, 'peer-0002', { sdp: 'x' })).toEqual([
      { to: 2, message: { type: 'signal', from: 'peer-0001', data: { sdp: 'x' } } },
    ]);
    expect(rooms.relay(1, 'peer-0003', {})[0]).toEqual({ to: 1, message: { type: 'error', reason: 'no peer peer-0003 in this room' } });
    expect(rooms.relay(9, 'peer-0001', {})[0].message).toMatchObject({ type: 'error', reason: /join a room/ });
  });

  it('tells the others when someone leaves, forgets an empty room, and never hands an id out twice', () => {
    const rooms = new RoomRegistry();
    rooms.join(1, 'R');
    rooms.join(2, 'R');
    const [a, b] = rooms.members('R');
    expect(rooms.leave(1)).toEqual([{ to: 2, message: { type: 'peer-left', peerId: a } }]);
    expect(rooms.roomCount()).toBe(1);
    rooms.join(3, 'R');
    const c = rooms.members('R')[1];
    expect(c).not.toBe(a);
    expect(c > b).toBe(true); // a newcomer ranks after everyone already there
    rooms.leave(2);
    expect(rooms.leave(3)).toEqual([]);
    expect(rooms.roomCount()).toBe(0);
    expect(rooms.members('R')).toEqual([]);
    expect(rooms.leave(3)).toEqual([]);
  });

  it('bounds rooms, peers per room and double joins', () => {
    const rooms = new RoomRegistry({ limits: { maxRooms: 2, maxPeersPerRoom: 2 }, newPeerId: counter() });
    rooms.join(1, 'R1');
    rooms.join(2, 'R2');
    expect(rooms.join(3, 'R3')[0].message).toMatchObject({ type: 'error', reason: /too many rooms/ });
    rooms.join(5, 'R1');
    expect(rooms.join(6, 'R1')[0].message).toMatchObject({ type: 'error', reason: /room full/ });
    expect(rooms.join(1, 'R2')[0].message).toMatchObject({ type: 'error', reason: /already in a room/ });
    expect(rooms.members('R1')).toEqual(['peer-0001', 'peer-0003']);
  });
});

describe('peer ids', () => {
  it('sort in issue order even within one millisecond and carry 72 random bits', () => {
    const next = peerIdSource(() => 1_700_000_000_000);
    const ids = Array.from({ length: 50 }, next);
    expect([...ids].sort()).toEqual(ids);
    expect(new Set(ids).size).toBe(50);
    for (const id of ids) expect(id).toMatch(/^[0-9a-z]{9}-[A-Za-z0-9_-]{12}$/);
    expect(ids[0].slice(0, 9)).toBe((1_700_000_000_000).toString(36).padStart(9, '0'));
  });
});

describe('client message validation', () => {
  it('accepts well-formed messages', () => {
    expect(parseClientMessage('{"type":"join","room":"K7QX2M"}')).toEqual({ type: 'join', room: 'K7QX2M' });
    expect(parseClientMessage('{"type":"signal","to":"abcd","data":{"type":"offer","sdp":"v=0"}}')).toMatchObject({
      type: 'signal',
    });
  });

  it('refuses bad shapes with a reason', () => {
    const bad = [
      'not json',
      '[]',
      '{"type":"dance"}',
      '{"type":"join","room":"a b"}',
      '{"type":"join","room":"ok","peerId":"000000000-aaaa"}',
      '{"type":"signal","to":"x","data":{}}',
      '{"type":"signal","to":"abcd","data":"string"}',
      '{"type":"signal","to":"abcd","data":[1]}',
      `{"type":"signal","to":"abcd","data":{"sdp":"${'x'.repeat(40000)}"}}`,
    ];
    for (const raw of bad) {
      const parsed = parseClientMessage(raw);
      expect(isParseError(parsed), raw.slice(0, 50)).toBe(true);
    }
    expect(parseClientMessage('{"type":"join","room":"ok","peerId":"abcd"}')).toEqual({ error: expect.stringMatching(/server assigns peer ids/) });
  });

  it('refuses values nested thousands deep without throwing (in data, in type, in the server direction)', () => {
    const deep = '['.repeat(5000) + ']'.repeat(5000);
    for (const raw of [`{"type":"signal","to":"abcd","data":{"x":${deep}}}`, `{"type":${deep}}`, deep]) {
      expect(parseClientMessage(raw)).toEqual({ error: `message nested deeper than ${MAX_JSON_DEPTH}` });
      expect(parseServerMessage(raw)).toEqual({ error: `message nested deeper than ${MAX_JSON_DEPTH}` });
    }
    expect(parseClientMessage('x'.repeat(MAX_MESSAGE_CHARS + 1))).toEqual({ error: `message over ${MAX_MESSAGE_CHARS} chars` });
    // an unknown type is described without serializing it
    expect(parseClientMessage('{"type":{"a":[1]}}')).toEqual({ error: 'unknown message type object' });
  });

  it('measures depth outside strings only', () => {
    expect(jsonDepth('{"a":[1,{"b":2}]}')).toBe(3);
    expect(jsonDepth('{"a":"[[[[{{{{"}')).toBe(1);
    expect(jsonDepth('{"a":"\\"[[[["}')).toBe(1);
    expect(jsonDepth('1')).toBe(0);
  });

  it('checks the ICE servers of a welcome', () => {
    const welcome = (ice: unknown) => JSON.stringify({ type: 'welcome', room: 'R', peerId: 'abcd', members: [], iceServers: ice });
    expect(parseServerMessage(welcome([{ urls: ['turn:h:3478'], username: '1:a', credential: 'x' }]))).toMatchObject({ type: 'welcome' });
    expect(isParseError(parseServerMessage(welcome([{ urls: 'http://x' }])))).toBe(true);
    expect(isParseError(parseServerMessage(welcome([{ urls: 'stun:x', username: 5 }])))).toBe(true);
  });
});

describe('RateLimiter', () => {
  it('allows a burst, then refills at the sustained rate', () => {
    const limiter = new RateLimiter(3, 2, 0);
    expect([limiter.take(0), limiter.take(0), limiter.take(0), limiter.take(0)]).toEqual([true, true, true, false]);
    expect(limiter.take(400)).toBe(false); // 0.8 tokens
    expect(limiter.take(500)).toBe(true); // 1.0 token
    expect(limiter.take(10_000)).toBe(true);
  });

  it('takes amounts (bytes) and says when it is full again', () => {
    const limiter = new RateLimiter(100, 10, 0);
    expect(limiter.take(0, 80)).toBe(true);
    expect(limiter.take(0, 30)).toBe(false);
    expect(limiter.isFull(0)).toBe(false);
    expect(limiter.isFull(8000)).toBe(true);
  });
});
