// The soak run's schedule of kills and joins, drawn from a seed before the run starts (pure: unit-tested),
// so that a failing soak can be replayed event for event with the same --seed.
//
// Events are placed by training step, not by time: whatever the machine's speed, event i happens when
// the witness tab reaches its step. Every event changes the room by one tab, the room stays within
// [minTabs, maxTabs], and the plan ends with as many tabs as it started with, so that the witness's GPU
// buffer count at the end is compared with one taken at the same room size.
import { mulberry32 } from '../src/collective/codecs';
import { ELASTIC_MAX_MEMBERS } from '../src/peer/membership';

/**
 * close: page.close() (the tab says goodbye on pagehide); crash: the renderer dies without a word (its
 * peers learn from the browser freeing its lock, or from the server seeing its socket close).
 */
export type KillKind = 'close' | 'crash';
export type SoakEventKind = KillKind | 'add';

export interface PlannedEvent {
  /** Happens once the witness has completed this many steps. */
  atStep: number;
  kind: SoakEventKind;
  /** Kills: which tab dies, as an index into the live tabs other than the witness, oldest first. */
  victim: number;
  /** Tabs in the room once the event has been absorbed. */
  tabsAfter: number;
}

export interface SoakPlanOptions {
  steps: number;
  tabs: number;
  minTabs: number;
  maxTabs: number;
  /** Mean steps between events; 0: no events (a plain long run). */
  killEvery: number;
  seed: number;
  /** No event before this step: the witness's first measurement is taken there, in a room of `tabs`. */
  warmupSteps: number;
  /** No event in the last this-many steps, so that the last event's tab is absorbed before the end. */
  tailSteps: number;
  /** Share of kills that are hard crashes (the rest are page closes), rounded; at least one if above 0. */
  crashShare: number;
}

/** The most tabs an elastic room takes (src/peer/membership.ts). */
export const ROOM_MAX_TABS = ELASTIC_MAX_MEMBERS;

export function validatePlanOptions(o: SoakPlanOptions): void {
  const integer = (name: string, value: number, min: number) => {
    if (!Number.isInteger(value) || value < min) throw new Error(`${name} must be an integer >= ${min}, got ${value}`);
  };
  integer('steps', o.steps, 1);
  integer('tabs', o.tabs, 1);
  integer('min-tabs', o.minTabs, 1);
  integer('max-tabs', o.maxTabs, 1);
  integer('kill-every', o.killEvery, 0);
  integer('warmup steps', o.warmupSteps, 0);
  integer('tail steps', o.tailSteps, 0);
  if (o.warmupSteps >= o.steps) throw new Error(`warmup (${o.warmupSteps}) must be below steps (${o.steps}): the witness is first measured there`);
  if (o.maxTabs > ROOM_MAX_TABS) throw new Error(`max-tabs must be at most ${ROOM_MAX_TABS} (an elastic room's size limit), got ${o.maxTabs}`);
  if (!(o.minTabs <= o.tabs && o.tabs <= o.maxTabs)) {
    throw new Error(`tabs must lie within [min-tabs, max-tabs]: got tabs ${o.tabs}, min-tabs ${o.minTabs}, max-tabs ${o.maxTabs}`);
  }
  if (o.killEvery > 0 && o.minTabs === o.maxTabs) {
    throw new Error(`min-tabs equals max-tabs (${o.minTabs}): no tab could be killed or added; use --kill-every 0 for a run without events`);
  }
  if (o.killEvery > 0 && o.tabs < 2 && o.maxTabs < 2) throw new Error('a soak with events needs room for a second tab');
  if (!(o.crashShare >= 0 && o.crashShare <= 1)) throw new Error(`crash-share must be within [0, 1], got ${o.crashShare}`);
}

/** The events of one soak run, in step order. */
export function planSoak(o: SoakPlanOptions): PlannedEvent[] {
  validatePlanOptions(o);
  if (o.killEvery === 0) return [];
  const random = mulberry32(o.seed ^ 0x50a4);
  const last = o.steps - o.tailSteps;
  const at: number[] = [];
  // Gaps uniform in [0.5, 1.5] x the mean: events never pile up on one step, yet their spacing varies.
  for (let step = o.warmupSteps; ; ) {
    step += Math.max(1, Math.round(o.killEvery * (0.5 + random())));
    if (step > last) break;
    at.push(step);
  }
  // Each event moves the room by one tab: an even count can come back to where it started.
  if (at.length % 2 === 1) at.pop();
  const events: PlannedEvent[] = [];
  let tabs = o.tabs;
  at.forEach((atStep, i) => {
    const remaining = at.length - i;
    const away = tabs - o.tabs;
    let kind: SoakEventKind;
    if (Math.abs(away) >= remaining) kind = away > 0 ? 'close' : 'add'; // only the way back is left
    else if (tabs <= o.minTabs || tabs <= 1) kind = 'add';
    else if (tabs >= o.maxTabs) kind = 'close';
    else kind = random() < 0.5 ? 'add' : 'close';
    const victim = kind === 'add' ? -1 : Math.floor(random() * (tabs - 1));
    tabs += kind === 'add' ? 1 : -1;
    events.push({ atStep, kind, victim, tabsAfter: tabs });
  });
  // Which kills are crashes: the stated share of them (at least one when the share is not 0), at random
  // places. Drawn per kill instead, a short run could easily see no crash at all.
  const kills = events.filter((e) => e.kind !== 'add');
  const crashes = o.crashShare > 0 && kills.length ? Math.min(kills.length, Math.max(1, Math.round(o.crashShare * kills.length))) : 0;
  for (let i = kills.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [kills[i], kills[j]] = [kills[j], kills[i]];
  }
  kills.forEach((e, i) => (e.kind = i < crashes ? 'crash' : 'close'));
  return events;
}
