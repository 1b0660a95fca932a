// The glue between the dashboard / `window.lab` and the training session: one session at a time, started
// from a config, its events on the shared bus.
import { generateRoomCode, normalizeRoomName } from '../peer/room-code';
import { linkShapeOf, UNSHAPED } from '../peer/link-shaper';
import type { CheckpointFile, LabController, LinkSetting } from './controller';
import type { LabApi, LabMetrics, LabStatus } from './api';
import { LabClassroom } from './classroom';
import { DEFAULT_CONFIG, validateConfig, type LabConfig } from './config';
import type { EventBus } from '../shared/events';
import { LabSession, type SessionEnv, type StagedCheckpoint } from './session';
import { createSession, type TrainingSession } from './sessions';
import { openExportSink, type ExportResult, type ExportTarget } from './model-export';
import { base64ToBytes, bytesToBase64, CheckpointError, loadCheckpoint, type RestoreMode } from '../train/checkpoint';
import type { CheckpointSummary, LoadCheckpointOptions } from './api';
import { defaultCheckpointStore } from './checkpoint-store';

export class LabControllerImpl implements LabController {
  private session: TrainingSession | null = null;
  private config: LabConfig;

  constructor(
    private readonly env: SessionEnv,
    initial: LabConfig,
    /** Called when the room changes, so the page can put it in the URL. */
    private readonly onRoom: (room: string) => void = () => undefined,
  ) {
    this.config = { ...initial };
    if (typeof document !== 'undefined') document.addEventListener('visibilitychange', () => this.visibilityChanged(document.hidden));
  }

  /**
   * Says on the dashboard what a background tab means for the run: heartbeats come from a worker
   * (wake-timer.ts) and keep going, but a browser may still freeze a hidden tab; its peers then re-form
   * the ring without it after `peertimeout`, and it rejoins as a new tab when it runs again.
   */
  private visibilityChanged(hidden: boolean): void {
    this.env.bus.publish({
      type: 'log',
      level: hidden ? 'warn' : 'info',
      message: hidden
        ? 'this tab is in the background: the browser may slow or freeze it; a frozen tab is dropped from the ring after peertimeout and rejoins when it runs again'
        : 'this tab is in the foreground again',
      t: performance.now(),
    });
  }

  get bus(): EventBus {
    return this.env.bus;
  }

  current(): TrainingSession | null {
    return this.session;
  }

  async start(config: LabConfig, checkpoint?: StagedCheckpoint): Promise<void> {
    validateConfig(config);
    this.reset();
    this.config = { ...config };
    const session = createSession(this.config, this.env, checkpoint);
    this.session = session;
    // The run goes on in the background; its progress and failure arrive as events.
    void session.start();
  }

  pause(): void {
    this.session?.pause();
  }

  resume(): void {
    this.session?.resume();
  }

  reset(): void {
    this.session?.dispose();
    this.session = null;
  }

  async createRoom(): Promise<string> {
    const code = generateRoomCode();
    await this.joinRoom(code);
    return code;
  }

  async joinRoom(code: string): Promise<void> {
    this.config = { ...this.config, room: normalizeRoomName(code) };
    this.onRoom(this.config.room);
    // Tabs that join from the dashboard hear lessons too, like tabs opened on a room link.
    this.classroom.listen();
  }

  async exportCheckpoint(): Promise<CheckpointFile> {
    const session = this.session;
    if (!session) throw new Error('no run to save: start one first');
    const bytes = await session.checkpoint();
    const { step, rank, world } = session.status();
    const { model, dataset } = this.config;
    const filename = `lab-${model}-${dataset}-step${step}${world > 1 ? `-rank${rank}of${world}` : ''}.ckpt`;
    return { filename, blob: new Blob([bytes as Uint8Array<ArrayBuffer>], { type: 'application/octet-stream' }) };
  }

  /**
   * Verifies a checkpoint file and restarts the run from it with the current settings. A file that
   * does not verify throws CheckpointError and the current run goes on untouched. In a room, give the
   * same file to every tab: the hash exchange before the first step proves they all loaded it.
   */
  async loadCheckpoint(bytes: Uint8Array | Uint8Array[], mode: RestoreMode = 'resume'): Promise<CheckpointSummary> {
    // Parts of one checkpoint (a ZeRO-3 room's shards): each verified here, re-cut for this rank by the session.
    const files = Array.isArray(bytes) ? bytes : [bytes];
    if (files.length === 0) throw new CheckpointError('no checkpoint file given');
    const { header } = loadCheckpoint(files[0]);
    for (const file of files.slice(1)) loadCheckpoint(file);
    await this.start(this.config, { bytes, mode });
    const size = files.reduce((n, f) => n + f.length, 0);
    return { step: header.step, model: header.model.kind, dataset: header.dataset ?? null, world: header.world, mode, bytes: size };
  }

  /**
   * The whole model in the one-tab checkpoint format, streamed to a file once the run is done
   * (model-export.ts). Under ZeRO-3 every tab of the room must export: each gathers it layer by layer.
   */
  async exportModel(target: ExportTarget = 'picker'): Promise<ExportResult> {
    const session = this.session;
    if (!session) throw new Error('no run to export: start one first');
    const { model, dataset } = this.config;
    const { sink, finish } = await openExportSink(`lab-${model}-${dataset}-step${session.status().step}-model.ckpt`, target);
    await session.exportModel(sink);
    return finish();
  }

  /** Asks the room to switch strategy mid-run (LabApi.switchStrategy). */
  switchStrategy(choice: Record<string, string | number>): Promise<{ step: number; strategy: string }> {
    const session = this.session;
    if (!session) return Promise.reject(new Error('no run to switch: start one first'));
    if (!(session instanceof LabSession)) return Promise.reject(new Error('a partitioned run (pipeline, tensor) does not switch strategy'));
    return session.switchStrategy(choice);
  }

  /**
   * One link's own shape (peer/link-shaper.ts): the frames this tab sends to `peerId` get `latency` ms
   * and `bandwidth` MB/s (0: unlimited) in place of the tab's latency= and bandwidth=; null: back to them.
   */
  shapeLink(peerId: string, setting: LinkSetting | null): void {
    const room = this.session?.joinedRoom();
    if (!room) throw new Error('shaping a link needs a room: join one and start the run');
    if (peerId === room.mesh.peerId || !room.mesh.memberList().includes(peerId)) throw new Error(`no peer "${peerId}" in this room`);
    if (setting === null) return room.mesh.shapeLink(peerId, null);
    const { latency, bandwidth } = setting;
    if (!(Number.isFinite(latency) && latency >= 0 && latency <= 10_000)) throw new Error(`latency must be 0-10000 ms, got ${latency}`);
    if (!(Number.isFinite(bandwidth) && bandwidth >= 0 && bandwidth <= 100_000)) throw new Error(`bandwidth must be 0-100000 MB/s (0: unlimited), got ${bandwidth}`);
    room.mesh.shapeLink(peerId, linkShapeOf(latency, bandwidth) ?? UNSHAPED);
    this.env.bus.publish({ type: 'log', level: 'info', message: `link to ${peerId}: ${latency} ms, ${bandwidth > 0 ? `${bandwidth} MB/s` : 'unlimited'} (this tab's sends)`, t: performance.now() });
  }

  /**
   * Classroom mode over the real mesh (classroom.ts). Built in a field initializer, so everything it
   * reads of this controller is read later, through functions; it starts listening for lessons once
   * the constructor has finished.
   */
  classroom: LabClassroom = (() => {
    const classroom = new LabClassroom({
      bus: () => this.env.bus,
      config: () => this.config,
      trainingRoom: () => this.session?.joinedRoom() ?? null,
    });
    queueMicrotask(() => classroom.listen());
    return classroom;
  })();

  /** `window.lab`: the automation contract (src/lab/api.ts). */
  api(): LabApi {
    const need = () => {
      if (!this.session) throw new Error('no run yet: start one (autostart=1 or lab.start())');
      return this.session;
    };
    return {
      status: (): LabStatus =>
        this.session?.status() ?? {
          rank: 0,
          world: 1,
          step: 0,
          steps: 0,
          state: 'idle',
          error: null,
          room: this.config.room,
          backend: null,
          epoch: 0,
        },
      metrics: (): LabMetrics => need().metrics(),
      config: () => ({ ...this.config }),
      paramsHash: () => need().paramsHash(),
      params: async () => Array.from(await need().params()),
      start: () => this.start(this.config),
      pause: () => this.pause(),
      resume: () => this.resume(),
      checkpoint: async () => bytesToBase64(await need().checkpoint()),
      loadCheckpoint: (data: string | number[] | string[], opts: LoadCheckpointOptions = {}) => {
        const mode = opts.mode ?? 'resume';
        if (mode !== 'resume' && mode !== 'finetune') return Promise.reject(new CheckpointError(`mode must be resume or finetune, got ${String(mode)}`));
        const parts = Array.isArray(data) && data.every((d) => typeof d === 'string');
        const bytes = typeof data === 'string' ? base64ToBytes(data) : parts ? (data as string[]).map(base64ToBytes) : Uint8Array.from(data as number[]);
        return this.loadCheckpoint(bytes, mode);
      },
      switchStrategy: (choice) => this.switchStrategy(choice),
      shapeLink: (peerId, setting) => this.shapeLink(peerId, setting),
      exportModel: (opts: { to?: ExportTarget } = {}) => this.exportModel(opts.to ?? 'none'),
      // Counted by the room's mesh itself (the bus hears of a flood only in summary).
      refused: () => this.session?.refusalStats() ?? { count: 0, reasons: {} },
      fuzzAsMember: (opts) => need().fuzzAsMember(opts),
      log: () => this.session?.logLines() ?? [],
      storedCheckpoints: async () => (await (this.env.checkpoints === undefined ? defaultCheckpointStore() : this.env.checkpoints)?.list()) ?? [],
    };
  }
}

export { DEFAULT_CONFIG };
