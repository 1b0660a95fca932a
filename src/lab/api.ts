// `window.lab`: the automation contract for our Playwright tests, the swarm CLI and users' own scripts.
// Documented in the README ("Scripting the lab"). Everything here is plain JSON-serialisable data so
// that `page.evaluate(() => window.lab.metrics())` returns it unchanged.
import type { BackendInfo, MemoryKind } from '../engine/backend';
import type { StoredCheckpointInfo } from './checkpoint-store';
import type { LabConfig } from './config';
import type { PartitionFigures } from './partitioned-run';
import type { RunState } from '../shared/events';
import type { LinkFits } from '../shared/link-fits';

export interface LabStatus {
  rank: number;
  world: number;
  step: number;
  steps: number;
  state: RunState;
  error: string | null;
  room: string;
  backend: BackendInfo | null;
  /** The ring's membership epoch (elastic rooms re-form with a new one); 0 without a room. */
  epoch: number;
}

export interface LabMetrics {
  /** Training loss of this rank's shard, read back every few steps (the recipe's logEvery)... */
  losses: number[];
  /** ...at these steps (1-based). */
  lossSteps: number[];
  /** The room's mean training loss at these steps (every tab's loss, carried by the hash exchange); empty alone. */
  roomLosses?: { step: number; loss: number; ranks: number }[];
  valLoss: number | null;
  /** Held-out accuracy in [0, 1] for classifiers. */
  accuracy: number | null;
  /** Text models: validation nats/char of a bigram model fitted on the same split. */
  bigramValLoss: number | null;
  /**
   * Payload bytes of model data this rank sent / received since the run started, as the collectives'
   * schedules count them (elements x bytes per element). The data channels carry more: see `wire`.
   */
  bytesSent: number;
  bytesReceived: number;
  /**
   * What this tab's ring transports really put on the data channels (all epochs): message payloads
   * (model data plus the replica checks' hash exchange and ZeRO backups), frames, and wire bytes with
   * every frame's 40-byte header and, with a room secret, its 16-byte MAC:
   * wireBytes = payloadBytes + frames x (40 + MAC). Null for a solo run.
   */
  wire?: { payloadBytes: number; frames: number; wireBytes: number } | null;
  /** Mean over completed steps (the first step, which warms caches, excluded when there are more). */
  computeMsPerStep: number;
  commMsPerStep: number;
  /** Of computeMsPerStep and commMsPerStep, the time both ran at once (StepMetrics.overlapMs). */
  overlapMsPerStep: number;
  waitMsPerStep: number;
  stepMsPerStep: number;
  /**
   * Wall clock per step over the same steps: from the end of the first of them to the end of the last,
   * divided by the steps between, so what runs between steps (the replica check, evaluations) counts.
   * Null before two steps were timed.
   */
  wallMsPerStep: number | null;
  /**
   * The same window without its newest step. At the end of a run that leaves out the last step, which
   * on a parked tab ends only when the contributors' state has arrived (the end-of-run hand-over, once
   * a run): the steady pace. Null until three steps were timed.
   */
  steadyWallMsPerStep?: number | null;
  samplesPerSec: number;
  /** Bytes of device memory this rank holds, by kind (real allocations). */
  memory: Record<MemoryKind, number> | null;
  /**
   * Bytes of host memory this rank holds for the run beside the device's, by kind: `backups` (elastic
   * rooms: backed-up slices, its own and its ring predecessor's), `staging` (the largest host array
   * the strategy's collectives allocated at once), `offload` (ZeRO-Offload's optimizer), `wholeModel`
   * (ZeRO-3: the vector gathered when the run ended). Absent kinds are 0.
   */
  hostMemory?: Record<'backups' | 'staging' | 'offload' | 'wholeModel', number>;
  /** Did every rank report the same parameter hash at every step so far? null before the first step. */
  hashesAgree: boolean | null;
  /** Hash exchanges in which every rank of the room agreed (a room's replica checks passed). */
  hashChecks?: number;
  /** Bytes this rank sent in the last logged optimizer step (the trainer's sync and gather hooks). */
  stepBytesSent?: number | null;
  /** Live GPU (or CPU-backend) buffers this tab holds right now: a long run must not grow it. */
  gpuBuffers?: number;
  /** Elastic rooms: how often the ring re-formed, and how many tabs joined and left it (as this tab saw). */
  elastic?: { reforms: number; joins: number; departures: number };
  /**
   * ZeRO in an elastic room: bytes sent backing up slices on the ring successor and moving state into
   * the new partition after re-forms (also counted in bytesSent), the floats of slices held in host
   * memory, backups made; `reform`: what this rank's re-forms moved (bytes sent and received, summed)
   * and the longest piece, in floats per buffer (at stage 3 at most a shard: no rank assembles the whole state).
   */
  zeroBackups?: { bytesSent: number; floatsHeld: number; steps: number; reform?: { count: number; bytesSent: number; bytesReceived: number; largestPiece: number } };
  /** ZeRO-3: bytes the replica check's own layer-by-layer verification passes sent (also counted in bytesSent). */
  replicaCheck?: { bytesSent: number };
  /** A partitioned run (pipeline=P): this tab's part and what it measured (src/lab/partitioned-run.ts). */
  partition?: PartitionFigures;
  /** ZeRO runs: the stage, the room size and the flat vector's (padded) length the partition shards. */
  zero?: { stage: number; world: number; elements: number; optimizerFloatsPerParam: number } | null;
  /**
   * collective=auto: the room's newest link fit (`latest`: formed when the ring was probed, or a refit)
   * and newest refit (`lastRefit`: its buckets' predicted vs measured ms); null before a fit.
   */
  links?: LinkFits | null;
  /** shares=auto: the room's last agreed samples per rank (from `fromStep`) and the speeds behind them. */
  shares?: { fromStep: number; counts: number[]; samplesPerSec: number[] } | null;
  /** shares=auto: the steps at which this tab had no samples and the gradient bytes it moved at them (it sends none). */
  sharesIdle?: { steps: number; bytesSent: number; bytesReceived: number } | null;
  /**
   * shares=auto, parked tabs (src/lab/parked-tabs.ts): steps this tab sat out, times it was brought back
   * to the room's state (and the state bytes it received), and, on a contributor, the hand-overs it
   * made (and the bytes it sent, all receivers together); `broughtBackAt`: the completed-step counts
   * of its last 20 bring-backs.
   */
  parking?: { satOut: number; broughtBack: number; bytesReceived: number; handedOver: number; bytesSent: number; broughtBackAt: number[] } | null;
  /** shares=auto: steps only one tab held (the others parked): nothing compared, no parameters read or hashed (src/lab/replica-check.ts). */
  soleHolderSteps?: number;
  lastHash: string | null;
  sample: string | null;
  /** The strategy the room trains with now, and every mid-run switch so far (lab.switchStrategy). */
  strategy?: { now: string; switches: { step: number; strategy: string }[] };
}

export interface LabApi {
  status(): LabStatus;
  metrics(): LabMetrics;
  config(): LabConfig;
  /** Hash of this rank's full parameter vector (read back from the device). */
  paramsHash(): Promise<string>;
  /** The full parameter vector (tests: N tabs vs one tab parity). */
  params(): Promise<number[]>;
  start(): Promise<void>;
  pause(): void;
  resume(): void;
  /**
   * This tab's checkpoint file (src/train/checkpoint.ts), base64-encoded so that page.evaluate returns
   * it as a plain string. Taken between two steps. A ZeRO-3 tab that has no whole vector (training, or a
   * budget that kept it from gathering one) saves its part: its shard and optimizer slice, with the
   * partition recorded (load a room's parts together: loadCheckpoint([...])).
   */
  checkpoint(): Promise<string>;
  /**
   * Verifies a checkpoint (base64 string, byte values, or a list of base64 parts of one checkpoint,
   * e.g. a ZeRO-3 room's shards, re-cut for this tab's rank and world) and restarts the run from it with the current
   * settings; a bad file rejects with the reason and the current run goes on. mode 'resume' (default):
   * parameters, optimizer state and step; 'finetune': parameters only, from step 0 (e.g. other data).
   */
  loadCheckpoint(data: string | number[] | string[], opts?: LoadCheckpointOptions): Promise<CheckpointSummary>;
  /**
   * Once the run is done: the whole model (parameters and optimizer state) in the one-tab checkpoint
   * format, streamed a piece at a time to `to` (default 'none': only counted and checksummed; 'download',
   * 'picker'). Under ZeRO-3 every tab of the room must call it: they gather it together, layer by layer.
   */
  exportModel(opts?: { to?: 'picker' | 'download' | 'none' }): Promise<{ filename: string; bytes: number; crc32: string; target: string }>;
  /** Frames and signals this tab refused since the page loaded: the count and the reasons (numbers blanked). */
  refused(): { count: number; reasons: Record<string, number> };
  /**
   * TEST SUPPORT (e2e/hostile.spec.ts), not for scripts: this tab, a member of the room's ring, sends
   * `count` frames that each break one rule (src/peer/hostile-frames.ts memberFrames) to every other
   * member. Resolves with the refusals each of them must count, by kind.
   */
  fuzzAsMember(opts: { count: number; seed?: number }): Promise<{ sent: number; refusals: Record<string, number>; ms: number }>;
  /**
   * Switches the room's strategy mid-run (src/lab/strategy-switch.ts): `choice` names it in full, keys
   * left out at their defaults: { compression: 'fp16' }, { mode: 'diloco', inner: 10 }, { mode: 'ps' },
   * { compression: 'powersgd', rank: 2 }, {} (the dense ring). The room's rank 0 picks the step; resolves
   * with it once announced (every tab switches after that many steps), rejects with the reason if refused.
   */
  switchStrategy(choice: Record<string, string | number>): Promise<{ step: number; strategy: string }>;
  /**
   * One link's own shaping (src/peer/link-shaper.ts): this tab's frames to `peerId` get `latency` ms and
   * `bandwidth` MB/s (0: unlimited) in place of the URL's latency= and bandwidth=; null: the URL's again.
   */
  shapeLink(peerId: string, setting: { latency: number; bandwidth: number } | null): void;
  /** Checkpoints this browser stores (autosave), newest save per run key. */
  storedCheckpoints(): Promise<StoredCheckpointInfo[]>;
  /** The run's recent log lines (what the dashboard's event log shows), oldest first; at most 200. */
  log(): { t: number; level: 'info' | 'warn' | 'error'; message: string }[];
}

export interface LoadCheckpointOptions {
  mode?: 'resume' | 'finetune';
}

export interface CheckpointSummary {
  step: number;
  model: 'mlp' | 'gpt';
  dataset: string | null;
  world: number;
  mode: 'resume' | 'finetune';
  bytes: number;
}

declare global {
  interface Window {
    lab: LabApi & Record<string, unknown>;
  }
}
