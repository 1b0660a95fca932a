// The lab's run configuration and its URL form: the automation contract for scripts and users' own
// Playwright tests (README "Scripting the lab"). The same keys are the swarm CLI's flags.
import { PIPELINE_SCHEDULES, type PipelineScheduleKind } from '../collective/pipeline-schedules';
import { nameProblem } from '../peer/presence';
import type { CollectiveChoice, Compression, ParallelMode, ShareMode, ZeroStage } from '../parallel/parallel-types';
import { shareOf } from '../train/sampler';
import { defaults } from '../train/defaults';

export type ModelKind = 'mlp' | 'gpt';
export type DatasetKind = 'mnist' | 'spirals' | 'circles' | 'xor' | 'gaussians' | 'sotu' | 'text';
export type { Compression, ParallelMode, ShareMode, ZeroStage };
export type BackendChoice = 'auto' | 'webgpu' | 'cpu';
export type OptimizerChoice = 'adamw' | 'sgd' | 'momentum';

export interface LabConfig {
  /** Room code; empty means a solo run with no mesh. */
  room: string;
  model: ModelKind;
  dataset: DatasetKind;
  mode: ParallelMode;
  zero: ZeroStage;
  compression: Compression;
  /** Fraction of gradient entries kept by Top-K / Random-K. */
  ratio: number;
  /** Dense ring: each tab's share of the global batch by its measured speed (auto) or even (equal). */
  shares: ShareMode;
  /** shares=auto: re-balance the shares after every this many steps. */
  rebalance: number;
  /** Micro-batches per optimizer step (gradient accumulation). */
  accum: number;
  /** Samples per optimizer step over the whole room (all ranks, all micro-batches); 0: the model's default. */
  batch: number;
  /** 0: the model's default. */
  steps: number;
  seed: number;
  lr: number;
  /**
   * adamw: the recipe's measured optimizer. sgd: plain SGD, momentum: SGD with momentum 0.9 (DGC's
   * momentum correction with compression=topk), both at the recipe's learning rate (lr overrides it),
   * for runs whose result must move in proportion to the gradient (parity tests: AdamW normalises a
   * scaled gradient away).
   */
  optimizer: OptimizerChoice;
  /** Wait for this many tabs in the room before the first step (0: start with whoever is there). */
  world: number;
  autostart: boolean;
  backend: BackendChoice;
  /** WebSocket signalling server; empty: BroadcastChannel (tabs of one browser). */
  signal: string;
  /** Parameter-server mode: maximum staleness in steps (0: synchronous). */
  staleness: number;
  /** Gradient all-reduce bucket size in elements; 0: the model's own (recipe.ts bucketFor). */
  bucket: number;
  /** ZeRO-Offload: this rank's optimizer state and update live in CPU memory (needs zero >= 1). */
  offload: boolean;
  /** compression=powersgd: rank r of each compressed gradient matrix (1, 2 and 4 are the paper's). */
  rank: number;
  /**
   * compression=powersgd: a matrix is compressed only when its factors are more than this many times
   * smaller (PyTorch's min_compression_rate; collective/powersgd.ts powerSgdPlan). The default 5 keeps
   * a classifier's small output layer exact at ranks 2 and 4 (MNIST's 256 x 10: 4.8x and 2.4x).
   */
  minrate: number;
  /** mode=diloco: inner steps between outer steps (H). */
  inner: number;
  /** mode=diloco: outer learning rate (DiLoCo's 0.7). */
  outerlr: number;
  /** mode=diloco: outer Nesterov momentum (DiLoCo's 0.9; 0: plain outer SGD). */
  outermomentum: number;
  /**
   * The algorithm of the dense all-reduces (the gradient's buckets, PowerSGD's two, DiLoCo's outer
   * one), per size: ring, tree, rhd (recursive halving-doubling), naive, or auto (measured links, the
   * fastest predicted; src/parallel/collective-choice.ts).
   */
  collective: CollectiveChoice;
  /** Link shaping for teaching: one-way delay added to every frame this tab sends, in ms (0: none). */
  latency: number;
  /** Link shaping for teaching: this tab's send rate per link in MB/s (0: unlimited). */
  bandwidth: number;
  /** A straggler for teaching: this many ms of extra compute before each step (0: none)... */
  slow: number;
  /** ...on the tab of this rank only (-1: on every tab whose URL has `slow`). */
  slowrank: number;
  /** Per-tab device memory budget in MiB (0: none): a run that would hold more is refused. */
  budget: number;
  /** MLP hidden widths, comma-separated ("1024,1024,1024"); empty: the data set's default widths. */
  hidden: string;
  /** Start from this run's newest checkpoint in the browser's storage (IndexedDB). */
  resume: boolean;
  /** Save a checkpoint to the browser's storage every this many steps and at the end (0: never). */
  autosave: number;
  /**
   * Room secret: signalling messages and data frames are authenticated with a key derived from it and
   * the room name; tabs without it cannot take part. Empty: an open room. Never put in shared URLs
   * by the app itself.
   */
  secret: string;
  /** The name a student typed on joining: shown in the room's peers tables (src/peer/presence.ts). */
  name: string;
  /** A peer with more refused frames than this is excluded from the room (0: never). */
  maxrefused: number;
  /** A linked tab silent for this many ms is dropped (and an elastic ring re-forms without it). */
  peertimeout: number;
  /**
   * Elastic rooms whose state lives on some tabs only (ZeRO, the parameter server): back the state up
   * on a second tab every this many steps; a lost tab sends the ring back to the last backup, and the
   * steps since are trained again (the same steps: every draw derives from seed and step).
   */
  backupevery: number;
  /**
   * false: draw no dashboard, only a line saying so (window.lab works as ever). For headless workers:
   * a real browser stops drawing hidden tabs, headless Chromium draws every tab, and on a small machine
   * four animated dashboards cost a fifth of the training speed (the swarm turns them off).
   */
  dashboard: boolean;
  /**
   * Pipeline parallelism: the model split into this many stages, one per tab (1: none). A room of N tabs
   * runs N / pipeline pipelines side by side (data parallelism across them); see pipeline-run.ts.
   */
  pipeline: number;
  /** The pipeline's schedule: all forwards then all backwards (gpipe), or one forward one backward (1f1b). */
  schedule: PipelineScheduleKind;
  /** Micro-batches per step that travel through the pipeline (0: twice the number of stages). */
  micro: number;
  /**
   * Forwards a 1F1B stage may run ahead of its list while a gradient is on its way, each holding one
   * activation set more than 1F1B's (src/collective/pipeline-executor.ts). 0: the list's order exactly.
   */
  ahead: number;
  /** The GPT's transformer blocks (0: the recipe's); a pipeline needs at least one per stage. */
  layers: number;
  /**
   * Tensor parallelism: every split layer cut across this many tabs (1: none). A room of N tabs runs
   * N / tensor tensor groups side by side (data parallelism across them); see tensor-run.ts.
   */
  tensor: number;
  /**
   * Mixture of experts: every GPT block's MLP becomes this many experts with a learned router (0: the
   * dense MLP). In a room the experts are spread over expert-parallel groups of `ep` tabs; see expert-run.ts.
   */
  experts: number;
  /** Experts per token: 1 (Switch) or 2 (GShard). */
  topk: number;
  /** Capacity factor: slots per expert = ceil(capacity x tokens x topk / experts); the overflow is dropped. */
  capacity: number;
  /** Tabs one copy of the experts is spread over (0: the whole room); the room runs world / ep of them side by side. */
  ep: number;
  /** One tab only: route each micro-batch as this many capacity groups, as that many tabs of an expert room do (the reference they are checked against). */
  routegroups: number;
}

export const MODEL_DEFAULT_DATASET: Record<ModelKind, DatasetKind> = { mlp: 'mnist', gpt: 'sotu' };

export const DEFAULT_CONFIG: LabConfig = {
  room: '',
  model: 'mlp',
  dataset: 'mnist',
  mode: 'ring',
  zero: 0,
  compression: 'none',
  ratio: 0.01,
  shares: 'equal',
  rebalance: 10,
  accum: 1,
  batch: 0,
  steps: 0,
  seed: 1,
  lr: 0,
  optimizer: 'adamw',
  world: 0,
  autostart: false,
  backend: 'auto',
  signal: '',
  staleness: 0,
  bucket: 0,
  offload: false,
  rank: 2,
  minrate: 5,
  inner: 50,
  outerlr: 0.7,
  outermomentum: 0.9,
  collective: 'ring',
  latency: 0,
  bandwidth: 0,
  slow: 0,
  slowrank: -1,
  budget: 0,
  hidden: '',
  resume: false,
  autosave: 100,
  secret: '',
  name: '',
  maxrefused: 200,
  peertimeout: 10_000,
  backupevery: 10,
  dashboard: true,
  pipeline: 1,
  schedule: '1f1b',
  micro: 0,
  ahead: 0,
  layers: 0,
  tensor: 1,
  experts: 0,
  topk: 2,
  capacity: 1.25,
  ep: 0,
  routegroups: 1,
};

const CHOICES = {
  model: ['mlp', 'gpt'],
  dataset: ['mnist', 'spirals', 'circles', 'xor', 'gaussians', 'sotu', 'text'],
  mode: ['ring', 'ps', 'diloco'],
  compression: ['none', 'fp16', 'topk', 'randk', 'powersgd'],
  shares: ['auto', 'equal'],
  backend: ['auto', 'webgpu', 'cpu'],
  optimizer: ['adamw', 'sgd', 'momentum'],
  collective: ['auto', 'ring', 'tree', 'rhd', 'naive'],
  schedule: PIPELINE_SCHEDULES,
} as const satisfies Partial<Record<keyof LabConfig, readonly string[]>>;

export class ConfigError extends Error {
  override name = 'ConfigError';
}

function parseInteger(key: string, raw: string, min: number, max: number): number {
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new ConfigError(`${key} must be an integer from ${min} to ${max}, got "${raw}"`);
  }
  return value;
}

function parseNumber(key: string, raw: string, min: number, max: number): number {
  const value = Number(raw);
  if (!Number.isFinite(value) || value < min || value > max) {
    throw new ConfigError(`${key} must be a number from ${min} to ${max}, got "${raw}"`);
  }
  return value;
}

function parseChoice<K extends keyof typeof CHOICES>(key: K, raw: string): (typeof CHOICES)[K][number] {
  const options: readonly string[] = CHOICES[key];
  if (!options.includes(raw)) throw new ConfigError(`${key} must be one of ${options.join(', ')}, got "${raw}"`);
  return raw as (typeof CHOICES)[K][number];
}

function parseBoolean(key: string, raw: string): boolean {
  if (['1', 'true', 'yes', ''].includes(raw)) return true;
  if (['0', 'false', 'no'].includes(raw)) return false;
  throw new ConfigError(`${key} must be 1 or 0, got "${raw}"`);
}

const ROOM_PATTERN = /^[A-Za-z0-9_-]{1,32}$/;

/** Applies one key=value to a config; unknown keys are an error so that typos do not pass silently. */
function applyEntry(config: LabConfig, key: string, raw: string): void {
  switch (key) {
    case 'room':
      if (raw !== '' && !ROOM_PATTERN.test(raw)) throw new ConfigError(`room must be 1-32 letters, digits, - or _`);
      config.room = raw;
      return;
    case 'model':
      config.model = parseChoice('model', raw);
      return;
    case 'dataset':
      config.dataset = parseChoice('dataset', raw);
      return;
    case 'mode':
      config.mode = parseChoice('mode', raw);
      return;
    case 'zero':
      config.zero = parseInteger('zero', raw, 0, 3) as ZeroStage;
      return;
    case 'compression':
      config.compression = parseChoice('compression', raw);
      return;
    case 'backend':
      config.backend = parseChoice('backend', raw);
      return;
    case 'ratio':
      config.ratio = parseNumber('ratio', raw, 1e-6, 1);
      return;
    case 'shares':
      config.shares = parseChoice('shares', raw);
      break;
    case 'rebalance':
      config.rebalance = parseInteger('rebalance', raw, 1, 1_000_000);
      break;
    case 'accum':
      config.accum = parseInteger('accum', raw, 1, 1024);
      return;
    case 'batch':
      config.batch = parseInteger('batch', raw, 0, 1 << 16);
      return;
    case 'steps':
      config.steps = parseInteger('steps', raw, 0, 10_000_000);
      return;
    case 'seed':
      config.seed = parseInteger('seed', raw, 0, 2 ** 31 - 1);
      return;
    case 'lr':
      config.lr = parseNumber('lr', raw, 0, 10);
      return;
    case 'optimizer':
      config.optimizer = parseChoice('optimizer', raw);
      return;
    case 'world':
    case 'tabs':
      config.world = parseInteger(key, raw, 0, 64);
      return;
    case 'autostart':
      config.autostart = parseBoolean('autostart', raw);
      return;
    case 'signal':
      if (raw !== '' && !/^wss?:\/\//.test(raw)) throw new ConfigError(`signal must be a ws:// or wss:// URL`);
      config.signal = raw;
      return;
    case 'staleness':
      config.staleness = parseInteger('staleness', raw, 0, 1000);
      return;
    case 'offload':
      config.offload = parseBoolean('offload', raw);
      return;
    case 'rank':
      config.rank = parseInteger('rank', raw, 1, 64);
      return;
    case 'minrate':
      config.minrate = parseNumber('minrate', raw, 1, 1e6);
      return;
    case 'inner':
      config.inner = parseInteger('inner', raw, 1, 100_000);
      return;
    case 'outerlr':
      config.outerlr = parseNumber('outerlr', raw, 1e-6, 10);
      return;
    case 'latency':
      config.latency = parseNumber('latency', raw, 0, 10_000);
      return;
    case 'bandwidth':
      config.bandwidth = parseNumber('bandwidth', raw, 0, 100_000);
      return;
    case 'slow':
      config.slow = parseInteger('slow', raw, 0, 60_000);
      return;
    case 'slowrank':
      config.slowrank = parseInteger('slowrank', raw, -1, 63);
      return;
    case 'collective':
      config.collective = parseChoice('collective', raw);
      return;
    case 'outermomentum':
      config.outermomentum = parseNumber('outermomentum', raw, 0, 0.999);
      return;
    case 'budget':
      config.budget = parseNumber('budget', raw, 0, 1 << 20);
      return;
    case 'hidden':
      config.hidden = raw === '' ? '' : parseHidden(raw).join(',');
      return;
    case 'bucket':
      config.bucket = parseInteger('bucket', raw, 0, 1 << 26);
      if (config.bucket > 0 && config.bucket < 64) throw new ConfigError(`bucket must be 0 (the model's default) or at least 64 floats, got ${raw}`);
      return;
    case 'resume':
      config.resume = parseBoolean('resume', raw);
      return;
    case 'autosave':
      config.autosave = parseInteger('autosave', raw, 0, 10_000_000);
      return;
    case 'secret':
      if (raw.length > 256) throw new ConfigError('secret must be at most 256 characters');
      config.secret = raw;
      return;
    case 'name': {
      const name = raw.trim().replace(/\s+/g, ' ');
      const problem = nameProblem(name);
      if (problem) throw new ConfigError(`name: ${problem}`);
      config.name = name;
      return;
    }
    case 'maxrefused':
      config.maxrefused = parseInteger('maxrefused', raw, 0, 1 << 30);
      return;
    case 'backupevery':
      config.backupevery = parseInteger('backupevery', raw, 1, 1_000_000);
      return;
    case 'peertimeout':
      // Background tabs run timers at most once a second, so anything below 3 s drops live tabs.
      config.peertimeout = parseInteger('peertimeout', raw, 3_000, 600_000);
      return;
    case 'dashboard':
      config.dashboard = parseBoolean('dashboard', raw);
      return;
    case 'pipeline':
      config.pipeline = parseInteger('pipeline', raw, 1, 64);
      return;
    case 'tensor':
      config.tensor = parseInteger('tensor', raw, 1, 64);
      return;
    case 'experts':
      config.experts = parseInteger('experts', raw, 0, 256);
      return;
    case 'topk':
      config.topk = parseInteger('topk', raw, 1, 2);
      return;
    case 'capacity':
      config.capacity = parseNumber('capacity', raw, 0.01, 64);
      return;
    case 'ep':
      config.ep = parseInteger('ep', raw, 0, 64);
      return;
    case 'routegroups':
      config.routegroups = parseInteger('routegroups', raw, 1, 64);
      return;
    case 'schedule':
      config.schedule = parseChoice('schedule', raw);
      return;
    case 'micro':
      config.micro = parseInteger('micro', raw, 0, 1024);
      return;
    case 'ahead':
      config.ahead = parseInteger('ahead', raw, 0, 64);
      return;
    case 'layers':
      config.layers = parseInteger('layers', raw, 0, 64);
      return;
    default:
      throw new ConfigError(`unknown setting "${key}"`);
  }
}

/**
 * Reads a config from URL search parameters (or the swarm CLI's flags turned into pairs). The data set
 * follows the model unless given. Throws ConfigError naming the first bad key.
 */
export function parseConfig(entries: Iterable<[string, string]>, base: LabConfig = DEFAULT_CONFIG): LabConfig {
  const config: LabConfig = { ...base };
  let datasetGiven = false;
  for (const [key, raw] of entries) {
    applyEntry(config, key, raw);
    if (key === 'dataset') datasetGiven = true;
  }
  if (!datasetGiven && config.model !== base.model) config.dataset = MODEL_DEFAULT_DATASET[config.model];
  validateConfig(config);
  return config;
}

export const MAX_HIDDEN_LAYERS = 16;
export const MAX_HIDDEN_WIDTH = 8192;

/** "1024,1024" -> [1024, 1024]: 1-16 integer widths of 1-8192. */
export function parseHidden(raw: string): number[] {
  const parts = raw.split(',').map((p) => p.trim());
  const widths = parts.map(Number);
  if (parts.length > MAX_HIDDEN_LAYERS || parts.some((p) => p === '') || widths.some((w) => !Number.isInteger(w) || w < 1 || w > MAX_HIDDEN_WIDTH)) {
    throw new ConfigError(`hidden must be 1-${MAX_HIDDEN_LAYERS} comma-separated widths from 1 to ${MAX_HIDDEN_WIDTH}, got "${raw}"`);
  }
  return widths;
}

/** Cross-field rules, kept in one place. */
export function validateConfig(config: LabConfig): void {
  const textSet = config.dataset === 'sotu' || config.dataset === 'text';
  if (config.model === 'gpt' && !textSet) throw new ConfigError('the GPT trains on text: dataset sotu or text');
  if (config.model === 'mlp' && textSet) throw new ConfigError('the MLP trains on mnist or a 2-D set, not text');
  if (config.hidden !== '' && config.model !== 'mlp') throw new ConfigError('hidden sets the MLP\'s widths: use model=mlp');
  if (config.layers !== 0 && config.model !== 'gpt') throw new ConfigError('layers sets the GPT\'s blocks: use model=gpt (the MLP\'s layers are set by hidden)');
  if (config.mode === 'ps' && config.zero !== 0) throw new ConfigError('ZeRO shards across a ring: use mode=ring');
  if (config.offload && config.zero === 0) throw new ConfigError('offload moves the ZeRO optimizer shard to the CPU: set zero to 1, 2 or 3');
  if (config.zero !== 0 && config.compression !== 'none') throw new ConfigError('ZeRO moves full-precision shards: use compression=none');
  const badName = nameProblem(config.name);
  if (badName) throw new ConfigError(`name: ${badName}`);
  validateCommunicationEfficient(config);
  if (config.pipeline > 1) checkPipeline(config);
  else if (config.micro !== 0) throw new ConfigError('micro sets the micro-batches of a pipeline (pipeline=2 or more); without one, accum sets them');
  else if (config.ahead !== 0) throw new ConfigError('ahead lets a pipeline stage run forwards early: set pipeline=2 or more');
  if (config.tensor > 1) checkTensor(config);
  checkExperts(config);
  if (config.world > 0 && config.batch > 0 && config.pipeline === 1 && config.tensor === 1) checkBatchSplit(config.batch, config.world, config.accum);
}

/** Why the config cannot start as it is (a pipeline without a room), or null. */
export function pipelineNeedsRoom(config: Pick<LabConfig, 'pipeline' | 'room'>): string | null {
  return config.pipeline > 1 && config.room === '' ? `pipeline=${config.pipeline} splits the model across ${config.pipeline} tabs: it needs a room (room=...)` : null;
}

/** The pipeline's micro-batches per step (micro=0: twice the stages, so that the bubble is at most a third). */
export function pipelineMicroBatches(config: Pick<LabConfig, 'pipeline' | 'micro'>): number {
  return config.micro > 0 ? config.micro : 2 * config.pipeline;
}

/**
 * pipeline=P: a room whose size P divides, and none of the settings that assume whole replicas. That
 * there is a room at all is checked when the run starts (pipelineNeedsRoom): a dashboard or the swarm
 * sets the room after the rest of the config.
 */
function checkPipeline(config: LabConfig): void {
  const P = config.pipeline;
  if (config.world > 0 && config.world % P !== 0) {
    throw new ConfigError(`pipeline=${P} needs a room whose size it divides (tabs = pipelines x ${P} stages), got world=${config.world}`);
  }
  if (config.mode !== 'ring') throw new ConfigError('pipeline stages average their gradients over a ring: use mode=ring');
  if (config.zero !== 0) throw new ConfigError('pipeline and ZeRO do not combine here: each stage already holds only its own parameters and optimizer state');
  if (config.compression !== 'none') throw new ConfigError('pipeline sends activations and gradients in full precision: use compression=none');
  if (config.accum !== 1) throw new ConfigError('a pipeline accumulates over its micro-batches: set micro, not accum');
  if (config.ahead !== 0 && config.schedule !== '1f1b') throw new ConfigError('ahead moves 1F1B forwards before a late gradient; GPipe runs every forward first already: use schedule=1f1b');
  const stages = stageUnits(config);
  if (stages.units < P) throw new ConfigError(`pipeline=${P} gives each stage at least one of the ${stages.what}, and it has ${stages.units} (${stages.from}): ${stages.fix}`);
  if (config.world > 0) {
    const pipelines = config.world / P;
    const M = pipelineMicroBatches(config);
    // batch=0 is the recipe's global batch, which must split as well.
    const batch = config.batch > 0 ? config.batch : recipeDefaults(config).globalBatch;
    if (batch % (pipelines * M) !== 0) {
      throw new ConfigError(`the global batch (${batch}${config.batch > 0 ? '' : ", the recipe's"}) does not split into ${pipelines} pipeline(s) x ${M} equal micro-batches`);
    }
  }
}

/** The recipe a config starts from before its URL overrides (recipe.ts applies them). */
function recipeDefaults(config: Pick<LabConfig, 'model' | 'dataset'>) {
  return config.model === 'gpt' ? defaults.sotu : classifierDefaults(config);
}

/** The MLP recipe of a data set (MNIST's, or the 2-D sets' one). */
export function classifierDefaults(config: Pick<LabConfig, 'dataset'>) {
  return config.dataset === 'mnist' ? defaults.mnist : defaults.synthetic;
}

/** What a pipeline splits: the GPT's blocks or the MLP's layers (hidden layers and the output layer), how many, and how to have more. */
function stageUnits(config: LabConfig): { what: string; units: number; from: string; fix: string } {
  const P = config.pipeline;
  if (config.model === 'gpt') {
    const blocks = config.layers > 0 ? config.layers : defaults.sotu.model.nLayer;
    return { what: "GPT's blocks", units: blocks, from: config.layers > 0 ? `layers=${blocks}` : "the recipe's; layers= sets them", fix: `set layers=${P} or more` };
  }
  const hidden = config.hidden !== '' ? parseHidden(config.hidden) : classifierDefaults(config).model.sizes.slice(1, -1);
  return {
    what: "MLP's layers",
    units: hidden.length + 1,
    from: `${config.hidden !== '' ? `hidden=${config.hidden}` : `the recipe's hidden=${hidden.join(',')}`} and the output layer`,
    fix: `give hidden= at least ${P - 1} widths`,
  };
}

/** PowerSGD and DiLoCo: the modes they combine with, and their keys only where they mean something. */
function validateCommunicationEfficient(config: LabConfig): void {
  if (config.mode === 'diloco') {
    if (config.zero !== 0) throw new ConfigError('DiLoCo keeps whole replicas that drift apart between outer steps: use zero=0');
    if (!['none', 'fp16', 'topk'].includes(config.compression)) throw new ConfigError(`mode=diloco compresses its outer exchange with fp16 or topk only, got compression=${config.compression}`);
  } else {
    const setting = (['inner', 'outerlr', 'outermomentum'] as const).find((key) => config[key] !== DEFAULT_CONFIG[key]);
    if (setting) throw new ConfigError(`${setting} tunes DiLoCo: use mode=diloco`);
  }
  if (config.compression === 'powersgd' && config.mode !== 'ring') throw new ConfigError('PowerSGD compresses the ring\'s gradient all-reduce: use mode=ring');
  // The all-reduces a picker serves: the dense gradient's, PowerSGD's two and DiLoCo's dense outer one.
  const picked = config.zero === 0 && (config.mode === 'ring' ? ['none', 'fp16', 'powersgd'] : config.mode === 'diloco' ? ['none', 'fp16'] : []).includes(config.compression);
  if (config.collective !== 'ring' && !picked) {
    throw new ConfigError(`collective=${config.collective} picks the algorithm of the dense all-reduces: use zero=0 and mode=ring with compression none, fp16 or powersgd, or mode=diloco with compression none or fp16`);
  }
  if (config.compression !== 'powersgd' && config.rank !== DEFAULT_CONFIG.rank) throw new ConfigError('rank sets PowerSGD\'s rank: use compression=powersgd');
  if (config.compression !== 'powersgd' && config.minrate !== DEFAULT_CONFIG.minrate) throw new ConfigError('minrate sets which matrices PowerSGD compresses: use compression=powersgd');
}

/**
 * tensor=T: a room whose size T divides, without a pipeline or the settings that assume whole replicas.
 * Each tensor group of T tabs takes one data-parallel share of the global batch, with `accum`
 * micro-batches; that there is a room is checked when the run starts, as for a pipeline.
 */
function checkTensor(config: LabConfig): void {
  const T = config.tensor;
  if (config.world > 0 && config.world % T !== 0) {
    throw new ConfigError(`tensor=${T} needs a room whose size it divides (tabs = tensor groups x ${T}), got world=${config.world}`);
  }
  if (config.pipeline > 1) throw new ConfigError('tensor and pipeline parallelism do not combine here: set one of tensor or pipeline');
  if (config.mode !== 'ring') throw new ConfigError('tensor groups average their gradients over a ring: use mode=ring');
  if (config.zero !== 0) throw new ConfigError('tensor parallelism and ZeRO do not combine here: each tab already holds only its shard and its optimizer state');
  if (config.compression !== 'none') throw new ConfigError('tensor parallelism all-reduces activations and gradients in full precision: use compression=none');
  if (config.world > 0 && config.batch > 0) checkBatchSplit(config.batch, config.world / T, config.accum);
}

/**
 * experts=E: the GPT only, E >= 2, without the other model splits or the settings that assume whole
 * replicas. In a room, `ep` (or the room's size) must divide both the room and E.
 */
function checkExperts(config: LabConfig): void {
  const E = config.experts;
  if (E === 0) {
    if (config.ep !== 0 || config.routegroups !== 1) throw new ConfigError('ep and routegroups configure a mixture of experts: set experts too');
    return;
  }
  if (E === 1) throw new ConfigError('experts=1 is the dense MLP: use experts=0, or 2 or more experts');
  if (config.model !== 'gpt') throw new ConfigError('experts replace the GPT\'s MLPs: use model=gpt');
  if (config.pipeline > 1 || config.tensor > 1) throw new ConfigError('experts do not combine with pipeline or tensor parallelism here: set one of them');
  if (config.topk > E) throw new ConfigError(`topk=${config.topk} needs at least ${config.topk} experts`);
  if (config.room === '') return;
  if (config.routegroups !== 1) throw new ConfigError('routegroups is for one tab: in a room every tab routes its own tokens as one capacity group');
  if (config.mode !== 'ring') throw new ConfigError('expert-parallel rooms average their gradients over rings: use mode=ring');
  if (config.zero !== 0) throw new ConfigError('experts and ZeRO do not combine here: each tab already holds only its experts');
  if (config.compression !== 'none') throw new ConfigError('expert parallelism moves tokens and gradients in full precision: use compression=none');
  const ep = config.ep || config.world;
  if (ep > 0 && E % ep !== 0) throw new ConfigError(`experts=${E} do not spread evenly over ep=${ep} tabs: use a number of experts that ep divides`);
  if (config.world > 0 && config.world % ep !== 0) throw new ConfigError(`ep=${ep} needs a room whose size it divides (tabs = expert groups x ${ep}), got world=${config.world}`);
}

/**
 * Refuses a global batch that does not split into `world` tabs x `microBatches` equal micro-batches.
 * Tabs' shares may differ by one sample (sampler.ts), but each must split into equal micro-batches.
 */
export function checkBatchSplit(globalBatch: number, world: number, microBatches: number): void {
  for (let rank = 0; rank < world; rank++) {
    const { start, end } = shareOf(globalBatch, world, rank);
    if (end === start || (end - start) % microBatches !== 0) {
      throw new ConfigError(
        `the global batch (${globalBatch}) does not split into ${world} tab(s) x ${microBatches} equal micro-batch(es): tab ${rank} would get ${end - start} sample(s)`,
      );
    }
  }
}

/** The URL query for a config: only keys that differ from the defaults, in a stable order. */
export function configToQuery(config: LabConfig): string {
  const params = new URLSearchParams();
  for (const key of Object.keys(DEFAULT_CONFIG) as (keyof LabConfig)[]) {
    const value = config[key];
    if (value === DEFAULT_CONFIG[key]) continue;
    params.set(key, typeof value === 'boolean' ? (value ? '1' : '0') : String(value));
  }
  return params.toString();
}
