// Switching a room's strategy mid-run (`lab.switchStrategy`, the dashboard's strategy control): which
// strategies can take over, at which step, and how every tab of the room comes to switch at that same
// step. What happens to the run's state at the switch is switch-state.ts's job.
//
// The protocol: a tab that wants a switch sends a request (a JSON control frame) to the ring's rank 0,
// the room's coordinator; rank 0 alone decides, so two requests at once cannot disagree: it checks the
// new strategy against the run's config, picks the switch step s (SWITCH_MARGIN steps ahead of its own
// step, and under DiLoCo the first outer step from there, where replicas are equal again) and
// announces "switch at s" to every member. Each tab switches when it has completed s steps. In a
// synchronous room no tab gets more than one step ahead of rank 0, and under DiLoCo none passes the
// next outer step without it, so the announcement is early for everyone; a tab that got it too late
// stops with an error rather than train with a different strategy from its peers.
//
// After every re-form (a tab joined or left), the ring's members all-gather the strategy they train
// with and the switch they expect, and all take rank 0's: a late joiner, started from its own URL,
// learns the room's current strategy before it builds its run.
//
// The strategy is named in full by a StrategyChoice: the keys it leaves out take their defaults
// (`{ compression: 'fp16' }` is the ring with fp16 on the wire, whatever ran before). The collective
// algorithm, the staleness and ZeRO are not switched: the asynchronous parameter server and ZeRO keep
// state that is not a replica's and stay as started.
import { runFixedAllGather } from '../collective/collectives';
import { COLLECTIVE_IDS, FIRST_FLOAT_ID } from '../collective/collective-ids';
import type { MessageTag, Transport } from '../collective/types';
import type { MessageCheck } from '../peer/datachannel-transport';
import { encodeFrame, NO_RANK, type Frame } from '../peer/frame';
import { decodeJsonMessage, encodeJsonMessage, isDecodeError, isInt, isObject } from '../peer/json-message';
import type { MeshListener } from '../peer/mesh';
import { finiteModelDataCheck } from '../peer/payload-checks';
import { ConfigError, DEFAULT_CONFIG, parseConfig, type Compression, type LabConfig } from './config';

/** The settings a switch changes; everything else of the config stays as the run started. */
export const SWITCH_KEYS = ['mode', 'compression', 'ratio', 'rank', 'minrate', 'inner', 'outerlr', 'outermomentum'] as const;
export type SwitchKey = (typeof SWITCH_KEYS)[number];
export type StrategyChoice = Partial<Pick<LabConfig, SwitchKey>>;
export type StrategySettings = Pick<LabConfig, SwitchKey>;

/** Steps between rank 0's step when it decides and the switch: room for the announcement to arrive. */
export const SWITCH_MARGIN = 4;
/** How long a tab waits for rank 0's answer to its request. */
const ANSWER_TIMEOUT_MS = 30_000;
/** The strategy all-gather after a re-form: fixed-size JSON payloads (runFixedAllGather). */
const AGREEMENT_BYTES = 512;

export const SWITCH_CONTROL = COLLECTIVE_IDS.strategySwitch.first;

export function settingsOf(config: LabConfig): StrategySettings {
  return Object.fromEntries(SWITCH_KEYS.map((key) => [key, config[key]])) as StrategySettings;
}

/** A short name for the settings, as logs and the dashboard show it. */
export function describeSettings(s: StrategySettings): string {
  if (s.mode === 'ps') return 'ps';
  const codec = s.compression === 'none' ? '' : s.compression === 'powersgd' ? ` powersgd r=${s.rank}` : s.compression === 'topk' || s.compression === 'randk' ? ` ${s.compression} ${s.ratio}` : ` ${s.compression}`;
  if (s.mode === 'diloco') return `diloco H=${s.inner}${codec}`;
  return `ring${codec}`;
}

/**
 * The config after switching `current` to `choice`, validated like a URL (parseConfig): unknown keys,
 * bad values and strategies that cannot take over a running room throw ConfigError.
 */
export function switchedConfig(current: LabConfig, choice: unknown): LabConfig {
  if (!isObject(choice)) throw new ConfigError('a strategy is an object such as { compression: "fp16" } or { mode: "diloco", inner: 10 }');
  const entries: [string, string][] = [];
  for (const [key, value] of Object.entries(choice)) {
    if (!(SWITCH_KEYS as readonly string[]).includes(key)) throw new ConfigError(`"${key}" cannot be switched mid-run (switchable: ${SWITCH_KEYS.join(', ')})`);
    if (typeof value !== 'string' && !(typeof value === 'number' && Number.isFinite(value))) throw new ConfigError(`${key} must be a string or a finite number`);
    entries.push([key, String(value)]);
  }
  if (current.zero !== 0) throw new ConfigError('a ZeRO run keeps sharded state: its strategy is not switched mid-run');
  if (current.staleness !== 0) throw new ConfigError('the asynchronous parameter server (staleness > 0) lets replicas differ: its strategy is not switched mid-run');
  if (current.pipeline > 1 || current.tensor > 1) throw new ConfigError('a partitioned run (pipeline, tensor) does not switch strategy');
  const base: LabConfig = { ...current, ...settingsOf(DEFAULT_CONFIG) };
  const next = parseConfig(entries, base);
  // The parameter server's own rule (parallel/strategy.ts), checked here so a switch is refused before it is announced.
  if (next.mode === 'ps' && next.compression !== 'none') throw new ConfigError(`mode=ps sends whole vectors: compression=${next.compression} works with mode=ring only`);
  return next;
}

/**
 * The step at which a switch decided at `step` (completed steps, on rank 0) takes effect, or null when
 * the run ends first. Under DiLoCo replicas are equal only after an outer step: the switch waits for one.
 */
export function switchStepFor(current: Pick<LabConfig, 'mode' | 'inner'>, step: number, steps: number): number | null {
  let at = step + SWITCH_MARGIN;
  if (current.mode === 'diloco') at = Math.ceil(at / current.inner) * current.inner;
  return at < steps ? at : null;
}

/** A switch decided by rank 0: at `step` completed steps, to `settings`. */
export interface DueSwitch {
  id: string;
  step: number;
  settings: StrategySettings;
}

/** A switch the run took: at which step, to what. */
export interface SwitchRecord {
  step: number;
  strategy: string;
}

type SwitchMessage =
  | { kind: 'request'; id: string; choice: StrategyChoice }
  | { kind: 'announce'; id: string; step: number; choice: StrategyChoice }
  | { kind: 'refuse'; id: string; reason: string };

function checkMessage(m: unknown): string | null {
  if (!isObject(m)) return 'not an object';
  if (typeof m.id !== 'string' || m.id.length > 64) return 'bad id';
  if (m.kind === 'request' || m.kind === 'announce') {
    if (!isObject(m.choice)) return 'bad choice';
    if (m.kind === 'announce' && !isInt(m.step, 0, 0xffffffff)) return 'bad step';
    return null;
  }
  if (m.kind === 'refuse') return typeof m.reason === 'string' && m.reason.length <= 500 ? null : 'bad reason';
  return 'unknown kind';
}

/** The mesh as the switch protocol uses it (mesh.ts Mesh; fake-mesh.ts in tests). */
export interface SwitchMesh {
  readonly peerId: string;
  readonly roomHash: number;
  on(listener: MeshListener): () => void;
  sendRaw(peerId: string, bytes: Uint8Array): void | Promise<void>;
  refuse(peerId: string, reason: string): void;
}

export interface StrategySwitcherDeps {
  /** The run's config: a switch changes its strategy settings in place. */
  config: LabConfig;
  /** Completed steps of this tab. */
  step: () => number;
  /** The run's step count. */
  steps: () => number;
  log: (level: 'info' | 'warn', message: string) => void;
}

export class StrategySwitcher {
  private due: DueSwitch | null = null;
  /** An announcement that arrived after this tab had passed its step: the next boundary fails. */
  private missed: string | null = null;
  private readonly waiting = new Map<string, { resolve: (r: SwitchRecord) => void; reject: (e: Error) => void; timer: ReturnType<typeof setTimeout> }>();
  /** The compression the room's float messages use from each round on (oldest first). */
  private compressionFrom: { round: number; compression: Compression }[];
  readonly history: SwitchRecord[] = [];
  private mesh: SwitchMesh | null = null;
  private members: () => string[] = () => [];
  private nextId = 0;

  constructor(private readonly deps: StrategySwitcherDeps) {
    this.compressionFrom = [{ round: 0, compression: deps.config.compression }];
  }

  /** Listens for the room's switch messages; `members` are the ring's members in rank order. */
  listen(mesh: SwitchMesh, members: () => string[]): () => void {
    this.mesh = mesh;
    this.members = members;
    return mesh.on({ frame: (peerId: string, frame: Frame) => this.onFrame(peerId, frame) });
  }

  /**
   * Asks the room to switch to `choice`; resolves with the step at which every tab will switch (and
   * the strategy's name) once rank 0 has announced it, rejects with its reason if it refused.
   */
  request(choice: unknown): Promise<SwitchRecord> {
    if (!this.mesh) return Promise.reject(new Error('switching strategy needs a room: a tab training alone has no strategy to switch'));
    // Checked here too, so that a bad choice is refused at once, before anything is sent.
    try {
      switchedConfig(this.deps.config, choice);
    } catch (error) {
      return Promise.reject(error);
    }
    const id = `${this.mesh.peerId}:${this.nextId++}`;
    const answer = new Promise<SwitchRecord>((resolve, reject) => {
      const timer = setTimeout(() => this.answer(id, new Error('no answer from the room\'s rank 0 to the strategy switch')), ANSWER_TIMEOUT_MS);
      this.waiting.set(id, { resolve, reject, timer });
    });
    const coordinator = this.members()[0];
    if (coordinator === this.mesh.peerId) this.decide(id, choice as StrategyChoice, null);
    else this.send(coordinator, { kind: 'request', id, choice: choice as StrategyChoice });
    return answer;
  }

  /** Whether a switch takes effect now, at `step` completed steps; throws if this tab passed it. */
  dueAt(step: number): boolean {
    if (this.missed) throw new Error(this.missed);
    if (this.due && this.due.step < step) throw new Error(`the strategy switch at step ${this.due.step} was not taken: this tab is at step ${step}`);
    return this.due?.step === step;
  }

  /** The due switch, taken: the config's strategy settings change in place. Returns the settings before it. */
  take(step: number): { before: StrategySettings; after: StrategySettings } {
    const due = this.due;
    if (!due || due.step !== step) throw new Error(`no strategy switch is due at step ${step}`);
    this.due = null;
    const before = settingsOf(this.deps.config);
    this.adopt(due.settings, step);
    this.history.push({ step, strategy: describeSettings(due.settings) });
    return { before, after: due.settings };
  }

  /** The switch announced and not yet taken, if any. */
  pending(): DueSwitch | null {
    return this.due && { ...this.due };
  }

  /**
   * The float-message check of the room (peer/payload-checks.ts) in the codec of the strategy that sent
   * the message: its round is the step it belongs to, so a message of the step after a switch is
   * checked in the new codec even when it arrives before this tab has switched. The switch's own
   * state all-reduce is float32.
   */
  payloadCheck(): MessageCheck {
    const checks = new Map<Compression, MessageCheck>();
    const checkOf = (compression: Compression) => {
      let check = checks.get(compression);
      if (!check) checks.set(compression, (check = finiteModelDataCheck(compression, FIRST_FLOAT_ID)));
      return check;
    };
    return (tag: MessageTag, payload: Uint8Array) => {
      if (tag.collective === COLLECTIVE_IDS.strategyState.first) return checkOf('none')(tag, payload);
      return checkOf(this.compressionAt(tag.round))(tag, payload);
    };
  }

  compressionAt(round: number): Compression {
    let compression = this.compressionFrom[0].compression;
    for (const entry of this.compressionFrom) if (entry.round <= round) compression = entry.compression;
    return compression;
  }

  /**
   * After a re-form, before the run is rebuilt: every member all-gathers the strategy it trains with
   * and the switch it expects, and takes rank 0's. Returns true when this tab's strategy changed.
   */
  async agree(transport: Transport, round: number): Promise<boolean> {
    const mine = { settings: settingsOf(this.deps.config), due: this.due };
    const bytes = new Uint8Array(AGREEMENT_BYTES).fill(0x20);
    const json = encodeJsonMessage(mine);
    if (json.length > AGREEMENT_BYTES) throw new Error('the strategy agreement does not fit its message');
    bytes.set(json);
    const { payloads } = await runFixedAllGather(transport, bytes, { round, collective: COLLECTIVE_IDS.strategyAgreement.first });
    const room = decodeJsonMessage<{ settings: StrategySettings; due: DueSwitch | null }>(payloads[0], 'strategy agreement', (m) =>
      isObject(m) && isObject(m.settings) && (m.due === null || (isObject(m.due) && isInt(m.due.step, 0, 0xffffffff) && isObject(m.due.settings))) ? null : 'bad agreement',
    );
    if (isDecodeError(room)) throw new Error(room.error);
    // The same settings as this tab's (always so in a run that cannot switch, e.g. ZeRO): nothing to
    // take. Otherwise rank 0's settings were a valid config there; they must be one here too.
    const same = JSON.stringify(room.settings) === JSON.stringify(mine.settings);
    const settings = same ? mine.settings : settingsOf(switchedConfig(this.deps.config, room.settings));
    const changed = !same && (describeSettings(settings) !== describeSettings(mine.settings) || JSON.stringify(settings) !== JSON.stringify(mine.settings));
    if (changed) {
      this.adopt(settings, 0);
      this.compressionFrom = [{ round: 0, compression: settings.compression }];
      this.deps.log('info', `this tab trains with the room's strategy: ${describeSettings(settings)}`);
    }
    this.due = room.due && { id: room.due.id, step: room.due.step, settings: settingsOf(switchedConfig(this.deps.config, room.due.settings)) };
    return changed;
  }

  private adopt(settings: StrategySettings, fromRound: number): void {
    Object.assign(this.deps.config, settings);
    this.compressionFrom.push({ round: fromRound, compression: settings.compression });
  }

  /** Rank 0: checks the choice, picks the step and announces it (to `from` too, who asked). */
  private decide(id: string, choice: StrategyChoice, from: string | null): void {
    const refuse = (reason: string) => (from ? this.send(from, { kind: 'refuse', id, reason }) : this.answer(id, new Error(reason)));
    if (this.due) return refuse(`a switch to ${describeSettings(this.due.settings)} is already due at step ${this.due.step}`);
    let settings: StrategySettings;
    try {
      settings = settingsOf(switchedConfig(this.deps.config, choice));
    } catch (error) {
      return refuse(error instanceof Error ? error.message : String(error));
    }
    const step = switchStepFor(this.deps.config, this.deps.step(), this.deps.steps());
    if (step === null) return refuse(`the run ends within ${SWITCH_MARGIN} steps: too late to switch`);
    this.schedule({ id, step, settings });
    for (const member of this.members()) if (member !== this.mesh!.peerId) this.send(member, { kind: 'announce', id, step, choice: settings });
  }

  private schedule(due: DueSwitch): void {
    this.due = due;
    this.deps.log('info', `strategy switch to ${describeSettings(due.settings)} at step ${due.step}`);
    this.answer(due.id, { step: due.step, strategy: describeSettings(due.settings) });
  }

  private answer(id: string, outcome: SwitchRecord | Error): void {
    const waiter = this.waiting.get(id);
    if (!waiter) return;
    this.waiting.delete(id);
    clearTimeout(waiter.timer);
    if (outcome instanceof Error) waiter.reject(outcome);
    else waiter.resolve(outcome);
  }

  private onFrame(peerId: string, frame: Frame): void {
    if (frame.type !== 'control' || frame.collective !== SWITCH_CONTROL) return;
    const message = decodeJsonMessage<SwitchMessage>(frame.payload, 'strategy switch', checkMessage);
    if (isDecodeError(message)) return this.mesh!.refuse(peerId, message.error);
    const coordinator = this.members()[0];
    if (message.kind === 'request') {
      if (coordinator !== this.mesh!.peerId) return this.send(peerId, { kind: 'refuse', id: message.id, reason: 'this tab is not the room\'s rank 0' });
      return this.decide(message.id, message.choice, peerId);
    }
    if (message.kind === 'refuse') return this.answer(message.id, new Error(`rank 0 refused the switch: ${message.reason}`));
    if (peerId !== coordinator) return this.mesh!.refuse(peerId, 'strategy switch announced by a tab that is not rank 0');
    let settings: StrategySettings;
    try {
      settings = settingsOf(switchedConfig(this.deps.config, message.choice));
    } catch (error) {
      return this.mesh!.refuse(peerId, `strategy switch refused: ${error instanceof Error ? error.message : String(error)}`);
    }
    if (this.deps.step() > message.step) this.missed = `the strategy switch at step ${message.step} arrived when this tab was at step ${this.deps.step()}`;
    this.schedule({ id: message.id, step: message.step, settings });
  }

  private send(peerId: string, message: SwitchMessage): void {
    const mesh = this.mesh!;
    const header = { type: 'control' as const, roomHash: mesh.roomHash, round: 0, collective: SWITCH_CONTROL, chunk: 0, sender: NO_RANK, part: 0, parts: 1 };
    try {
      void Promise.resolve(mesh.sendRaw(peerId, encodeFrame(header, encodeJsonMessage(message)))).catch(() => undefined);
    } catch {
      // a link closing meanwhile: the asker's request times out with a clear error
    }
  }
}
