// One tab's training session: choose the backend, load the data, join the room, build the run, train
// step by step (data-parallel over the ring when the room has several tabs), check that replicas agree
// after every step, and publish everything on the event bus. The UI and `window.lab` only read it.
import { viewOf, type Backend, type BackendInfo, type MemoryKind } from '../engine/backend';
import { bigramNll, fitBigram } from '../data/bigram';
import { paramsHash } from '../model/layout';
import { budgetRefusal, predictBytes, totalBytes } from '../parallel/zero/budget';
import { createParallelHooks } from '../parallel/strategy';
import { exchangeHashes } from '../parallel/replicas';
import { OverlappedExchange, ReplicasDisagree } from './overlapped-exchange';
import { charLmRun, classifierRun, type Run } from '../train/recipes';
import type { Gpt } from '../model/gpt';
import type { Mlp } from '../model/mlp';
import { decodeTokens } from '../data/text';
import type { ClassificationData } from '../data/types';
import type { ClassifierRecipe } from '../train/defaults';
import type { LabMetrics, LabStatus } from './api';
import { chooseBackend } from './backend-choice';
import type { LabConfig } from './config';
import { loadDataset, type LoadedData } from './datasets';
import type { EventBus, LabEvent, RunState } from './events';
import { recipeFor, type Recipe } from './recipe';
import { joinRoom, type JoinedRoom } from './room';
import { exchangeState } from './state-transfer';
import { backUpServerState, backUpSlice, captureSlice, rebuildZeroState, restoreSlice, sliceShapeOf } from './zero-state-transfer';
import { PARAMETER_SERVER_RANK } from '../parallel/parameter-server';
import { ZeroBackups } from '../parallel/zero/zero-backup';
import { RunMetrics, type LogEntry } from './run-metrics';
import { TransportError } from '../peer/datachannel-transport';
import type { Formation } from './elastic-room';
import { captureCheckpoint, loadCheckpoint, mapTextToVocab, restoreCheckpoint, type Checkpoint, type RestoreMode } from '../train/checkpoint';
import { textWindowCount } from '../data/batch';
import { finiteModelDataCheck } from '../peer/payload-checks';
import { sendMemberFrames, type MemberFuzzResult } from '../peer/hostile-frames';
import type { Mesh } from '../peer/mesh';
import { GRADIENT_COLLECTIVE_BASE } from '../parallel/data-parallel';
import type { CharLmRecipe } from '../train/defaults';
import { checkpointKey, defaultCheckpointStore, type CheckpointStore } from './checkpoint-store';

export interface SessionEnv {
  bus: EventBus;
  /** navigator.gpu in a browser (absent without WebGPU). */
  gpu: GPU | undefined;
  /** Where prepared data sets are served (Vite serves public/ at /). */
  dataBase?: string;
  /** The text a user dropped into the page, for dataset=text. */
  userText?: string;
  /** Where autosaves go and `resume=1` reads from; default IndexedDB in a browser, none in Node. */
  checkpoints?: CheckpointStore | null;
}

/** A checkpoint file handed to the session to start from (window.lab.loadCheckpoint, the dashboard). */
export interface StagedCheckpoint {
  bytes: Uint8Array;
  mode: RestoreMode;
}


/** Re-forms that fail one after another (each lost another tab) before the run gives up. */
const MAX_FAILED_REFORMS = 20;

export class LabSession {
  private state: RunState = 'idle';
  private error: string | null = null;
  private rank = 0;
  private world = 1;
  private step = 0;
  private steps = 0;
  private backend: Backend | null = null;
  private run: Run<Mlp> | Run<Gpt> | null = null;
  private room: JoinedRoom | null = null;
  private paused = false;
  private resumeWaiters: (() => void)[] = [];
  private readonly recorder = new RunMetrics(() => this.rank);
  private readonly m: LabMetrics = this.recorder.values;
  private data: LoadedData | null = null;

  constructor(
    readonly config: LabConfig,
    private readonly env: SessionEnv,
    /** Start from this file instead of the seeded initialisation (every tab of a room loads the same). */
    private readonly staged?: StagedCheckpoint,
  ) {
    env.bus.subscribe((event) => this.recorder.record(event));
    this.checkpoints = env.checkpoints === undefined ? defaultCheckpointStore() : env.checkpoints;
  }

  status(): LabStatus {
    return {
      rank: this.rank,
      world: this.world,
      step: this.step,
      steps: this.steps,
      state: this.state,
      error: this.error,
      room: this.config.room,
      backend: this.backend?.info ?? null,
      epoch: this.room?.elastic?.epoch ?? 0,
    };
  }

  metrics(): LabMetrics {
    return { ...structuredClone(this.m), gpuBuffers: this.backend?.bufferCount() ?? 0, wire: this.room ? { ...this.room.wire } : null };
  }

  logLines(): LogEntry[] {
    return this.recorder.logLines();
  }

  pause(): void {
    if (this.state === 'training') {
      this.paused = true;
      this.setState('paused');
    }
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    this.setState('training');
    for (const wake of this.resumeWaiters.splice(0)) wake();
  }

  async params(): Promise<Float32Array> {
    const run = this.requireRun();
    // ZeRO-3: no rank holds the full vector; the last replica check gathered it (every rank at once).
    if (this.gatherParams) {
      if (!this.gathered) throw new Error('ZeRO-3: the parameters have not been gathered yet');
      return this.gathered.slice();
    }
    return this.requireBackend().read(viewOf(run.model.params));
  }

  async paramsHash(): Promise<string> {
    return paramsHash(await this.params());
  }

  /** Runs the whole session; never throws: a failure ends in state 'error' with its message. */
  async start(): Promise<void> {
    if (this.state !== 'idle') throw new Error(`the session has already started (state ${this.state})`);
    try {
      await this.prepare();
      await this.train();
      this.setState('done');
    } catch (error) {
      this.fail(error);
    }
  }

  dispose(): void {
    this.room?.leave();
    this.run?.dispose();
  }

  // --- stages -------------------------------------------------------------------------------------

  private async prepare(): Promise<void> {
    this.setState('loading');
    const { backend, fallbackReason } = await chooseBackend(this.config.backend, this.env.gpu, (problem) =>
      this.fail(new Error(problem.kind === 'lost' ? `GPU device lost (${problem.reason}): ${problem.message}` : `GPU error: ${problem.message}`)),
    );
    this.backend = backend;
    if (fallbackReason) this.log('warn', `no WebGPU, training on the CPU reference backend: ${fallbackReason}`);
    let data = await loadDataset(this.config, this.env.dataBase ?? '/data/', this.env.userText);
    if (this.config.room) {
      this.setState('connecting');
      this.room = await joinRoom(this.config, this.env.bus, {
        onMesh: (mesh) => (this.mesh = mesh),
        // Gradients and parameters with NaN/Infinity are refused on arrival, before any sum takes them in.
        messageCheck: finiteModelDataCheck(this.config.compression, GRADIENT_COLLECTIVE_BASE),
        admits: () => notElasticBecause(this.config) ?? (this.state === 'done' || this.state === 'error' ? `this run is ${this.state}` : true),
      });
      this.rank = this.room.transport.rank;
      this.world = this.room.transport.world;
    }
    this.data = data;
    // A tab that joins a running room starts from the room's state, not from its own file or seed.
    const joining = this.room?.formation && this.room.formation.source >= 0 ? this.room.formation : null;
    if (joining && (this.staged || this.config.resume)) this.log('warn', 'this room is already training: its state replaces the checkpoint this tab was given');
    const start = joining ? null : await this.startingCheckpoint();
    this.seededStart = !joining && !start;
    // A text model continues on new text only in its own vocabulary: re-encode (or refuse) first.
    if (start?.ckpt.header.vocab && data.kind === 'text') data = { kind: 'text', data: mapTextToVocab(data.data, start.ckpt.header.vocab) };
    if (data.kind === 'text') this.loadedVocab = data.data.vocab;
    const recipe = recipeFor(this.config, this.world);
    this.steps = recipe.recipe.steps;
    this.run = this.buildRun(backend, data, recipe);
    const samples = data.kind === 'text' ? textWindowCount(data.data.train.length, (recipe.recipe as CharLmRecipe).model.blockSize) : data.data.train.count;
    this.stepsPerEpoch = Math.floor(samples / recipe.recipe.globalBatch);
    if (joining) {
      await this.adoptRoomState(joining, null, 'joined a running room');
    } else if (start) {
      const warnings = restoreCheckpoint(backend, this.run, start.ckpt, start.mode, { recipe: recipe.recipe, world: this.world });
      for (const warning of warnings) this.log('warn', `checkpoint: ${warning}`);
      this.step = this.run.trainer.step;
      this.log('info', `${start.mode === 'resume' ? 'resumed' : 'fine-tuning'} from a checkpoint of step ${start.ckpt.header.step} (${start.source})`);
    }
    if (data.kind === 'text') this.m.bigramValLoss = bigramNll(fitBigram(data.data.train, data.data.vocab.length), data.data.val);
    this.publishMemory();
    this.checkBudgetBeforeTraining();
    // In an elastic room the first check is train()'s first iteration, where a tab lost during it re-forms the ring.
    if (!this.room?.elastic) await this.checkReplicas(this.step);
  }

  private buildRun(backend: Backend, data: LoadedData, recipe: Recipe): Run<Mlp> | Run<Gpt> {
    const shard = { world: this.world, rank: this.rank };
    const publish = (event: LabEvent) => this.env.bus.publish(event);
    const transport = this.room?.transport;
    let run: Run<Mlp> | Run<Gpt> | undefined;
    const built = () => {
      if (!run) throw new Error('the run is not built yet');
      return run;
    };
    const parallel = transport
      ? createParallelHooks({
          config: this.config,
          backend,
          transport,
          model: () => built().model,
          optimizer: () => built().optimizer,
          microBatches: recipe.recipe.microBatches,
          publish,
        })
      : {};
    // Asynchronous parameter server: replicas differ between steps by design; they agree at the end.
    const { replicasEqualEveryStep, gatherParams, ...hooks } = parallel;
    this.checkEveryStep = replicasEqualEveryStep ?? true;
    this.gatherParams = gatherParams ?? null;
    const extras = { onEvent: publish, alongsideComm: (from: number, to: number) => this.hashExchange.busyWithin(from, to), ...hooks };
    if (recipe.kind === 'classifier') {
      if (data.kind !== 'classification') throw new Error('the MLP needs a classification data set');
      run = classifierRun(backend, data.data, fitToData(recipe.recipe, data.data), shard, extras);
    } else {
      if (data.kind !== 'text') throw new Error('the GPT needs a text data set');
      run = charLmRun(backend, data.data, recipe.recipe, shard, extras);
    }
    return run;
  }

  private async train(): Promise<void> {
    this.setState('training');
    let pending: string | null = null;
    let failedReforms = 0;
    let startChecked = !this.room?.elastic;
    while (this.step < this.steps) {
      if (this.paused) {
        // A pause may be long: what the last step's hash exchange found is not held back until it ends.
        await this.settleHashExchange();
        await new Promise<void>((wake) => this.resumeWaiters.push(wake));
      }
      if (this.state === 'error') return;
      const reform = pending ?? this.room?.elastic?.reformWanted() ?? null;
      pending = null;
      try {
        if (reform) {
          await this.settleHashExchange();
          await this.reform(reform);
          failedReforms = 0;
          startChecked = true;
        } else if (!startChecked) {
          // The same check the others run at the end of the re-form this tab joined through (if any).
          await this.checkReplicas(this.step);
          // A room's starting state is backed up like a step's; a tab that joined holds the full state.
          if (!this.room?.formation || this.room.formation.source < 0) await this.backUpState();
          startChecked = true;
        } else {
          await this.trainOneStep();
        }
      } catch (error) {
        // Replicas that differ end the run, whatever else failed (a disagreement found by the last
        // step's hash exchange, still on the wire when this failure came, included).
        if (error instanceof ReplicasDisagree) throw error;
        await this.settleHashExchange();
        // A tab lost during a step, or during a re-form itself: re-form (again) with whoever is left.
        const why = this.reformableFailure(error);
        if (why === null) throw error;
        if (reform && ++failedReforms > MAX_FAILED_REFORMS) throw new Error(`the ring failed to re-form ${MAX_FAILED_REFORMS} times in a row; last: ${why}`);
        pending = why;
      }
    }
    this.publishMemory();
    await this.serveCaptures();
  }

  private async trainOneStep(): Promise<void> {
    const run = this.requireRun();
    const recipe = recipeFor(this.config, this.world).recipe;
    await run.trainer.trainStep();
    // The last step's hash exchange ran alongside this step.
    await this.settleHashExchange();
    this.step = run.trainer.step;
    // ZeRO lends its layer slots during the first step: memory after it is the steady state.
    if (!this.steadyMemoryPublished) this.publishSteadyMemory();
    const last = this.step === this.steps;
    // The last step's check is waited for: a finished run's replicas are known to agree.
    if (this.checkEveryStep || last) await this.checkReplicas(this.step, { alongsideNextStep: !last && !this.paused });
    await this.backUpState();
    // Checkpoints are taken of a step the replica check has passed (and ZeRO-3 has gathered).
    await this.betweenSteps();
    if (last || this.step % recipe.evalEvery === 0) await run.trainer.evaluate(run.evalBatches);
    if ('sampleEvery' in recipe && (last || this.step % recipe.sampleEvery === 0) && this.rank === 0 && !this.gatherParams) await this.sampleText(run as Run<Gpt>, recipe.sampleLength, recipe.temperature);
  }

  // --- elastic membership ---------------------------------------------------------------------------

  /**
   * Why a failed step can be survived by re-forming the ring (a tab died, left or joined), or null when
   * it must stop the run (bad data from a member, replicas that disagree, a run that is not elastic).
   */
  private reformableFailure(error: unknown): string | null {
    const elastic = this.room?.elastic;
    if (!elastic) return null;
    const wanted = elastic.reformWanted();
    const lost = transportCause(error);
    const membership = wanted ?? (lost && !lost.refusedData ? (error instanceof Error ? error.message : lost.message) : null);
    if (membership === null) return null;
    const notElastic = notElasticBecause(this.config);
    if (notElastic) throw new Error(`${membership}; ${notElastic}, so a lost tab stops the run (resume=1 restarts from the last autosave)`);
    return membership;
  }

  /**
   * Leaves the current ring and joins the next: every tab offers the state it holds (its completed
   * steps and parameter hash), the most advanced one is sent to whoever lacks it, and each tab rebuilds
   * its run for its new rank and world size. A step that did not complete anywhere is redone from its
   * start; one that completed somewhere is kept (see roster.ts).
   */
  private async reform(reason: string): Promise<void> {
    const elastic = this.room!.elastic!;
    elastic.abort(reason);
    this.setState('reforming');
    this.log('warn', `re-forming the ring at step ${this.step}: ${reason}`);
    // ZeRO or the parameter server: not every tab holds the whole state; the ring rebuilds it from the backups.
    const rebuilt = this.backsUpState();
    const mine = rebuilt ? null : await this.capture();
    const card = { step: this.requireRun().trainer.step, hash: rebuilt ? (this.m.lastHash ?? '') : await this.paramsHash() };
    const formation = await elastic.form(card);
    await this.adoptRoomState(formation, mine, reason);
    await this.checkReplicas(this.step);
    const counts = (this.m.elastic ??= { reforms: 0, joins: 0, departures: 0 });
    counts.reforms++;
    counts.joins += formation.joined.length;
    counts.departures += formation.left.length;
    if (this.state === 'reforming') this.setState(this.paused ? 'paused' : 'training');
  }

  /** Takes the formation's state (sent by its source, or this tab's own) into a run built for its rank and world. */
  private async adoptRoomState(formation: Formation, mine: Uint8Array | null, reason: string): Promise<void> {
    const backend = this.requireBackend();
    const rebuilt = this.backsUpState();
    const { state, received: sent } = rebuilt ? { state: null, received: false } : await exchangeState(formation, mine);
    let received = sent;
    this.rank = formation.rank;
    this.world = formation.world;
    const recipe = recipeFor(this.config, this.world);
    this.run?.dispose();
    backend.trimCaches();
    this.run = this.buildRun(backend, this.data!, recipe);
    if (state) {
      restoreCheckpoint(backend, this.run, loadCheckpoint(state), 'resume', { recipe: recipe.recipe, world: this.world });
    }
    if (rebuilt && formation.source >= 0) {
      const { full, bytesSent } = await rebuildZeroState(formation.transport, this.backups, sliceShapeOf(this.run), this.seededStart);
      this.countBackupBytes(bytesSent);
      if (full) {
        restoreSlice(backend, this.run, full);
        this.backups.adopt(full);
        received = formation.rank !== 0;
      } else {
        // Lost before the starting state was backed up on every tab: the new run holds the seeded start.
        this.log('warn', 'the starting state was not backed up yet: the ring starts again from the seeded initialisation');
        this.backups.clear();
        await this.backUpState();
      }
    }
    this.step = this.run.trainer.step;
    this.steadyMemoryPublished = false;
    this.env.bus.publish({
      type: 'membership',
      epoch: formation.epoch,
      members: formation.members,
      rank: this.rank,
      world: this.world,
      step: this.step,
      joined: formation.joined,
      left: formation.left,
      reason,
      receivedState: received,
    });
    const from = rebuilt ? 'rebuilt by rank 0 from the backed-up optimizer state' : `received from rank ${formation.source}`;
    this.log('info', `ring epoch ${formation.epoch}: rank ${this.rank} of ${this.world} from step ${this.step}` + (received ? ` (state ${from})` : ''));
    this.publishMemory();
  }

  // --- backups of state that lives on some tabs only (ZeRO slices, the parameter server) -------------

  /** This run started from the seeded initialisation (no checkpoint, not joined): step 0 can be rebuilt from the seed. */
  private seededStart = false;

  /** Backed-up slices this tab holds: its own and its ring predecessor's (zero-backup.ts). */
  private readonly backups = new ZeroBackups();

  /**
   * Whether, in an elastic room, no single tab is sure to hold the whole optimizer state (ZeRO shards it;
   * the synchronous parameter server keeps it on rank 0), so it is backed up on a second tab and rebuilt
   * from the backups when the ring re-forms.
   */
  private backsUpState(): boolean {
    return (this.config.zero > 0 || this.isSyncParameterServer()) && !!this.room?.elastic;
  }

  private isSyncParameterServer(): boolean {
    return this.config.mode === 'ps' && this.config.staleness === 0;
  }

  /** After a completed (and hash-checked) step: keep this rank's slice and swap copies with the ring. */
  private async backUpState(): Promise<void> {
    if (!this.backsUpState()) return;
    const run = this.requireRun();
    const transport = this.room!.transport;
    const shape = sliceShapeOf(run);
    // The parameter server's state is on rank 0 alone (workers hold a placeholder): rank 1 keeps its copy.
    const serverOnly = this.isSyncParameterServer();
    const slice = !serverOnly || transport.rank === PARAMETER_SERVER_RANK ? await captureSlice(this.requireBackend(), run) : null;
    this.countBackupBytes(serverOnly ? await backUpServerState(transport, this.backups, slice, shape, run.trainer.step) : await backUpSlice(transport, this.backups, slice!, shape));
    const held = (this.m.zeroBackups ??= { bytesSent: 0, floatsHeld: 0, steps: 0 });
    held.floatsHeld = this.backups.floats();
    held.steps++;
  }

  /** Backup and rebuild traffic is model data on the wire: it counts in bytesSent and on its own. */
  private countBackupBytes(bytes: number): void {
    const held = (this.m.zeroBackups ??= { bytesSent: 0, floatsHeld: 0, steps: 0 });
    held.bytesSent += bytes;
    this.m.bytesSent += bytes;
  }

  // --- checkpoints ----------------------------------------------------------------------------------

  private mesh: Mesh | null = null;

  /** TEST SUPPORT (e2e/hostile.spec.ts): this ring member sends rule-breaking frames (peer/hostile-frames.ts). */
  fuzzAsMember(opts: { count: number; seed?: number }): Promise<MemberFuzzResult> {
    const room = this.room;
    if (!room) return Promise.reject(new Error('fuzzAsMember needs a room'));
    const { rank, world, epoch } = room.transport;
    return sendMemberFrames(room.mesh, { rank, world, epoch, members: room.members }, this.config.compression, opts);
  }

  /** Frames and signals this tab's mesh refused (0 without a room). */
  refusalStats(): { count: number; reasons: Record<string, number> } {
    return this.mesh?.refusalStats() ?? { count: 0, reasons: {} };
  }

  private readonly checkpoints: CheckpointStore | null;
  private stepsPerEpoch = 0;
  private captureWaiters: { resolve: (bytes: Uint8Array) => void; reject: (error: unknown) => void }[] = [];

  /**
   * This tab's checkpoint (parameters, optimizer state, step). During training it is taken between two
   * steps, never while a step is writing the parameters.
   */
  checkpoint(): Promise<Uint8Array> {
    if (this.state === 'training') return new Promise((resolve, reject) => this.captureWaiters.push({ resolve, reject }));
    return this.capture();
  }

  /** The key this run autosaves under and resumes from (see checkpoint-store.ts). */
  checkpointKey(): string {
    return checkpointKey(this.config, this.world, this.rank);
  }

  private capture(): Promise<Uint8Array> {
    const run = this.requireRun();
    const { recipe } = recipeFor(this.config, this.world);
    return captureCheckpoint(this.requireBackend(), run, {
      recipe,
      world: this.world,
      rank: this.rank,
      stepsPerEpoch: this.stepsPerEpoch,
      lab: { ...this.config, secret: undefined, resume: undefined },
      vocab: this.loadedVocab ?? undefined,
      dataset: this.config.dataset,
      fullParams: this.gatherParams ? (this.gathered ?? undefined) : undefined,
    });
  }

  private async betweenSteps(): Promise<void> {
    const every = this.config.autosave;
    const autosave = this.checkpoints !== null && every > 0 && (this.step % every === 0 || this.step === this.steps);
    // Checkpoints are of steps whose replica check has passed.
    if (autosave || this.captureWaiters.length > 0) await this.settleHashExchange();
    await this.serveCaptures();
    if (autosave) await this.autosave();
  }

  private async serveCaptures(): Promise<void> {
    for (const waiter of this.captureWaiters.splice(0)) {
      try {
        waiter.resolve(await this.capture());
      } catch (error) {
        waiter.reject(error);
      }
    }
  }

  /** A failed save (storage full, private mode) is shown but does not stop training. */
  private async autosave(): Promise<void> {
    try {
      const bytes = await this.capture();
      await this.checkpoints!.put(this.checkpointKey(), bytes, this.step);
    } catch (error) {
      this.log('warn', `autosave at step ${this.step} failed: ${error instanceof Error ? error.message : String(error)}`);
    }
  }

  /** The file to start from: one handed in, else (resume=1) this run's newest autosave. Verified here. */
  private async startingCheckpoint(): Promise<{ ckpt: Checkpoint; mode: RestoreMode; source: string } | null> {
    if (this.staged) return { ckpt: loadCheckpoint(this.staged.bytes), mode: this.staged.mode, source: 'a loaded file' };
    if (!this.config.resume) return null;
    const key = this.checkpointKey();
    const bytes = this.checkpoints ? await this.checkpoints.get(key) : null;
    if (!bytes) {
      this.log('warn', `resume=1 but no checkpoint is stored under ${key}: starting from step 0`);
      return null;
    }
    return { ckpt: loadCheckpoint(bytes), mode: 'resume', source: `browser storage, ${key}` };
  }

  private async sampleText(run: Run<Gpt>, length: number, temperature: number): Promise<void> {
    const vocab = this.loadedVocab;
    if (!vocab) return;
    const tokens = await run.model.sample(Uint32Array.of(0), length, { temperature, seed: this.config.seed + this.step });
    this.env.bus.publish({ type: 'sample', step: this.step, text: decodeTokens(tokens, vocab) });
  }

  private loadedVocab: string[] | null = null;
  /** ZeRO-3: gathers the full parameter vector from every rank's shard (text samples are skipped: rank 0 alone cannot gather). */
  private gatherParams: ((round: number) => Promise<Float32Array>) | null = null;
  private gathered: Float32Array | null = null;
  private steadyMemoryPublished = false;

  /** Publishes memory after the first step and enforces the memory budget on real allocations. */
  private publishSteadyMemory(): void {
    this.steadyMemoryPublished = true;
    this.publishMemory();
    const memory = this.requireBackend().memory();
    const refusal = budgetRefusal(this.config.budget, totalBytes(memory), this.config.zero, null);
    if (refusal) throw new Error(refusal);
  }

  /** Before the first step: refuse a run that will not fit the budget, saying whether ZeRO-3 would. */
  private checkBudgetBeforeTraining(): void {
    if (!(this.config.budget > 0)) return;
    const run = this.requireRun();
    const memory = this.requireBackend().memory();
    // Groups resident at once under ZeRO: the GPT's tied head needs the embedding beside the final norm.
    const residentGroups = run.model.kind === 'gpt' ? 2 : 1;
    const eagerSnapshot = run.trainer.eagerSnapshotBytes;
    const predict = (stage: number) =>
      predictBytes(run.model.layout, this.world, stage, memory, this.config.zero, { offload: this.config.offload, residentGroups, eagerSnapshot });
    const refusal = budgetRefusal(this.config.budget, predict(this.config.zero), this.config.zero, this.config.zero < 3 ? predict(3) : null);
    if (refusal) throw new Error(refusal);
  }
  /** Whether replicas must be bitwise equal after every step (all modes but the asynchronous PS). */
  private checkEveryStep = true;
  /** The last step's replica-check hash exchange, while it runs alongside the next step. */
  private readonly hashExchange = new OverlappedExchange();

  /**
   * Hash the parameters; in a room, all-gather the hashes and stop on any disagreement. With
   * `alongsideNextStep` the all-gather is left on the wire while the next step computes, and settled
   * after it (overlapped-exchange.ts). The parameters are read and hashed here, between the steps:
   * done during the next step, that read and hash delayed its first bucket by ~30 ms (4 tabs, 2 cores).
   */
  private async checkReplicas(step: number, options: { alongsideNextStep?: boolean } = {}): Promise<void> {
    // ZeRO-3: every rank gathers the shards (a collective) and hashes the full vector it assembled.
    if (this.gatherParams) this.gathered = await this.gatherParams(step);
    const hash = await this.paramsHash();
    this.m.lastHash = hash;
    const room = this.room;
    if (!room) {
      this.m.hashesAgree = this.m.hashesAgree ?? true;
      this.env.bus.publish({ type: 'hash', step, rank: this.rank, hash });
      return;
    }
    const exchange = async (onWire?: () => void) => {
      onWire?.();
      const result = await exchangeHashes(room.transport, step, hash);
      // Every rank's hash, as gathered: the dashboard shows agreement (or who differs) for the room.
      result.hashes.forEach((h, rank) => this.env.bus.publish({ type: 'hash', step, rank, hash: h }));
      if (!result.agree) {
        this.m.hashesAgree = false;
        throw new ReplicasDisagree(`replicas disagree after step ${step}: ranks ${result.outliers.join(', ')} differ from rank 0`);
      }
      this.m.hashesAgree = this.m.hashesAgree ?? true;
    };
    if (options.alongsideNextStep) this.hashExchange.start(exchange);
    else await exchange();
  }

  /**
   * Waits for the hash exchange left on the wire by the last step, if any. A tab lost during it is
   * forgiven in an elastic room: the ring re-forms and checks its replicas again.
   */
  private settleHashExchange(): Promise<void> {
    return this.hashExchange.settle((error) => {
      const lost = transportCause(error);
      return this.room?.elastic != null && lost !== null && !lost.refusedData;
    });
  }

  // --- events and metrics ---------------------------------------------------------------------------

  private publishMemory(): void {
    const backend = this.requireBackend();
    this.env.bus.publish({ type: 'memory', rank: this.rank, bytes: backend.memory() as Record<MemoryKind, number> });
  }

  private setState(state: RunState, error?: string): void {
    this.state = state;
    this.env.bus.publish({ type: 'state', state, ...(error ? { error } : {}) });
  }

  private fail(error: unknown): void {
    if (this.state === 'error') return;
    this.error = error instanceof Error ? error.message : String(error);
    this.log('error', this.error);
    this.setState('error', this.error);
    for (const wake of this.resumeWaiters.splice(0)) wake();
  }

  private log(level: 'info' | 'warn' | 'error', message: string): void {
    this.env.bus.publish({ type: 'log', level, message, t: performance.now() });
  }

  private requireRun(): Run<Mlp> | Run<Gpt> {
    if (!this.run) throw new Error('the run has not been built yet');
    return this.run;
  }

  private requireBackend(): Backend {
    if (!this.backend) throw new Error('no backend yet');
    return this.backend;
  }

  /** The room this session trains in, once joined (the classroom reuses its mesh). */
  joinedRoom(): JoinedRoom | null {
    return this.room;
  }

  get backendInfo(): BackendInfo | null {
    return this.backend?.info ?? null;
  }
}

/** The transport failure behind an error, if any (collectives wrap it as their `cause`). */
function transportCause(error: unknown): TransportError | null {
  for (let e: unknown = error, depth = 0; e instanceof Error && depth < 8; e = e.cause, depth++) {
    if (e instanceof TransportError) return e;
  }
  return null;
}

/** Why this run cannot re-form its ring around a lost or new tab, or null when it can. */
function notElasticBecause(config: LabConfig): string | null {
  if (config.mode === 'ps' && config.staleness > 0) return 'the asynchronous parameter server (staleness > 0) lets replicas differ between steps and is not elastic';
  return null;
}

/** The MLP's input and output widths follow the data set (XOR and circles have 2 classes, spirals 3). */
function fitToData(recipe: ClassifierRecipe, data: ClassificationData): ClassifierRecipe {
  const sizes = [...recipe.model.sizes];
  sizes[0] = data.train.features;
  sizes[sizes.length - 1] = data.train.numClasses;
  return { ...recipe, model: { ...recipe.model, sizes } };
}
