// Mutation-found gap: collective-ids.test.ts runs scopesMeet only over the registry as it is, where no
// two overlapping ranges differ in scope in a way that depends on the rule, so scopesMeet returning
// true, or false, for any pair of different scopes passed it. The rule decides which id clashes the
// registry test can see at all: a wrong "false" hides a real clash between a room collective and a
// strategy's (two collectives of one room answering to the same id).
import { describe, expect, it } from 'vitest';
import { scopesMeet, type CollectiveScope } from './collective-ids';

describe('scopesMeet: which collectives can be on one mesh at once', () => {
  it('a scope meets itself (mesh-probe and room included)', () => {
    for (const scope of ['room', 'strategy:ring', 'strategy:zero', 'mesh-probe'] as CollectiveScope[]) expect(scopesMeet(scope, scope), scope).toBe(true);
  });

  it("room collectives meet every strategy's, from either side", () => {
    expect(scopesMeet('room', 'strategy:ring')).toBe(true);
    expect(scopesMeet('strategy:zero', 'room')).toBe(true);
  });

  it('two different strategies never meet (one strategy runs in a room)', () => {
    expect(scopesMeet('strategy:ring', 'strategy:ps')).toBe(false);
    expect(scopesMeet('strategy:expert', 'strategy:tensor')).toBe(false);
  });

  it("the automation API's mesh-probe meets nothing else, room included, from either side", () => {
    expect(scopesMeet('mesh-probe', 'room')).toBe(false);
    expect(scopesMeet('room', 'mesh-probe')).toBe(false);
    expect(scopesMeet('strategy:ring', 'mesh-probe')).toBe(false);
    expect(scopesMeet('mesh-probe', 'strategy:ring')).toBe(false);
  });
});
