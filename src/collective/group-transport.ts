// A Transport over a subset of a room's ranks: the group's own rank numbers 0..members-1 map onto the
// room's. A DP x PP room runs each stage's data-parallel all-reduce over the group of the tabs holding
// that stage, and each pipeline over its own tabs, all on the room's one mesh. Messages keep their tags;
// a group only renames peers, so two groups of one room never mix messages as long as their
// collectives are numbered apart or their members differ.
import type { MessageTag, Transport } from './types';

export class GroupTransport implements Transport {
  readonly rank: number;

  constructor(
    private readonly room: Transport,
    /** Room ranks of the group's members, in group-rank order. */
    readonly members: readonly number[],
  ) {
    const unique = new Set(members);
    if (members.length === 0 || unique.size !== members.length) throw new RangeError(`a group needs distinct members, got [${members.join(', ')}]`);
    for (const m of members) {
      if (!Number.isSafeInteger(m) || m < 0 || m >= room.world) throw new RangeError(`group member ${m} outside a room of ${room.world}`);
    }
    this.rank = members.indexOf(room.rank);
    if (this.rank < 0) throw new RangeError(`room rank ${room.rank} is not a member of the group [${members.join(', ')}]`);
  }

  get world(): number {
    return this.members.length;
  }

  send(to: number, tag: MessageTag, payload: Uint8Array): Promise<void> {
    return this.room.send(this.roomRank(to), tag, payload);
  }

  recv(from: number, tag: MessageTag): Promise<Uint8Array> {
    return this.room.recv(this.roomRank(from), tag);
  }

  private roomRank(groupRank: number): number {
    const rank = this.members[groupRank];
    if (rank === undefined) throw new RangeError(`group rank ${groupRank} outside a group of ${this.members.length}`);
    return rank;
  }
}
