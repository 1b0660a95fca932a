// Moving a ring's starting state to the tabs that lack it when an elastic room re-forms: the source rank
// (roster.ts: the most advanced state) sends its checkpoint bytes (train/checkpoint.ts: parameters,
// optimizer state, step, sampler position; CRC-checked on arrival) to every member whose state card
// differs; the others keep their own, which is bitwise the same.
import type { Formation } from './elastic-room';
import { needsState } from './roster';
import { COLLECTIVE_IDS } from '../../collective/collective-ids';


/**
 * Resolves with the state this tab starts the formation's epoch from (null: nobody holds any, a new
 * room) and whether it came over the wire. `mine` is this tab's own checkpoint (null: it holds none).
 */
export async function exchangeState(formation: Formation, mine: Uint8Array | null): Promise<{ state: Uint8Array | null; received: boolean }> {
  const { source, cards, rank, transport } = formation;
  if (source < 0) return { state: null, received: false };
  const sourceCard = cards[source];
  const tag = { round: sourceCard.step, collective: COLLECTIVE_IDS.stateTransfer.first, chunk: 0 };
  if (rank === source) {
    if (!mine) throw new Error('this tab is the state source of the ring but holds no state');
    await Promise.all(cards.map((card, r) => (r !== rank && needsState(card, sourceCard) ? transport.send(r, tag, mine) : undefined)));
    return { state: mine, received: false };
  }
  if (needsState(cards[rank], sourceCard)) return { state: await transport.recv(source, tag), received: true };
  if (!mine) throw new Error('the roster says this tab holds the ring state, but it holds none');
  return { state: mine, received: false };
}
