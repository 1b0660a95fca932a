// How every tab of a pipeline gets every stage's op events of a step, so that each dashboard can draw
// the whole pipeline (src/ui/PipelineTimeline.tsx), not only its own row: after the step, one
// variable-length all-gather over the room's transport (runSparseAllGather), the way parameter hashes
// travel (replicas.ts). Each event goes as 10 float64 numbers, exactly as its tab published it (its own
// clock and its clock offset), and is checked on arrival: a malformed set is an error with the reason,
// never an event drawn.
//
// The collective id is the caller's and must be a 'bytes' id (src/collective/collective-ids.ts): the
// payload is float64 bit patterns, which a float-vector id's finiteness check would read as float32.
import { runSparseAllGather } from '../collective/collectives';
import type { PipelineEventKind } from '../collective/pipeline-executor';
import type { Transport } from '../collective/types';
import type { PipelineLabEvent } from '../shared/events';

/** The wire's kind numbers: new kinds only at the end. */
const KINDS: readonly PipelineEventKind[] = ['forward', 'backward', 'send-activation', 'recv-activation', 'send-grad', 'recv-grad', 'allreduce'];
const FIELDS = 10;
/** A step of P stages and M micro-batches has at most 4M ops a stage (and one all-reduce per layer group); this bounds what a peer can make a tab hold. */
const MAX_EVENTS_PER_RANK = 4 * 4096 + 1024;

export function encodeStepEvents(events: readonly PipelineLabEvent[]): Uint8Array {
  const out = new Float64Array(events.length * FIELDS);
  events.forEach((e, i) => {
    out.set([KINDS.indexOf(e.kind), e.rank, e.stage, e.micro, e.peer ?? -1, e.bytes ?? -1, e.round, e.tStart, e.tEnd, e.clockOffsetMs ?? 0], i * FIELDS);
  });
  return new Uint8Array(out.buffer);
}

/** The events in `bytes` (sent by rank `from` for step `round`), or an Error saying why they are not. */
export function decodeStepEvents(bytes: Uint8Array, from: number, round: number): PipelineLabEvent[] | Error {
  if (bytes.byteLength % (FIELDS * 8) !== 0) return new Error(`pipeline events from rank ${from}: ${bytes.byteLength} bytes is not whole events`);
  const n = bytes.byteLength / (FIELDS * 8);
  if (n > MAX_EVENTS_PER_RANK) return new Error(`pipeline events from rank ${from}: ${n} events is more than a step has`);
  const values = new Float64Array(bytes.slice().buffer);
  const events: PipelineLabEvent[] = [];
  for (let i = 0; i < n; i++) {
    const [kind, rank, stage, micro, peer, size, r, tStart, tEnd, offset] = values.subarray(i * FIELDS, (i + 1) * FIELDS);
    const count = (x: number) => Number.isSafeInteger(x) && x >= 0;
    if (!KINDS[kind] || rank !== from || !count(stage) || !count(micro) || !(peer === -1 || count(peer)) || !(size === -1 || count(size))) {
      return new Error(`pipeline events from rank ${from}: event ${i} is malformed`);
    }
    if (r !== round) return new Error(`pipeline events from rank ${from}: event ${i} is of step ${r}, expected ${round}`);
    if (![tStart, tEnd, offset].every(Number.isFinite) || tEnd < tStart) return new Error(`pipeline events from rank ${from}: event ${i} has bad times`);
    events.push({
      type: 'pipeline',
      rank,
      kind: KINDS[kind],
      stage,
      micro,
      ...(peer >= 0 ? { peer } : {}),
      ...(size >= 0 ? { bytes: size } : {}),
      round,
      tStart,
      tEnd,
      clockOffsetMs: offset,
    });
  }
  return events;
}

/**
 * Every rank's events of step `round` (this rank's `own` among them), in rank order. Rejects when a
 * rank's set does not decode.
 */
export async function gatherStepEvents(transport: Transport, round: number, collective: number, own: readonly PipelineLabEvent[]): Promise<PipelineLabEvent[]> {
  const { payloads } = await runSparseAllGather(transport, encodeStepEvents(own), { round, collective });
  return payloads.flatMap((bytes, from) => {
    const events = decodeStepEvents(bytes, from, round);
    if (events instanceof Error) throw events;
    return events;
  });
}
