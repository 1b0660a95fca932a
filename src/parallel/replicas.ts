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
  agree: boolean;
  /** Ranks whose hash differs from rank 0's. */
  outliers: number[];
}

export async function exchangeHashes(transport: Transport, round: number, hash: string, onEvent?: ChunkListener): Promise<HashAgreement> {
  if (!/^[0-9a-f]{16}$/.test(hash)) throw new Error(`a parameter hash is 16 hex digits, got "${hash}"`);
  // Every hash has the same 16 bytes: one ring all-gather (N-1 hops) between every two steps.
  const { payloads } = await runFixedAllGather(transport, encoder.encode(hash), { round, collective: COLLECTIVE_IDS.hashExchange.first, onEvent });
  const hashes = payloads.map((bytes) => decoder.decode(bytes));
  const outliers = hashes.flatMap((h, rank) => (h === hashes[0] ? [] : [rank]));
  return { hashes, agree: outliers.length === 0, outliers };
}
