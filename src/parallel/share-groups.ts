// The all-reduce of a room whose agreed shares give some tabs no samples for a step (share-balancer.ts):
// only the tabs that computed something reduce, and the tabs with a share of zero receive the result.
//
// Every rank derives the same plan from the step's agreed counts alone (no round trip of its own): the
// contributors are the ranks with a count above zero, in rank order; the idle ranks the others. The
// contributors all-reduce among themselves (their own group of the room's mesh, group-transport.ts;
// with one contributor there is nothing to reduce); then each idle rank receives the reduced vector
// straight from one contributor, the idle ranks dealt round-robin over the contributors so that no
// contributor sends more than ceil(idle / contributors) copies. An idle rank sends no gradient bytes.
//
// Direct sends rather than a chain through the idle ranks: in the lab's cost model (src/collective/
// cost-model.ts: independent links, a rank pays gamma per byte it receives) direct sends cost `parts`
// rounds (the messages a vector is cut into), n bytes on a link and n received per idle rank; a chain
// the same bytes in (idle + parts - 1) rounds, so direct sends are never dearer (distributionCosts
// gives both in the model's terms).
//
// Parked idle ranks (`parked`: the run loop skips their steps and brings them back to the room's state
// later, src/lab/parked-tabs.ts) get nothing: the contributors only all-reduce among themselves.
//
// Exactness: the contributors' all-reduce leaves the same bits on every contributor, and an idle rank
// takes the bytes it receives as they are (a copy, never a sum), so every replica holds the same bits.
// With `wire: 'f16'` the sender rounds the vector to fp16 in place before it sends it (executor.ts), so
// what it keeps is still what the idle ranks receive. The average is over the contributors: each
// contributor's gradient is weighted by count * contributors / global batch (batch-shares.ts weightOf),
// so the mean over the group is the gradient of the global batch's mean, as with every rank in the ring.
import { runAllReduceBy, type AllReduceSchedule } from '../collective/allreduce-algorithms';
import { runBroadcast } from '../collective/collectives';
import type { CostTerms } from '../collective/cost-model';
import type { RunStats, WireFormat } from '../collective/executor';
import { GroupTransport } from '../collective/group-transport';
import type { ChunkListener, Transport } from '../collective/types';

export interface SharePlan {
  /** Ranks with samples this step, ascending: they all-reduce among themselves. */
  contributors: number[];
  /** Ranks with no samples this step, ascending: they receive the contributors' result. */
  idle: number[];
  /** For each contributor (by position in `contributors`), the idle ranks it sends the result to. */
  sendsTo: number[][];
}

/** The plan every rank derives from the same counts (one per rank of the room). */
export function sharePlanOf(counts: readonly number[]): SharePlan {
  const contributors: number[] = [];
  const idle: number[] = [];
  counts.forEach((count, rank) => {
    if (!Number.isInteger(count) || count < 0) throw new RangeError(`share counts must be integers >= 0, got [${counts.join(', ')}]`);
    (count > 0 ? contributors : idle).push(rank);
  });
  if (contributors.length === 0) throw new RangeError(`no rank has a share in [${counts.join(', ')}]: nothing to reduce`);
  const sendsTo = contributors.map((): number[] => []);
  idle.forEach((rank, i) => sendsTo[i % contributors.length].push(rank));
  return { contributors, idle, sendsTo };
}

/**
 * The terms of the cost model (cost-model.ts) for handing an n-byte vector from one holder to `receivers`
 * ranks cut into `parts` messages: directly (each receiver on its own link, all at once) or along a chain
 * (each receiver forwards to the next, pipelined by part). Same bytes on every link and received per
 * rank; the chain has more rounds for every receivers >= 1, so direct sends are never dearer.
 */
export function distributionCosts(receivers: number, bytes: number, parts: number): { direct: CostTerms; chain: CostTerms } {
  if (!Number.isInteger(receivers) || receivers < 1 || !Number.isInteger(parts) || parts < 1) throw new RangeError(`need receivers >= 1 and parts >= 1, got ${receivers} and ${parts}`);
  return {
    direct: { rounds: parts, linkBytes: bytes, receivedBytes: bytes },
    chain: { rounds: receivers + parts - 1, linkBytes: bytes, receivedBytes: bytes },
  };
}

/** The executor numbers ranks within the group: the dashboard draws the room's ranks. */
function inRoomRanks(onEvent: ChunkListener | undefined, members: readonly number[]): ChunkListener | undefined {
  return onEvent && ((event) => onEvent({ ...event, rank: members[event.rank], peer: members[event.peer] }));
}

export interface ShareReduceOptions {
  /** The training step: the messages' round. */
  round: number;
  /** The collective id of this vector's all-reduce (the idle ranks' copies travel under it too). */
  collective: number;
  /** The contributors' all-reduce algorithm. */
  algorithm?: AllReduceSchedule;
  wire?: WireFormat;
  onEvent?: ChunkListener;
  /**
   * The idle ranks are parked (src/lab/parked-tabs.ts): they skip the step and are brought back to the
   * room's state later, so the contributors send them nothing and they never call this.
   */
  parked?: boolean;
}

export interface ShareReduceStats extends RunStats {
  /** Whether the whole room all-reduced (every rank had samples). */
  wholeRoom: boolean;
}

/**
 * Averages `data` (this rank's weighted gradient; zeros on an idle rank) over the contributors of the
 * step's `counts`, in place, and leaves the same bits on every rank of the room. Every rank calls it
 * with the same counts, round and collective.
 */
export async function reduceByShares(transport: Transport, data: Float32Array, counts: readonly number[], opts: ShareReduceOptions): Promise<ShareReduceStats> {
  if (counts.length !== transport.world) throw new RangeError(`share counts for ${counts.length} ranks in a room of ${transport.world}`);
  const plan = sharePlanOf(counts);
  const { round, collective, wire, onEvent } = opts;
  const algorithm = opts.algorithm ?? 'ring';
  if (plan.idle.length === 0) {
    const stats = await runAllReduceBy(algorithm, transport, data, { round, collective, average: true, wire, onEvent });
    return { ...stats, wholeRoom: true };
  }
  const total: RunStats = { bytesSent: 0, bytesReceived: 0, messagesSent: 0, messagesReceived: 0, ms: 0 };
  const t0 = performance.now();
  const add = (s: RunStats) => {
    total.bytesSent += s.bytesSent;
    total.bytesReceived += s.bytesReceived;
    total.messagesSent += s.messagesSent;
    total.messagesReceived += s.messagesReceived;
  };
  const me = transport.rank;
  const position = plan.contributors.indexOf(me);
  if (position >= 0) {
    if (plan.contributors.length > 1) {
      const group = plan.contributors;
      add(await runAllReduceBy(algorithm, new GroupTransport(transport, group), data, { round, collective, average: true, wire, onEvent: inRoomRanks(onEvent, group) }));
    }
    const receivers = opts.parked ? [] : plan.sendsTo[position];
    if (receivers.length > 0) {
      const group = [me, ...receivers];
      add(await runBroadcast(new GroupTransport(transport, group), data, 0, { round, collective, wire, onEvent: inRoomRanks(onEvent, group), topology: 'star' }));
    }
  } else {
    if (opts.parked) throw new Error(`rank ${me} has no share at step ${round} and is parked: it reduces nothing`);
    const source = plan.sendsTo.findIndex((receivers) => receivers.includes(me));
    const group = [plan.contributors[source], ...plan.sendsTo[source]];
    add(await runBroadcast(new GroupTransport(transport, group), data, 0, { round, collective, wire, onEvent: inRoomRanks(onEvent, group), topology: 'star' }));
  }
  total.ms = performance.now() - t0;
  return { ...total, wholeRoom: false };
}
