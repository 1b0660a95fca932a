// The elastic room's soak run: `npm run soak` trains in 4 headless tabs for 1,000 steps while tabs are
// killed (closed, or crashed outright) and added at random, then prints what the room came through: steps
// completed, joins and failures survived, frames refused, whether replicas always agreed, and the GPU
// buffer count and JS heap of one witness tab at the start and the end against a stated bound; then a
// last line of JSON. Exits non-zero when any of that fails.
//
// The witness is the oldest tab: it is rank 0 and the ring's coordinator, never killed, so its memory
// tells whether a long run with many re-forms leaks. The schedule of events comes from --seed
// (soak-plan.ts) and is placed by step, so a failing soak can be replayed. Every flag but the soak's own
// is a lab URL setting (src/lab/config.ts), as in `npm run swarm`; --seed drives both the schedule and the run.
import { parseArgs } from 'node:util';
import cliProgress from 'cli-progress';
import type { BrowserContext, CDPSession, Page } from '@playwright/test';
import { recipeFor } from '../src/lab/recipe';
import { configToQuery, DEFAULT_CONFIG, parseConfig, type LabConfig } from '../src/lab/config';
import type { LabMetrics, LabStatus } from '../src/lab/api';
import { launchChromium, runHeadlessJob, uniqueRoom } from './lab-browser';
import { planSoak, ROOM_MAX_TABS, validatePlanOptions, type PlannedEvent, type SoakPlanOptions } from './soak-plan';
import { loadavg } from 'node:os';
import {
  departureSignal,
  formatSoak,
  summariseSoak,
  type SoakEventRecord,
  type SoakSettings,
  type TabFailure,
  type WitnessContext,
  type WitnessMeasurement,
} from './soak-summary';

const SOAK_FLAGS = ['tabs', 'timeout', 'kill-every', 'min-tabs', 'max-tabs', 'crash-share', 'recover-timeout', 'stall', 'warmup', 'signalling'] as const;
/** How the soak's tabs find each other: one BroadcastChannel (the default), or the lab server's /signal. */
type SoakSignalling = 'broadcast' | 'server';
const CONFIG_KEYS = Object.keys(DEFAULT_CONFIG).filter((key) => !['room', 'world', 'autostart'].includes(key));
const POLL_MS = 500;
const LOG_LINES_ON_FAILURE = 15;

interface SoakOptions {
  config: LabConfig;
  plan: SoakPlanOptions;
  timeoutSec: number;
  recoverTimeoutSec: number;
  stallSec: number;
  signalling: SoakSignalling;
}

/**
 * The first step by which the witness has done every kind of work once: an evaluation, an autosave and
 * (GPT) a text sample. Each pools read-back buffers of its own sizes; measured before them, the buffer
 * count would "grow" by that one-off pooling rather than by a leak.
 */
function firstSteadyStep(config: LabConfig, tabs: number): number {
  const recipe = recipeFor(config, tabs).recipe;
  const sampleEvery = 'sampleEvery' in recipe ? recipe.sampleEvery : 0;
  return Math.max(recipe.evalEvery, config.autosave, sampleEvery) + 5;
}

function parseCli(argv: string[]): SoakOptions {
  const options: Record<string, { type: 'string' }> = {};
  for (const key of [...CONFIG_KEYS, ...SOAK_FLAGS]) options[key] = { type: 'string' };
  const { values } = parseArgs({ args: argv, options, strict: true, allowPositionals: false });
  const number = (key: string, fallback: number): number => {
    const raw = values[key];
    const value = raw === undefined ? fallback : Number(raw);
    if (!Number.isFinite(value)) throw new Error(`--${key} must be a number, got "${raw}"`);
    return value;
  };
  const tabs = number('tabs', 4);
  if (!Number.isInteger(tabs) || tabs < 1 || tabs > ROOM_MAX_TABS) throw new Error(`--tabs must be an integer from 1 to ${ROOM_MAX_TABS} (an elastic room's size), got ${tabs}`);
  const entries: [string, string][] = CONFIG_KEYS.filter((key) => values[key] !== undefined).map((key) => [key, String(values[key])]);
  // peertimeout stays the lab's (10 s) unless given: at 4 s, a tab starved of CPU on a loaded 2-core
  // machine went silent for 4.6 s and was dropped though alive. A crash is found at once without it
  // (the dead tab's lock or socket); peertimeout is the backstop for tabs that only fall silent.
  const signalling = values.signalling ?? 'broadcast';
  if (signalling !== 'broadcast' && signalling !== 'server') throw new Error(`--signalling must be broadcast or server, got "${signalling}"`);
  if (signalling === 'server' && values.signal !== undefined) throw new Error('--signalling server uses the lab server\'s own /signal: give no --signal');
  const config = parseConfig([
    ['steps', '1000'],
    ...entries,
    ['world', String(tabs)],
    ['autostart', '1'],
  ]);
  if (config.mode === 'ps' && config.staleness > 0) {
    throw new Error('the soak needs an elastic room: the asynchronous parameter server (staleness > 0) stops on a lost tab');
  }
  if (config.steps === 0) throw new Error('--steps must be given (the soak places its events by step)');
  const warmupSteps = number('warmup', firstSteadyStep(config, tabs));
  const killEvery = number('kill-every', 100);
  const plan: SoakPlanOptions = {
    steps: config.steps,
    tabs,
    minTabs: number('min-tabs', Math.min(2, tabs)),
    maxTabs: number('max-tabs', Math.min(ROOM_MAX_TABS, tabs + 1)),
    killEvery,
    seed: config.seed,
    warmupSteps,
    // The last tab to join has time to take part before the run ends.
    tailSteps: Math.max(10, Math.ceil(killEvery / 2)),
    crashShare: number('crash-share', 0.5),
  };
  validatePlanOptions(plan);
  return { config, plan, timeoutSec: number('timeout', 7200), recoverTimeoutSec: number('recover-timeout', 180), stallSec: number('stall', 180), signalling };
}

/**
 * Milliseconds from `since` (Date.now()) to the last of `pages` logging a new ring ("ring epoch E ..."),
 * by each tab's own clock; null when a tab has logged none since.
 */
async function lastRingStart(pages: Page[], since: number): Promise<number | null> {
  const times = await Promise.all(
    pages.map((page) =>
      page
        .evaluate(() => {
          const lines = window.lab.log().filter((l) => /^ring epoch \d+\b/.test(l.message));
          const last = lines[lines.length - 1];
          return last ? performance.timeOrigin + last.t : null;
        })
        .catch(() => null),
    ),
  );
  if (times.some((t) => t === null || t < since)) return null;
  return Math.max(...(times as number[])) - since;
}

/**
 * The first member the witness dropped since `since` (Date.now()), by its own log: how long after `since`,
 * and what told it (soak-summary.ts departureSignal). Null when it logged none.
 */
async function witnessDropped(page: Page, since: number): Promise<SoakEventRecord['detected']> {
  const line = await page
    .evaluate(() => window.lab.log().map((l) => ({ at: performance.timeOrigin + l.t, message: l.message })).filter((l) => /^\[mesh [^\]]+\] peer \S+: /.test(l.message)))
    .then((lines) => lines.find((l) => l.at >= since))
    .catch(() => undefined);
  return line ? { ms: line.at - since, by: departureSignal(line.message) } : null;
}

// --- tabs -------------------------------------------------------------------------------------------

interface Tab {
  /** Opening order: 0 is the witness. */
  n: number;
  page: Page;
  /** The soak closed or crashed it on purpose. */
  killed: boolean;
  /** Chromium reported its renderer dead without the soak asking: a failure of the run. */
  crashedByItself: boolean;
  /** refused() as last read: a dead tab's figures are what it reported before it died. */
  refused: { count: number; reasons: Record<string, number> };
}

interface TabReport {
  status: LabStatus;
  metrics: LabMetrics;
  refused: { count: number; reasons: Record<string, number> };
}

class SoakFailure extends Error {}

class Room {
  readonly tabs: Tab[] = [];
  private opened = 0;
  /** The first poll to see a tab's hashesAgree false, described. */
  disagreement: string | null = null;
  readonly failures: TabFailure[] = [];

  constructor(
    private readonly context: BrowserContext,
    private readonly url: string,
  ) {}

  get live(): Tab[] {
    return this.tabs.filter((t) => !t.killed);
  }

  get witness(): Tab {
    return this.tabs[0];
  }

  async open(): Promise<Tab> {
    const page = await this.context.newPage();
    const tab: Tab = { n: this.opened++, page, killed: false, crashedByItself: false, refused: { count: 0, reasons: {} } };
    page.on('pageerror', (error) => console.error(`[tab ${tab.n}] ${error.message}`));
    page.on('crash', () => {
      if (!tab.killed) tab.crashedByItself = true;
    });
    this.tabs.push(tab);
    await page.goto(this.url);
    return tab;
  }

  /** Closes a tab the way a user does: the page's pagehide runs and it says goodbye to its peers. */
  async close(tab: Tab): Promise<void> {
    tab.killed = true;
    await tab.page.close({ runBeforeUnload: false });
  }

  /**
   * Kills a tab's renderer outright (CDP Page.crash): no pagehide, no goodbye. Its peers learn it from the
   * browser freeing the dead tab's lock (BroadcastChannel rooms) or the server seeing its socket close
   * (--signalling server), with heartbeat silence after `peertimeout` as the backstop. The dead tab is
   * then closed to free it.
   */
  async crash(tab: Tab): Promise<void> {
    tab.killed = true;
    const crashed = new Promise<void>((resolve) => tab.page.once('crash', () => resolve()));
    const cdp = await this.context.newCDPSession(tab.page);
    // The reply never comes (the renderer is gone): wait for Chromium's crash event instead.
    void cdp.send('Page.crash').catch(() => undefined);
    await Promise.race([crashed, sleep(10_000).then(() => Promise.reject(new SoakFailure(`tab ${tab.n} did not crash within 10 s of Page.crash`)))]);
    await tab.page.close({ runBeforeUnload: false }).catch(() => undefined);
  }

  /** Reads every live tab; a tab in 'error', or one that crashed unasked, ends the soak with its story. */
  async poll(): Promise<Map<Tab, TabReport>> {
    const reports = new Map<Tab, TabReport>();
    await Promise.all(
      this.live.map(async (tab) => {
        if (tab.crashedByItself) throw new SoakFailure(`tab ${tab.n} crashed by itself (the soak did not kill it)`);
        const report = await tab.page
          .evaluate(() =>
            window.lab?.status
              ? { status: window.lab.status(), metrics: window.lab.metrics(), refused: window.lab.refused() }
              : null,
          )
          .catch((error: Error) => {
            if (tab.killed) return null; // killed meanwhile
            throw new SoakFailure(`tab ${tab.n} could not be read: ${error.message.split('\n')[0]}`);
          });
        if (!report) return;
        tab.refused = report.refused;
        reports.set(tab, report);
      }),
    );
    for (const [tab, report] of reports) {
      if (report.status.state === 'error') {
        const log = await tab.page.evaluate(() => window.lab.log().map((l) => `${l.level} ${l.message}`)).catch(() => []);
        if (!this.failures.some((f) => f.tab === tab.n)) {
          this.failures.push({ tab: tab.n, error: report.status.error ?? 'unknown error', log: log.slice(-LOG_LINES_ON_FAILURE) });
        }
        throw new SoakFailure(`tab ${tab.n} (rank ${report.status.rank}) is in state 'error'`);
      }
      if (report.metrics.hashesAgree === false && this.disagreement === null) {
        this.disagreement = `tab ${tab.n} (rank ${report.status.rank}) saw different parameter hashes at step ${report.status.step}`;
      }
    }
    return reports;
  }

  refusedTotal(): { count: number; reasons: Record<string, number> } {
    const reasons: Record<string, number> = {};
    let count = 0;
    for (const tab of this.tabs) {
      count += tab.refused.count;
      for (const [reason, n] of Object.entries(tab.refused.reasons)) reasons[reason] = (reasons[reason] ?? 0) + n;
    }
    return { count, reasons };
  }
}

// --- the witness's memory ---------------------------------------------------------------------------

async function measureWitness(cdp: CDPSession, page: Page): Promise<WitnessMeasurement> {
  // Collect first, so the figure is what the tab holds on to, not the garbage of the last steps.
  await cdp.send('HeapProfiler.collectGarbage');
  const { usedSize } = await cdp.send('Runtime.getHeapUsage');
  const { step, gpuBuffers } = await page.evaluate(() => ({ step: window.lab.status().step, gpuBuffers: window.lab.metrics().gpuBuffers ?? 0 }));
  return { step, gpuBuffers, heapBytes: usedSize };
}

// --- the run ----------------------------------------------------------------------------------------

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The room has absorbed the last event: every live tab trains (or is done) in one ring of all of them. */
function settled(reports: Map<Tab, TabReport>, live: Tab[]): boolean {
  if (reports.size !== live.length) return false;
  const all = [...reports.values()];
  const epoch = all[0].status.epoch;
  return all.every(
    (r) => (r.status.state === 'training' || r.status.state === 'done') && r.status.world === live.length && r.status.epoch === epoch,
  );
}

async function runSoak(baseUrl: string, options: SoakOptions) {
  const { config, plan } = options;
  const events = planSoak(plan);
  const browser = await launchChromium();
  const room = uniqueRoom('soak');
  const query = new URLSearchParams(configToQuery({ ...config, room, world: plan.tabs }));
  query.set('autostart', '1');
  if (options.signalling === 'server') query.set('signal', `${baseUrl.replace(/^http/, 'ws')}/signal`);
  const context = await browser.newContext();
  const tabs = new Room(context, `${baseUrl}/?${query}`);
  const records: SoakEventRecord[] = [];
  let start: WitnessMeasurement | null = null;
  let end: WitnessMeasurement | null = null;
  let stopped: string | null = null;
  let witnessContext: WitnessContext | null = null;
  let last = new Map<Tab, TabReport>();
  const began = performance.now();
  const deadline = began + options.timeoutSec * 1000;
  const bar = new cliProgress.SingleBar(
    {
      format: 'step {value}/{total} |{bar}| {tabs} tabs | events {events}/{planned} | {state}',
      hideCursor: true,
      noTTYOutput: true,
      notTTYSchedule: 10_000,
    },
    cliProgress.Presets.shades_classic,
  );
  const witnessStep = () => last.get(tabs.witness)?.status.step ?? 0;
  const refresh = async () => {
    last = await tabs.poll();
    if (performance.now() > deadline) throw new SoakFailure(`timed out after ${options.timeoutSec} s at step ${witnessStep()} of ${config.steps}`);
    const states = [...new Set([...last.values()].map((r) => r.status.state))].join(',');
    bar.update(witnessStep(), { tabs: tabs.live.length, events: records.length, state: states });
  };
  /**
   * Polls until `done`. A training wait fails only when the witness's step stops moving for `stallSec`
   * (a slow, shared machine is not a hang); a recovery must happen within its own fixed limit.
   */
  const waitUntil = async (what: string, limit: { stallSec: number } | { timeoutSec: number }, done: () => boolean) => {
    const started = performance.now();
    let lastStep = -1;
    let movedAt = performance.now();
    for (;;) {
      await refresh();
      if (done()) return;
      if (witnessStep() !== lastStep) [lastStep, movedAt] = [witnessStep(), performance.now()];
      const waited = (performance.now() - movedAt) / 1000;
      if ('stallSec' in limit && waited > limit.stallSec) {
        throw new SoakFailure(`${what}: the room made no progress for ${limit.stallSec} s (witness at step ${witnessStep()})`);
      }
      if ('timeoutSec' in limit && performance.now() - started > limit.timeoutSec * 1000) {
        throw new SoakFailure(`${what}: not within ${limit.timeoutSec} s (witness at step ${witnessStep()})`);
      }
      await sleep(POLL_MS);
    }
  };

  const stall = { stallSec: options.stallSec };
  try {
    for (let i = 0; i < plan.tabs; i++) await tabs.open();
    bar.start(config.steps, 0, { tabs: plan.tabs, events: 0, planned: events.length, state: 'starting' });
    const cdp = await context.newCDPSession(tabs.witness.page);
    await waitUntil(`the room of ${plan.tabs} reaching step ${plan.warmupSteps}`, stall, () => witnessStep() >= plan.warmupSteps);
    const rank = last.get(tabs.witness)!.status.rank;
    if (rank !== 0) throw new SoakFailure(`the oldest tab should be rank 0 (the coordinator), it is rank ${rank}`);
    start = await measureWitness(cdp, tabs.witness.page);

    for (const event of events) {
      await waitUntil(`the room reaching step ${event.atStep}`, stall, () => witnessStep() >= event.atStep);
      const eventWall = Date.now();
      records.push(await carryOut(tabs, event, witnessStep()));
      const record = records[records.length - 1];
      const stepAtEvent = record.step;
      const eventAt = performance.now();
      // Absorbed: one ring of every live tab, and it has trained past the step the event interrupted.
      await waitUntil(`recovering from event ${records.length} (${record.kind} tab ${record.tab})`, { timeoutSec: options.recoverTimeoutSec }, () =>
        settled(last, tabs.live) && witnessStep() > stepAtEvent,
      );
      record.recoveredMs = performance.now() - eventAt;
      record.ringMs = await lastRingStart(tabs.live.map((t) => t.page), eventWall);
      if (record.kind !== 'add') record.detected = await witnessDropped(tabs.witness.page, eventWall);
      record.witnessBuffers = last.get(tabs.witness)?.metrics.gpuBuffers ?? null;
    }
    await waitUntil(`every tab finishing ${config.steps} steps`, stall, () =>
      last.size === tabs.live.length && [...last.values()].every((r) => r.status.state === 'done'),
    );
    end = await measureWitness(cdp, tabs.witness.page);
  } catch (error) {
    if (!(error instanceof SoakFailure)) throw error;
    stopped = error.message;
    // Whatever the others say now can still explain the failure (a second tab in 'error', their logs).
    await tabs.poll().then((reports) => (last = reports)).catch(() => undefined);
    witnessContext = await witnessAtStop(tabs);
  } finally {
    bar.stop();
    await browser.close();
  }
  const finalTabs = [...last.entries()].map(([tab, r]) => ({ tab: tab.n, status: r.status, metrics: r.metrics }));
  const settings: SoakSettings = {
    tabs: plan.tabs,
    minTabs: plan.minTabs,
    maxTabs: plan.maxTabs,
    steps: config.steps,
    model: config.model,
    dataset: config.dataset,
    seed: plan.seed,
    killEvery: plan.killEvery,
    peertimeout: config.peertimeout,
    zero: config.zero,
    mode: config.mode,
    signalling: options.signalling,
  };
  return summariseSoak({
    settings,
    plannedEvents: events.length,
    events: records,
    finalTabs,
    refused: tabs.refusedTotal(),
    disagreementSeen: tabs.disagreement,
    tabFailures: tabs.failures,
    start,
    end,
    stopped,
    witnessContext,
    wallSec: (performance.now() - began) / 1000,
  });
}

/** A run that stopped without a tab in 'error' (a hang): the witness's state and recent log say where it stood. */
async function witnessAtStop(tabs: Room): Promise<WitnessContext | null> {
  if (tabs.failures.length || tabs.witness.killed) return null;
  const page = tabs.witness.page;
  const log = await page.evaluate(() => window.lab.log().map((l) => `${l.level} ${l.message}`)).catch(() => [] as string[]);
  const status = await page.evaluate(() => window.lab.status()).catch(() => null);
  return {
    state: status ? `state ${status.state} at step ${status.step}, rank ${status.rank} of ${status.world}, epoch ${status.epoch}` : 'unreadable',
    log: log.slice(-LOG_LINES_ON_FAILURE),
  };
}

async function carryOut(tabs: Room, event: PlannedEvent, step: number): Promise<SoakEventRecord> {
  if (event.kind === 'add') {
    const tab = await tabs.open();
    return { kind: 'add', step, tab: tab.n, tabsAfter: event.tabsAfter, recoveredMs: null, witnessBuffers: null };
  }
  const candidates = tabs.live.slice(1); // never the witness
  const victim = candidates[event.victim];
  if (!victim) throw new SoakFailure(`the plan kills tab #${event.victim} of ${candidates.length} non-witness tabs`);
  if (event.kind === 'close') await tabs.close(victim);
  else await tabs.crash(victim);
  return { kind: event.kind, step, tab: victim.n, tabsAfter: event.tabsAfter, recoveredMs: null, witnessBuffers: null };
}

async function main(): Promise<void> {
  let options: SoakOptions;
  try {
    options = parseCli(process.argv.slice(2));
  } catch (error) {
    console.error(`soak: ${(error as Error).message}`);
    console.log(JSON.stringify({ ok: false, error: (error as Error).message }));
    process.exit(2);
  }
  await runHeadlessJob('soak', async (serverUrl) => {
    const summary = await runSoak(serverUrl, options);
    console.log(formatSoak(summary));
    // The machine may be shared: the recovery times are what this run saw under this load.
    console.log(`load average          ${loadavg().map((l) => l.toFixed(2)).join(' ')} (1, 5, 15 min) at the end`);
    return { ok: summary.ok, json: summary };
  });
}

void main();
