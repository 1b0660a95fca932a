import { describe, expect, it } from 'vitest';
import { chooseSource, coordinatorOf, decideRoster, needsState } from './roster';

describe('roster rules', () => {
  it('the coordinator is the oldest tab (lowest peer id)', () => {
    expect(coordinatorOf(['0c', '0a', '0b'])).toBe('0a');
    expect(coordinatorOf([])).toBeUndefined();
  });

  it('waits for every reachable tab, or for the grace period, and for the minimum', () => {
    const base = { view: ['0a', '0b', '0c'], minMembers: 2, maxMembers: 8, graceOver: false };
    expect(decideRoster({ ...base, ready: new Set(['0a', '0b']) })).toBeNull();
    expect(decideRoster({ ...base, ready: new Set(['0a', '0b']), graceOver: true })).toEqual(['0a', '0b']);
    expect(decideRoster({ ...base, ready: new Set(['0c', '0a', '0b']) })).toEqual(['0a', '0b', '0c']);
    expect(decideRoster({ ...base, ready: new Set(['0a']), graceOver: true })).toBeNull();
    // a ready from a tab this one cannot reach does not count
    expect(decideRoster({ ...base, view: ['0a', '0b'], ready: new Set(['0a', '0b', '0z']) })).toEqual(['0a', '0b']);
    // past the size limit the oldest stay
    expect(decideRoster({ ...base, maxMembers: 2, ready: new Set(['0a', '0b', '0c']) })).toEqual(['0a', '0b']);
  });

  it('starts everyone from the most advanced state, the lowest rank on a tie, nobody when all are new', () => {
    const h = (c: string) => c.repeat(16);
    expect(chooseSource([{ step: 7, hash: h('a') }, { step: 8, hash: h('b') }, { step: 8, hash: h('c') }])).toBe(1);
    expect(chooseSource([{ step: -1, hash: '' }, { step: 0, hash: h('a') }])).toBe(1);
    expect(chooseSource([{ step: -1, hash: '' }, { step: -1, hash: '' }])).toBe(-1);
    expect(needsState({ step: 8, hash: h('b') }, { step: 8, hash: h('b') })).toBe(false);
    expect(needsState({ step: 8, hash: h('c') }, { step: 8, hash: h('b') })).toBe(true);
    expect(needsState({ step: -1, hash: '' }, { step: 8, hash: h('b') })).toBe(true);
  });
});
