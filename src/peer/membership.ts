// Ranks and topology, computed the same way by every tab from the same member list, so no tab has to
// tell another what its rank is.
//
// Rank rule: rank = index of the peer id in the member ids sorted by plain string order (code units).
// Peer ids start with the join time in base 36 (see newPeerId), so ranks follow join order, with the
// random suffix breaking ties. Every tab that sees the same members computes the same ranks.
//
// Topology rule: rooms of up to FULL_MESH_MAX members connect every pair (any collective, any
// parameter server, one hop for everything). Larger rooms connect ring neighbours only (rank +-1),
// which is all a ring collective needs: N links instead of N(N-1)/2, so 16 or 64 tabs stay cheap.
// Existing links are kept when the room grows past the limit; links are dropped only when a peer leaves.

export const FULL_MESH_MAX = 8;

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
  const n = order.length;
  return [...new Set([order[(rank + 1) % n], order[(rank - 1 + n) % n]])];
}

/** Of two peers, the one with the smaller id starts the WebRTC offer, so that both never do at once. */
export function isInitiator(self: string, other: string): boolean {
  return self < other;
}
