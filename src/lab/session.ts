// Over 400 lines because the run loop keeps the state it owns (rank, world, run, step) and its re-forms together; each part it calls is its own module.
// One tab's training session: the run loop. It prepares the run (backend, data, room, starting state),
// then repeats, in order, until the last step: re-form the ring if the room changed (elastic/), train
// one step through the strategy (a value: parallel-types.ts Strategy, built by build-run.ts), check
// that replicas agree (replica-check.ts), back up state that lives on some tabs only
// (elastic/state-backups.ts), serve checkpoints and autosave (checkpoint-keeper.ts), evaluate and
// sample. Everything is published on the event bus; the UI and `window.lab` only read it.
import { viewOf, type Backend, type BackendInfo, type MemoryKind } from '../engine/backend';
import { bigramNll, fitBigram } from '../data/bigram';
import { textWindowCount } from '../data/batch';
import { paramsHash } from '../model/layout';
import type { Gpt } from '../model/gpt';
import type { Mlp } from '../model/mlp';
import type { Strategy } from '../parallel/parallel-types';
import { notElasticBecause, statePlacementOf } from '../parallel/strategy';
import { zeroPartition } from '../parallel/zero/zero-hooks';
import { sendMemberFrames, type MemberFuzzResult } from '../peer/hostile-frames';
import { attachPresence, type PresenceBoard, type PresenceCard } from '../peer/presence';
import type { Mesh } from '../peer/mesh';
import { linkShapeOf } from '../peer/link-shaper';
import type { EventBus } from '../shared/events';
import { loadCheckpoint, mapTextToVocab, restoreCheckpoint, type CheckpointPart } from '../train/checkpoint';
import type { ByteSink } from '../train/checkpoint-parts';
import type { CharLmRecipe, Recipe } from '../train/defaults';
import type { Run } from '../train/recipes';
import type { LabMetrics, LabStatus } from './api';
import { openRunBackend } from './backend-choice';
import { buildRun } from './build-run';
import { CheckpointKeeper, type StagedCheckpoint } from './checkpoint-keeper';
import { defaultCheckpointStore, type CheckpointStore } from './checkpoint-store';
import type { LabConfig } from './config';
import { loadDataset, type LoadedData } from './datasets';
import type { Formation } from './elastic/elastic-room';
import { reformableFailure } from './elastic/failures';
import { StateBackups } from './elastic/state-backups';
import { exchangeState } from './elastic/state-transfer';
import { checkBudgetAfterFirstStep, checkBudgetBeforeTraining, wholeVectorFits } from './memory-budget';
import { ReplicasDisagree } from './overlapped-exchange';
import { recipeFor } from './recipe';
import { ReplicaCheck, SHARES_CHECK_LAG, type ParkedCheck } from './replica-check';
import { handOverState, ParkedTabs, parkedBackupEvery, takeOverState } from './parked-tabs';
import { joinRoom, roomWaitNote, type JoinedRoom } from './room';
import { RunMetrics, type LogEntry } from './run-metrics';
import { traceMark } from '../shared/step-trace';
import { RunLifecycle } from './run-state';
import { carryRunState, takeRunState } from './switch-state';
import { describeSettings, StrategySwitcher, type SwitchRecord } from './strategy-switch';

export type { StagedCheckpoint } from './checkpoint-keeper';

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

/** Re-forms that fail one after another (each lost another tab) before the run gives up. */
const MAX_FAILED_REFORMS = 20;

/** The run's state, pause gate, failure and log come from RunLifecycle (run-state.ts), shared by both run loops. */
export class LabSession extends RunLifecycle {
  private rank = 0;
  private world = 1;
  private step = 0;
  private steps = 0;
  private stepsPerEpoch = 0;
  private backend: Backend | null = null;
  /** Who this tab is, told to the room's other tabs (name, backend, step, step time). */
  private presence: PresenceBoard | null = null;
  private data: LoadedData | null = null;
  private loadedVocab: string[] | null = null;
  /** The run's recipe, resolved once per ring (a re-form changes the world size). */
  private recipe: Recipe | null = null;
  private run: Run<Mlp> | Run<Gpt> | null = null;
  private strategy: Strategy | null = null;
  /** shares=auto: which tabs sit a step out and when they are brought back (parked-tabs.ts); null: none ever. */
  private parking: ParkedTabs | null = null;
  private room: JoinedRoom | null = null;
  private mesh: Mesh | null = null;
  private steadyMemoryPublished = false;
  /** ZeRO-3: the whole parameter vector, gathered once when the run has ended (never during training). */
  private finalParams: Float32Array | null = null;
  private readonly recorder = new RunMetrics(() => this.rank);
  private readonly m: LabMetrics = this.recorder.values;

  // The loop's parts, each with one job.
  private readonly replicas: ReplicaCheck;
  private readonly backups: StateBackups;
  private readonly checkpoints: CheckpointKeeper;
  /** Mid-run strategy switches: agreed with the room, taken at a step boundary (strategy-switch.ts). */
  private readonly switcher: StrategySwitcher;

  constructor(
    readonly config: LabConfig,
    private readonly env: SessionEnv,
    /** Start from this file instead of the seeded initialisation (every tab of a room loads the same). */
    staged?: StagedCheckpoint,
  ) {
    super(env.bus);
    env.bus.subscribe((event) => this.recorder.record(event));
    this.replicas = new ReplicaCheck({
      bus: env.bus,
      metrics: this.m,
      room: () => this.room,
      rank: () => this.rank,
      strategy: () => this.requireStrategy(),
      params: () => this.params(),
      // Shares by speed: the tabs with samples may run a few steps ahead of those with none.
      lag: () => (this.strategy?.hooks.batchShares ? SHARES_CHECK_LAG : 1),
    });
    this.backups = new StateBackups({
      metrics: this.m,
      room: () => this.room,
      placement: () => statePlacementOf(config),
      run: () => this.requireRun(),
      backend: () => this.requireBackend(),
      every: () => config.backupevery,
    });
    this.checkpoints = new CheckpointKeeper({
      config,
      store: env.checkpoints === undefined ? defaultCheckpointStore() : env.checkpoints,
      staged,
      run: () => this.requireRun(),
      backend: () => this.requireBackend(),
      recipe: () => this.requireRecipe().recipe,
      position: () => ({ world: this.world, rank: this.rank, step: this.step, steps: this.steps, stepsPerEpoch: this.stepsPerEpoch }),
      vocab: () => this.loadedVocab,
      fullParams: () => this.finalParams ?? undefined,
      part: () => this.heldPart(),
      gatherInPieces: () => this.strategy?.gatherInPieces ?? null,
      training: () => this.state === 'training',
      settleReplicaCheck: () => this.replicas.settle(),
      warn: (message) => this.log('warn', message),
    });
    this.switcher = new StrategySwitcher({ config, step: () => this.step, steps: () => this.steps, log: (level, message) => this.log(level, message) });
  }

  status(): LabStatus {
    return this.statusAt({ rank: this.rank, world: this.world, step: this.step, steps: this.steps, room: this.config.room, backend: this.backend?.info ?? null, epoch: this.room?.elastic?.epoch ?? 0 });
  }

  metrics(): LabMetrics {
    return { ...structuredClone(this.m), strategy: { now: describeSettings(this.config), switches: [...this.switcher.history] }, gpuBuffers: this.backend?.bufferCount() ?? 0, hostMemory: this.hostMemory(), wire: this.room ? { ...this.room.wire } : null };
  }

  /** Host memory this rank holds for the run, by kind (LabMetrics.hostMemory). */
  private hostMemory(): NonNullable<LabMetrics['hostMemory']> {
    const strategy = this.strategy?.hostBytes?.() ?? {};
    return {
      backups: 4 * this.backups.backups.floats(),
      staging: strategy.staging ?? 0,
      offload: strategy.offload ?? 0,
      wholeModel: this.finalParams?.byteLength ?? 0,
    };
  }

  logLines(): LogEntry[] {
    return this.recorder.logLines();
  }

  async params(): Promise<Float32Array> {
    const run = this.requireRun();
    // ZeRO-3: no rank holds the full vector while training; it is gathered (every rank at once) when the run ends.
    if (this.strategy?.gatherParams) {
      if (!this.finalParams) throw new Error('ZeRO-3: no tab holds the whole parameter vector while training; it is gathered when the run ends if the memory budget allows (else export it: lab.exportModel)');
      return this.finalParams.slice();
    }
    return this.requireBackend().read(viewOf(run.model.params));
  }

  async paramsHash(): Promise<string> {
    return paramsHash(await this.params());
  }

  /** This tab's checkpoint; during training it is taken between two steps (checkpoint-keeper.ts). */
  checkpoint(): Promise<Uint8Array> {
    return this.checkpoints.checkpoint();
  }

  /**
   * The whole model in the one-tab checkpoint format, streamed to `sink` a piece at a time, once the run
   * has ended (ZeRO-3: every tab of the room exports, each gathering layer by layer; none holds it all).
   */
  async exportModel(sink: ByteSink): Promise<void> {
    if (this.state !== 'done') throw new Error(`the model is exported once the run is done (state ${this.state})`);
    await this.checkpoints.exportModel(sink);
  }

  /** The key this run autosaves under and resumes from (see checkpoint-store.ts). */
  checkpointKey(): string {
    return this.checkpoints.key();
  }

  /** Frames and signals this tab's mesh refused (0 without a room). */
  refusalStats(): { count: number; reasons: Record<string, number> } {
    return this.mesh?.refusalStats() ?? { count: 0, reasons: {} };
  }

  /** Runs the whole session; never throws: a failure ends in state 'error' with its message. */
  start(): Promise<void> {
    return this.runOnce(async () => {
      await this.prepare();
      await this.train();
    });
  }

  dispose(): void {
    this.presence?.close();
    this.room?.leave();
    this.run?.dispose();
  }

  private presenceCard(): PresenceCard {
    const info = this.backend?.info;
    return { name: this.config.name, backend: info?.kind ?? '', adapter: (info?.adapter ?? '').slice(0, 120), step: this.step, msPerStep: this.m.wallMsPerStep ?? 0 };
  }

  // --- the run loop ---------------------------------------------------------------------------------

  private async prepare(): Promise<void> {
    this.setState('loading');
    const backend = (this.backend = await openRunBackend(this.config.backend, this.env.gpu, (error) => this.fail(error), (message) => this.log('warn', message)));
    let data = await loadDataset(this.config, this.env.dataBase ?? '/data/', this.env.userText);
    if (this.config.room) {
      this.setState('connecting');
      const waitNote = roomWaitNote(this.config);
      if (waitNote) this.log('info', waitNote);
      this.room = await joinRoom(this.config, this.env.bus, {
        onMesh: (mesh) => {
          this.mesh = mesh;
          // Link shaping for teaching: this tab's frames leave late and slow (peer/link-shaper.ts).
          mesh.shapeLinks(linkShapeOf(this.config.latency, this.config.bandwidth));
        },
        // Gradients and parameters with NaN/Infinity are refused on arrival, before any sum takes them in.
        // ...in the codec of the strategy that sent them (it may switch mid-run).
        messageCheck: this.switcher.payloadCheck(),
        admits: () => notElasticBecause(this.config) ?? (this.state === 'done' || this.state === 'error' ? `this run is ${this.state}` : true),
      });
      this.rank = this.room.transport.rank;
      this.world = this.room.transport.world;
      this.log('info', `ring epoch ${this.room.elastic?.epoch ?? 1} formed: rank ${this.rank} of ${this.world}`);
      const room = this.room;
      this.switcher.listen(room.mesh, () => room.members);
      this.presence = attachPresence(this.room.mesh, () => this.presenceCard(), (level, message) => this.log(level, message));
    }
    this.data = data;
    // A tab that joins a running room starts from the room's state, not from its own file or seed.
    const joining = this.room?.formation && this.room.formation.source >= 0 ? this.room.formation : null;
    if (joining && (this.checkpoints.hasStaged() || this.config.resume)) this.log('warn', 'this room is already training: its state replaces the checkpoint this tab was given');
    const start = joining ? null : await this.checkpoints.starting();
    this.backups.seededStart = !joining && !start;
    // A text model continues on new text only in its own vocabulary: re-encode (or refuse) first.
    if (start?.ckpt.header.vocab && data.kind === 'text') data = { kind: 'text', data: mapTextToVocab(data.data, start.ckpt.header.vocab) };
    if (data.kind === 'text') this.loadedVocab = data.data.vocab;
    const recipe = (this.recipe = recipeFor(this.config, this.world));
    this.steps = recipe.recipe.steps;
    this.rebuildRun(backend, data, recipe);
    const run = this.requireRun();
    const samples = data.kind === 'text' ? textWindowCount(data.data.train.length, (recipe.recipe as CharLmRecipe).model.blockSize) : data.data.train.count;
    this.stepsPerEpoch = Math.floor(samples / recipe.recipe.globalBatch);
    if (joining) {
      await this.adoptRoomState(joining, null, 'joined a running room');
    } else if (start) {
      const warnings = restoreCheckpoint(backend, run, this.checkpoints.fitted(start), start.mode, { recipe: recipe.recipe, world: this.world });
      for (const warning of warnings) this.log('warn', `checkpoint: ${warning}`);
      this.step = run.trainer.step;
      this.log('info', `${start.mode === 'resume' ? 'resumed' : 'fine-tuning'} from a checkpoint of step ${start.ckpt.header.step} (${start.source})`);
    }
    if (data.kind === 'text') this.m.bigramValLoss = bigramNll(fitBigram(data.data.train, data.data.vocab.length), data.data.val);
    this.publishMemory();
    checkBudgetBeforeTraining(this.config, this.requireRun(), backend, this.world, !!this.room?.elastic);
    // In an elastic room the first check is train()'s first iteration, where a tab lost during it re-forms the ring.
    if (!this.room?.elastic) await this.replicas.check(this.step);
  }

  private rebuildRun(backend: Backend, data: LoadedData, recipe: Recipe): void {
    const { run, strategy } = buildRun({
      config: this.config,
      recipe,
      backend,
      data,
      transport: this.room?.transport,
      shard: { world: this.world, rank: this.rank },
      publish: (event) => this.env.bus.publish(event),
      alongsideComm: (from, to) => this.replicas.busyWithin(from, to),
    });
    this.run = run;
    this.strategy = strategy;
    const shares = strategy.hooks.batchShares;
    this.parking =
      strategy.skipParkedStep && shares
        ? new ParkedTabs({
            countsAt: (step) => shares.countsAt(step),
            backupEvery: parkedBackupEvery(this.config.rebalance, !!this.room?.elastic),
            steps: this.steps,
            wholeRoomAt: (t) => this.wholeRoomAt(t),
          })
        : null;
  }

  /** Whether every tab must hold the room's state after t completed steps: evaluation, autosave, a strategy switch. */
  private wholeRoomAt(t: number): boolean {
    const { autosave } = this.config;
    return t % this.requireRecipe().recipe.evalEvery === 0 || (autosave > 0 && t % autosave === 0) || this.switcher.pending()?.step === t;
  }

  private async train(): Promise<void> {
    this.setState('training');
    let pending: string | null = null;
    let failedReforms = 0;
    let startChecked = !this.room?.elastic;
    while (this.step < this.steps) {
      if (this.paused) {
        // A pause may be long: what the last step's hash exchange found is not held back until it ends.
        await this.replicas.settle();
        await this.untilResumed();
      }
      if (this.state === 'error') return;
      const reform = pending ?? this.room?.elastic?.reformWanted() ?? null;
      pending = null;
      try {
        if (reform) {
          await this.replicas.settle();
          await this.reform(reform);
          failedReforms = 0;
          startChecked = true;
        } else if (!startChecked) {
          // The same check the others run at the end of the re-form this tab joined through (if any).
          await this.replicas.check(this.step);
          // A room's starting state is backed up like a step's; a tab that joined holds the full state.
          if (!this.room?.formation || this.room.formation.source < 0) await this.backups.backUp();
          startChecked = true;
        } else if (this.switcher.dueAt(this.step)) {
          await this.switchStrategyNow();
        } else if (this.parking?.parkedAt(this.step, this.rank)) {
          await this.parkedStep(this.parking);
        } else {
          await this.trainOneStep();
        }
      } catch (error) {
        // Replicas that differ end the run, whatever else failed (a disagreement found by the last
        // step's hash exchange, still on the wire when this failure came, included).
        if (error instanceof ReplicasDisagree) throw error;
        await this.replicas.settle();
        // A tab lost during a step, or during a re-form itself: re-form (again) with whoever is left.
        const why = reformableFailure(error, this.room?.elastic ?? null, notElasticBecause(this.config));
        if (why === null) throw error;
        if (reform && ++failedReforms > MAX_FAILED_REFORMS) throw new Error(`the ring failed to re-form ${MAX_FAILED_REFORMS} times in a row; last: ${why}`);
        pending = why;
      }
    }
    this.publishMemory();
    // ZeRO-3: the finished run's whole vector, gathered once by every rank, for params() and checkpoints.
    const gather = this.requireStrategy().gatherParams;
    if (gather && wholeVectorFits(this.config, this.requireRun(), this.world, !!this.room?.elastic)) this.finalParams = await gather(this.step);
    else if (gather) this.log('info', 'the whole parameter vector is not gathered: it would take this tab past its memory budget (export the model, streamed: lab.exportModel)');
    await this.checkpoints.afterRun();
  }

  /** ZeRO-3: the shard of the parameters this rank holds, as a checkpoint part (null: it holds them all). */
  private heldPart(): CheckpointPart | null {
    const run = this.requireRun();
    if (run.model.params.length === run.model.layout.totalLength) return null;
    return { kind: 'zero-3 shard', ranges: zeroPartition(run.model.layout, this.world).shards.map((s) => ({ ...s })), index: this.rank };
  }

  /** One step and what follows it (afterStep). */
  private async trainOneStep(): Promise<void> {
    const run = this.requireRun();
    traceMark('step-start', this.step);
    await this.straggle();
    await run.trainer.trainStep();
    // The last steps' hash exchanges ran alongside this step (all but the newest lag - 1 are settled).
    await this.replicas.settleBehind();
    this.step = run.trainer.step;
    // ZeRO lends its layer slots during the first step: memory after it is the steady state.
    if (!this.steadyMemoryPublished) this.publishSteadyMemory();
    // The tabs that sat this step out and are brought back now get this tab's state (parked-tabs.ts).
    if (this.parking && this.room) {
      const handed = await handOverState(this.parking, this.room.transport, this.step, () => this.checkpoints.capture());
      if (handed.receivers > 0) this.env.bus.publish({ type: 'parking', kind: 'handed-over', rank: this.rank, step: this.step, bytes: handed.bytes, receivers: handed.receivers, t: performance.now() });
    }
    await this.afterStep(() => run.trainer.lastLoss());
  }

  /**
   * A step this tab has no share of (parked-tabs.ts): it trains nothing and reads nothing back; it takes
   * part in the room's share agreement and sends the hash of the state it holds. When it must hold the
   * room's state again it is brought back (a contributor's checkpoint bytes) and runs what follows a step.
   */
  private async parkedStep(parking: ParkedTabs): Promise<void> {
    traceMark('step-start', this.step);
    await this.requireStrategy().skipParkedStep!(this.step);
    await this.replicas.settleBehind();
    const t = this.step + 1;
    if (parking.backupOnlyAt(t, this.rank)) {
      await this.parkedBackup(parking, t);
      return;
    }
    if (parking.bringBackAt(t, this.rank)) {
      // The step counts as done only once its state is here: a contributor lost before sending it (the
      // last step's bring-back included) leaves this tab short of it, so the run loop re-forms.
      await this.takeParkedState(parking, t, 'brought back');
      this.step = t;
      await this.afterStep(() => Promise.resolve(Number.NaN));
      return;
    }
    this.step = t;
    this.env.bus.publish({ type: 'parking', kind: 'sat-out', rank: this.rank, step: this.step, bytes: 0, receivers: 0, t: performance.now() });
    await this.parkedCheck(t);
  }

  /**
   * A backup (parked-tabs.ts backupOnlyAt): this tab takes part in step t's check as a parked tab (its
   * last checked hash, not compared), so the room does not wait for what follows; then it takes the
   * contributor's state and restores it, so that a re-form finds the newer state here.
   */
  private async parkedBackup(parking: ParkedTabs, t: number): Promise<void> {
    this.step = t;
    await this.parkedCheck(t);
    await this.takeParkedState(parking, t, 'backed up');
  }

  /** A parked tab's part in step t's replica check: the hash of the state it holds, not compared. */
  private parkedCheck(t: number): Promise<void> {
    return this.replicas.check(t, { alongsideNextStep: !this.paused, loss: this.loggedAt(t) ? Number.NaN : undefined, parked: this.parkedCheckAt(t) });
  }

  /** Takes a contributor's state of t completed steps (parked-tabs.ts takeOverState) and restores it. */
  private async takeParkedState(parking: ParkedTabs, t: number, what: 'brought back' | 'backed up'): Promise<void> {
    const run = this.requireRun();
    const bytes = await takeOverState(parking, this.room!.transport, t);
    restoreCheckpoint(this.requireBackend(), run, loadCheckpoint(bytes), 'resume', { recipe: this.requireRecipe().recipe, world: this.world });
    if (run.trainer.step !== t) throw new Error(`a parked tab was ${what} to step ${run.trainer.step}, but the room is at step ${t}`);
    this.env.bus.publish({ type: 'parking', kind: 'brought-back', rank: this.rank, step: t, bytes: bytes.byteLength, receivers: 1, t: performance.now() });
  }

  /** Whether the step's loss is logged (read back, and sent with the hashes for the room's mean). */
  private loggedAt(step: number): boolean {
    return !!this.room && (step === this.steps || step % this.requireRecipe().recipe.logEvery === 0 || step === 1);
  }

  /** The replica check after t completed steps when some tabs sat step t - 1 out and still do (else undefined: all compared). */
  private parkedCheckAt(t: number): ParkedCheck | undefined {
    const compared = this.parking?.holdersAt(t);
    if (!compared || compared.length === this.world) return undefined;
    return { compared, self: !compared.includes(this.rank) };
  }

  /** What follows a step this tab holds the state of, in order: replica check, state backup, checkpoints, evaluation, sample. */
  private async afterStep(lastLoss: () => Promise<number>): Promise<void> {
    const run = this.requireRun();
    const recipe = this.requireRecipe().recipe;
    const last = this.step === this.steps;
    // The last step's check is waited for: a finished run's replicas are known to agree. DiLoCo's
    // replicas differ during inner steps: they are checked after each outer step.
    const strategy = this.requireStrategy();
    if (strategy.replicasEqualEveryStep || strategy.replicasEqualAfter?.(this.step) || last) {
      // On logged steps the loss is read back anyway (the step event): it rides with the hashes.
      const loss = this.loggedAt(this.step) ? await lastLoss() : undefined;
      await this.replicas.check(this.step, { alongsideNextStep: !last && !this.paused, afterStep: !last, loss, parked: this.parkedCheckAt(this.step) });
    }
    await this.backups.afterStep(this.step);
    // Checkpoints are taken of a step the replica check has passed (ZeRO-3: each rank its own part).
    await this.checkpoints.betweenSteps();
    if (last || this.step % recipe.evalEvery === 0) await run.trainer.evaluate(run.evalBatches);
    // The run's own sampler (train/recipes.ts charLmRun): one way to sample, the one its tests check.
    // Rank 0 samples; under ZeRO-3 every rank does, each forward gathering the layers as in training.
    const everyRankSamples = !!this.requireStrategy().gatherParams;
    if ('sampleEvery' in recipe && (last || this.step % recipe.sampleEvery === 0) && (this.rank === 0 || everyRankSamples)) await run.trainer.sample();
  }

  /**
   * Asks the room to switch strategy at a step boundary (strategy-switch.ts); resolves with the step at
   * which every tab switches.
   */
  switchStrategy(choice: unknown): Promise<SwitchRecord> {
    if (this.state !== 'training' && this.state !== 'paused') return Promise.reject(new Error(`the strategy is switched while training (state ${this.state})`));
    return this.switcher.request(choice);
  }

  /** The switch due now: the run rebuilt for the new strategy, its state carried over (switch-state.ts). */
  private async switchStrategyNow(): Promise<void> {
    await this.replicas.settle();
    const backend = this.requireBackend();
    const old = this.requireRun();
    const held = await takeRunState(backend, old);
    const { before, after } = this.switcher.take(this.step);
    old.dispose();
    backend.trimCaches();
    this.rebuildRun(backend, this.data!, (this.recipe = recipeFor(this.config, this.world)));
    const zeroed = await carryRunState(backend, this.requireRun(), held, { before, after, transport: this.room?.transport, round: this.step });
    if (zeroed.length > 0) this.log('info', `the new optimizer starts ${zeroed.join(', ')} at zero`);
    this.log('info', `strategy switched at step ${this.step}: ${describeSettings(before)} -> ${describeSettings(after)}`);
    // A strategy that keeps state on some tabs only (the server) is backed up from its first step.
    if (this.room?.elastic && statePlacementOf(this.config) !== 'replicated') await this.backups.backUp();
    // The step's own check ran on this ring before the switch: this one is told apart from it.
    await this.replicas.check(this.step, { again: true });
  }

  /** `slow=ms` (on rank `slowrank`, or on this tab): extra compute time before the step, a straggler for teaching. */
  private async straggle(): Promise<void> {
    const { slow, slowrank } = this.config;
    if (slow > 0 && (slowrank < 0 || slowrank === this.rank)) await new Promise((resolve) => setTimeout(resolve, slow));
  }

  // --- elastic membership ---------------------------------------------------------------------------

  /**
   * Leaves the current ring and joins the next: every tab offers the state it holds (its completed
   * steps and parameter hash), the most advanced one is sent to whoever lacks it, and each tab rebuilds
   * its run for its new rank and world size. A step that did not complete anywhere is redone from its
   * start; one that completed somewhere is kept (see elastic/roster.ts).
   */
  private async reform(reason: string): Promise<void> {
    const elastic = this.room!.elastic!;
    elastic.abort(reason);
    this.setState('reforming');
    this.log('warn', `re-forming the ring at step ${this.step}: ${reason}`);
    // ZeRO or the parameter server: not every tab holds the whole state; the ring rebuilds it from the backups.
    const rebuilt = this.backups.active();
    const mine = rebuilt ? null : await this.checkpoints.capture();
    const card = { step: this.requireRun().trainer.step, hash: rebuilt ? (this.m.lastHash ?? '') : await this.paramsHash() };
    const formation = await elastic.form(card);
    const reached = this.step;
    const wasParking = this.parking !== null;
    await this.adoptRoomState(formation, mine, reason);
    // A parked tab (parked-tabs.ts) counts steps it sat out; when every tab that trained them left, the
    // new ring starts from the last state a parked tab was brought back to, and trains them again.
    if (wasParking && this.step < reached) {
      const lost = reached === this.step + 1 ? `step ${reached} is` : `steps ${this.step + 1}-${reached} are`;
      this.log('warn', `the ring starts again from step ${this.step}, behind this tab's step ${reached}: ${lost} trained (again) by the new ring`);
    }
    await this.replicas.check(this.step);
    const counts = (this.m.elastic ??= { reforms: 0, joins: 0, departures: 0 });
    counts.reforms++;
    counts.joins += formation.joined.length;
    counts.departures += formation.left.length;
    if (this.state === 'reforming') this.setState(this.paused ? 'paused' : 'training');
  }

  /** Takes the formation's state (sent by its source, or this tab's own) into a run built for its rank and world. */
  private async adoptRoomState(formation: Formation, mine: Uint8Array | null, reason: string): Promise<void> {
    const backend = this.requireBackend();
    // A tab that joins learns the room's current strategy (and a switch still to come) before anything else.
    await this.switcher.agree(formation.transport, formation.epoch);
    const rebuilt = this.backups.active();
    const { state, received: sent } = rebuilt ? { state: null, received: false } : await exchangeState(formation, mine);
    let received = sent;
    this.rank = formation.rank;
    this.world = formation.world;
    const recipe = (this.recipe = recipeFor(this.config, this.world));
    this.run?.dispose();
    backend.trimCaches();
    this.rebuildRun(backend, this.data!, recipe);
    const run = this.requireRun();
    if (state) {
      restoreCheckpoint(backend, run, loadCheckpoint(state), 'resume', { recipe: recipe.recipe, world: this.world });
    }
    if (rebuilt && formation.source >= 0) {
      // Each rank fetches the ranges of its new shard from whoever holds them; nobody gathers the whole state.
      const adopted = await this.backups.adoptNewPartition();
      received = adopted.received;
      if (adopted.step === null) this.log('warn', 'the starting state was not backed up yet: the ring starts again from the seeded initialisation');
    }
    this.step = run.trainer.step;
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
    const from = rebuilt ? 'its ranges of the new partition fetched from the backed-up slices' : `state received from rank ${formation.source}`;
    this.log('info', `ring epoch ${formation.epoch}: rank ${this.rank} of ${this.world} from step ${this.step}` + (received ? ` (${from})` : ''));
    this.publishMemory();
  }

  /** TEST SUPPORT (e2e/hostile.spec.ts): this ring member sends rule-breaking frames (peer/hostile-frames.ts). */
  fuzzAsMember(opts: { count: number; seed?: number }): Promise<MemberFuzzResult> {
    const room = this.room;
    if (!room) return Promise.reject(new Error('fuzzAsMember needs a room'));
    const { rank, world, epoch } = room.transport;
    return sendMemberFrames(room.mesh, { rank, world, epoch, members: room.members }, this.config.compression, opts);
  }

  // --- events and metrics ---------------------------------------------------------------------------

  /** Publishes memory after the first step and enforces the memory budget on real allocations. */
  private publishSteadyMemory(): void {
    this.steadyMemoryPublished = true;
    this.publishMemory();
    checkBudgetAfterFirstStep(this.config, this.requireBackend(), Object.values(this.hostMemory()).reduce((a, b) => a + b, 0));
  }

  private publishMemory(): void {
    const backend = this.requireBackend();
    this.env.bus.publish({ type: 'memory', rank: this.rank, bytes: backend.memory() as Record<MemoryKind, number> });
  }

  private requireRun(): Run<Mlp> | Run<Gpt> {
    if (!this.run) throw new Error('the run has not been built yet');
    return this.run;
  }

  private requireStrategy(): Strategy {
    if (!this.strategy) throw new Error('the run has not been built yet');
    return this.strategy;
  }

  private requireRecipe(): Recipe {
    if (!this.recipe) throw new Error('the run has not been built yet');
    return this.recipe;
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
