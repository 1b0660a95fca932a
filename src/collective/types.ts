// Types shared by the collectives (pure schedules + executor), the transports that move their bytes
// (in memory for tests, WebRTC data channels in the product) and the dashboard that draws their events.

/** Which collective a schedule implements. */
export type CollectiveKind =
  | 'ring-allreduce'
  | 'reduce-scatter'
  | 'all-gather'
  | 'broadcast'
  | 'naive-allreduce'
  | 'ps-round'
  | 'sparse-allgather'
  | 'tree-allreduce'
  | 'rhd-allreduce'
  | 'all-to-all';

export type Phase = 'reduce-scatter' | 'all-gather' | 'broadcast' | 'gather' | 'scatter' | 'exchange';

/**
 * Identifies one message of one collective uniquely within a room, so that early arrivals can be
 * buffered and late or duplicate ones refused. `round` is the training step (or any caller counter),
 * `collective` numbers the collectives within that round, `chunk` the message within the collective
 * (schedule step * chunks + sub-chunk, chosen by the schedule).
 */
export interface MessageTag {
  round: number;
  collective: number;
  chunk: number;
}

/** Moves bytes between ranks. Implementations: in-memory (tests) and WebRTC data channels. */
export interface Transport {
  readonly rank: number;
  readonly world: number;
  /**
   * Hands `payload` to the wire towards rank `to`. Resolves once it is queued under backpressure
   * (never buffers unboundedly). Rejects if the peer is gone.
   * The payload may be a view into the caller's live vector: the transport must have copied or sent
   * its bytes by the time the promise resolves, because the caller may overwrite that memory next.
   */
  send(to: number, tag: MessageTag, payload: Uint8Array): Promise<void>;
  /**
   * Resolves with the payload rank `from` sent under `tag`. Messages that arrive before they are asked
   * for are kept. Rejects when the peer is lost or the transport is closed (never hangs forever: the
   * transport owns the deadline).
   */
  recv(from: number, tag: MessageTag): Promise<Uint8Array>;
}

/**
 * Emitted for every chunk sent and received. The dashboard's ring view and classroom mode draw exactly
 * these, so nothing is shown that did not happen.
 */
export interface ChunkEvent {
  type: 'chunk';
  direction: 'send' | 'recv';
  collective: CollectiveKind;
  /** Stable id of the collective run: `${round}:${collective}`. */
  runId: string;
  round: number;
  phase: Phase;
  /** Step index within the schedule (0-based). */
  step: number;
  /** Logical chunk index of the data being moved (0..world-1 for a ring). */
  chunk: number;
  /** Sub-chunk index when a chunk is pipelined in pieces. */
  part: number;
  rank: number;
  peer: number;
  bytes: number;
  /** Element range of the full vector that this message carries. */
  offset: number;
  length: number;
  /** performance.now() when the send started / the receive was asked for, and when it completed. */
  tStart: number;
  tEnd: number;
}

export type ChunkListener = (event: ChunkEvent) => void;
