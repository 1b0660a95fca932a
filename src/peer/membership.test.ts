import { describe, expect, it } from 'vitest';
import { isInitiator, newPeerId, rankOf, rankOrder, wantedPeers } from './membership';

describe('ranks', () => {
  it('follows join time, whatever order the ids were seen in', () => {
    const early = newPeerId(1_700_000_000_000);
    const later = newPeerId(1_700_000_000_500);
    const latest = newPeerId(1_800_000_000_000);
    expect(rankOrder([latest, early, later])).toEqual([early, later, latest]);
    expect(rankOf([later, latest, early], later)).toBe(1);
    expect(rankOf([later], 'missing')).toBe(-1);
  });

  it('gives every tab the same ranks from any permutation of the members', () => {
    const ids = Array.from({ length: 10 }, () => newPeerId(1_700_000_000_000 + Math.floor(Math.random() * 1000)));
    const reference = rankOrder(ids);
    for (let i = 0; i < 20; i++) {
      const shuffled = [...ids].sort(() => Math.random() - 0.5);
      expect(rankOrder(shuffled)).toEqual(reference);
    }
  });

  it('makes well-formed ids', () => {
    expect(newPeerId()).toMatch(/^[0-9a-z]{9}-[0-9a-z]{8}$/);
  });
});

describe('topology', () => {
  const ids = (n: number) => Array.from({ length: n }, (_, i) => `peer-${String(i).padStart(2, '0')}`);

  it('connects every pair in small rooms', () => {
    const members = ids(8);
    expect(wantedPeers('peer-03', members)).toEqual(members.filter((m) => m !== 'peer-03'));
  });

  it('connects ring neighbours in large rooms, and every link is wanted by both ends', () => {
    const members = ids(16);
    expect(wantedPeers('peer-00', members).sort()).toEqual(['peer-01', 'peer-15']);
    expect(wantedPeers('peer-07', members).sort()).toEqual(['peer-06', 'peer-08']);
    for (const a of members) for (const b of wantedPeers(a, members)) expect(wantedPeers(b, members)).toContain(a);
    // the ring is closed: following successors from rank 0 visits all 16
    const seen = new Set<string>();
    let at = 'peer-00';
    for (let i = 0; i < 16; i++) {
      seen.add(at);
      at = members[(members.indexOf(at) + 1) % 16];
      expect(wantedPeers(members[(members.indexOf(at) + 15) % 16], members)).toContain(at);
    }
    expect(seen.size).toBe(16);
  });

  it('lets exactly one side of a pair initiate', () => {
    expect(isInitiator('a', 'b')).toBe(true);
    expect(isInitiator('b', 'a')).toBe(false);
  });

  it('wants nothing for a peer outside the room', () => {
    expect(wantedPeers('stranger', ids(3))).toEqual([]);
  });
});
