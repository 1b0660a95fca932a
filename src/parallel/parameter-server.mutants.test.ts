// The server rank check of SyncParameterServer (parameter-server.ts), which no test reached: a server
// outside the room would wait forever for gradients nobody gathers. Only the transport is read before
// the check, so the other options are stand-ins.
import { describe, expect, it } from 'vitest';
import { createMemoryMesh } from '../collective/memory-transport';
import { SyncParameterServer, type ParameterServerOptions } from './parameter-server';

describe('SyncParameterServer options', () => {
  it('refuses a server rank below 0 or at the room size; accepts the first and the last rank', () => {
    const [transport] = createMemoryMesh(3);
    const make = (server: number) => new SyncParameterServer({ transport, server } as unknown as ParameterServerOptions);
    expect(() => make(-1)).toThrow(/no rank -1/);
    expect(() => make(3)).toThrow(/no rank 3/);
    expect(make(0).isServer).toBe(true);
    expect(make(2).isServer).toBe(false);
  });
});
