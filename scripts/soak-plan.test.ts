import { describe, expect, it } from 'vitest';
import { planSoak, type SoakPlanOptions } from './soak-plan';

const BASE: SoakPlanOptions = {
  steps: 1000,
  tabs: 4,
  minTabs: 2,
  maxTabs: 6,
  killEvery: 100,
  seed: 1,
  warmupSteps: 20,
  tailSteps: 50,
  crashShare: 0.3,
};

describe('soak plan', () => {
  it('is the same for the same seed and differs for another', () => {
    expect(planSoak(BASE)).toEqual(planSoak(BASE));
    expect(planSoak({ ...BASE, seed: 2 })).not.toEqual(planSoak(BASE));
  });

  it('keeps the room within its bounds, ends at the size it started with, and kills only existing tabs', () => {
    for (let seed = 0; seed < 200; seed++) {
      const options = { ...BASE, seed, minTabs: 3, maxTabs: 5, killEvery: 40 };
      const events = planSoak(options);
      let tabs = options.tabs;
      for (const e of events) {
        if (e.kind === 'add') expect(e.victim).toBe(-1);
        else {
          expect(e.victim).toBeGreaterThanOrEqual(0);
          expect(e.victim).toBeLessThan(tabs - 1); // never the witness
        }
        tabs += e.kind === 'add' ? 1 : -1;
        expect(e.tabsAfter).toBe(tabs);
        expect(tabs).toBeGreaterThanOrEqual(options.minTabs);
        expect(tabs).toBeLessThanOrEqual(options.maxTabs);
      }
      expect(tabs).toBe(options.tabs);
    }
  });

  it('places events after the warm-up, before the tail, in increasing steps about killEvery apart', () => {
    const events = planSoak(BASE);
    // 930 steps of room at a mean gap of 100: about 9 events, made even.
    expect(events.length).toBeGreaterThanOrEqual(6);
    expect(events.length % 2).toBe(0);
    expect(events[0].atStep).toBeGreaterThanOrEqual(BASE.warmupSteps + 50);
    expect(events[events.length - 1].atStep).toBeLessThanOrEqual(BASE.steps - BASE.tailSteps);
    for (let i = 1; i < events.length; i++) {
      const gap = events[i].atStep - events[i - 1].atStep;
      expect(gap).toBeGreaterThanOrEqual(50);
      expect(gap).toBeLessThanOrEqual(150);
    }
  });

  it('crashes the stated share of the kills, at least one, and none with crashShare 0', () => {
    for (let seed = 0; seed < 50; seed++) {
      const kinds = planSoak({ ...BASE, seed, crashShare: 0.5 }).map((e) => e.kind);
      const kills = kinds.filter((k) => k !== 'add').length;
      const crashes = kinds.filter((k) => k === 'crash').length;
      expect(kinds).toContain('add');
      expect(crashes).toBe(Math.max(1, Math.round(kills / 2)));
    }
    expect(planSoak({ ...BASE, crashShare: 0.01 }).filter((e) => e.kind === 'crash')).toHaveLength(1);
    expect(planSoak({ ...BASE, crashShare: 0 }).some((e) => e.kind === 'crash')).toBe(false);
  });

  it('plans nothing with killEvery 0, and refuses bounds that leave no room', () => {
    expect(planSoak({ ...BASE, killEvery: 0 })).toEqual([]);
    expect(() => planSoak({ ...BASE, minTabs: 4, maxTabs: 4 })).toThrow(/min-tabs equals max-tabs/);
    expect(() => planSoak({ ...BASE, maxTabs: 33 })).toThrow(/at most 32/);
    expect(() => planSoak({ ...BASE, tabs: 7 })).toThrow(/within \[min-tabs, max-tabs\]/);
    expect(() => planSoak({ ...BASE, crashShare: 2 })).toThrow(/crash-share/);
    expect(() => planSoak({ ...BASE, warmupSteps: 1000 })).toThrow(/warmup/);
  });
});
