// What the dashboard asks of the lab. The lead's glue implements it with the real trainer and mesh;
// everything the lab then does comes back as LabEvents on the bus, into the store, onto the screen.
// The dashboard never learns results from these return values except where noted.
import type { LabConfig } from './config';
import type { PipelineLessonChoice } from './classroom';

/** A link's shaping as the dashboard sets it: latency in ms, bandwidth in MB/s (0: unlimited). */
export interface LinkSetting {
  latency: number;
  bandwidth: number;
}

export interface CheckpointFile {
  filename: string;
  blob: Blob;
}

export interface LabController {
  /** Starts a run with this config (joining the room's mesh if it has one). */
  start(config: LabConfig): Promise<void>;
  pause(): void;
  /** Continues a paused run. */
  resume(): void;
  /** Stops the run and frees its GPU memory; the store's metrics are cleared by the dashboard. */
  reset(): void;
  /** Makes a new room and joins it; resolves with its code. */
  createRoom(): Promise<string>;
  joinRoom(code: string): Promise<void>;
  /** Asks the room to switch strategy at a step boundary; resolves with that step (LabApi.switchStrategy). */
  switchStrategy(choice: Record<string, string | number>): Promise<{ step: number; strategy: string }>;
  /** One link's own latency (ms) and bandwidth (MB/s, 0: unlimited) for this tab's sends; null: the tab's again. */
  shapeLink(peerId: string, setting: LinkSetting | null): void;
  /** The current parameters (and optimizer state) as a file to download. */
  exportCheckpoint(): Promise<CheckpointFile>;
  classroom: {
    /**
     * Runs one all-reduce on a small vector over the real mesh, gated: publishes the initial snapshot
     * (ClassroomSnapshotEvent, step 0) and waits for `next`. Topic 'pipeline': a pipeline schedule over
     * the room's tabs as stages, one op per `next` (PipelineLessonEvent; `pipeline` picks the schedule and micro-batches, GPipe and 2 when left out); 'tensor', the two-layer MLP split across the tabs (TensorLessonEvent).
     */
    load(topic?: 'ring' | 'pipeline' | 'tensor', pipeline?: PipelineLessonChoice): Promise<void>;
    /** Releases the gate for one more schedule step, which publishes its snapshot when done. */
    next(): Promise<void>;
    // No prev(): the mesh cannot un-send a chunk. Going back shows snapshots already recorded, which
    // the store keeps (setClassroomIndex).
  };
}
