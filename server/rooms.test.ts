import { describe, expect, it } from 'vitest';
import { RateLimiter, RoomRegistry, isOriginAllowed } from './rooms';
import { isParseError, parseClientMessage } from '../src/peer/signal-protocol';

describe('RoomRegistry', () => {
  it('welcomes a joiner with the members already there and tells them', () => {
    const rooms = new RoomRegistry();
    expect(rooms.join(1, 'ABC', 'peer-a')).toEqual([
      { to: 1, message: { type: 'welcome', room: 'ABC', peerId: 'peer-a', members: [] } },
    ]);
    expect(rooms.join(2, 'ABC', 'peer-b')).toEqual([
      { to: 2, message: { type: 'welcome', room: 'ABC', peerId: 'peer-b', members: ['peer-a'] } },
      { to: 1, message: { type: 'peer-joined', peerId: 'peer-b' } },
    ]);
    expect(rooms.members('ABC')).toEqual(['peer-a', 'peer-b']);
  });

  it('relays signals only within a room', () => {
    const rooms = new RoomRegistry();
    rooms.join(1, 'ONE', 'peer-a');
    rooms.join(2, 'ONE', 'peer-b');
    rooms.join(3, 'TWO', 'peer-c');
    expect(rooms.relay(1, 'peer-b', { sdp: 'x' })).toEqual([
      { to: 2, message: { type: 'signal', from: 'peer-a', data: { sdp: 'x' } } },
    ]);
    expect(rooms.relay(1, 'peer-c', {})[0]).toEqual({ to: 1, message: { type: 'error', reason: 'no peer peer-c in this room' } });
    expect(rooms.relay(9, 'peer-a', {})[0].message).toMatchObject({ type: 'error', reason: /join a room/ });
  });

  it('tells the others when someone leaves and forgets an empty room', () => {
    const rooms = new RoomRegistry();
    rooms.join(1, 'R', 'peer-a');
    rooms.join(2, 'R', 'peer-b');
    expect(rooms.leave(1)).toEqual([{ to: 2, message: { type: 'peer-left', peerId: 'peer-a' } }]);
    expect(rooms.roomCount()).toBe(1);
    expect(rooms.leave(2)).toEqual([]);
    expect(rooms.roomCount()).toBe(0);
    expect(rooms.members('R')).toEqual([]);
    expect(rooms.leave(2)).toEqual([]);
  });

  it('bounds rooms, peers per room, duplicate ids and double joins', () => {
    const rooms = new RoomRegistry({ maxRooms: 2, maxPeersPerRoom: 2 });
    rooms.join(1, 'R1', 'peer-a');
    rooms.join(2, 'R2', 'peer-b');
    expect(rooms.join(3, 'R3', 'peer-c')[0].message).toMatchObject({ type: 'error', reason: /too many rooms/ });
    expect(rooms.join(4, 'R1', 'peer-a')[0].message).toMatchObject({ type: 'error', reason: /already taken/ });
    rooms.join(5, 'R1', 'peer-e');
    expect(rooms.join(6, 'R1', 'peer-f')[0].message).toMatchObject({ type: 'error', reason: /room full/ });
    expect(rooms.join(1, 'R2', 'peer-x')[0].message).toMatchObject({ type: 'error', reason: /already in a room/ });
    expect(rooms.members('R1')).toEqual(['peer-a', 'peer-e']);
  });
});

describe('client message validation', () => {
  it('accepts well-formed messages', () => {
    expect(parseClientMessage('{"type":"join","room":"K7QX2M","peerId":"abcd1234"}')).toEqual({
      type: 'join',
      room: 'K7QX2M',
      peerId: 'abcd1234',
    });
    expect(parseClientMessage('{"type":"signal","to":"abcd","data":{"type":"offer","sdp":"v=0"}}')).toMatchObject({
      type: 'signal',
    });
  });

  it('refuses bad shapes with a reason', () => {
    const bad = [
      'not json',
      '[]',
      '{"type":"dance"}',
      '{"type":"join","room":"a b","peerId":"abcd"}',
      '{"type":"join","room":"ok","peerId":"x"}',
      '{"type":"join","room":"ok","peerId":5}',
      '{"type":"signal","to":"abcd","data":"string"}',
      '{"type":"signal","to":"abcd","data":[1]}',
      `{"type":"signal","to":"abcd","data":{"sdp":"${'x'.repeat(40000)}"}}`,
    ];
    for (const raw of bad) {
      const parsed = parseClientMessage(raw);
      expect(isParseError(parsed), raw.slice(0, 50)).toBe(true);
    }
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
});

describe('isOriginAllowed', () => {
  it('allows localhost pages, the server host itself, listed origins and non-browser clients', () => {
    expect(isOriginAllowed('http://localhost:5173', [], 'localhost:8787')).toBe(true);
    expect(isOriginAllowed('http://127.0.0.1:5180', [], '127.0.0.1:8790')).toBe(true);
    expect(isOriginAllowed('http://192.168.1.5:5173', [], '192.168.1.5:8787')).toBe(true);
    expect(isOriginAllowed('https://lab.example.org', ['https://lab.example.org'], 'x:1')).toBe(true);
    expect(isOriginAllowed('https://anything.example', ['*'], 'x:1')).toBe(true);
    expect(isOriginAllowed(undefined, [], 'x:1')).toBe(true);
  });

  it('refuses other origins', () => {
    expect(isOriginAllowed('https://evil.example', [], '192.168.1.5:8787')).toBe(false);
    expect(isOriginAllowed('null', [], 'localhost:8787')).toBe(false);
    expect(isOriginAllowed('file://', [], 'localhost:8787')).toBe(false);
  });
});
