// Ranks and topology, computed the same way by every tab from the same member list, so no tab has to
// tell another what its rank is.
//
// Rank rule: rank = index of the peer id in the member ids sorted by plain string order (code units).
// Peer ids start with the join time in base 36 (see newPeerId), so ranks follow join order, with the
// random suffix breaking ties. Every tab that sees the same members computes the same ranks.
//
// Topology rule: rooms of up to FULL_MESH_MAX members connect every pair (any collective, any
// parameter server, one hop for everything). Larger rooms (classroom size) connect far fewer:
// - the HUBS (the two lowest ids, the oldest members) link to everyone: the elastic coordinator is the
//   lowest id, so it reaches every tab, and its deputy already does when it takes over;
// - every other tab links to the hubs and to its neighbours at distance 1 and 2 in rank order, so that
//   when one tab leaves, the two tabs next to it in the ring are already linked;
// - whatever a ring epoch needs beyond that (ringLinks: its own ring neighbours, rank 0, the state
//   source) is asked for by the elastic room when the epoch is announced (Mesh.require).
// About 4N links instead of N(N-1)/2. Existing links are kept when the room grows past the limit;
// links are dropped only when a peer leaves.

export const FULL_MESH_MAX = 8;
/** The most tabs one elastic ring takes (src/lab/elastic/elastic-room.ts); a classroom of 32. */
export const ELASTIC_MAX_MEMBERS = 32;
/** Tabs that link to everyone in a room past FULL_MESH_MAX (the lowest ids). */
export const HUBS = 2;

/** A fresh peer id: join time (ms, base 36, fixed width so that string order is time order) + random. */
export function newPeerId(now: number = Date.now(), random: () => number = Math.random): string {
  const time = Math.floor(now).toString(36).padStart(9, '0');
  let suffix = '';
  for (let i = 0; i < 8; i++) suffix += Math.floor(random() * 36).toString(36);
  return `${time}-${suffix}`;
}

/** Member ids in rank order. Duplicates are removed. */
export function rankOrder(memberIds: Iterable<string>): string[] {
  return [...new Set(memberIds)].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

export function rankOf(memberIds: Iterable<string>, peerId: string): number {
  return rankOrder(memberIds).indexOf(peerId);
}

/** The peers `self` should hold a link to, given every member of the room (self included). */
export function wantedPeers(self: string, memberIds: Iterable<string>, fullMeshMax = FULL_MESH_MAX): string[] {
  const order = rankOrder(memberIds);
  const rank = order.indexOf(self);
  if (rank < 0) return [];
  if (order.length <= fullMeshMax) return order.filter((id) => id !== self);
  if (rank < HUBS) return order.filter((id) => id !== self);
  const n = order.length;
  const wanted = new Set(order.slice(0, HUBS));
  for (const d of [1, 2, n - 1, n - 2]) wanted.add(order[(rank + d) % n]);
  wanted.delete(self);
  return [...wanted];
}

/**
 * The links one ring epoch needs at `self`, beyond whatever the room already holds: its ring neighbours
 * (a ring collective's only traffic), rank 0 with every member (the replica check and ZeRO rebuilds
 * gather there) and the state source with every member that must receive its state. Both ends of each
 * link compute it from the same roster, so both ask for it.
 */
export function ringLinks(self: string, ring: readonly string[], source: number, receivers: readonly number[]): string[] {
  const rank = ring.indexOf(self);
  if (rank < 0) return [];
  const n = ring.length;
  const links = new Set([ring[(rank + 1) % n], ring[(rank - 1 + n) % n]]);
  if (rank === 0) ring.forEach((id) => links.add(id));
  else links.add(ring[0]);
  if (source >= 0) {
    if (rank === source) receivers.forEach((r) => links.add(ring[r]));
    else if (receivers.includes(rank)) links.add(ring[source]);
  }
  links.delete(self);
  return [...links];
}

/** Of two peers, the one with the smaller id starts the WebRTC offer, so that both never do at once. */
export function isInitiator(self: string, other: string): boolean {
  return self < other;
}
