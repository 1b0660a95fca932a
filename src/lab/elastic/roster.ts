// The pure rules of re-forming an elastic room's ring, computed the same way by every tab:
// - the coordinator is the lowest peer id among the tabs this tab can reach (the oldest member: peer ids
//   start with the join time), so no election is needed and a dead coordinator is replaced by the next;
// - the roster is every reachable tab that said `ready`, in rank order, once all have (or a grace period
//   ran out), and at least `minMembers`;
// - the state everyone starts from is the most advanced one (most completed steps; the lowest rank on a
//   tie). A completed step is whole on every rank that completed it (the update runs only after the
//   all-reduce delivered every chunk), and a step that did not complete left no trace, so adopting the
//   most advanced state redoes an interrupted step from its start and never applies half of one.
import type { StateCard } from '../../peer/elastic-protocol';
import { rankOrder } from '../../peer/membership';

export function coordinatorOf(view: Iterable<string>): string | undefined {
  return rankOrder(view)[0];
}

export interface RosterInputs {
  /** Tabs this tab can reach (open links), itself included. */
  view: string[];
  /** Who said ready (itself included). */
  ready: Set<string>;
  minMembers: number;
  maxMembers: number;
  /** The grace period for reachable tabs that have not said ready yet has run out. */
  graceOver: boolean;
}

/** The members of the next ring in rank order, or null to keep waiting. */
export function decideRoster({ view, ready, minMembers, maxMembers, graceOver }: RosterInputs): string[] | null {
  const reachable = rankOrder(view);
  const candidates = reachable.filter((id) => ready.has(id));
  if (candidates.length < minMembers) return null;
  if (candidates.length < reachable.length && !graceOver) return null;
  // The oldest tabs first: a room past its size limit keeps its running members and turns newcomers away.
  return candidates.slice(0, maxMembers);
}

/** The rank whose state every member starts from; -1 when no member holds any (a new room). */
export function chooseSource(cards: StateCard[]): number {
  let best = -1;
  cards.forEach((card, rank) => {
    if (card.step >= 0 && (best < 0 || card.step > cards[best].step)) best = rank;
  });
  return best;
}

/** Whether a member must receive the source's state (it holds another step or other parameters). */
export function needsState(card: StateCard, source: StateCard): boolean {
  return card.step !== source.step || card.hash !== source.hash;
}
