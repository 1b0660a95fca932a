// Replicas are provably equal (docs/architecture.md principle 4): after every step each rank hashes its full
// parameter vector and the hashes are all-gathered, byte for byte, so every rank knows whether all
// agree and who differs.
import { runFixedAllGather } from '../collective/collectives';
import type { ChunkListener, Transport } from '../collective/types';
import { COLLECTIVE_IDS } from '../collective/collective-ids';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export interface HashAgreement {
  hashes: string[];
  /** Each rank's `value` as sent with its hash (NaN where a rank sent none). */
  values: number[];
  agree: boolean;
  /** Ranks whose hash differs from the first compared rank's (rank 0's when every rank is compared). */
  outliers: number[];
}

/**
 * `value` rides along with the hash (the session's training loss of the step, for the room's mean):
 * 8 more bytes in the same messages, no round trip of its own. Every rank sends one (NaN: none).
 */
/**
 * `compared`: the ranks whose hashes must agree (ascending); the others still send one (a parked tab,
 * src/lab/parked-tabs.ts, sends the hash of the state it was last brought back to), which is not compared.
 */
export async function exchangeHashes(transport: Transport, round: number, hash: string, onEvent?: ChunkListener, value = Number.NaN, compared?: readonly number[]): Promise<HashAgreement> {
  if (!/^[0-9a-f]{16}$/.test(hash)) throw new Error(`a parameter hash is 16 hex digits, got "${hash}"`);
  if (compared && (compared.length === 0 || compared.some((r) => !Number.isInteger(r) || r < 0 || r >= transport.world))) {
    throw new RangeError(`compared ranks [${compared.join(', ')}] are not ranks of a room of ${transport.world}`);
  }
  // Every payload has the same 24 bytes (hash, then a float64): one ring all-gather (N-1 hops) between every two steps.
  const payload = new Uint8Array(24);
  payload.set(encoder.encode(hash));
  new DataView(payload.buffer).setFloat64(16, value, true);
  const { payloads } = await runFixedAllGather(transport, payload, { round, collective: COLLECTIVE_IDS.hashExchange.first, onEvent });
  const hashes = payloads.map((bytes) => decoder.decode(bytes.subarray(0, 16)));
  const values = payloads.map((bytes) => new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getFloat64(16, true));
  const ranks = compared ?? hashes.map((_, rank) => rank);
  const outliers = ranks.filter((rank) => hashes[rank] !== hashes[ranks[0]]);
  return { hashes, values, agree: outliers.length === 0, outliers };
}
