import { describe, expect, it } from 'vitest';
import { COLLECTIVE_IDS, FIRST_FLOAT_ID, scopesMeet, type CollectiveIdRange } from './collective-ids';

const entries = Object.entries(COLLECTIVE_IDS) as [string, CollectiveIdRange][];

describe('collective id registry', () => {
  it('no two collectives that can share a mesh share an id', () => {
    const clashes: string[] = [];
    for (const [i, [nameA, a]] of entries.entries()) {
      for (const [nameB, b] of entries.slice(i + 1)) {
        const overlap = a.first < b.first + b.count && b.first < a.first + a.count;
        if (overlap && scopesMeet(a.scope, b.scope)) clashes.push(`${nameA} and ${nameB}`);
      }
    }
    expect(clashes).toEqual([]);
  });

  it('every id is an unsigned 32-bit integer and every range holds at least one id', () => {
    for (const [, { first, count }] of entries) {
      expect(Number.isInteger(first) && first >= 0).toBe(true);
      expect(Number.isInteger(count) && count >= 1 && first + count <= 2 ** 32).toBe(true);
    }
  });

  it('float vectors use ids from FIRST_FLOAT_ID up and byte messages ids below it (what the NaN check relies on)', () => {
    for (const [name, { first, payload, scope }] of entries) {
      if (scope === 'mesh-probe') continue; // its own mesh, with no payload check
      if (payload === 'floats') expect(first, name).toBeGreaterThanOrEqual(FIRST_FLOAT_ID);
      if (payload === 'bytes') expect(first, name).toBeLessThan(FIRST_FLOAT_ID);
    }
  });

  it('the wire keeps its ids (tabs of the previous build interoperate)', () => {
    expect(COLLECTIVE_IDS.hashExchange.first).toBe(1);
    expect(COLLECTIVE_IDS.stateTransfer.first).toBe(2);
    expect([3, 4, 5, 6, 7]).toEqual(['zeroBackup', 'zeroInventory', 'zeroPlan', 'zeroPiece', 'zeroState'].map((n) => COLLECTIVE_IDS[n as 'zeroBackup'].first));
    expect(COLLECTIVE_IDS.gradientBuckets.first).toBe(16);
    expect([COLLECTIVE_IDS.psGather.first, COLLECTIVE_IDS.psBroadcast.first]).toEqual([16, 17]);
    expect([COLLECTIVE_IDS.asyncPsGradients.first, COLLECTIVE_IDS.asyncPsParams.first, COLLECTIVE_IDS.asyncPsFinal.first]).toEqual([24, 25, 26]);
    expect(COLLECTIVE_IDS.zeroCollectives.first).toBe(1 << 20);
    expect(COLLECTIVE_IDS.elasticControl.first).toBe(0x0e1a5);
    expect(COLLECTIVE_IDS.classroomLesson.first).toBe(0x00c1a55);
  });
});
