import { describe, expect, it } from 'vitest';
import { isInitiator, newPeerId, rankOf, rankOrder, ringLinks, wantedPeers } from './membership';

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

  it('links hubs to everyone and others to their neighbours at distance 1 and 2 in large rooms; every link is wanted by both ends', () => {
    const members = ids(16);
    expect(wantedPeers('peer-00', members)).toHaveLength(15);
    expect(wantedPeers('peer-01', members)).toHaveLength(15);
    expect(wantedPeers('peer-07', members).sort()).toEqual(['peer-00', 'peer-01', 'peer-05', 'peer-06', 'peer-08', 'peer-09']);
    expect(wantedPeers('peer-15', members).sort()).toEqual(['peer-00', 'peer-01', 'peer-13', 'peer-14']);
    for (const a of members) for (const b of wantedPeers(a, members)) expect(wantedPeers(b, members)).toContain(a);
    // about 4N links, not N(N-1)/2
    const links = members.reduce((sum, a) => sum + wantedPeers(a, members).length, 0) / 2;
    expect(links).toBeLessThanOrEqual(4 * 16);
    // any one tab may leave: the ring over the others is still linked pair by pair
    for (const gone of members) {
      const rest = members.filter((m) => m !== gone);
      rest.forEach((a, i) => expect(wantedPeers(a, members)).toContain(rest[(i + 1) % rest.length]));
    }
  });

  it('asks, for a ring epoch, for its ring neighbours, rank 0 and the state source to each receiver', () => {
    const ring = ids(10);
    expect(ringLinks('peer-05', ring, -1, []).sort()).toEqual(['peer-00', 'peer-04', 'peer-06']);
    expect(ringLinks('peer-00', ring, -1, [])).toHaveLength(9);
    // peer-04 holds the most advanced state; peer-07 and peer-09 must receive it
    expect(ringLinks('peer-04', ring, 4, [7, 9]).sort()).toEqual(['peer-00', 'peer-03', 'peer-05', 'peer-07', 'peer-09']);
    expect(ringLinks('peer-07', ring, 4, [7, 9]).sort()).toEqual(['peer-00', 'peer-04', 'peer-06', 'peer-08']);
    for (const a of ring) for (const b of ringLinks(a, ring, 4, [7, 9])) expect(ringLinks(b, ring, 4, [7, 9])).toContain(a);
    expect(ringLinks('stranger', ring, -1, [])).toEqual([]);
  });

  it('lets exactly one side of a pair initiate', () => {
    expect(isInitiator('a', 'b')).toBe(true);
    expect(isInitiator('b', 'a')).toBe(false);
  });

  it('wants nothing for a peer outside the room', () => {
    expect(wantedPeers('stranger', ids(3))).toEqual([]);
  });
});
