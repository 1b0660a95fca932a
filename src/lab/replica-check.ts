// The run loop's replica check (docs/architecture.md principle 4): after a step, hash this tab's parameters and,
// in a room, all-gather the hashes and stop the run on any disagreement. The all-gather may be left on
// the wire while the next step computes (overlapped-exchange.ts) and is settled after it.
// ZeRO-3 replicas are not copies: no tab holds the whole vector, and none is gathered for the check.
// Its hash is the strategy's replicaDigest: the layer groups' hashes as this tab gathered them, in
// layout order (after a step: the layers the step's forward gathered; at the start, after a re-form and
// after the last step: a layer-by-layer verification pass). Equal digests: every rank saw the same
// parameters.
import type { Strategy } from '../parallel/parallel-types';
import { exchangeHashes } from '../parallel/replicas';
import { paramsHash } from '../model/layout';
import { shareWeightedLoss } from '../train/batch-shares';
import type { EventBus } from '../shared/events';
import { traceMark } from '../shared/step-trace';
import type { LabMetrics } from './api';
import { isLostPeer } from './elastic/failures';
import { OverlappedExchange, ReplicasDisagree } from './overlapped-exchange';
import type { JoinedRoom } from './room';

export interface ReplicaCheckDeps {
  bus: EventBus;
  metrics: LabMetrics;
  room: () => JoinedRoom | null;
  rank: () => number;
  strategy: () => Strategy;
  /** This tab's full parameter vector (not read when the strategy has a replicaDigest). */
  params: () => Promise<Float32Array>;
  /**
   * How many steps' exchanges may be on the wire at once (settleBehind): 1, the default, settles each
   * step's after the next step; more lets this tab run that many steps ahead of the slowest replica.
   */
  lag?: () => number;
}

/**
 * The replica check's lag in a room that splits the batch by speed (shares=auto): the tabs with samples
 * may run this many steps ahead of the tabs with none, which receive each step's average and apply it
 * later (parallel/share-groups.ts); a disagreement is found at most this many steps late, and still
 * names the step whose replicas first differed.
 */
export const SHARES_CHECK_LAG = 3;

/**
 * A second check of a step already checked on the same ring (after a strategy switch at that step)
 * tags its messages round step + RECHECK_ROUND: the transport refuses a message key it has delivered,
 * so reusing the step's own round would leave the second all-gather waiting out its deadline. Steps
 * stay far below 2^31, and no other collective uses rounds from there.
 */
export const RECHECK_ROUND = 0x8000_0000;

/**
 * The room's mean training loss from each tab's own: weighted by the tabs' shares of the global batch
 * where the room splits it by speed (what one tab training the whole batch would print; a tab with no
 * samples, whose loss is NaN, weighs nothing), else the plain mean of the finite ones.
 */
export function roomLoss(losses: readonly number[], counts: readonly number[] | undefined): { loss: number; ranks: number } | null {
  if (counts) return shareWeightedLoss(losses, counts);
  const finite = losses.filter(Number.isFinite);
  return finite.length > 0 ? { loss: finite.reduce((a, b) => a + b, 0) / finite.length, ranks: finite.length } : null;
}

/**
 * A check at a step some tabs of the room sat out (parked-tabs.ts): only `compared` (the ranks holding
 * the step's state) must agree; `self`: this tab is one of the parked ones and sends its last hash.
 */
export interface ParkedCheck {
  compared: readonly number[];
  self: boolean;
}

function fail(message: string): never {
  throw new Error(message);
}

export class ReplicaCheck {
  /** The last steps' hash exchanges, while they run alongside the next steps. */
  private readonly exchange = new OverlappedExchange();

  constructor(private readonly deps: ReplicaCheckDeps) {}

  /**
   * Hash the parameters; in a room, all-gather the hashes and stop on any disagreement. With
   * `alongsideNextStep` the all-gather is left on the wire while the next step computes, and settled
   * after it (overlapped-exchange.ts). The parameters are read and hashed here, between the steps:
   * done during the next step, that read and hash delayed its first bucket by ~30 ms (4 tabs, 2 cores).
   * `afterStep`: the check follows a step this tab just took (ZeRO-3 hashes what that step gathered).
   * `loss`: this tab's training loss of the step; it rides with the hash, and the room's mean is
   * published (a 'room-loss' event) once the exchange has landed.
   * `again`: this step was checked already on this ring (the run changed in between, e.g. a strategy
   * switch): the exchange is tagged apart from the first one (RECHECK_ROUND).
   */
  async check(step: number, options: { alongsideNextStep?: boolean; afterStep?: boolean; loss?: number; again?: boolean; parked?: ParkedCheck } = {}): Promise<void> {
    const { bus, metrics: m } = this.deps;
    const digest = this.deps.strategy().replicaDigest;
    const parked = options.parked;
    // Only one tab holds the step (the only one with samples; the others are parked at older states):
    // there is nothing to compare, so no tab reads or hashes its parameters; every tab still sends its
    // last checked hash, which keeps the exchange's other jobs: it carries the loss, finds a tab that
    // left, and holds the parked tabs within the lag of the holder. Every rank derives this from the
    // same agreed counts. The holder's state is compared with every tab's at its next bring-back
    // (parked-tabs.ts).
    const alone = !!parked && parked.compared.length === 1 && this.deps.room() !== null && m.lastHash !== null;
    if (alone) m.soleHolderSteps = (m.soleHolderSteps ?? 0) + 1;
    traceMark('hash-start', step);
    // A parked tab reads nothing: it sends the hash of the state it holds (checked when it was brought back).
    const hash = parked?.self || alone ? (m.lastHash ?? fail('a parked tab has no checked hash to send')) : digest ? await digest(step, options.afterStep ?? false) : paramsHash(await this.deps.params());
    traceMark('hash-end', step);
    const own = this.deps.strategy().replicaCheckTraffic?.();
    // Its chunks already count in bytesSent (run-metrics.ts); here they are also counted on their own.
    if (own) (m.replicaCheck ??= { bytesSent: 0 }).bytesSent += own.bytesSent;
    m.lastHash = hash;
    const room = this.deps.room();
    if (!room) {
      m.hashesAgree = m.hashesAgree ?? true;
      bus.publish({ type: 'hash', step, rank: this.deps.rank(), hash });
      return;
    }
    // `step` counts the steps done: the one just trained is step - 1 (0-based). Its split is read now,
    // while the exchange may still be on the wire when later splits are agreed.
    const counts = options.loss !== undefined ? this.deps.strategy().hooks.batchShares?.countsAt(step - 1) : undefined;
    const exchange = async (onWire?: () => void) => {
      onWire?.();
      const result = await exchangeHashes(room.transport, options.again ? step + RECHECK_ROUND : step, hash, undefined, options.loss, parked?.compared);
      // Summed in rank order from the same gathered bits: every tab publishes the same mean.
      const mean = options.loss === undefined ? null : roomLoss(result.values, counts);
      if (mean) bus.publish({ type: 'room-loss', step, ...mean });
      // Nothing was compared at a step one tab held alone: neither a check nor a hash of that step.
      if (alone) return;
      // Every rank's hash, as gathered: the dashboard shows agreement (or who differs) for the room.
      result.hashes.forEach((h, rank) => {
        if (!parked || parked.compared.includes(rank)) bus.publish({ type: 'hash', step, rank, hash: h });
      });
      if (!result.agree) {
        m.hashesAgree = false;
        throw new ReplicasDisagree(`replicas disagree after step ${step}: ranks ${result.outliers.join(', ')} differ from rank ${parked?.compared[0] ?? 0}`);
      }
      m.hashesAgree = m.hashesAgree ?? true;
      m.hashChecks = (m.hashChecks ?? 0) + 1;
      traceMark('hashes-gathered', step);
    };
    if (options.alongsideNextStep) this.exchange.start(exchange, this.lag());
    else {
      // Checked in order: the steps still on the wire first.
      await this.settle();
      await exchange();
    }
  }

  /**
   * Waits for every hash exchange left on the wire, if any. A tab lost during one is
   * forgiven in an elastic room: the ring re-forms and checks its replicas again.
   */
  settle(): Promise<void> {
    return this.exchange.settle((error) => this.deps.room()?.elastic != null && isLostPeer(error));
  }

  /**
   * Between steps: waits for the exchanges on the wire until fewer than the lag are left, so that the
   * next step's exchange can start (with the default lag of 1: all of them, as settle()).
   */
  async settleBehind(): Promise<void> {
    traceMark('settle-start', -1);
    await this.exchange.settle((error) => this.deps.room()?.elastic != null && isLostPeer(error), this.lag() - 1);
    traceMark('settle-end', -1);
  }

  private lag(): number {
    const lag = this.deps.lag?.() ?? 1;
    if (!Number.isInteger(lag) || lag < 1) throw new RangeError(`replica check lag must be a positive integer, got ${lag}`);
    return lag;
  }

  /** Milliseconds of [from, to) during which the exchange was on the wire (the trainer's alongsideComm). */
  busyWithin(from: number, to: number): ReturnType<OverlappedExchange['busyWithin']> {
    return this.exchange.busyWithin(from, to);
  }
}
