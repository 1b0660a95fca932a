// One tab's training session when the model is partitioned across the room's tabs (a pipeline or tensor
// parallelism today; expert parallelism through the same seam, partitioned-run.ts): the run loop of such runs.
// It prepares the run (backend, data, room, this tab's part, the part's autosave when resuming), then
// repeats, in order, until the last step: train one step (a collective of the whole room), check that
// the tabs holding the same part hold the same bits (a hash all-gather, compared within each group),
// autosave this tab's part, evaluate, and (a model that writes text) sample. Everything is published on the event bus, as session.ts does.
//
// Unlike session.ts's replicated runs, a partitioned room is not elastic: a lost tab takes parameters
// no other tab holds, so the room stops with a message naming the part that was lost, and `resume=1`
// restarts every tab from its own part's autosave (each saved under its rank's key, with the partition
// recorded and checked on restore): of the newest step every tab holds (part-autosaves.ts keeps each
// tab's two newest, for a tab lost while the room was writing one).
import type { Backend, MemoryKind } from '../engine/backend';
import { FIRST_FLOAT_ID } from '../collective/collective-ids';
import { paramsHash } from '../model/layout';
import { exchangeHashes } from '../parallel/replicas';
import { finiteModelDataCheck } from '../peer/payload-checks';
import type { Mesh } from '../peer/mesh';
import { loadCheckpoint } from '../train/checkpoint';
import type { LabMetrics, LabStatus } from './api';
import { openRunBackend } from './backend-choice';
import { checkpointKey, defaultCheckpointStore, type CheckpointStore } from './checkpoint-store';
import type { StagedCheckpoint } from './checkpoint-keeper';
import type { LabConfig } from './config';
import { loadDataset } from './datasets';
import { isLostPeer } from './elastic/failures';
import { ReplicasDisagree } from './overlapped-exchange';
import { agreeOnResumeStep, PartAutosaves } from './part-autosaves';
import type { PartitionedRun, PartitionedRunKind } from './partitioned-run';
import { joinRoom, type JoinedRoom } from './room';
import { RunMetrics, type LogEntry } from './run-metrics';
import { RunLifecycle } from './run-state';
import type { SessionEnv } from './session';

/** Round of the starting-step agreement: the largest u32, never a training step's. */
const START_STEP_ROUND = 0xffff_ffff;
/** Round of resume=1's exchange of the autosaved steps each tab holds: the next largest u32. */
const RESUME_STEP_ROUND = 0xffff_fffe;

/** The run's state, pause gate, failure and log come from RunLifecycle (run-state.ts), shared by both run loops. */
export class PartitionedSession extends RunLifecycle {
  private rank = 0;
  private world = 1;
  private steps = 0;
  private backend: Backend | null = null;
  private run: PartitionedRun | null = null;
  private room: JoinedRoom | null = null;
  private mesh: Mesh | null = null;
  private vocab: string[] | null = null;
  private checkpointWaiters: { resolve: (bytes: Uint8Array) => void; reject: (error: unknown) => void }[] = [];
  private readonly store: CheckpointStore | null;
  private readonly recorder = new RunMetrics(() => this.rank);
  private readonly m: LabMetrics = this.recorder.values;

  constructor(
    readonly config: LabConfig,
    private readonly env: SessionEnv,
    private readonly kind: PartitionedRunKind,
    /** A file to start from: this tab's own part (a checkpoint of the same rank of the same layout). */
    private readonly staged?: StagedCheckpoint,
  ) {
    super(env.bus);
    env.bus.subscribe((event) => this.recorder.record(event));
    this.store = env.checkpoints === undefined ? defaultCheckpointStore() : env.checkpoints;
  }

  status(): LabStatus {
    return this.statusAt({ rank: this.rank, world: this.world, step: this.run?.step ?? 0, steps: this.steps, room: this.config.room, backend: this.backend?.info ?? null, epoch: this.room?.elastic?.epoch ?? 0 });
  }

  metrics(): LabMetrics {
    return {
      ...structuredClone(this.m),
      gpuBuffers: this.backend?.bufferCount() ?? 0,
      wire: this.room ? { ...this.room.wire } : null,
      ...(this.run ? { partition: this.run.figures() } : {}),
    };
  }

  logLines(): LogEntry[] {
    return this.recorder.logLines();
  }

  /** This tab's part of the parameters (no tab holds the whole model). */
  params(): Promise<Float32Array> {
    return this.requireRun().partParams();
  }

  async paramsHash(): Promise<string> {
    return paramsHash(await this.params());
  }

  /** This tab's part as a checkpoint; during training, taken between two steps. */
  checkpoint(): Promise<Uint8Array> {
    if (this.state === 'training' || this.state === 'paused') return new Promise((resolve, reject) => this.checkpointWaiters.push({ resolve, reject }));
    return this.capture();
  }

  /** The key this tab's part autosaves under (each save adds its step, part-autosaves.ts): the rank's key and the kind, so another split never loads it. */
  checkpointKey(): string {
    return `${checkpointKey(this.config, this.world, this.rank)}/${this.kind.name}${this.kind.groupSize(this.config)}`;
  }

  refusalStats(): { count: number; reasons: Record<string, number> } {
    return this.mesh?.refusalStats() ?? { count: 0, reasons: {} };
  }

  /** A partitioned run has no whole model on any tab to stream: each tab's part is its checkpoint. */
  exportModel(): Promise<never> {
    return Promise.reject(new Error(`lab.exportModel streams a whole-model run; a ${this.kind.name} run's model is its parts: take lab.checkpoint() on every tab`));
  }

  fuzzAsMember(): Promise<never> {
    return Promise.reject(new Error('fuzzAsMember is for replicated runs (session.ts)'));
  }

  joinedRoom(): JoinedRoom | null {
    return this.room;
  }

  start(): Promise<void> {
    return this.runOnce(async () => {
      await this.prepare();
      await this.train();
    });
  }

  dispose(): void {
    this.room?.leave();
    this.run?.dispose();
  }

  // --- the run loop ---------------------------------------------------------------------------------

  private async prepare(): Promise<void> {
    this.setState('loading');
    const size = this.kind.groupSize(this.config);
    if (this.config.room === '') throw new Error(`${this.kind.name}=${size} splits the model across ${size} tabs: it needs a room (room=...)`);
    const backend = (this.backend = await openRunBackend(this.config.backend, this.env.gpu, (error) => this.fail(error), (message) => this.log('warn', message)));
    const data = await loadDataset(this.config, this.env.dataBase ?? '/data/', this.env.userText);
    if (data.kind === 'text') this.vocab = data.data.vocab;
    this.setState('connecting');
    // The room forms once, with every part present (world 0: one pipeline's worth of tabs).
    const room = (this.room = await joinRoom({ ...this.config, world: this.config.world || this.kind.groupSize(this.config) }, this.env.bus, {
      onMesh: (mesh) => (this.mesh = mesh),
      messageCheck: finiteModelDataCheck(this.config.compression, FIRST_FLOAT_ID),
      admits: () => `a model-parallel room (${this.kind.name}) is not elastic: its tabs hold parts of the model no other tab has`,
    }));
    this.rank = room.transport.rank;
    this.world = room.transport.world;
    const refused = this.kind.refuses(this.config, this.world);
    if (refused) throw new Error(refused);
    const run = (this.run = this.kind.build({ config: this.config, backend, data, transport: room.transport, publish: (event) => this.env.bus.publish(event) }));
    this.steps = run.recipe.steps;
    this.log('info', `${run.description} (rank ${this.rank} of ${this.world})`);
    await this.restoreStart(run);
    await this.agreeOnStartStep(run);
    this.publishMemory();
    await this.checkReplicas(run);
  }

  /** A file handed in, or resume=1's autosave of this tab's part. */
  private async restoreStart(run: PartitionedRun): Promise<void> {
    if (this.staged && this.staged.mode !== 'resume') throw new Error(`a ${this.kind.name} run resumes its parts; fine-tuning from a file needs a run without ${this.kind.name}`);
    const given = this.staged?.bytes;
    // A tab resumes its own part from its own file (the files of a sharded ZeRO run come as several parts).
    if (Array.isArray(given) && given.length !== 1) throw new Error(`a ${this.kind.name} tab resumes from its own part's checkpoint: one file, got ${given.length}`);
    const bytes = Array.isArray(given) ? given[0] : given;
    if (bytes) {
      this.restorePart(run, bytes);
      this.log('info', `resumed ${run.part} from a checkpoint of step ${loadCheckpoint(bytes).header.step} (the file given)`);
    }
    // Every tab of a resume=1 room takes part in the exchange (one handed a file, or without storage,
    // offers what it has), so that no tab waits on another's.
    if (this.config.resume) await this.restoreAutosave(run, bytes ? loadCheckpoint(bytes).header.step : null);
  }

  /**
   * resume=1: the room agrees on the newest step whose part every tab holds, and each tab restores its
   * part of it (a tab started from a file given offers that file's step; agreeOnStartStep checks it).
   */
  private async restoreAutosave(run: PartitionedRun, givenStep: number | null): Promise<void> {
    const autosaves = this.store && givenStep === null ? new PartAutosaves(this.store, this.checkpointKey()) : null;
    const { saves, unreadable } = autosaves ? await autosaves.held() : { saves: [], unreadable: [] };
    for (const reason of unreadable) this.log('warn', `resume=1: an autosave passed over, it does not read back: ${reason}`);
    const offered = givenStep === null ? saves.map((s) => s.step) : [givenStep];
    const { step, passedOver } = await this.whileRoomWhole(() => agreeOnResumeStep(this.room!.transport, RESUME_STEP_ROUND, offered));
    if (step === null) {
      this.log('warn', `resume=1: no tab holds an autosave of its part (this one's: ${this.checkpointKey()}${this.store ? '' : ', no storage in this browser'}); starting from the seeded initialisation`);
      return;
    }
    if (givenStep !== null) return;
    this.restorePart(run, saves.find((s) => s.step === step)!.bytes);
    const newer = passedOver.map((p) => `rank ${p.rank}: ${p.steps.map((s) => `step ${s}`).join(', ')}`).join('; ');
    this.log('info', `resumed ${run.part} from a checkpoint of step ${step} (autosave, the newest step every tab holds)`);
    if (newer !== '') this.log('warn', `resume=1: newer autosaves passed over, not every tab holds them (${newer})`);
  }

  private restorePart(run: PartitionedRun, bytes: Uint8Array): void {
    for (const warning of run.restore(bytes, this.world)) this.log('warn', `checkpoint: ${warning}`);
  }

  /** Every tab must start from the same step (a resumed part whose autosave is older than the others' cannot). */
  private async agreeOnStartStep(run: PartitionedRun): Promise<void> {
    const own = run.step.toString(16).padStart(16, '0');
    const { hashes } = await this.whileRoomWhole(() => exchangeHashes(this.room!.transport, START_STEP_ROUND, own));
    const steps = hashes.map((h) => parseInt(h, 16));
    if (steps.some((s) => s !== run.step)) {
      throw new Error(`the tabs start from different steps (${steps.map((s, r) => `rank ${r}: ${s}`).join(', ')}): some part's autosave is missing or older; start again without resume=1`);
    }
  }

  private async train(): Promise<void> {
    const run = this.requireRun();
    this.setState('training');
    while (run.step < this.steps) {
      if (this.paused) await this.untilResumed();
      if (this.state === 'error') return;
      await this.trainOneStep(run);
    }
    this.publishMemory();
    await this.serveCheckpoints();
  }

  /** One step and what follows it: replica check, checkpoints, evaluation. */
  private async trainOneStep(run: PartitionedRun): Promise<void> {
    const recipe = run.recipe;
    const wire = this.room!.wire;
    const [sentBefore, t0] = [wire.payloadBytes, performance.now()];
    const result = await this.whileRoomWhole(() => run.trainStep());
    const t1 = performance.now();
    const step = run.step;
    const bytesSent = wire.payloadBytes - sentBefore;
    this.m.bytesSent += bytesSent;
    this.env.bus.publish({
      type: 'step',
      rank: this.rank,
      step,
      loss: result.loss,
      samplesPerSec: (recipe.globalBatch * 1000) / (t1 - t0),
      computeMs: result.computeMs,
      commMs: result.commMs,
      overlapMs: 0,
      waitMs: result.waitMs,
      stepMs: t1 - t0,
      bytesSent,
      bytesReceived: 0,
      t: t1,
    });
    if (step === 1) this.publishMemory();
    await this.checkReplicas(run);
    const last = step === this.steps;
    if (this.store && this.config.autosave > 0 && (step % this.config.autosave === 0 || last)) {
      await new PartAutosaves(this.store, this.checkpointKey()).save(await this.capture(), step);
    }
    await this.serveCheckpoints();
    if (last || step % recipe.evalEvery === 0) {
      const evaluation = await this.whileRoomWhole(() => run.evaluate());
      this.env.bus.publish({ type: 'eval', rank: this.rank, step, valLoss: evaluation.valLoss, ...(evaluation.accuracy !== undefined ? { accuracy: evaluation.accuracy } : {}), t: performance.now() });
    }
    if (run.sample && 'sampleEvery' in recipe && (last || step % recipe.sampleEvery === 0)) {
      const text = await this.whileRoomWhole(() => run.sample!());
      if (text !== undefined) this.env.bus.publish({ type: 'sample', step, text });
    }
  }

  /**
   * All-gathers every tab's hash of its part and compares them within each replica group (tabs that
   * hold the same part): this tab's group is published, as the dashboard compares the hashes it hears.
   */
  private async checkReplicas(run: PartitionedRun): Promise<void> {
    const step = run.step;
    const hash = paramsHash(await run.partParams());
    this.m.lastHash = hash;
    const { hashes } = await this.whileRoomWhole(() => exchangeHashes(this.room!.transport, step, hash));
    for (const r of run.replicaGroup) this.env.bus.publish({ type: 'hash', step, rank: r, hash: hashes[r] });
    const outliers = run.replicaGroup.filter((r) => hashes[r] !== hash);
    if (outliers.length > 0) {
      this.m.hashesAgree = false;
      throw new ReplicasDisagree(`the replicas of ${run.part} disagree after step ${step}: ranks ${outliers.join(', ')} differ from rank ${this.rank}`);
    }
    this.m.hashesAgree = this.m.hashesAgree ?? true;
  }

  /**
   * Runs a collective of the room; a tab lost during it (or before) stops the run with the part it
   * held named: no other tab has that part's parameters.
   */
  private async whileRoomWhole<T>(collective: () => Promise<T>): Promise<T> {
    try {
      return await collective();
    } catch (error) {
      const lost = this.room?.elastic?.reformWanted() ?? (isLostPeer(error) ? (error instanceof Error ? error.message : String(error)) : null);
      if (lost === null) throw error;
      throw new Error(`${this.lostPart(lost)} left the room (${lost}); a model-parallel room (${this.kind.name}) cannot go on without it: resume=1 restarts every tab from its part's last autosave`, { cause: error });
    }
  }

  /** "the tab holding stage 2 of 4 (rank 2)" for the member a lost-tab message names, or "a tab". */
  private lostPart(reason: string): string {
    const run = this.requireRun();
    const members = this.room?.members ?? [];
    const byPeer = members.findIndex((id) => id !== '' && reason.includes(id));
    const byRank = /rank (\d+)/.exec(reason);
    const rank = byPeer >= 0 ? byPeer : byRank ? Number(byRank[1]) : -1;
    return rank >= 0 && rank < this.world && rank !== this.rank ? `the tab holding ${run.partOf(rank)} (rank ${rank})` : 'a tab of the room';
  }

  private async capture(): Promise<Uint8Array> {
    return this.requireRun().checkpoint({ world: this.world, rank: this.rank, vocab: this.vocab });
  }

  private async serveCheckpoints(): Promise<void> {
    for (const waiter of this.checkpointWaiters.splice(0)) {
      try {
        waiter.resolve(await this.capture());
      } catch (error) {
        waiter.reject(error);
      }
    }
  }

  // --- events ---------------------------------------------------------------------------------------

  private publishMemory(): void {
    const backend = this.backend;
    if (backend) this.env.bus.publish({ type: 'memory', rank: this.rank, bytes: backend.memory() as Record<MemoryKind, number> });
  }

  /** A failed run takes no more checkpoints: the callers still waiting for one are told why. */
  protected override failed(error: unknown): void {
    for (const waiter of this.checkpointWaiters.splice(0)) waiter.reject(error);
  }

  private requireRun(): PartitionedRun {
    if (!this.run) throw new Error('the run has not been built yet');
    return this.run;
  }
}
