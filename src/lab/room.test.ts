// What a tab tells its dashboard while it waits for its room: the size it waits for and how the wait runs.
import { describe, expect, it } from 'vitest';
import { ROOM_TIMEOUT_MS, roomWaitNote } from './room';

describe('roomWaitNote', () => {
  it('names the room size and says the wait restarts at each join and gives up after ROOM_TIMEOUT_MS without one', () => {
    expect(ROOM_TIMEOUT_MS).toBe(120_000);
    expect(roomWaitNote({ world: 24, room: 'class' })).toBe(
      'waiting for 24 tabs in room class: each tab that joins restarts the wait, which gives up once none has joined for 120 s',
    );
  });

  it('says nothing for a tab that waits for nobody', () => {
    expect(roomWaitNote({ world: 1, room: 'solo' })).toBeNull();
    expect(roomWaitNote({ world: 0, room: 'solo' })).toBeNull();
  });
});
