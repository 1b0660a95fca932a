// Parked tabs: in a room that splits the global batch by speed (shares=auto, docs/shares.md), a tab
// whose agreed share of a step is zero does nothing for that step: it trains nothing, receives no
// gradient and reads nothing back from its device. The tabs with samples (the contributors) train the
// step among themselves and check their replicas among themselves (a parked tab sends the hash of the
// state it holds, which is not compared). A parked tab is brought back to the room's exact state (a
// contributor's checkpoint bytes: parameters, optimizer state, step; CRC-checked on arrival, then the
// whole room's hashes compared) after step t - 1 when any of these holds at t (completed steps):
//   - its share of step t is not zero (it trains it),
//   - t is a re-balancing boundary (t % rebalance === 0: the speeds are gathered after step t - 1),
//   - t is the run's last step, an evaluation step, an autosave step, or a strategy switch is due at t.
// Every rank derives the same decisions from the same agreed counts and config, so no round trip of its
// own is needed. Each parked tab is brought back by the contributor share-groups.ts would send it the
// average (sharePlanOf: idle ranks dealt round-robin over the contributors).
//
// A contributor that vanishes while tabs are parked: in an elastic room the ring re-forms and takes
// the most advanced state its survivors hold (elastic/roster.ts, from each tab's trainer step). A
// surviving contributor holds the latest step, so nothing is lost; if none survives, the parked tabs
// hold the state of the step they were last brought back at, and the room rolls back to it and trains
// the steps since again (same split rules, so the same trajectory up to float rounding of re-split
// shares). Outside an elastic room a lost tab ends the run, as it does without parking.
import { COLLECTIVE_IDS } from '../collective/collective-ids';
import type { Transport } from '../collective/types';
import { sharePlanOf } from '../parallel/share-groups';

export interface ParkingRules {
  /** The agreed samples per rank at a step (train/batch-shares.ts). */
  countsAt: (step: number) => readonly number[];
  /** Steps between re-balancings (config `rebalance`). */
  every: number;
  /** The run's last step (completed steps). */
  steps: number;
  /** Whether something needs every tab's state at `completedSteps`: evaluation, autosave, a strategy switch. */
  wholeRoomAt: (completedSteps: number) => boolean;
}

export class ParkedTabs {
  constructor(private readonly rules: ParkingRules) {
    if (!Number.isInteger(rules.every) || rules.every < 1) throw new RangeError(`rebalance every ${rules.every} steps: need a positive integer`);
  }

  /** Whether `rank` sits step `step` (0-based) out: its agreed share of it is zero. */
  parkedAt(step: number, rank: number): boolean {
    return this.rules.countsAt(step)[rank] === 0;
  }

  /** Whether `rank`, parked for step t - 1, is brought back to the room's state after it (t completed steps). */
  bringBackAt(t: number, rank: number): boolean {
    if (t < 1 || !this.parkedAt(t - 1, rank)) return false;
    const { every, steps, countsAt, wholeRoomAt } = this.rules;
    return t >= steps || t % every === 0 || countsAt(t)[rank] > 0 || wholeRoomAt(t);
  }

  /** Ranks that hold the state of t completed steps: those that trained step t - 1 or are brought back at t. */
  holdersAt(t: number): number[] {
    const counts = this.rules.countsAt(t - 1);
    return counts.flatMap((_, rank) => (t < 1 || !this.parkedAt(t - 1, rank) || this.bringBackAt(t, rank) ? [rank] : []));
  }

  /** Each contributor of step t - 1 and the parked ranks it brings back at t (empty lists: none). */
  handOversAt(t: number): { from: number; to: number[] }[] {
    const plan = sharePlanOf(this.rules.countsAt(t - 1));
    return plan.contributors.map((from, i) => ({ from, to: plan.sendsTo[i].filter((rank) => this.bringBackAt(t, rank)) }));
  }
}

/** The message tag of the state a parked tab is brought back with after `t` completed steps. */
function tagAt(t: number) {
  return { round: t, collective: COLLECTIVE_IDS.parkedState.first, chunk: 0 };
}

/**
 * After t completed steps, on a contributor: sends `state()` (its checkpoint bytes, taken once and only
 * if some rank needs them) to the parked ranks it brings back. Returns how many it sent to, and the bytes sent to each.
 */
export async function handOverState(parking: ParkedTabs, transport: Transport, t: number, state: () => Promise<Uint8Array>): Promise<{ receivers: number; bytes: number }> {
  const mine = parking.handOversAt(t).find((h) => h.from === transport.rank);
  if (!mine || mine.to.length === 0) return { receivers: 0, bytes: 0 };
  const bytes = await state();
  await Promise.all(mine.to.map((rank) => transport.send(rank, tagAt(t), bytes)));
  return { receivers: mine.to.length, bytes: bytes.byteLength };
}

/** After t completed steps, on a parked rank brought back: the state its contributor sends. */
export function takeOverState(parking: ParkedTabs, transport: Transport, t: number): Promise<Uint8Array> {
  const from = parking.handOversAt(t).find((h) => h.to.includes(transport.rank));
  if (!from) throw new Error(`rank ${transport.rank} is not brought back after step ${t}`);
  return transport.recv(from.from, tagAt(t));
}
