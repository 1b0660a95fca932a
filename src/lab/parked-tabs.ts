// Parked tabs: in a room that splits the global batch by speed (shares=auto, docs/shares.md), a tab
// whose agreed share of a step is zero does nothing for that step: it trains nothing, receives no
// gradient and reads nothing back from its device. The tabs with samples (the contributors) train the
// step among themselves and check their replicas among themselves (a parked tab sends the hash of the
// state it holds, which is not compared; with one contributor nothing is compared and no tab reads or
// hashes its parameters: replica-check.ts). A parked tab is brought back to the room's exact state (a contributor's
// checkpoint bytes: parameters, optimizer state, step; CRC-checked on arrival, then the whole room's
// hashes compared) after step t - 1 only when something needs it at t (completed steps):
//   - its share of step t is not zero (it trains it: the speeds gave it a share back),
//   - t is the run's last step, an evaluation step, an autosave step, or a strategy switch is due at t,
//   - t is a multiple of `backupEvery` and it is the lowest parked rank (a backup: one more copy of the
//     state bounds what a crash of the contributors loses, below; the other parked tabs stay where
//     they are). A backup is restored but not waited for: the room's check at t compares only the
//     tabs that trained step t - 1 or needed its state (holdersAt).
// Nothing else brings it back: a re-balancing that leaves its share at zero does not. Every rank
// derives the same decisions from the same agreed counts and config, so no round trip of its own is
// needed. Each parked tab is brought back by the contributor share-groups.ts would send it the average
// (sharePlanOf: idle ranks dealt round-robin over the contributors).
//
// A contributor that vanishes while tabs are parked: in an elastic room the ring re-forms and takes
// the most advanced state its survivors hold (elastic/roster.ts, from each tab's trainer step). A
// surviving contributor holds the latest step, so nothing is lost; if none survives, the lowest parked
// tab holds the state of the later of the step it stopped training at and its last bring-back, so the
// room rolls back fewer than `backupEvery` steps (parkedBackupEvery) and trains them again (same split
// rules, so the same trajectory up to float rounding of re-split shares). Outside an elastic room a
// lost tab ends the run, as it does without parking, so no bring-back is made for this alone.
import { COLLECTIVE_IDS } from '../collective/collective-ids';
import type { Transport } from '../collective/types';
import { sharePlanOf } from '../parallel/share-groups';

export interface ParkingRules {
  /** The agreed samples per rank at a step (train/batch-shares.ts). */
  countsAt: (step: number) => readonly number[];
  /** The run's last step (completed steps). */
  steps: number;
  /** Whether something needs every tab's state at `completedSteps`: evaluation, autosave, a strategy switch. */
  wholeRoomAt: (completedSteps: number) => boolean;
  /** Parked tabs are also brought back at every multiple of this many steps (Infinity: never for this alone). */
  backupEvery: number;
}

/**
 * Re-balancing boundaries between the bring-backs that only bound what a crash loses (an elastic room):
 * with the default rebalance=10, a crash of the only contributor loses fewer than 100 steps. A backup
 * sends one copy of the state (2.44 MB on MNIST's MLP) and waits for its restore and hash; the last
 * step's bring-back, two copies, took 1-2.5 s on the loaded 2-core test machine (docs/shares.md), as
 * long as about 100 steps of the CPU tab alone at batch 128 and 10-15 at batch 4096.
 */
export const BACKUP_BOUNDARIES = 10;

/**
 * How often parked tabs are brought back for safety alone: in an elastic room every BACKUP_BOUNDARIES-th
 * re-balancing boundary (the room rolls back to it if every contributor leaves); elsewhere never (a lost
 * tab ends the run, and the parked tabs' older state would serve nothing).
 */
export function parkedBackupEvery(rebalance: number, elastic: boolean): number {
  return elastic ? rebalance * BACKUP_BOUNDARIES : Number.POSITIVE_INFINITY;
}

export class ParkedTabs {
  constructor(private readonly rules: ParkingRules) {
    const backup = rules.backupEvery;
    if (backup !== Number.POSITIVE_INFINITY && (!Number.isInteger(backup) || backup < 1)) throw new RangeError(`parked tabs backed up every ${backup} steps: need a positive integer or Infinity`);
  }

  /** Whether `rank` sits step `step` (0-based) out: its agreed share of it is zero. */
  parkedAt(step: number, rank: number): boolean {
    return this.rules.countsAt(step)[rank] === 0;
  }

  /** Whether `rank`, parked for step t - 1, is brought back to the room's state after it (t completed steps). */
  bringBackAt(t: number, rank: number): boolean {
    return this.neededAt(t, rank) || this.backupOnlyAt(t, rank);
  }

  /** Whether `rank`, parked for step t - 1, must hold the room's state at t (it trains step t, or the room needs every tab). */
  private neededAt(t: number, rank: number): boolean {
    if (t < 1 || !this.parkedAt(t - 1, rank)) return false;
    const { steps, countsAt, wholeRoomAt } = this.rules;
    return t >= steps || countsAt(t)[rank] > 0 || wholeRoomAt(t);
  }

  /**
   * Whether `rank` is brought back at t as a backup only: one more copy of the state, not needed by the
   * room at t. A backup needs one more holder, not all: the lowest parked rank (each bring-back costs
   * its sender the sending of the whole state, parameters and both AdamW moments). It is not a holder
   * of t for the replica check (holdersAt): the room does not wait for its restore; the bytes are
   * CRC-checked on arrival and the tab is compared with the room at its next needed bring-back.
   */
  backupOnlyAt(t: number, rank: number): boolean {
    if (t < 1 || !this.parkedAt(t - 1, rank) || this.neededAt(t, rank)) return false;
    return t % this.rules.backupEvery === 0 && this.rules.countsAt(t - 1).indexOf(0) === rank;
  }

  /** Ranks whose state of t completed steps is compared: those that trained step t - 1 or are brought back at t because it is needed. */
  holdersAt(t: number): number[] {
    const counts = this.rules.countsAt(t - 1);
    return counts.flatMap((_, rank) => (t < 1 || !this.parkedAt(t - 1, rank) || this.neededAt(t, rank) ? [rank] : []));
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
