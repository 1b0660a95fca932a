// The glue between the dashboard / `window.lab` and the training session: one session at a time, started
// from a config, its events on the shared bus.
import { generateRoomCode, normalizeRoomName } from '../peer/room-code';
import type { CheckpointFile, LabController } from '../ui/controller';
import type { LabApi, LabMetrics, LabStatus } from './api';
import { LabClassroom } from './classroom';
import { DEFAULT_CONFIG, validateConfig, type LabConfig } from './config';
import type { EventBus } from './events';
import { LabSession, type SessionEnv } from './session';

export class LabControllerImpl implements LabController {
  private session: LabSession | null = null;
  private config: LabConfig;

  constructor(
    private readonly env: SessionEnv,
    initial: LabConfig,
    /** Called when the room changes, so the page can put it in the URL. */
    private readonly onRoom: (room: string) => void = () => undefined,
  ) {
    this.config = { ...initial };
  }

  get bus(): EventBus {
    return this.env.bus;
  }

  current(): LabSession | null {
    return this.session;
  }

  async start(config: LabConfig): Promise<void> {
    validateConfig(config);
    this.reset();
    this.config = { ...config };
    const session = new LabSession(this.config, this.env);
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
  }

  async exportCheckpoint(): Promise<CheckpointFile> {
    throw new Error('checkpoints are not built yet (see the elastic/checkpoint issue)');
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
        },
      metrics: (): LabMetrics => need().metrics(),
      config: () => ({ ...this.config }),
      paramsHash: () => need().paramsHash(),
      params: async () => Array.from(await need().params()),
      start: () => this.start(this.config),
      pause: () => this.pause(),
      resume: () => this.resume(),
    };
  }
}

export { DEFAULT_CONFIG };
