// Which failures an elastic room survives by re-forming its ring: a tab that died, left or joined (the
// transport lost a peer, or the room asks for a re-form). Bad data from a member, replicas that
// disagree, or a strategy that cannot re-form stop the run instead.
import { TransportError } from '../../peer/datachannel-transport';
import type { ElasticRoom } from './elastic-room';

/** The transport failure behind an error, if any (collectives wrap it as their `cause`). */
export function transportCause(error: unknown): TransportError | null {
  for (let e: unknown = error, depth = 0; e instanceof Error && depth < 8; e = e.cause, depth++) {
    if (e instanceof TransportError) return e;
  }
  return null;
}

/** A lost peer, as opposed to a message this tab refused (which no re-form can fix). */
export function isLostPeer(error: unknown): boolean {
  const lost = transportCause(error);
  return lost !== null && !lost.refusedData;
}

/**
 * Why a failed step can be survived by re-forming the ring, or null when it must stop the run. Throws
 * when the room's membership changed but the strategy cannot re-form (`notElastic` says why).
 */
export function reformableFailure(error: unknown, elastic: ElasticRoom | null, notElastic: string | null): string | null {
  if (!elastic) return null;
  const wanted = elastic.reformWanted();
  const lost = transportCause(error);
  const membership = wanted ?? (lost && !lost.refusedData ? (error instanceof Error ? error.message : lost.message) : null);
  if (membership === null) return null;
  if (notElastic) throw new Error(`${membership}; ${notElastic}, so a lost tab stops the run (resume=1 restarts from the last autosave)`);
  return membership;
}
